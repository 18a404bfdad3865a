"""The MariaDB sink's optional `readings` table against a real MariaDB, read back with the mariadb
client: every reading sent to `mare run` is one row with its values; through an outage of the
database and a kill -9 of the sink, every reading of the log is in the table exactly once, and the
rows never run ahead of or behind the positions committed with them; unreadable raw records are
skipped and counted; by default no readings table is written at all."""
import datetime
import json
import signal
import subprocess
import time

from harness import MARE, MareRun, log_records, mare
from mariadb_server import MariaDB
from sink_helpers import MariaDBSink
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the sinks a failed test leaves)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
T0 = 1705831200_000000  # 2024-01-21 10:00:00 UTC
NAME = 'sink="mariadb_readings"'


def utc_text(us):
    return (EPOCH + datetime.timedelta(microseconds=us)).strftime("%Y-%m-%d %H:%M:%S.%f")


def reading(seq):
    """A reading with a bit of everything, its expected row (ts text, lat, lon, fields) and its
    JSON as sent. Timestamps come in three forms, all meaning the same UTC instant."""
    us = T0 + seq * 1_000_000 + (seq * 7919) % 1000 * 1000  # millisecond precision, for the epoch-ms form
    r = {"sensor_id": 1 + seq % 5, "seq": seq}
    form = seq % 3
    if form == 0:
        r["timestamp"] = utc_text(us)  # the observatory's form: no zone, UTC
    elif form == 1:
        local = EPOCH + datetime.timedelta(microseconds=us) + datetime.timedelta(hours=2)
        r["timestamp"] = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00"
    else:
        r["timestamp"] = us // 1000  # epoch milliseconds
    r["temperature"] = round(12 + (seq * 0.37) % 9, 3)
    if seq % 7 != 3:  # some readings lack the field altogether ...
        r["humidity"] = None if seq % 11 == 5 else round(40 + (seq * 1.3) % 50, 2)  # ... or send it as null
    r["pressure"] = 990 + seq % 40  # an integer
    r["salinity"] = 35 + seq / 1e7  # a numeric field without a typed column
    if seq % 4 == 0:
        r["location"] = {"lat": 42.488629 + seq / 1e6, "lon": -3.185785 - seq / 1e6}
    elif seq % 4 == 1:
        r["location"] = None
    if seq % 2 == 0:
        r["station"] = f'Banyuls-sur-Mer "Sola" {seq} \u00e9\u00df\u2013\u6d77'  # text: quotes, UTF-8
    if seq % 10 == 9:
        r["status"] = "fault\tcode\\7"
    fields = {k: v for k, v in r.items() if k not in ("timestamp", "sensor_id", "location") and v is not None}
    loc = r.get("location")
    return r, (utc_text(us), loc["lat"] if loc else None, loc["lon"] if loc else None, fields), json.dumps(r, ensure_ascii=False)


def float_or_none(text):
    return None if text == "NULL" else float(text)


def table_rows(db):
    """(partition, offset) -> (sensor_id, ts, lat, lon, fields dict, temperature, humidity, pressure)."""
    out = {}
    for r in db.query("SELECT log_partition, log_offset, sensor_id, ts, lat, lon, HEX(fields), temperature, humidity, "
                      "pressure FROM readings"):
        out[(int(r[0]), int(r[1]))] = (int(r[2]), r[3], float_or_none(r[4]), float_or_none(r[5]),
                                       json.loads(bytes.fromhex(r[6]).decode()), *map(float_or_none, r[7:10]))
    return out


def count_and_positions(db):
    """Rows in `readings` and the sum of the committed raw positions, read in one statement (one
    snapshot): equal at every instant when both are committed in the same transactions."""
    r = db.query("SELECT (SELECT COUNT(*) FROM readings), (SELECT COALESCE(SUM(next_offset), 0) FROM mare_sink_offsets "
                 "WHERE consumer = 'mariadb' AND topic = 'raw')")[0]
    return int(r[0]), int(r[1])


def wait_rows(db, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.query("SHOW TABLES LIKE 'readings'") and count_and_positions(db)[0] >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"readings has {count_and_positions(db)[0]} rows, {n} expected")


def test_readings_sent_to_mare_run_are_rows_with_their_values(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        # Ingest's dedup off: the reading sent twice must be two records, two rows.
        run = MareRun(data, extra=["ingest.dedup_horizon=\"0s\"", "sink.mariadb.enabled=true", "sink.mariadb.readings=true", f"sink.mariadb.port={db.port}",
                                   "sink.mariadb.batch=50"])
        with run:
            sent = [reading(seq) for seq in range(600)]
            sent.append(sent[42])  # the same reading sent twice: two readings, two rows
            for i in range(0, len(sent), 100):
                status, answer = run.post("\n".join(s[2] for s in sent[i:i + 100]))
                assert status == 200 and answer["rejected"] == 0, answer
            wait_rows(db, len(sent))
            deadline = time.time() + 30  # the lag gauge is refreshed every second
            while run.metric(f"mare_sink_lag_records{{{NAME}}}") != 0 and time.time() < deadline:
                time.sleep(0.2)
            assert run.metric(f"mare_sink_lag_records{{{NAME}}}") == 0
            assert run.metric(f"mare_sink_rows_written_total{{{NAME}}}") == len(sent)
            assert run.metric(f"mare_sink_records_skipped_total{{{NAME}}}") == 0
            assert run.metric('mare_sink_open_connections{sink="mariadb"}') == 1  # the rollups go on beside it

        # One row per record of the log, at its place, with the values of the reading it holds.
        rows = table_rows(db)
        records = log_records(data)
        assert len(records) == len(sent) == len(rows)
        expected = {r["seq"]: exp for r, exp, _ in sent}
        seen = {}
        for rec in records:
            sensor, ts, lat, lon, fields, temperature, humidity, pressure = rows[(rec["partition"], rec["offset"])]
            seq = fields["seq"]
            seen[seq] = seen.get(seq, 0) + 1
            want_ts, want_lat, want_lon, want_fields = expected[seq]
            assert sensor == int(rec["key"]) == 1 + seq % 5
            assert ts == want_ts, (seq, ts, want_ts)
            assert (lat, lon) == (want_lat, want_lon), seq
            assert fields == want_fields, (fields, want_fields)  # numbers read back exactly, text byte for byte
            assert temperature == want_fields["temperature"]  # the typed columns, computed from `fields`
            assert humidity == want_fields.get("humidity")
            assert pressure == want_fields["pressure"]
        assert seen == {seq: 2 if seq == 42 else 1 for seq in range(600)}

        # MariaDB reads the fields itself: text unescaped, in UTF-8, and numbers.
        station = db.query("SELECT HEX(JSON_VALUE(fields, '$.station')) FROM readings WHERE JSON_VALUE(fields, '$.seq') = 2")
        assert bytes.fromhex(station[0][0]).decode() == expected[2][3]["station"]
        status = db.query("SELECT HEX(JSON_VALUE(fields, '$.status')) FROM readings WHERE JSON_VALUE(fields, '$.seq') = 9")
        assert bytes.fromhex(status[0][0]).decode() == "fault\tcode\\7"
        missing = db.query("SELECT COUNT(*) FROM readings WHERE humidity IS NULL AND JSON_EXISTS(fields, '$.humidity') = 0")
        assert int(missing[0][0]) == sum(1 for _, exp, _ in sent if "humidity" not in exp[3])
        # The website's question, answered from the primary key: one sensor, a time range.
        plan = " ".join(" ".join(r) for r in db.query(
            "EXPLAIN SELECT ts, temperature FROM readings WHERE sensor_id = 3 AND ts >= '2024-01-21 10:01:00' "
            "AND ts < '2024-01-21 10:02:00'"))
        assert "PRIMARY" in plan and "range" in plan, plan
        window = db.query("SELECT COUNT(*) FROM readings WHERE sensor_id = 3 AND ts >= '2024-01-21 10:01:00' "
                          "AND ts < '2024-01-21 10:02:00'")
        assert int(window[0][0]) == sum(1 for r, exp, _ in sent if r["sensor_id"] == 3 and exp[0].startswith("2024-01-21 10:01:"))
        # The positions, beside the rows; the rollups went on as before.
        assert count_and_positions(db) == (len(sent), len(sent))
        assert int(db.query("SELECT COUNT(*) FROM rollup_minute")[0][0]) > 0


def Sink(data_dir, db, batch=50):
    """`mare sink mariadb --readings`, following a data dir's log read-only."""
    return MariaDBSink(data_dir, db, batch=batch, readings=True)


def produce(data_dir, topic, lines):
    p = subprocess.run([MARE, "log", "produce", topic, "--data-dir", str(data_dir)], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def produce_readings(data_dir, seqs):
    produce(data_dir, "raw", [f"{r['sensor_id']}\t{text}" for r, _, text in map(reading, seqs)])


def assert_exactly_once(db, n):
    """Every reading 0..n-1 of the log in the table once: no double, none missing."""
    assert count_and_positions(db) == (n, n)
    doubles = db.query("SELECT JSON_VALUE(fields, '$.seq'), COUNT(*) FROM readings GROUP BY 1 HAVING COUNT(*) <> 1")
    assert doubles == []
    seqs = db.query("SELECT MIN(JSON_VALUE(fields, '$.seq') + 0), MAX(JSON_VALUE(fields, '$.seq') + 0), "
                    "COUNT(DISTINCT log_partition, log_offset) FROM readings")[0]
    assert (int(seqs[0]), int(seqs[1]), int(seqs[2])) == (0, n - 1, n)


def test_exactly_once_through_an_outage_and_kill9_of_the_sink(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        produce(data, "rollups", [])  # the sink waits for this topic; no rollups needed here
        produce_readings(data, range(0, 2000))
        sink = Sink(data, db)
        sink.wait_caught_up(2000)
        assert_exactly_once(db, 2000)

        # Outage: MariaDB goes away while readings keep coming; then it catches up.
        db.stop()
        produce_readings(data, range(2000, 4000))
        time.sleep(1.5)
        assert sink.metric(f"mare_sink_open_connections{{{NAME}}}") == 0
        assert sink.metric(f"mare_sink_errors_total{{{NAME}}}") >= 1
        assert sink.metric(f"mare_sink_lag_records{{{NAME}}}") > 0
        db.start()
        sink.wait_caught_up(4000)
        assert_exactly_once(db, 4000)

        # kill -9 mid-stream, in small transactions; rows and positions agree at every instant.
        total = 40000
        produce_readings(data, range(4000, total))
        # Samples taken while the sink was mid-stream (the instant of the kill included): how
        # many depends on the machine's speed, a poll being a mariadb client run.
        mid_stream = 0
        while count_and_positions(db)[1] < 4000 + 2000:
            rows, positions = count_and_positions(db)
            assert rows == positions
            mid_stream += 4000 < positions < total
        sink.stop(signal.SIGKILL)
        rows, at_kill = count_and_positions(db)
        assert rows == at_kill and 4000 < at_kill < total, (rows, at_kill, "the kill must land mid-stream")
        mid_stream += 1
        sink = Sink(data, db)
        deadline = time.time() + 120
        while time.time() < deadline and count_and_positions(db)[1] != total:
            rows, positions = count_and_positions(db)
            assert rows == positions
            mid_stream += 4000 < positions < total
        assert_exactly_once(db, total)
        assert mid_stream >= 2, mid_stream
        rc, out = sink.stop()
        assert rc == 0, out


def test_unreadable_raw_records_are_skipped_counted_and_logged(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        produce(data, "rollups", [])
        good = [reading(seq) for seq in range(3)]
        produce(data, "raw", [f"1\t{good[0][2]}", "1\tnot json", f"1\t{good[1][2]}",
                              f"1\t[{good[2][2]}]", '1\t{"sensor_id": 1}', f"1\t{good[2][2]}"])
        sink = Sink(data, db)
        sink.wait_caught_up(6)
        assert sink.metric(f"mare_sink_records_skipped_total{{{NAME}}}") == 3
        assert sink.metric(f"mare_sink_rows_written_total{{{NAME}}}") == 3
        assert sink.proc.poll() is None
        assert count_and_positions(db) == (3, 6)  # skipped, and the position past them committed
        assert sorted(int(r[0]) for r in db.query("SELECT JSON_VALUE(fields, '$.seq') FROM readings")) == [0, 1, 2]
        rc, out = sink.stop()
        assert rc == 0
        assert out.count("skipping raw record") == 3, out


def test_default_config_writes_no_readings(tmp_path):
    assert "\nreadings = false\n" in mare("run", "--config", "config/mare.toml", "--print-config").stdout
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        # Ingest's dedup off: the reading sent twice must be two records, two rows.
        run = MareRun(data, extra=["ingest.dedup_horizon=\"0s\"", "sink.mariadb.enabled=true", f"sink.mariadb.port={db.port}"])
        with run:
            status, answer = run.post("\n".join(reading(seq)[2] for seq in range(200)))
            assert status == 200 and answer["accepted"] == 200, answer
            deadline = time.time() + 60
            while time.time() < deadline:
                if db.query("SHOW TABLES LIKE 'rollup_minute'") and \
                        int(db.query("SELECT COALESCE(SUM(count), 0) FROM rollup_minute WHERE field = 'temperature'")[0][0]) == 200:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the rollups did not arrive")
            assert run.metric(f"mare_sink_rows_written_total{{{NAME}}}") is None
        assert db.query("SHOW TABLES LIKE 'readings'") == []
        assert db.query("SELECT * FROM mare_sink_offsets WHERE topic = 'raw'") == []
