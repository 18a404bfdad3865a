"""The columnar store inside `mare run`: readings sent over the sources are queryable; a kill -9
loses none that was acknowledged and counts none twice; late readings land in their place;
retention drops old hours; the query API answers JSON, CSV and NDJSON and says what is wrong
and where; `mare query` and `mare import` work from the command line."""
import csv
import io
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import MareRun, mare, wait_for

T0 = 1705831200  # 2024-01-21T10:00:00Z
SEND_PAUSE = float(os.environ.get("MARE_TEST_SEND_PAUSE", "0.01"))


def query(run, sql, fmt="json", accept=None, method="GET"):
    """(status, body) of the query API."""
    if method == "GET":
        req = urllib.request.Request(f"{run.http_url}/api/v1/query?" + urllib.parse.urlencode({"q": sql, "format": fmt} if fmt else {"q": sql}))
    else:
        req = urllib.request.Request(f"{run.http_url}/api/v1/query", data=sql.encode(), method="POST",
                                     headers={"Content-Type": "application/sql"})
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def rows(run, sql):
    status, body, _ = query(run, sql)
    assert status == 200, body
    return json.loads(body)["rows"]


def reading(seq, sensor, t, **fields):
    r = {"timestamp": t, "sensor_id": sensor, "temperature": round(10 + (seq % 97) / 10, 2), "seq": seq}
    r.update(fields)
    return r


def test_readings_are_queryable_by_sql_over_http(tmp_path):
    with MareRun(tmp_path, extra=["store.flush_interval=\"1s\""]) as run:
        lines = [reading(i, i % 3 + 1, T0 + i, status="ok" if i % 2 else "degraded",
                         location={"lat": 42.48 + (i % 3) / 100, "lon": 3.13}) for i in range(300)]
        status, _ = run.post("\n".join(json.dumps(r) for r in lines))
        assert status == 200
        wait_for(lambda: rows(run, "SELECT count(*) FROM readings")[0][0] == 300, what="300 readings in the store")
        got = rows(run, "SELECT sensor_id, count(*), min(seq), max(seq), sum(temperature) FROM readings GROUP BY sensor_id ORDER BY sensor_id")
        for sensor_id, count, lo, hi, total in got:
            mine = [r for r in lines if r["sensor_id"] == sensor_id]
            assert count == len(mine) and lo == min(r["seq"] for r in mine) and hi == max(r["seq"] for r in mine)
            assert abs(total - sum(r["temperature"] for r in mine)) < 1e-9
        # After a flush the same answers come from segments.
        wait_for(lambda: run.metric("mare_store_disk_rows") == 300, what="the memtable flushed")
        assert rows(run, "SELECT count(*), count(status), min(ts), max(ts) FROM readings") == [
            [300, 300, "2024-01-21T10:00:00Z", "2024-01-21T10:04:59Z"]]

        # The sensors endpoint: fields, first and last seen, last position.
        with urllib.request.urlopen(f"{run.http_url}/api/v1/sensors", timeout=10) as r:
            sensors = json.loads(r.read())["sensors"]
        assert [s["sensor_id"] for s in sensors] == [1, 2, 3]
        s1 = sensors[0]
        assert s1["fields"] == ["seq", "status", "temperature"]
        assert s1["readings"] == 100
        assert s1["first_seen"] == "2024-01-21T10:00:00.000000Z" and s1["last_seen"] == "2024-01-21T10:04:57.000000Z"
        assert s1["position"]["lat"] == 42.48 and s1["position"]["lon"] == 3.13


def test_query_api_formats_and_errors(tmp_path):
    with MareRun(tmp_path) as run:
        run.post("\n".join(json.dumps(reading(i, 7, T0 + i, status='say "hi", then')) for i in range(5)))
        wait_for(lambda: rows(run, "SELECT count(*) FROM readings")[0][0] == 5)
        sql = "SELECT ts, seq, status FROM readings ORDER BY ts LIMIT 2"

        status, body, headers = query(run, sql, fmt="csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        assert list(csv.reader(io.StringIO(body))) == [
            ["ts", "seq", "status"], ["2024-01-21T10:00:00Z", "0", 'say "hi", then'], ["2024-01-21T10:00:01Z", "1", 'say "hi", then']]
        assert headers["X-Mare-Row-Count"] == "2"

        status, body, headers = query(run, sql, fmt=None, accept="application/x-ndjson")
        assert status == 200 and headers["Content-Type"].startswith("application/x-ndjson")
        assert [json.loads(l) for l in body.splitlines()] == [
            {"ts": "2024-01-21T10:00:00Z", "seq": 0, "status": 'say "hi", then'},
            {"ts": "2024-01-21T10:00:01Z", "seq": 1, "status": 'say "hi", then'}]

        status, body, _ = query(run, sql, fmt=None, method="POST")
        doc = json.loads(body)
        assert status == 200 and doc["row_count"] == 2 and doc["elapsed_ms"] >= 0
        assert doc["columns"] == [{"name": "ts", "type": "timestamp"}, {"name": "seq", "type": "double"}, {"name": "status", "type": "text"}]

        # A bad statement: 400, what and where.
        status, body, _ = query(run, "SELECT seq\nFROM readings\nWHERE tempreature > 3")
        doc = json.loads(body)
        assert status == 400
        assert (doc["line"], doc["column"]) == (3, 7)
        assert doc["error"] == 'line 3, column 7: unknown column "tempreature"; did you mean "temperature"?'
        status, body, _ = query(run, "SELECT FROM readings")
        assert status == 400 and json.loads(body)["line"] == 1
        status, body, _ = query(run, "SELECT 1 FROM readings", fmt="xml")
        assert status == 400 and "unknown format" in json.loads(body)["error"]
        status, body, _ = query(run, "")
        assert status == 400


def test_kill9_loses_nothing_acknowledged_and_counts_nothing_twice(tmp_path):
    """Readings stream in over HTTP while mare run is killed -9 twice, with the store's memtable
    holding unflushed readings each time; after the last restart the store holds every
    acknowledged reading exactly once."""
    run = MareRun(tmp_path, extra=["store.flush_interval=\"2s\"", "store.flush_rows=5000"])
    try:
        check_kill9_rounds(run)
    finally:
        if run.proc and run.proc.poll() is None:
            run.proc.kill()


def check_kill9_rounds(run):
    acked = []
    seq = 0
    for round_ in range(3):
        run.start()
        stop_at = time.time() + 3
        while time.time() < stop_at:
            time.sleep(SEND_PAUSE)
            batch = [reading(seq + k, (seq + k) % 5 + 1, T0 + (seq + k) // 5 + (seq + k) % 5 / 10) for k in range(200)]
            status, _ = run.post("\n".join(json.dumps(r) for r in batch))
            if status == 200:
                acked.extend(batch)
            seq += 200
        if round_ < 2:
            run.kill9()
    want = len(acked)
    try:
        wait_for(lambda: rows(run, "SELECT count(*) FROM readings")[0][0] >= want, timeout=60, what=f"{want} readings")
    except AssertionError:
        raise AssertionError(f"{rows(run, 'SELECT count(*) FROM readings')} of {want}:\n{run.read_output()[-3000:]}")
    time.sleep(1)
    got = rows(run, "SELECT count(*) FROM readings")
    assert got[0][0] == want, f"store holds {got[0][0]} readings, {want} were acknowledged"
    # Every sequence number once: their sum and a sum of squares match (squares of seq % 1000,
    # which stay exact in doubles).
    total, squares = rows(run, "SELECT sum(seq), sum((seq % 1000) * (seq % 1000)) FROM readings")[0]
    assert total == sum(r["seq"] for r in acked)
    assert squares == sum((r["seq"] % 1000) ** 2 for r in acked)
    assert rows(run, "SELECT min(seq), max(seq) FROM readings")[0] == [min(r["seq"] for r in acked), max(r["seq"] for r in acked)]
    assert run.stop() == 0


def test_late_readings_land_in_their_hour(tmp_path):
    with MareRun(tmp_path, extra=["store.flush_interval=\"1s\""]) as run:
        run.post("\n".join(json.dumps(reading(i, 1, T0 + 3600 + i)) for i in range(10)))
        wait_for(lambda: run.metric("mare_store_disk_rows") == 10, what="a flush")
        # An hour late, and in between the flushed ones.
        run.post("\n".join(json.dumps(reading(100 + i, 1, T0 + i)) for i in range(3)))
        run.post(json.dumps(reading(200, 1, T0 + 3600 + 4.5)))
        wait_for(lambda: rows(run, "SELECT count(*) FROM readings")[0][0] == 14)
        got = rows(run, "SELECT seq FROM readings ORDER BY ts")
        assert [r[0] for r in got] == [100, 101, 102, 0, 1, 2, 3, 4, 200, 5, 6, 7, 8, 9]
        assert rows(run, "SELECT time_bucket('1h', ts) AS h, count(*) FROM readings GROUP BY h ORDER BY h") == [
            ["2024-01-21T10:00:00Z", 3], ["2024-01-21T11:00:00Z", 11]]


def test_one_reading_per_sensor_and_time_the_later_wins(tmp_path):
    """A resend, a second copy after a flush, an overlapping import and the same import twice
    each leave one reading per sensor and timestamp, with the later copy's values."""
    data = tmp_path / "data"
    # Ingest's dedup off, so that the raw topic holds both copies, as from a producer other than
    # ingest or one resent past ingest.dedup_horizon: the store's own rule is what is tested.
    with MareRun(data, extra=["store.flush_interval=\"1s\"", "ingest.dedup_horizon=\"0s\""]) as run:
        run.post("\n".join(json.dumps(reading(i, 7, T0 + i, temperature=1.0)) for i in range(60)))
        run.post("\n".join(json.dumps(reading(100 + i, 7, T0 + i, temperature=2.0)) for i in range(10)))  # a resend, in memory
        wait_for(lambda: run.metric("mare_store_disk_rows") == 60, what="a flush")
        assert rows(run, "SELECT count(*), sum(temperature) FROM readings") == [[60, 70.0]]
        run.post("\n".join(json.dumps(reading(200 + i, 7, T0 + 10 + i, temperature=3.0)) for i in range(10)))  # on disk
        wait_for(lambda: run.metric("mare_store_readings_replaced_total") == 20, what="the copies replaced")
        assert rows(run, "SELECT count(*), sum(temperature) FROM readings") == [[60, 10 * 2 + 10 * 3 + 40 * 1]]
        got = rows(run, "SELECT seq FROM readings ORDER BY ts")
        assert [r[0] for r in got] == list(range(100, 110)) + list(range(200, 210)) + list(range(20, 60))
        assert run.metric("mare_store_blocks_reopened_total") >= 1
    # An archive overlapping the stream's last 30 s and going 30 s further, imported twice.
    path = tmp_path / "archive.csv"
    with open(path, "w") as f:
        f.write("ts,sensor_id,temperature\n")
        for i in range(30, 90):
            t = time.gmtime(T0 + i)
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', t)},7,4\n")
    for _ in range(2):
        p = mare("import", path, "--data-dir", data)
        assert "60 readings" in p.stderr, p.stderr
        p = mare("query", "--offline", "--data-dir", data, "--format", "csv", "SELECT count(*), sum(temperature) FROM readings")
        count, total = p.stdout.splitlines()[1].split(",")
        assert (int(count), float(total)) == (90, 10 * 2 + 10 * 3 + 10 * 1 + 60 * 4), p.stdout


def test_retention_drops_hours_older_than_the_limit(tmp_path):
    now = int(time.time())
    with MareRun(tmp_path, extra=["store.flush_interval=\"1s\"", "store.retention=\"2h\""]) as run:
        old = [reading(i, 1, now - 5 * 3600 + i) for i in range(20)]
        new = [reading(100 + i, 1, now - 60 + i) for i in range(20)]
        run.post("\n".join(json.dumps(r) for r in old + new))
        wait_for(lambda: run.metric("mare_store_rows_expired_total") == 20, what="the old readings dropped")
        assert rows(run, "SELECT count(*), min(seq) FROM readings") == [[20, 100]]


def test_mare_query_and_mare_import_on_the_command_line(tmp_path):
    data = tmp_path / "data"
    path = tmp_path / "archive.csv"
    with open(path, "w") as f:
        f.write("ts,sensor_id,temperature,status,lat,lon\n")
        for i in range(100):
            f.write(f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{i % 2 + 1},{10 + i / 10:.1f},{'ok' if i % 3 else ''},42.5,3.1\n")
        f.write("not a time,1,2,ok,42.5,3.1\n")
    p = mare("import", path, "--data-dir", data, check=False)
    assert p.returncode == 1, "a skipped row makes the exit code 1"
    assert "100 readings" in p.stderr and "1 rows skipped" in p.stderr and "line 102" in p.stderr, p.stderr

    # Offline: straight from the files.
    p = mare("query", "--offline", "--data-dir", data, "SELECT sensor_id, count(*), count(status), max(temperature) FROM readings GROUP BY sensor_id ORDER BY sensor_id")
    assert p.stdout.splitlines() == [
        "sensor_id | count(*) | count(status) | max(temperature)",
        "----------+----------+---------------+-----------------",
        "        1 |       50 |            33 |             19.8",
        "        2 |       50 |            33 |             19.9",
        "(2 rows)"]
    p = mare("query", "--offline", "--data-dir", data, "--format", "csv", "SELECT ts, lat FROM readings WHERE sensor_id = 2 ORDER BY ts DESC LIMIT 1")
    assert p.stdout == "ts,lat\n2024-01-01T00:01:39Z,42.5\n"
    p = mare("query", "--offline", "--data-dir", data, "SELECT nope FROM readings", check=False)
    assert p.returncode == 1 and 'line 1, column 8: unknown column "nope"' in p.stderr

    # Through a running mare (its HTTP API), which holds the store: import is refused meanwhile.
    with MareRun(data) as run:
        p = mare("query", "--url", run.http_url, "--format", "json", "SELECT count(*) FROM readings")
        assert json.loads(p.stdout)["rows"] == [[100]]
        p = mare("query", "--url", run.http_url, "SELECT count(*) AS n FROM readings")
        assert p.stdout.splitlines()[2].strip() == "100"
        p = mare("import", path, "--data-dir", data, check=False)
        assert p.returncode == 1 and "in use by another process" in p.stderr
    p = mare("query", "--url", run.http_url, "SELECT 1 FROM readings", check=False)
    assert p.returncode == 1 and "cannot reach mare" in p.stderr


def test_mare_import_reads_ndbc_and_ndjson_through_the_archive_readers(tmp_path):
    """`mare import` takes every archive format `mare replay` reads, several files at once;
    importing one twice leaves one copy; bad rows are skipped with line and reason."""
    data = tmp_path / "data"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ndbc = os.path.join(repo, "tests", "data", "ndbc_44005_2012.txt")
    ndjson = tmp_path / "readings.ndjson"
    with open(ndjson, "w") as f:
        f.write(json.dumps({"timestamp": "2024-01-01T00:00:00Z", "sensor_id": 3, "temperature": 1.5}) + "\n")
        f.write(json.dumps([{"timestamp": "2024-01-01T00:00:01Z", "sensor_id": 3, "temperature": 2.5, "location": {"lat": 42.5, "lon": 3.1}},
                            {"timestamp": "yesterday", "sensor_id": 3}]) + "\n")
        f.write("nope\n")
    p = mare("import", ndbc, ndjson, "--data-dir", data, check=False)
    assert p.returncode == 1, "skipped rows make the exit code 1"
    assert f"8347 readings from {ndbc} (ndbc)" in p.stderr, p.stderr
    assert f"2 readings from {ndjson} (ndjson)" in p.stderr, p.stderr
    assert "line 2: invalid_timestamp" in p.stderr and "line 3: not_json" in p.stderr, p.stderr
    p = mare("import", ndbc, "--data-dir", data)
    assert "the store holds 8349 readings" in p.stderr, p.stderr
    p = mare("query", "--offline", "--data-dir", data, "--format", "csv",
             "SELECT sensor_id, count(*), sum(temperature), count(lat) FROM readings GROUP BY sensor_id ORDER BY sensor_id")
    lines = p.stdout.splitlines()
    assert lines[1] == "3,2,4,1", p.stdout
    sensor, count = lines[2].split(",")[:2]
    assert (sensor, count) == ("44005", "8347"), p.stdout
    # The time the file gives its first row (NDBC times are UTC).
    p = mare("query", "--offline", "--data-dir", data, "--format", "csv", "SELECT min(ts) FROM readings WHERE sensor_id = 44005")
    with open(ndbc) as f:
        first = [l for l in f if not l.startswith(("#", "YY"))][0].split()
    assert p.stdout.splitlines()[1] == f"{first[0]}-{first[1]}-{first[2]}T{first[3]}:{first[4]}:00Z", p.stdout


def test_a_second_mare_on_the_same_http_port_is_refused(tmp_path):
    with MareRun(tmp_path / "a") as first:
        second = MareRun(tmp_path / "b")
        second.http_port = first.http_port
        try:
            second.start()
            raise AssertionError("a second mare run bound the same HTTP port")
        except RuntimeError as e:
            assert "cannot bind" in str(e), str(e)
        finally:
            if second.proc and second.proc.poll() is None:
                second.proc.kill()
