"""A year of running, in little: ten simulated buoys in real time (as `make run`) into `mare run`
with small segments, so that the rollups topic's segments close and are compacted while it runs.
At the end the rollups topic takes no more disk than the raw topic (it grew about 13 times faster
before compaction), and the newest revision of every window it holds equals a recompute from the
raw topic's readings; a MariaDB sink that starts then, reading the compacted topic from its
start through its gaps, fills the tables equal to a recompute too."""
import json
import os
import subprocess
import time

from harness import MARE, MareRun, log_records
from mariadb_server import MariaDB
from test_rollups import assert_tables_equal, close, micros, run_with_sink

SENSORS = 10
SECONDS = 45
RESOLUTIONS = {"1m": 60_000_000, "1h": 3_600_000_000, "1d": 86_400_000_000}


def topic_bytes(data_dir, topic):
    total = 0
    for root, _, files in os.walk(os.path.join(data_dir, "log", "topics", topic)):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".log"))
    return total


def recompute(raw):
    """key (as the rollups') -> count, min, max, mean, stddev, first, last, from the readings."""
    windows = {}
    for r in sorted(raw, key=lambda r: (r["partition"], r["offset"])):
        ts = micros(r["timestamp"])
        for field, v in r["value"].items():
            if field in ("timestamp", "sensor_id") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            for name, length in RESOLUTIONS.items():
                key = f'{r["key"]}/{field}/{name}/{ts // length * length}'
                windows.setdefault(key, []).append((ts, float(v)))
    out = {}
    for key, values in windows.items():
        xs = [v for _, v in values]
        mean = sum(xs) / len(xs)
        first = min(values, key=lambda p: p[0])[1]
        last = max(reversed(values), key=lambda p: p[0])[1]
        out[key] = (len(xs), min(xs), max(xs), mean, (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5, first, last)
    return out


def test_compacted_rollups_hold_no_more_than_raw_and_the_newest_revision_of_every_window(tmp_path):
    data = str(tmp_path / "data")
    m = MareRun(data, extra=['log.segment_age="1s"', 'log.retention_check_interval="1s"', 'log.compaction_lag="0s"'])
    m.start()
    try:
        sim = subprocess.run([MARE, "simulate", "--sensors", str(SENSORS), "--seed", "3", "--no-faults",
                              "--duration", f"{SECONDS}s", "--target", f"tcp://127.0.0.1:{m.tcp_port}"],
                             capture_output=True, text=True, timeout=SECONDS + 60)
        assert sim.returncode == 0, sim.stderr
        time.sleep(3)  # the last emissions, and a compaction pass after them
        appended = m.metric('mare_log_bytes_appended_total{topic="rollups"}')
        appended_records = m.metric('mare_log_records_appended_total{topic="rollups"}')
        raw_records = m.metric('mare_log_records_appended_total{topic="raw"}')
        removed = m.metric('mare_log_compacted_records_removed_total{topic="rollups"}')
        on_disk_running = m.metric('mare_log_disk_bytes{topic="rollups"}')
    finally:
        assert m.stop() == 0, m.read_output()

    raw_bytes = topic_bytes(data, "raw")
    rollup_bytes = topic_bytes(data, "rollups")
    print(f"\nraw {raw_bytes} B on disk; rollups appended {appended:.0f} B ({appended_records:.0f} records, raw "
          f"{raw_records:.0f}), {on_disk_running:.0f} B on disk while "
          f"running, {rollup_bytes} B after stopping; {removed:.0f} revisions removed")
    assert removed > 0
    # Counted in records: the rollups' batches are compressed (rollup.compression), raw's not.
    assert appended_records > 5 * raw_records, "without compaction the rollups would outgrow raw many times"
    assert rollup_bytes <= raw_bytes

    raw = log_records(data, "raw")
    assert len(raw) >= SENSORS * (SECONDS - 10)
    want = recompute(raw)
    newest = {}
    rollups = log_records(data, "rollups")
    offsets = [(r["partition"], r["offset"]) for r in rollups]
    assert len(set(offsets)) == len(offsets)
    # Every partition starts at offset 0, so the offsets missing below the highest one kept are the
    # removed revisions: inside the topic, or a whole prefix of segments when every revision in
    # them was superseded (a run that crosses no minute boundary keeps none of its early segments).
    highest = {}
    for p, o in offsets:
        highest[p] = max(highest.get(p, -1), o)
    missing = sum(h + 1 for h in highest.values()) - len(offsets)
    assert missing >= removed, f"{removed:.0f} revisions removed by compaction, {missing} offsets missing"
    for r in rollups:
        v = r["value"]
        if r["key"] not in newest or v["revision"] >= newest[r["key"]]["revision"]:
            newest[r["key"]] = v
    assert newest.keys() == want.keys()
    for key, e in want.items():
        g = newest[key]
        got = (g["count"], g["min"], g["max"], g["mean"], g["stddev"], g["first"], g["last"])
        assert got[0] == e[0] and all(close(x, y, 1e-9) for x, y in zip(got[1:], e[1:])), (key, got, e)

    # A sink that starts now reads the compacted topic from its start, through the gaps.
    with MariaDB(tmp_path) as db:
        with run_with_sink(data, db) as run:
            assert_tables_equal(db, data)
            deadline = time.time() + 30
            while run.metric('mare_sink_lag_records{sink="mariadb"}') != 0 and time.time() < deadline:
                time.sleep(0.2)
            assert run.metric('mare_sink_lag_records{sink="mariadb"}') == 0
