"""The MariaDB sink against a real MariaDB: rows equal the newest revision of every window, through
an outage of the database and a kill -9 of the sink, checked with the mariadb client."""
import json
import signal
import subprocess
import time


from harness import MARE
from mariadb_server import MariaDB
from sink_helpers import MariaDBSink
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the sinks a failed test leaves)

WINDOW = 3_600_000_000


def rollup(sensor, field, start_us, count, base):
    """A rollup message whose numbers are a function of its revision (= count)."""
    return {"sensor_id": sensor, "field": field, "resolution": "1h",
            "window_start": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(start_us // 1_000_000)),
            "window_end": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime((start_us + WINDOW) // 1_000_000)),
            "count": count, "min": base - count / 7, "max": base + count / 3, "mean": base + count / 1000,
            "stddev": count / 97, "first": base - 0.5, "last": base + count / 11, "revision": count, "final": False}


def produce(data_dir, messages):
    lines = []
    for m in messages:
        start = int(time.mktime(time.strptime(m["window_start"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1_000_000
        key = f'{m["sensor_id"]}/{m["field"]}/{m["resolution"]}/{start}'
        lines.append(f"{start}\t{key}\t{json.dumps(m)}")
    p = subprocess.run([MARE, "log", "produce", "rollups", "--with-timestamps", "--data-dir", str(data_dir)],
                       input="\n".join(lines) + "\n", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def revisions(first_hour, hours, max_count):
    """Messages for 4 sensors x 2 fields x `hours` windows, each window re-emitted with rising
    revisions, windows interleaved as a processor emits them; and the newest of each."""
    messages, newest = [], {}
    t0 = 1705831200_000000 + first_hour * WINDOW
    for count in range(10, max_count + 1, 10):
        for h in range(hours):
            for sensor in (1, 2, 3, 4):
                for field in ("temperature", "pressure"):
                    m = rollup(sensor, field, t0 + h * WINDOW, count, 15.0 if field == "temperature" else 1013.0)
                    messages.append(m)
                    newest[(sensor, field, m["window_start"][:19].replace("T", " "))] = m
    return messages, newest


def Sink(data_dir, db):
    return MariaDBSink(data_dir, db, batch=10)


def assert_rows_equal(db, newest):
    rows = db.query("SELECT sensor_id, field, window_start, count, min, max, mean, stddev, first, last, revision "
                    "FROM rollup_hour ORDER BY sensor_id, field, window_start")
    assert len(rows) == len(newest)
    for r in rows:
        m = newest[(int(r[0]), r[1], r[2][:19])]
        assert int(r[3]) == m["count"] and int(r[10]) == m["revision"], r
        for got, key in zip(r[4:10], ("min", "max", "mean", "stddev", "first", "last")):
            assert abs(float(got) - m[key]) <= 1e-12 * max(1.0, abs(m[key])), (key, got, m[key])


def test_upserts_newest_revision_through_outage_and_kill9(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        messages, newest = revisions(0, 6, 100)
        produce(data, messages)
        sink = Sink(data, db)
        sink.wait_caught_up(len(messages))
        assert_rows_equal(db, newest)
        # The positions are in MariaDB, beside the rows.
        positions = db.query("SELECT SUM(next_offset) FROM mare_sink_offsets WHERE consumer = 'mariadb'")
        assert int(positions[0][0]) == len(messages)

        # Outage: the database goes away while rollups keep coming; nothing may be lost.
        db.stop()
        more, newest_more = revisions(3, 6, 200)  # overlaps windows 3..5 with higher revisions, adds 6..8
        produce(data, more)
        time.sleep(1.5)
        assert sink.metric('mare_sink_open_connections{sink="mariadb"}') == 0
        assert sink.metric('mare_sink_errors_total{sink="mariadb"}') >= 1
        assert sink.metric('mare_sink_lag_records{sink="mariadb"}') > 0
        db.start()
        sink.wait_caught_up(len(messages) + len(more))
        newest.update(newest_more)
        assert_rows_equal(db, newest)

        # kill -9 mid-stream, restart: still exact, positions at the end.
        def committed():
            return int(db.query("SELECT SUM(next_offset) FROM mare_sink_offsets WHERE consumer = 'mariadb'")[0][0])

        before = committed()
        final, newest_final = revisions(0, 9, 300)
        produce(data, final)
        total = before + len(final)
        while committed() == before:
            time.sleep(0.005)
        sink.stop(signal.SIGKILL)
        at_kill = committed()
        assert before < at_kill < total, "the kill must land mid-stream"
        sink = Sink(data, db)
        deadline = time.time() + 60
        while time.time() < deadline and committed() != total:
            time.sleep(0.1)
        assert committed() == total
        newest.update(newest_final)
        assert_rows_equal(db, newest)
        rc, out = sink.stop()
        assert rc == 0, out


def test_migrates_an_older_table(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        db.query("CREATE DATABASE mare", database="")
        db.query("CREATE TABLE rollup_hour (sensor_id INT UNSIGNED NOT NULL, field VARCHAR(64) NOT NULL, "
                 "window_start DATETIME(6) NOT NULL, count BIGINT NOT NULL, min DOUBLE, max DOUBLE, mean DOUBLE, "
                 "revision BIGINT NOT NULL, PRIMARY KEY (sensor_id, field, window_start))")
        messages, newest = revisions(0, 2, 20)
        produce(data, messages)
        sink = Sink(data, db)
        sink.wait_caught_up(len(messages))
        columns = [r[0] for r in db.query("SHOW COLUMNS FROM rollup_hour")]
        for c in ("stddev", "first", "last", "updated_at"):
            assert c in columns
        assert_rows_equal(db, newest)
        assert sink.stop()[0] == 0
