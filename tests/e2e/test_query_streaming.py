"""Answers of any size (docs/sql.md, "Answers of any size"): CSV, NDJSON and Arrow answers of a
real `mare run` stream as the statement runs, past query.max_rows, in flat memory; JSON keeps
the cap; a client that goes away stops its statement; a client that reads slowly is not timed
out, over HTTP and over the PostgreSQL wire protocol. The store holds 20 million readings, imported from ten CSVs of consecutive times (the
store keeps one reading per sensor and time, so the same file ten times would be one copy)."""
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request

import pyarrow as pa
import psycopg
import pyarrow.compute as pc
import pytest

from harness import MareRun, mare

T0 = 1704067200  # 2024-01-01T00:00:00Z
PER_IMPORT = 2_000_000
IMPORTS = 10
ROWS = PER_IMPORT * IMPORTS
# query.timeout: the 20M-row statement's own work must fit in it with the sanitizers on a loaded
# machine (ctest runs two tests at once); the slow reader below takes longer than it.
TIMEOUT_S = 8


def rss_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


def url(run, sql, fmt):
    return f"{run.http_url}/api/v1/query?" + urllib.parse.urlencode({"q": sql, "format": fmt})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("streaming")
    csv_path = data / "readings.csv"
    for k in range(IMPORTS):
        shift = T0 + k * PER_IMPORT // 4
        with open(csv_path, "w") as f:
            f.write("ts,sensor_id,temperature\n")
            for start in range(0, PER_IMPORT, 200_000):
                f.write("".join(f"{shift + i // 4},{i % 4 + 1},{(i % 1000) / 10}\n" for i in range(start, start + 200_000)))
        mare("import", csv_path, "--data-dir", data, "--quiet")
    os.unlink(csv_path)
    # ASan keeps freed memory in quarantine (256 MB by default), which would hide what mare
    # itself holds; a small one keeps RSS meaningful in the sanitizer build too.
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=8"
    try:
        with MareRun(data, extra=["query.max_rows=1000", "query.max_concurrent=1", f'query.timeout="{TIMEOUT_S}s"']) as r:
            yield r
    finally:
        os.environ["ASAN_OPTIONS"] = asan


def test_twenty_million_rows_stream_past_max_rows_in_flat_memory(run):
    # JSON is one document: still refused past query.max_rows.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url(run, "SELECT ts FROM readings", "json"), timeout=60)
    assert e.value.code == 400 and "more than 1000 rows" in json.loads(e.value.read())["error"]

    before = rss_kb(run.proc.pid, "VmRSS")
    peak = before
    rows = batches = 0
    sensor_sum = 0
    with urllib.request.urlopen(url(run, "SELECT ts, sensor_id, temperature FROM readings", "arrow"), timeout=120) as r:
        assert r.headers["Transfer-Encoding"] == "chunked" and "X-Mare-Row-Count" not in r.headers
        reader = pa.ipc.open_stream(r)
        assert reader.schema.field("ts").type == pa.timestamp("us", tz="UTC")
        for batch in reader:
            rows += batch.num_rows
            batches += 1
            sensor_sum += pc.sum(batch.column(1)).as_py()
            if batches % 20 == 0:
                peak = max(peak, rss_kb(run.proc.pid, "VmRSS"))
    assert rows == ROWS
    assert sensor_sum == ROWS // 4 * (1 + 2 + 3 + 4)
    assert batches >= ROWS // 65_536
    grown_mb = (max(peak, rss_kb(run.proc.pid, "VmHWM")) - before) / 1024
    print(f"mare's memory grew {grown_mb:.0f} MB while streaming {ROWS} rows (from {before / 1024:.0f} MB)")
    assert grown_mb < 128, f"mare's memory grew by {grown_mb:.0f} MB while streaming"


def test_csv_and_ndjson_stream_too(run):
    sql = "SELECT ts, temperature FROM readings WHERE sensor_id = 2 LIMIT 3000000"
    with urllib.request.urlopen(url(run, sql, "csv"), timeout=120) as r:
        assert r.headers["Transfer-Encoding"] == "chunked"
        assert r.readline() == b"ts,temperature\n"
        assert r.readline() == b"2024-01-01T00:00:00Z,0.1\n"
        assert 2 + sum(1 for _ in r) == 3_000_001
    with urllib.request.urlopen(url(run, sql, "ndjson"), timeout=120) as r:
        first = json.loads(r.readline())
        assert first == {"ts": "2024-01-01T00:00:00Z", "temperature": 0.1}
        assert 1 + sum(1 for _ in r) == 3_000_000


def raw_get(run, path):
    s = socket.create_connection(("127.0.0.1", run.http_port), timeout=30)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return s


def status_of(run, sql):
    try:
        with urllib.request.urlopen(url(run, sql, "csv"), timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_client_that_goes_away_stops_its_statement(run):
    # query.max_concurrent is 1: while the big answer is being sent, another statement is refused.
    path = "/api/v1/query?" + urllib.parse.urlencode({"q": "SELECT * FROM readings", "format": "ndjson"})
    s = raw_get(run, path)
    head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert status_of(run, "SELECT count(*) FROM readings") == 503
    # The client reads no more and goes away: its statement stops and gives its place back.
    s.close()
    deadline = time.time() + 20
    while status_of(run, "SELECT count(*) FROM readings") != 200:
        assert time.time() < deadline, "the abandoned statement still holds its place"
        time.sleep(0.2)


def pgwire_query(run, sql):
    """A wire-protocol connection (trust, docs/formats/pgwire.md) that has sent one simple Query
    and read its answer's first bytes, and reads no more."""
    s = socket.create_connection(("127.0.0.1", run.pgwire_port), timeout=30)
    body = struct.pack("!i", 196608) + b"user\0scientist\0database\0mare\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    data = b""
    while not data.endswith(b"Z\0\0\0\x05I"):  # ReadyForQuery, idle
        chunk = s.recv(65536)
        assert chunk, f"the server closed the connection at startup: {data!r}"
        data += chunk
    q = sql.encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
    first = s.recv(65536)
    assert first.startswith(b"T"), first[:64]  # RowDescription, DataRows after it
    return s


def pgwire_status(run, sql):
    """"ok", or the SQLSTATE a new wire-protocol connection's statement was refused with."""
    try:
        with psycopg.connect(host="127.0.0.1", port=run.pgwire_port, user="scientist", dbname="mare",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql).fetchall()
            return "ok"
    except psycopg.Error as e:
        return e.sqlstate


def test_a_wire_protocol_client_that_goes_away_stops_its_statement(run):
    # As over HTTP, with the wire protocol's own query.max_concurrent (1, counted apart from the
    # HTTP API's, docs/formats/pgwire.md): while the big answer is being sent another statement
    # is refused (53000); once its client has closed the socket mid-answer, it is not.
    s = pgwire_query(run, "SELECT * FROM readings")
    assert pgwire_status(run, "SELECT count(*) FROM readings") == "53000"
    s.close()
    deadline = time.time() + 20
    while pgwire_status(run, "SELECT count(*) FROM readings") != "ok":
        assert time.time() < deadline, "the abandoned wire-protocol statement still holds its place"
        time.sleep(0.2)


def test_a_slow_reader_is_not_timed_out(run):
    # Reading this answer takes longer than query.timeout, the statement's own work does not.
    start = time.time()
    sql = "SELECT ts, sensor_id, temperature FROM readings WHERE sensor_id = 3 LIMIT 1000000"
    with urllib.request.urlopen(url(run, sql, "arrow"), timeout=60) as r:
        reader = pa.ipc.open_stream(r)
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            time.sleep(TIMEOUT_S / 12)
    assert rows == 1_000_000
    assert time.time() - start > TIMEOUT_S + 1
