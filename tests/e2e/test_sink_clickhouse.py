"""The ClickHouse sink against a real ClickHouse server (Debian's clickhouse-server 18.16):
readings and rollups from `mare run` arrive with their types, and hourly min/max/avg per sensor
through ClickHouse's SQL equal mare's own SQL (and the 1h rollups, through FINAL and argMax); a
kill -9 of the sink mid-stream and a stopped-then-restarted server leave every reading there
exactly once with its values, through FINAL and grouped by the key (after the kill, beside the
resent copies the unmerged table holds, and every window at its newest revision through FINAL
and argMax(x, revision)), the sink inserting full batches as it catches up; a row ClickHouse refuses (a CHECK-like MATERIALIZED column that
throws) goes to the dead-letter file with ClickHouse's reason, and the rest of its batch arrives;
a batch out of key order (the sink sorts it) arrives whole, the later of two copies kept."""
import datetime
import json
import os

import pytest

from clickhouse_server import ClickHouse
from harness import MareRun, mare, wait_for
from sink_helpers import T0, SinkProcess, buoy, epoch_ms, produce, read_dead_letters
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the sinks a failed test leaves)

@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    with ClickHouse(tmp_path_factory.mktemp("ch")) as server:
        yield server


def ch_sets(ch, database, extra=()):
    return [f"sink.clickhouse.url={ch.url}", f"sink.clickhouse.database={database}", 'sink.clickhouse.retry_max="500ms"',
            'sink.clickhouse.max_delay="100ms"', *extra]


class Sink(SinkProcess):
    """A `mare sink clickhouse` process following a data dir's raw topic."""

    def __init__(self, data_dir, ch, database, extra=()):
        super().__init__("clickhouse", data_dir, ch_sets(ch, database, ["sink.clickhouse.rollups=false", *extra]))


def positions(ch, database, topic="raw"):
    """Sum of the sink's saved next offsets over the topic's partitions (0 before any)."""
    try:
        rows = ch.query(f"SELECT sum(m) FROM (SELECT `partition`, max(next_offset) AS m FROM {database}.sink_offsets "
                        f"WHERE topic = '{topic}' GROUP BY `partition`)")
    except RuntimeError:
        return 0
    return int(rows[0][0])


def ch_number(x):
    """A Float64 as ClickHouse writes it in TabSeparated: shortest form, no ".0" on whole numbers."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def scalar(ch, sql):
    return ch.query(sql)[0][0]


def reading_row(r):
    """What `readings` must hold for buoy() reading r: its key, then its values."""
    loc = r.get("location") or {}
    return (r["sensor_id"], r["timestamp"] * 1_000_000, loc.get("lat"), loc.get("lon"), float(r["temperature"]),
            float(r["pressure"]), float(r["seq"]), r["status"])


def number_or_none(text):
    return None if text == "\\N" else float(text)


def readings_exactly_once(ch, database, readings):
    """Each reading once, with its values, through FINAL, and grouped by the key without FINAL
    (one group per reading, every copy in it, resent or not, holding that reading's values): a
    duplicate would be a row too many, a value wrong, or a group whose copies differ."""
    t = f"{database}.readings"
    want = sorted(reading_row(r) for r in readings)
    values = ["lat", "lon", "temperature", "pressure", "number_values[indexOf(number_names, 'seq')]",
              "text_values[indexOf(text_names, 'status')]"]

    def parse(rows):
        return [(int(s), int(us), number_or_none(lat), number_or_none(lon), float(t), float(p), float(seq), status)
                for s, us, lat, lon, t, p, seq, status in rows]
    assert parse(ch.query(f"SELECT sensor_id, ts_us, {', '.join(values)} FROM {t} FINAL ORDER BY sensor_id, ts_us")) == want
    grouped = ch.query(f"SELECT sensor_id, ts_us, {', '.join(f'any({v})' for v in values)}, "
                       f"uniqExact(tuple({', '.join(values)})) FROM {t} GROUP BY sensor_id, ts_us ORDER BY sensor_id, ts_us")
    assert {g[-1] for g in grouped} == {"1"}, "copies of one reading that differ"
    assert parse(g[:-1] for g in grouped) == want


def rollup(sensor, k, revision):
    """Revision `revision` of window k (1h) of a sensor's temperature, as the rollups topic holds
    it: (key, value); its numbers depend on all three, the revision being its count."""
    start = T0 + 3600 * k
    iso = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    low = sensor + k / 8 + revision / 4
    value = {"sensor_id": sensor, "field": "temperature", "resolution": "1h", "window_start": iso(start),
             "window_end": iso(start + 3600), "count": revision, "min": low, "max": low + revision, "mean": low + 0.5,
             "stddev": revision / 8, "first": low, "last": low + 1, "revision": revision, "final": revision == 4}
    return f"{sensor}/temperature/1h/{start * 1_000_000}", value


def rollups_exactly_once(ch, database, newest):
    """Each window once, at its newest revision (`newest`: rollup() values), through FINAL and
    through argMax(x, revision) grouped by the key."""
    want = sorted((v["sensor_id"], epoch_ms(v["window_start"]) * 1000, v["count"], v["min"], v["max"], v["mean"],
                   v["revision"], int(v["final"])) for v in newest)
    key = "sensor_id, field, resolution, window_start, window_start_us"
    values = ["count", "min", "max", "mean", "revision", "is_final"]

    def parse(rows):
        return [(int(s), int(w), int(c), float(lo), float(hi), float(mean), int(rev), int(final))
                for s, w, c, lo, hi, mean, rev, final in rows]
    assert parse(ch.query(f"SELECT sensor_id, window_start_us, {', '.join(values)} FROM {database}.rollups FINAL "
                          f"ORDER BY {key}")) == want
    assert parse((r[0], r[4], *r[5:]) for r in ch.query(
        f"SELECT {key}, {', '.join(f'argMax({v}, revision)' for v in values)} FROM {database}.rollups "
        f"GROUP BY {key} ORDER BY {key}")) == want


def test_readings_and_rollups_from_mare_run_arrive_typed_and_hourly_sql_matches_mares(tmp_path, ch):
    db = "run"
    n = 4 * 3 * 120  # 4 sensors, 3 hours, one reading each 30 s
    readings = [buoy(i, 1 + i % 4, T0 + (i // 4) * 30) for i in range(n)]
    extra = ['store.flush_interval="1s"', "sink.clickhouse.enabled=true", *ch_sets(ch, db)]
    with MareRun(tmp_path, extra=extra) as run:
        for k in range(0, n, 400):
            status, body = run.post("\n".join(json.dumps(r) for r in readings[k:k + 400]))
            assert status == 200, body
        wait_for(lambda: positions(ch, db) == n, what=f"{n} readings in ClickHouse")
        # Counted once ClickHouse answered the insert, which can come after its rows are visible.
        wait_for(lambda: run.metric('mare_sink_clickhouse_rows_written_total{topic="raw"}') >= n,
                 what="the sink to count what ClickHouse acknowledged")
        assert run.metric('mare_sink_clickhouse_up{topic="raw"}') == 1
        assert run.metric('mare_sink_clickhouse_inserts_total{topic="raw"}') >= 1

        # The tables' engines and column types.
        engines = dict(ch.query(f"SELECT name, engine FROM system.tables WHERE database = '{db}'"))
        assert engines == {"readings": "ReplacingMergeTree", "rollups": "ReplacingMergeTree",
                           "sink_offsets": "ReplacingMergeTree"}
        types = dict(ch.query(f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'readings'"))
        assert {k: types[k] for k in ("sensor_id", "ts", "ts_us", "lat", "lon", "temperature", "pressure", "number_names",
                                      "number_values", "text_names", "text_values")} == {
            "sensor_id": "UInt32", "ts": "DateTime(\\'UTC\\')", "ts_us": "Int64", "lat": "Nullable(Float64)",
            "lon": "Nullable(Float64)", "temperature": "Nullable(Float64)", "pressure": "Nullable(Float64)",
            "number_names": "Array(String)", "number_values": "Array(Float64)", "text_names": "Array(String)",
            "text_values": "Array(String)"}

        # One row per reading, with its values: sensor 3 at T0 + 30 s (seq 6), and unplaced sensor 4.
        r = readings[6]
        row = ch.query(f"SELECT sensor_id, toString(ts), ts_us, lat, lon, temperature, pressure, number_names, number_values, "
                       f"text_names, text_values FROM {db}.readings FINAL WHERE sensor_id = 3 AND ts_us = {(T0 + 30) * 1_000_000}")
        assert row == [["3", "2024-01-21 10:00:30", str((T0 + 30) * 1_000_000), "63.4", "-20.3", ch_number(r["temperature"]),
                        ch_number(r["pressure"]), "['seq']", "[6]", "['status']", f"['{r['status']}']"]]
        assert ch.query(f"SELECT count(), countIf(isNull(lat)) FROM {db}.readings FINAL WHERE sensor_id = 4") == [
            [str(n // 4), str(n // 4)]]

        # Hourly min/max/avg per sensor: ClickHouse's SQL against mare's SQL.
        from_ch = sorted((int(s), int(h) * 1000, int(c), float(lo), float(hi), float(avg)) for s, h, c, lo, hi, avg in ch.query(
            f"SELECT sensor_id, toUnixTimestamp(toStartOfHour(ts)) AS hour, count(temperature), min(temperature), "
            f"max(temperature), avg(temperature) FROM {db}.readings FINAL GROUP BY sensor_id, hour"))
        run.wait_readings(n)
        from_sql = sorted((r[0], epoch_ms(r[1]), r[2], r[3], r[4], r[5]) for r in run.query_rows(
            "SELECT sensor_id, time_bucket('1h', ts) AS hour, count(temperature), min(temperature), max(temperature), "
            "avg(temperature) FROM readings GROUP BY sensor_id, hour"))
        assert len(from_ch) == len(from_sql) == 12
        for c, s in zip(from_ch, from_sql):
            assert c[:5] == s[:5]
            assert c[5] == pytest.approx(s[5], rel=1e-12)

        # The 1h rollups: each window's latest revision, through FINAL and through argMax.
        def rollups(sql):
            return sorted((int(s), int(w) * 1000, int(c), float(lo), float(hi)) for s, w, c, lo, hi in ch.query(sql))
        where = "resolution = '1h' AND field = 'temperature'"
        final = f"SELECT sensor_id, toUnixTimestamp(window_start), count, min, max FROM {db}.rollups FINAL WHERE {where}"
        wait_for(lambda: rollups(final) == [s[:5] for s in from_sql], timeout=60, what="1h rollups equal to the SQL answers")
        assert rollups(f"SELECT sensor_id, toUnixTimestamp(window_start) AS w, argMax(count, revision), argMax(min, revision), "
                       f"argMax(max, revision) FROM {db}.rollups WHERE {where} GROUP BY sensor_id, w") == [s[:5] for s in from_sql]
        rtypes = dict(ch.query(f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'rollups'"))
        assert (rtypes["window_start"], rtypes["revision"], rtypes["mean"], rtypes["is_final"]) == (
            "DateTime(\\'UTC\\')", "UInt64", "Float64", "UInt8")


def test_kill9_of_the_sink_mid_stream_leaves_every_reading_and_window_exactly_once(tmp_path, ch):
    """The sink is killed -9 mid-stream at the moment that must end in a resend: a batch
    ClickHouse acknowledged waits for its position (whose insert a check added to sink_offsets
    refuses). With merges stopped, the table then holds the resent copies beside the rows, and it
    is FINAL, or grouping by the key, that shows each reading once with its values; a merge
    leaves one row per reading. The windows' revisions come in no revision order (2, 4, 1, 3):
    FINAL and argMax(x, revision) show the 4th. Catching up, the sink inserts full batches."""
    db = "kill"
    n, batch = 20000, 250
    readings = [buoy(i, 1 + i % 8, T0 + i // 8) for i in range(n)]
    first = 4000
    produce(tmp_path, readings[:first])
    revisions = [rollup(s, k, rev) for rev in (2, 4, 1, 3) for s in range(1, 9) for k in range(60)]
    mare("log", "produce", "rollups", "--data-dir", str(tmp_path),
         input="".join(f"{key}\t{json.dumps(v)}\n" for key, v in revisions))
    extra = [f"sink.clickhouse.batch={batch}", "sink.clickhouse.rollups=true"]
    sink = Sink(tmp_path, ch, db, extra=extra)
    # The rest of the readings are produced only once positions are refused, so the sink is
    # mid-stream when killed however fast it runs.
    wait_for(lambda: positions(ch, db) == first, what="the first readings delivered")
    errors = 'mare_sink_clickhouse_errors_total{topic="raw"}'
    before = sink.metric(errors) or 0
    status, text = ch.request(f"ALTER TABLE {db}.sink_offsets ADD COLUMN refuse UInt8 MATERIALIZED throwIf(next_offset >= 0)")
    assert status == 200, text
    produce(tmp_path, readings[first:])
    written = 'mare_sink_clickhouse_rows_written_total{topic="raw"}'
    wait_for(lambda: (sink.metric(errors) or 0) > before and (sink.metric(written) or 0) >= first + batch,
             what="a batch acknowledged and its position refused")
    sink.kill9()
    status, text = ch.request(f"ALTER TABLE {db}.sink_offsets DROP COLUMN refuse")
    assert status == 200, text
    saved = positions(ch, db)
    assert 0 < saved < n, f"killed mid-stream: {saved} of {n} positions saved"
    assert int(scalar(ch, f"SELECT count() FROM {db}.readings")) >= saved + batch, "no acknowledged batch beyond the position"
    for table in ("readings", "rollups"):
        status, text = ch.request(f"SYSTEM STOP MERGES {db}.{table}")
        assert status == 200, text
    try:
        sink = Sink(tmp_path, ch, db, extra=extra)
        wait_for(lambda: positions(ch, db) == n, timeout=120, what="every position saved")
        assert positions(ch, db, "rollups") == len(revisions)
        wait_for(lambda: sink.metric('mare_sink_clickhouse_lag_records{topic="raw"}') == 0, what="lag 0")
        # Catching up from a full log, each insert is a full batch but the last (or one that
        # waited max_delay, 100 ms here, for a slow read).
        written = sink.metric('mare_sink_clickhouse_rows_written_total{topic="raw"}')
        inserts = sink.metric('mare_sink_clickhouse_inserts_total{topic="raw"}')
        assert -(-written // batch) <= inserts <= written // batch + 3, (written, inserts)
        sink.stop()
        readings_exactly_once(ch, db, readings)
        rollups_exactly_once(ch, db, [v for _, v in revisions if v["revision"] == 4])
        # What FINAL and grouping hide: the resent copies, still there unmerged.
        copies = int(scalar(ch, f"SELECT count() FROM {db}.readings")) - int(scalar(ch, f"SELECT count() FROM {db}.readings FINAL"))
        assert copies >= batch
    finally:
        for table in ("readings", "rollups"):
            ch.request(f"SYSTEM START MERGES {db}.{table}")
    # A merge already running makes OPTIMIZE a no-op that still answers 200 (18.16's
    # optimize_throw_if_noop is off): ask again until the table is one part's worth.
    def merged():
        status, text = ch.request(f"OPTIMIZE TABLE {db}.readings FINAL")
        assert status == 200, text
        return int(scalar(ch, f"SELECT count() FROM {db}.readings")) == n
    wait_for(merged, what="the resent copies merged away", step=0.5)


def test_server_stopped_then_restarted_loses_nothing(tmp_path, ch):
    db = "outage"
    produce(tmp_path, [buoy(i, 1 + i % 4, T0 + i) for i in range(3000)])
    sink = Sink(tmp_path, ch, db, extra=["sink.clickhouse.batch=500"])
    sink.deliver_across_an_outage(ch, lambda: positions(ch, db), first=3000, more=3000)
    readings_exactly_once(ch, db, [buoy(i, 1 + i % 4, T0 + i) for i in range(6000)])
    sink.stop()


def test_a_row_clickhouse_refuses_goes_to_the_dead_letter_file_with_its_reason(tmp_path, ch):
    db = "refused"
    first = buoy(0, 1, T0)
    produce(tmp_path, [first])
    sink = Sink(tmp_path, ch, db, extra=["sink.clickhouse.batch=100"])
    wait_for(lambda: positions(ch, db) == 1, what="the tables made and the first reading delivered")
    # A check added by the table's owner: ClickHouse refuses a wave height above 100 m.
    status, text = ch.request(f"ALTER TABLE {db}.readings ADD COLUMN wave_check UInt8 "
                              f"MATERIALIZED throwIf(ifNull(wave_height, 0) > 100)")
    assert status == 200, text
    readings = [buoy(i, 1, T0 + i) for i in range(1, 13)]
    for r in readings:
        r["wave_height"] = 1.5
    readings[7]["wave_height"] = 500.0
    records = [json.dumps(r) for r in readings]
    records.insert(3, json.dumps({"sensor_id": 1, "temperature": 3}))  # no timestamp: unreadable
    produce(tmp_path, [json.loads(r) for r in records])
    wait_for(lambda: positions(ch, db) == 14, what="every record passed")
    assert int(scalar(ch, f"SELECT count() FROM {db}.readings FINAL")) == 12
    assert int(scalar(ch, f"SELECT count() FROM {db}.readings FINAL WHERE wave_height > 100")) == 0
    letters = read_dead_letters(os.path.join(str(tmp_path), "dead-letter-clickhouse.log"))
    assert [(s, r) for s, r, _, _ in letters] == [("clickhouse", "unreadable"), ("clickhouse", "clickhouse_rejected")]
    assert "missing_timestamp" in letters[0][2]
    assert json.loads(letters[0][3]) == {"sensor_id": 1, "temperature": 3}
    assert letters[1][2].startswith("table readings: HTTP 500: Code: 395"), letters[1][2]
    assert "throwIf" in letters[1][2]
    assert json.loads(letters[1][3]) == readings[7]
    assert sink.metric('mare_sink_clickhouse_rows_dead_lettered_total{topic="raw"}') == 2
    sink.stop()


def test_a_batch_out_of_key_order_arrives_whole_with_the_later_copy_kept_and_a_refused_row_dead_lettered(tmp_path, ch):
    """The sink sends each batch sorted by the table's key (sensor_id, ts, ts_us) as one Native
    block: readings produced in no key order (sensors mixed, time running backwards) arrive with
    their values; of two copies of one reading (same sensor and instant, other values) the later
    one stays, as it did when rows went in log order; and a refused row goes to the dead-letter
    file as the record it was, whatever its place once sorted."""
    db = "order"
    produce(tmp_path, [buoy(0, 9, T0 - 3600)])
    sink = Sink(tmp_path, ch, db, extra=["sink.clickhouse.batch=1000", 'sink.clickhouse.max_delay="1s"'])
    wait_for(lambda: positions(ch, db) == 1, what="the tables made and the first reading delivered")
    status, text = ch.request(f"ALTER TABLE {db}.readings ADD COLUMN wave_check UInt8 "
                              f"MATERIALIZED throwIf(ifNull(wave_height, 0) > 100)")
    assert status == 200, text
    readings = [buoy(i, 1 + (i * 7) % 5, T0 + 100 - i) for i in range(1, 41)]
    for r in readings:
        r["wave_height"] = 1.5
    refused = readings[25]
    refused["wave_height"] = 500.0
    copy_first = dict(buoy(100, 3, T0 + 1000), temperature=1.0)
    copy_later = dict(copy_first, temperature=2.0, seq=101)
    batch = readings[:10] + [copy_first] + readings[10:30] + [copy_later] + readings[30:]
    produce(tmp_path, batch)
    wait_for(lambda: positions(ch, db) == 1 + len(batch), what="every record passed")

    kept = [r for r in readings if r is not refused] + [copy_later]
    want = sorted((r["sensor_id"], r["timestamp"] * 1_000_000, float(r["temperature"]), float(r["seq"])) for r in kept)
    got = [(int(s), int(us), float(t), float(seq)) for s, us, t, seq in ch.query(
        f"SELECT sensor_id, ts_us, temperature, number_values[indexOf(number_names, 'seq')] FROM {db}.readings FINAL "
        f"WHERE sensor_id != 9 ORDER BY sensor_id, ts_us")]
    assert got == want
    assert int(scalar(ch, f"SELECT count() FROM {db}.readings FINAL")) == 1 + len(kept)
    letters = read_dead_letters(os.path.join(str(tmp_path), "dead-letter-clickhouse.log"))
    assert [r for _, r, _, _ in letters] == ["clickhouse_rejected"]
    assert json.loads(letters[0][3]) == refused
    assert sink.metric('mare_sink_clickhouse_rows_dead_lettered_total{topic="raw"}') == 1
    sink.stop()
