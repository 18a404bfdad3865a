"""The batch layer against a real MariaDB: `mare run` streams readings into the rollup tables,
`mare batch rollups` recomputes the same windows from the store and finds the same numbers, an
archive imported later reaches the tables through it, and `mare batch reconcile` finds an
injected difference, says why, and `--repair` removes it."""
import json
import math
import subprocess

from harness import MARE, MareRun, free_port, mare, wait_for
from mariadb_server import MariaDB

DAY = "2024-03-01"
OLD_DAY = "2024-02-28"
T0 = 1709251200  # 2024-03-01 00:00:00 UTC
SENSORS = (1, 2, 3)
COLUMNS = "sensor_id, field, window_start, count, min, max, mean, stddev, first, last, revision"


def readings():
    """Two hours of 3 sensors every 10 s, in time order (none late), two fields."""
    out = []
    for i in range(0, 7200, 10):
        for s in SENSORS:
            out.append({"timestamp": T0 + i, "sensor_id": s, "temperature": round(14 + s + math.sin(i / 900) * 2, 2),
                        "pressure": round(1010 + (i % 70) / 7 + s, 3), "location": {"lat": 42.5, "lon": 3.1}})
    return out


def day_count(db):
    """The readings counted in rollup_day, None before the sink has created it."""
    got = db.query_once_created("SELECT COALESCE(SUM(count), 0) FROM rollup_day")
    return None if got is None else int(got[0][0])


def rows(db, table, day_from, day_to):
    return db.query(f"SELECT {COLUMNS} FROM {table} WHERE window_start >= '{day_from}' AND window_start < '{day_to}' "
                    "ORDER BY sensor_id, field, window_start")


def same_numbers(a, b):
    """count, min, max, first, last, revision equal; mean and stddev within 1e-9 relative."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[:6] == y[:6] and x[8:] == y[8:], (x, y)
        for i in (6, 7):
            u, v = float(x[i]), float(y[i])
            assert u == v or abs(u - v) <= 1e-9 * max(abs(u), abs(v)), (x, y)


def test_batch_rollups_and_reconcile(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        # A rollup table as an older mare made it, without the `source` column: it is migrated.
        db.query("CREATE DATABASE IF NOT EXISTS mare", database="mysql")
        db.query("CREATE TABLE rollup_minute (sensor_id INT UNSIGNED NOT NULL, field VARCHAR(64) NOT NULL, "
                 "window_start DATETIME(6) NOT NULL, count BIGINT NOT NULL, min DOUBLE, max DOUBLE, mean DOUBLE, "
                 "stddev DOUBLE, first DOUBLE, last DOUBLE, revision BIGINT NOT NULL, updated_at TIMESTAMP(6) NOT NULL "
                 "DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (sensor_id, field, window_start)) ENGINE=InnoDB")
        sink = ["--set", f"sink.mariadb.port={db.port}"]
        sent = readings()
        run = MareRun(data, extra=["sink.mariadb.enabled=true", f"sink.mariadb.port={db.port}", "store.flush_interval=1s"])
        with run:
            for at in range(0, len(sent), 500):
                status, body = run.post("\n".join(json.dumps(r) for r in sent[at:at + 500]))
                assert status == 200 and body["accepted"] == len(sent[at:at + 500]), body
            # Every reading counted in the day windows of both fields.
            wait_for(lambda: day_count(db) == 2 * len(sent), what=lambda: f"rollup_day to count {2 * len(sent)}: {day_count(db)}")
            # ... and in the store, which the batch reads.
            assert wait_for(lambda: mare("query", "SELECT count(*) FROM readings", "--offline", "--data-dir", data, "--format", "csv")
                            .stdout.splitlines()[-1] == str(len(sent)))
        assert db.query("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mare' "
                        "AND TABLE_NAME = 'rollup_minute' AND COLUMN_NAME = 'source'") == [["1"]]
        stream = {t: rows(db, t, DAY, "2024-03-02") for t in ("rollup_minute", "rollup_hour", "rollup_day")}
        assert len(stream["rollup_minute"]) == 3 * 2 * 120 and len(stream["rollup_hour"]) == 3 * 2 * 2
        assert db.query("SELECT DISTINCT source FROM rollup_hour") == [["stream"]]

        # The same period recomputed: rollup messages on stdout, then into MariaDB.
        p = mare("batch", "rollups", "--from", DAY, "--to", "2024-03-02", "--data-dir", data)
        messages = [json.loads(line) for line in p.stdout.splitlines()]
        assert len(messages) == sum(len(r) for r in stream.values())
        assert all(m["source"] == "batch" and m["final"] for m in messages)
        assert "batch rollups: 2160 readings of 3 sensors" in p.stderr
        p = mare("batch", "rollups", "--from", DAY, "--to", "2024-03-02", "--data-dir", data, "--sink", "mariadb", *sink)
        for table, before in stream.items():
            same_numbers(rows(db, table, DAY, "2024-03-02"), before)
        assert db.query("SELECT DISTINCT source FROM rollup_hour") == [["batch"]]

        # Reconciled: nothing differs, against the tables and against the rollups topic.
        p = mare("batch", "reconcile", "--from", DAY, "--to", "2024-03-02", "--data-dir", data, "--sink", "mariadb", *sink)
        assert "0 differ" in p.stdout, p.stdout
        p = mare("batch", "reconcile", "--from", DAY, "--to", "2024-03-02", "--data-dir", data, "--sink", "log")
        assert "0 differ" in p.stdout and "rollups topic" in p.stdout, p.stdout

        # An archive older than the stream: imported into the store, it reaches the tables only
        # through the batch.
        archive = tmp_path / "old.csv"
        with open(archive, "w") as f:
            f.write("ts,sensor_id,lat,lon,temperature\n")
            for i in range(0, 3600, 60):
                f.write(f"{OLD_DAY} {i // 3600:02d}:{i % 3600 // 60:02d}:00,7,42.5,3.1,{10 + i / 3600:.4f}\n")
        mare("import", archive, "--data-dir", data)
        assert rows(db, "rollup_hour", OLD_DAY, DAY) == []
        # Against the rollups topic the imported hour is missing from the stream, and reconcile says why.
        p = mare("batch", "reconcile", "--from", OLD_DAY, "--to", "2024-03-02", "--data-dir", data, "--sink", "log", check=False)
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"7/temperature/1h/{(T0 - 2 * 86400) * 1_000_000} missing_in_stream" in p.stdout, p.stdout
        assert "imported after the window closed" in p.stdout
        mare("batch", "rollups", "--from", OLD_DAY, "--to", "2024-02-29", "--data-dir", data, "--sink", "mariadb", *sink)
        old = rows(db, "rollup_hour", OLD_DAY, DAY)
        values = [round(10 + i / 3600, 4) for i in range(0, 3600, 60)]
        assert len(old) == 1 and old[0][:4] == ["7", "temperature", f"{OLD_DAY} 00:00:00.000000", "60"]
        assert float(old[0][4]) == min(values) and float(old[0][5]) == max(values)
        assert abs(float(old[0][6]) - sum(values) / 60) < 1e-9
        assert db.query("SELECT COUNT(*) FROM rollup_minute WHERE sensor_id = 7") == [["60"]]

        # An injected difference: found, explained, repaired.
        p = mare("batch", "reconcile", "--from", OLD_DAY, "--to", "2024-03-02", "--data-dir", data, *sink,
                 "--set", "sink.mariadb.enabled=true")
        assert "0 differ" in p.stdout, p.stdout
        db.query(f"UPDATE rollup_hour SET max = max + 1 WHERE sensor_id = 2 AND field = 'temperature' "
                 f"AND window_start = '{DAY} 01:00:00'")
        p = mare("batch", "reconcile", "--from", OLD_DAY, "--to", "2024-03-02", "--data-dir", data, *sink,
                 "--set", "sink.mariadb.enabled=true", check=False)
        assert p.returncode == 1, p.stdout + p.stderr
        key = f"2/temperature/1h/{(T0 + 3600) * 1_000_000}"
        assert f"{key} values: max" in p.stdout and "changed outside mare" in p.stdout, p.stdout
        assert "1 differ (1 values)" in p.stdout, p.stdout
        p = mare("batch", "reconcile", "--from", OLD_DAY, "--to", "2024-03-02", "--data-dir", data, *sink,
                 "--set", "sink.mariadb.enabled=true", "--repair", check=False)
        assert p.returncode == 0 and "1 repaired" in p.stdout, p.stdout + p.stderr
        p = mare("batch", "reconcile", "--from", OLD_DAY, "--to", "2024-03-02", "--data-dir", data, *sink,
                 "--set", "sink.mariadb.enabled=true")
        assert "0 differ" in p.stdout, p.stdout
        same_numbers(rows(db, "rollup_hour", DAY, "2024-03-02"), stream["rollup_hour"])


def test_stream_does_not_overwrite_a_batch_row_at_equal_revision(tmp_path):
    """The sink's upsert: a replayed stream message (equal revision) leaves the batch's row; a
    higher revision (the stream counted more) replaces it."""
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        archive = tmp_path / "a.csv"
        with open(archive, "w") as f:
            f.write("ts,sensor_id,temperature\n")
            for i in range(10):
                f.write(f"{DAY} 00:00:{i:02d},4,{i}\n")
        mare("import", archive, "--data-dir", data)
        mare("batch", "rollups", "--from", DAY, "--to", "2024-03-02", "--data-dir", data, "--sink", "mariadb",
             "--set", f"sink.mariadb.port={db.port}")
        start = T0 * 1_000_000

        def message(count, mean):
            return {"sensor_id": 4, "field": "temperature", "resolution": "1m", "window_start": f"{DAY}T00:00:00.000000Z",
                    "window_end": f"{DAY}T00:01:00.000000Z", "count": count, "min": 0, "max": 9, "mean": mean,
                    "stddev": 1, "first": 0, "last": 9, "revision": count, "final": True}
        lines = [f"{start}\t4/temperature/1m/{start}\t{json.dumps(message(10, 99))}"]
        mare("log", "produce", "rollups", "--with-timestamps", "--data-dir", data, input="\n".join(lines) + "\n")
        sink = subprocess.Popen([MARE, "sink", "mariadb", "--data-dir", str(data), "--set", f"sink.mariadb.port={db.port}",
                                 "--metrics-listen", f"127.0.0.1:{free_port()}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: db.query_once_created("SELECT COUNT(*) FROM mare_sink_offsets WHERE topic = 'rollups'")
                            not in (None, [["0"]]))
            q = f"SELECT count, mean, source FROM rollup_minute WHERE sensor_id = 4 AND window_start = '{DAY} 00:00:00'"
            assert db.query(q) == [["10", "4.5", "batch"]]
            lines = [f"{start}\t4/temperature/1m/{start}\t{json.dumps(message(11, 5))}"]
            mare("log", "produce", "rollups", "--with-timestamps", "--data-dir", data, input="\n".join(lines) + "\n")
            wait_for(lambda: db.query(q) == [["11", "5", "stream"]], what=lambda: f"the stream's revision: {db.query(q)}")
        finally:
            sink.terminate()
            sink.wait(timeout=60)
