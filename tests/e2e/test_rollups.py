"""The whole path: readings -> mare run (log -> rollup processor -> MariaDB sink) -> the website's
tables in a real MariaDB, compared with a from-scratch computation over exactly the readings the
log holds; and the same after kill -9 of mare run in the middle of the stream."""
import collections
import datetime
import json
import math
import threading
import time
import urllib.error
import urllib.request

from harness import MareRun, log_records, mare
from mariadb_server import MariaDB

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
TABLES = {"rollup_minute": 60_000_000, "rollup_hour": 3_600_000_000, "rollup_day": 86_400_000_000}


def micros(iso):
    return (datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")) - EPOCH) // datetime.timedelta(microseconds=1)


def from_scratch(data_dir, length_us):
    """(sensor, field, window start text) -> count, min, max, mean, stddev, first, last."""
    windows = collections.defaultdict(list)
    for r in sorted(log_records(data_dir), key=lambda r: (r["partition"], r["offset"])):
        ts = micros(r["timestamp"])
        start = ts // length_us * length_us
        start_text = (EPOCH + datetime.timedelta(microseconds=start)).strftime("%Y-%m-%d %H:%M:%S.%f")
        for k, v in r["value"].items():
            if k in ("timestamp", "sensor_id") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            windows[(int(r["key"]), k, start_text)].append((ts, float(v)))
    out = {}
    for key, values in windows.items():
        xs = [v for _, v in values]
        mean = sum(xs) / len(xs)
        first = min(values, key=lambda p: p[0])[1]   # earliest; ties: log order (min keeps the first)
        last = max(reversed(values), key=lambda p: p[0])[1]  # latest; ties: the later in the log
        out[key] = (len(xs), min(xs), max(xs), mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs)), first, last)
    return out


def rows(db, table):
    got = {}
    for r in db.query(f"SELECT sensor_id, field, window_start, count, min, max, mean, stddev, first, last FROM {table}"):
        got[(int(r[0]), r[1], r[2])] = (int(r[3]), *map(float, r[4:10]))
    return got


def close(a, b, rel):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def assert_tables_equal(db, data_dir, timeout=90):
    """Waits until MariaDB holds exactly the from-scratch rollups of every table."""
    want = {t: from_scratch(data_dir, n) for t, n in TABLES.items()}
    deadline = time.time() + timeout
    while True:
        problems = []
        for table, expected in want.items():
            got = rows(db, table)
            if got.keys() != expected.keys():
                problems.append(f"{table}: {len(got)} rows, {len(expected)} expected")
                continue
            for key, e in expected.items():
                g = got[key]
                if g[0] != e[0] or not all(close(x, y, 1e-12) for x, y in zip((g[1], g[2], g[5], g[6]), (e[1], e[2], e[5], e[6]))) \
                        or not close(g[3], e[3], 1e-9) or not close(g[4], e[4], 1e-9):
                    problems.append(f"{table} {key}: got {g}, want {e}")
                    break
        if not problems:
            return sum(len(e) for e in want.values())
        if time.time() > deadline:
            raise AssertionError("\n".join(problems[:5]))
        time.sleep(0.5)


def run_with_sink(data, db):
    return MareRun(data, extra=["sink.mariadb.enabled=true", f"sink.mariadb.port={db.port}"])


def test_rollups_reach_mariadb_equal_to_a_from_scratch_computation(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        run = run_with_sink(data, db)
        with run:
            # 5 buoys, a reading every 20 simulated seconds for 100 minutes: 2 hours, 100 minutes.
            mare("simulate", "--sensors", "5", "--rate", "0.05", "--count", "300", "--seed", "3", "--flat-out",
                 "--start", "2024-01-21 10:00:00", "--target", f"{run.http_url}/api/v1/ingest")
            n = assert_tables_equal(db, data)
            assert n > 2400  # ~100 minute, 2 hour and 1 day windows of 5 fields of 5 buoys (humidity has gaps: faults)
            assert run.metric("mare_rollup_readings_counted_total") == 1500
            deadline = time.time() + 30  # the gauge is refreshed every second
            while run.metric('mare_sink_lag_records{sink="mariadb"}') != 0 and time.time() < deadline:
                time.sleep(0.2)
            assert run.metric('mare_sink_lag_records{sink="mariadb"}') == 0
        mare("log", "groups", "raw", "--data-dir", data)


def sender(run, stop, first_seq):
    seq = first_seq
    while not stop.is_set():
        batch = [{"timestamp": 1705831200 + seq // 4 * 7, "sensor_id": seq % 4 + 1, "temperature": 10 + (seq * 37 % 100) / 10,
                  "pressure": 1000 + seq % 13} for seq in range(seq, seq + 40)]
        seq += 40
        req = urllib.request.Request(f"{run.http_url}/api/v1/ingest", data="\n".join(map(json.dumps, batch)).encode(),
                                     method="POST", headers={"Content-Type": "application/x-ndjson"})
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except (urllib.error.URLError, ConnectionError, OSError):
            return


def test_kill9_mid_stream_restart_rollups_still_exact(tmp_path):
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        for round_ in range(2):
            run = run_with_sink(data, db).start()
            stop = threading.Event()
            # Each round continues forward in time (readings older than the lateness would be dropped).
            t = threading.Thread(target=sender, args=(run, stop, round_ * 1_000_000))
            t.start()
            time.sleep(1.5)
            run.kill9()
            stop.set()
            t.join(timeout=30)
        run = run_with_sink(data, db)
        with run:
            assert_tables_equal(db, data)


def test_mare_stream_alone_rolls_up_what_mare_run_ingested(tmp_path):
    import signal
    import subprocess

    from harness import MARE, free_port
    data = tmp_path / "data"
    run = MareRun(data, extra=["rollup.enabled=false"])
    with run:
        mare("simulate", "--sensors", "3", "--count", "120", "--seed", "5", "--flat-out", "--no-faults",
             "--start", "2024-01-21 10:00:00", "--target", f"{run.http_url}/api/v1/ingest")
    metrics_port = free_port()
    stream = subprocess.Popen([MARE, "stream", "--data-dir", str(data), "--metrics-listen", f"127.0.0.1:{metrics_port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        read = None
        while time.time() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read().decode()
                read = next((float(l.split()[-1]) for l in text.splitlines() if l.startswith("mare_rollup_readings_counted_total ")), None)
                if read == 360:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        stream.send_signal(signal.SIGTERM)
        out = stream.communicate(timeout=30)[0].decode()
    finally:
        if stream.poll() is None:  # a failure above must not leave it running
            stream.kill()
            stream.wait()
    assert stream.returncode == 0, out
    assert read == 360
    assert (data / "rollup" / "checkpoint").exists()
    # Every window of the hour table, newest revision, equals the from-scratch computation.
    newest = {}
    for r in log_records(data, "rollups"):
        if r["value"]["resolution"] == "1h" and r["value"]["revision"] >= newest.get(r["key"], {"revision": -1})["revision"]:
            newest[r["key"]] = r["value"]
    want = from_scratch(data, TABLES["rollup_hour"])
    assert len(newest) == len(want)
    for v in newest.values():
        e = want[(v["sensor_id"], v["field"], v["window_start"].replace("T", " ").replace("Z", ""))]
        assert v["count"] == e[0] and v["min"] == e[1] and v["max"] == e[2] and close(v["mean"], e[3], 1e-9)
