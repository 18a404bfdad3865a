"""One SQL statement must never take `mare run` down (issue 13): statements too large or too
deep, a huge OFFSET, integer overflow, a statement past query.timeout and one past
query.max_concurrent each get an answer with a message naming the limit, and afterwards the
server still answers /healthz and normal queries, its memory never having grown past ~1 GB."""
import json
import threading
import time
import urllib.error
import urllib.request

from harness import MareRun, mare

T0 = 1705831200  # 2024-01-21T10:00:00Z
READINGS = 70_000  # past the 65,536 rows at which ORDER BY ... LIMIT first prunes


def query(run, sql, timeout=60):
    """(status, parsed body or text, headers) of POST /api/v1/query."""
    req = urllib.request.Request(f"{run.http_url}/api/v1/query", data=sql.encode(), method="POST",
                                 headers={"Content-Type": "application/sql"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        try:
            body = json.loads(body)
        except ValueError:
            pass
        return e.code, body, dict(e.headers)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def load(run):
    """READINGS readings of 10 sensors, one a second each, with a position (for `lat`)."""
    batch = []
    for i in range(READINGS):
        batch.append(json.dumps({"timestamp": T0 + i // 10, "sensor_id": i % 10 + 1, "temperature": 10 + i % 97 / 10,
                                 "location": {"lat": 42.4 + (i % 10) / 100, "lon": 3.1}}))
        if len(batch) == 10_000:
            status, body = run.post("\n".join(batch))
            assert status == 200, body
            batch = []
    deadline = time.time() + 30
    while time.time() < deadline:
        status, body, _ = query(run, "SELECT count(*) FROM readings")
        if status == 200 and body["rows"] == [[READINGS]]:
            return
        time.sleep(0.1)
    raise AssertionError("the readings did not reach the store")


def balanced_sum(leaves):
    """(lat + lat) + (lat + lat) ...: many nodes, little depth."""
    terms = ["lat"] * leaves
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def test_hostile_statements_get_errors_and_the_server_lives_on(tmp_path):
    with MareRun(tmp_path / "data", extra=['query.timeout="200ms"', "query.max_concurrent=1", "query.max_expression_nodes=100000",
                                             'store.flush_interval="1s"']) as run:
        load(run)

        # 10,000 terms (40 KB): refused by the parser, before any recursion gets deep.
        chain = "SELECT " + "+".join(["lat"] * 10_000) + " FROM readings"
        assert 39_000 < len(chain) < 41_000
        status, body, _ = query(run, chain)
        assert status == 400, body
        assert "expression nested too deeply (more than 200 levels; query.max_expression_depth)" in body["error"], body
        assert body["line"] == 1 and body["column"] > 0

        # 1.2 MB of the same: refused before it is read.
        huge = "SELECT " + "+".join(["lat"] * 300_000) + " FROM readings"
        assert len(huge) > 1_200_000
        status, body, _ = query(run, huge)
        assert status == 400, body
        assert body["error"] == (f"line 1, column 1: statement too large: {len(huge)} bytes, more than 1048576 "
                                 "(query.max_statement_bytes)"), body

        # The largest OFFSET aborted `mare query --offline` (std::length_error): no rows, no crash.
        for sql in ["SELECT * FROM readings LIMIT 5 OFFSET 9223372036854775807",
                    "SELECT ts, lat FROM readings ORDER BY lat DESC LIMIT 5 OFFSET 9223372036854775807"]:
            status, body, _ = query(run, sql)
            assert status == 200, body
            assert body["rows"] == [] and body["row_count"] == 0, body

        # The same from the store's files: `mare query --offline` aborted with std::length_error.
        deadline = time.time() + 30
        while run.metric("mare_store_disk_rows") != READINGS and time.time() < deadline:
            time.sleep(0.1)
        assert run.metric("mare_store_disk_rows") == READINGS, "the memtable was not flushed"
        p = mare("query", "--offline", "--data-dir", tmp_path / "data",
                 "SELECT ts, lat FROM readings ORDER BY lat DESC LIMIT 5 OFFSET 9223372036854775807", check=False)
        assert p.returncode == 0 and "(0 rows)" in p.stdout, (p.returncode, p.stdout, p.stderr)
        p = mare("query", "--offline", "--data-dir", tmp_path / "data", "SELECT 9223372036854775807 + 1 FROM readings", check=False)
        assert p.returncode == 1
        assert p.stderr == "query: line 1, column 28: integer overflow in + (the result does not fit a 64-bit integer)\n"

        # Integer overflow: an error at the operator, not a wrapped value.
        for sql, column, op in [("SELECT 9223372036854775807 + 1 FROM readings", 28, "+"),
                                ("SELECT sensor_id * 1000000000000000000 FROM readings", 18, "*"),
                                ("SELECT abs(-9223372036854775807-1) FROM readings", 8, "abs()"),
                                ("SELECT -(-9223372036854775807-1) FROM readings", 8, "unary -")]:
            status, body, _ = query(run, sql)
            assert status == 400, (sql, body)
            assert body["error"] == f"line 1, column {column}: integer overflow in {op} (the result does not fit a 64-bit integer)"
            assert body["line"] == 1 and body["column"] == column

        # A statement past query.timeout stops with a message; while it runs it holds the one
        # place query.max_concurrent allows, and another statement is refused, not queued.
        # 65,535 operators over each of 70,000 rows: seconds of work (max_expression_nodes raised).
        # The probes race the heavy statement for the one place: when a probe took it first (the
        # heavy statement is 400 KB to receive), the heavy one was refused; send it again.
        heavy = f"SELECT sum({balanced_sum(32768)}) FROM readings"
        for attempt in range(10):
            result = {}
            worker = threading.Thread(target=lambda: result.update(heavy=query(run, heavy)))
            worker.start()
            refused = None
            while worker.is_alive() and refused is None:
                status, body, headers = query(run, "SELECT count(*) FROM readings")
                if status == 503:
                    refused = (body, headers)
            worker.join()
            if result["heavy"][0] != 503:
                break
        status, body, _ = result["heavy"]
        assert status == 400, body
        assert body["error"] == "query exceeded query.timeout (200ms); narrow the WHERE clause or the time range", body
        assert refused is not None, "no statement was refused while the heavy one ran"
        body, headers = refused
        assert body["error"] == "too many concurrent queries: query.max_concurrent (1) are running; retry in a moment"
        assert headers.get("Retry-After") == "1"
        assert run.metric('mare_query_requests_total{status="busy"}') >= 1

        # The server lives on, and never held more than ~1 GB.
        with urllib.request.urlopen(f"{run.http_url}/healthz", timeout=5) as r:
            assert r.status == 200
        status, body, _ = query(run, "SELECT count(*) FROM readings")
        assert status == 200 and body["rows"] == [[READINGS]], body
        peak = peak_rss_kib(run.proc.pid)
        assert peak < 1_000_000, f"peak RSS {peak} KiB"
        print(f"peak RSS of mare run: {peak / 1024:.0f} MiB")
