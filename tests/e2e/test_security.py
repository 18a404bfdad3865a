"""Nobody in who should not be (issue 13, "Security"), against the real `mare run`: API tokens
with scopes, the Host header, cross-site content types, Idempotency-Key retries stored once,
and every listener on loopback by default."""
import base64
import hashlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import MARE, MareRun, free_port, log_records, stop_process

TOKENS = {"buoys": ("ingest-token-1", ["ingest"]), "web": ("query-token-2", ["query"]), "ops": ("admin-token-3", ["admin"])}
HOUR = int(time.time()) // 3600 * 3600 - 3600


def tokens_setting():
    entries = ", ".join(f'{{name = "{name}", scopes = {json.dumps(scopes)}, sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"}}'
                        for name, (token, scopes) in TOKENS.items())
    return f"http.tokens=[{entries}]"


def request(run, method, path, body=None, token=None, content_type=None, headers=None):
    """(status, headers, text) of one request; never raises on an HTTP error."""
    req = urllib.request.Request(run.http_url + path, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def readings(first, n):
    return ("\n".join(json.dumps({"timestamp": HOUR + i, "sensor_id": first, "temperature": 10 + i / 10}) for i in range(n))
            + "\n").encode()


def count(run, token):
    q = urllib.parse.urlencode({"q": "SELECT count(*) FROM readings"})
    status, _, text = request(run, "GET", f"/api/v1/query?{q}", token=token)
    assert status == 200, text
    return json.loads(text)["rows"][0][0]


def metric(run, name, token):
    status, _, text = request(run, "GET", "/metrics", token=token)
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_tokens_scopes_and_what_stays_open(tmp_path):
    ingest, query, admin = (TOKENS[n][0] for n in ("buoys", "web", "ops"))
    with MareRun(tmp_path / "data", extra=[tokens_setting()]) as run:
        # Open: health and the dashboard's page (it asks for a token itself).
        for path in ["/healthz", "/readyz", "/"]:
            status, _, _ = request(run, "GET", path)
            assert status == 200, path
        # No token: 401 with a Bearer challenge and a JSON reason; nothing stored.
        status, headers, text = request(run, "POST", "/api/v1/ingest", readings(1, 5), content_type="application/x-ndjson")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer") and 'scope="ingest"' in headers["WWW-Authenticate"]
        assert "ingest" in json.loads(text)["error"]
        # A wrong token: 401 too.
        status, headers, _ = request(run, "GET", "/api/v1/sensors", token="not-a-token")
        assert status == 401 and "invalid_token" in headers["WWW-Authenticate"]
        # Another scope: 403, naming the token, never its secret.
        status, _, text = request(run, "POST", "/api/v1/ingest", readings(1, 5), token=query, content_type="application/x-ndjson")
        assert status == 403 and "'web'" in json.loads(text)["error"] and query not in text
        status, _, _ = request(run, "GET", "/api/v1/sensors", token=ingest)
        assert status == 403
        status, _, _ = request(run, "GET", "/metrics", token=query)
        assert status == 403
        # The right scope.
        status, _, text = request(run, "POST", "/api/v1/ingest", readings(1, 5), token=ingest, content_type="application/x-ndjson")
        assert status == 200 and json.loads(text)["accepted"] == 5
        deadline = time.time() + 20
        while count(run, query) != 5 and time.time() < deadline:
            time.sleep(0.1)
        assert count(run, query) == 5
        assert count(run, admin) == 5  # admin has every scope
        # The live stream takes its token as ?access_token= (EventSource sends no headers), and
        # only the stream itself.
        req = urllib.request.Request(f"{run.http_url}/api/v1/live?access_token={query}")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        status, _, _ = request(run, "GET", "/api/v1/live")
        assert status == 401
        status, _, _ = request(run, "GET", f"/api/v1/live/snapshot?access_token={query}")
        assert status == 401
        assert metric(run, 'mare_http_requests_refused_total{reason="unauthenticated"}', admin) == 4
        assert metric(run, 'mare_http_requests_refused_total{reason="forbidden"}', admin) == 3
        # InfluxDB 1.x clients on the line protocol's /write (Telegraf's influxdb output): HTTP
        # Basic or ?u=&p=, the password being the token (as InfluxDB 2's 1.x API takes them).
        basic = base64.b64encode(f"telegraf:{ingest}".encode()).decode()
        line = lambda second: f"weather,sensor_id=1 temperature=21.5 {HOUR + second}".encode()  # noqa: E731
        status, _, text = request(run, "POST", "/write?precision=s", line(1000), content_type="text/plain",
                                  headers={"Authorization": f"Basic {basic}"})
        assert status == 204, text
        status, _, text = request(run, "POST", f"/write?precision=s&u=telegraf&p={ingest}", line(1001), content_type="text/plain")
        assert status == 204, text
        status, _, _ = request(run, "POST", f"/write?precision=s&u=telegraf&p={query}", line(1002), content_type="text/plain")
        assert status == 403
        status, _, _ = request(run, "POST", f"/api/v2/write?precision=s&org=o&bucket=b&p={ingest}", line(1003),
                               content_type="text/plain")
        assert status == 401
        deadline = time.time() + 20
        while count(run, query) != 7 and time.time() < deadline:
            time.sleep(0.1)
        assert count(run, query) == 7
        # Secrets are never printed: neither the tokens nor their hashes.
        out = run.read_output()
        assert all(t not in out and hashlib.sha256(t.encode()).hexdigest() not in out for t, _ in TOKENS.values())


def test_host_header_and_cross_site_bodies_are_refused(tmp_path):
    with MareRun(tmp_path / "data", extra=['http.allowed_hosts=["mare.example.org"]']) as run:
        # DNS rebinding: a page of attacker.example whose name now resolves to 127.0.0.1.
        status, _, text = request(run, "GET", "/api/v1/sensors", headers={"Host": "attacker.example:%d" % run.http_port})
        assert status == 421 and "http.allowed_hosts" in json.loads(text)["error"]
        for host in ["mare.example.org", f"localhost:{run.http_port}", f"127.0.0.1:{run.http_port}"]:
            status, _, _ = request(run, "GET", "/api/v1/sensors", headers={"Host": host})
            assert status == 200, host
        # What a page of any site may POST without asking: refused, with what to send instead.
        for content_type in ["text/plain", "application/x-www-form-urlencoded"]:
            status, _, text = request(run, "POST", "/api/v1/ingest", readings(2, 3), content_type=content_type)
            assert status == 415 and "application/x-ndjson" in json.loads(text)["error"], text
            status, _, text = request(run, "POST", "/api/v1/query", b"SELECT 1", content_type=content_type)
            assert status == 415 and "application/sql" in json.loads(text)["error"], text
        # A POST from another origin, even with an accepted type.
        status, _, _ = request(run, "POST", "/api/v1/ingest", readings(2, 3), content_type="application/json",
                               headers={"Origin": "http://attacker.example"})
        assert status == 403
        # The types mare's clients send.
        status, _, text = request(run, "POST", "/api/v1/query", b"SELECT count(*) FROM readings", content_type="application/sql")
        assert status == 200 and json.loads(text)["rows"] == [[0]], text
        status, _, text = request(run, "POST", "/api/v1/ingest", readings(2, 3), content_type="application/x-ndjson")
        assert status == 200 and json.loads(text)["accepted"] == 3
        assert run.metric('mare_http_requests_refused_total{reason="host"}') == 1
        assert run.metric('mare_http_requests_refused_total{reason="content_type"}') == 4
        assert run.metric('mare_http_requests_refused_total{reason="origin"}') == 1
    assert len(log_records(run.data_dir)) == 3


def test_an_idempotency_key_stores_a_retried_batch_once(tmp_path):
    # Dedup off, so that only the key keeps a retry from being stored twice.
    ingest, query = TOKENS["buoys"][0], TOKENS["web"][0]
    with MareRun(tmp_path / "data", extra=[tokens_setting(), 'ingest.dedup_horizon="0s"']) as run:
        def post(body, key=None, token=ingest):
            return request(run, "POST", "/api/v1/ingest", body, token=token, content_type="application/x-ndjson",
                           headers={"Idempotency-Key": key} if key else None)

        first = post(readings(3, 20), "batch-0001")
        assert first[0] == 200 and json.loads(first[2])["accepted"] == 20
        again = post(readings(3, 20), "batch-0001")
        assert again[0] == 200 and again[2] == first[2] and again[1]["Idempotent-Replayed"] == "true"
        # The same key for another body is a mistake, said so.
        status, _, text = post(readings(4, 7), "batch-0001")
        assert status == 422 and "Idempotency-Key" in json.loads(text)["error"]
        # Keys are the token's own: no other client can read an answer by guessing one.
        other = request(run, "POST", "/api/v1/ingest", readings(3, 20), token=TOKENS["ops"][0],
                        content_type="application/x-ndjson", headers={"Idempotency-Key": "batch-0001"})
        assert other[0] == 200 and "Idempotent-Replayed" not in other[1]
        # Without a key, a retry is stored again (dedup being off here).
        assert post(readings(5, 10))[0] == 200 and post(readings(5, 10))[0] == 200
        # The store keeps one row per sensor and time: 30 distinct readings whatever was appended.
        deadline = time.time() + 20
        while count(run, query) < 30 and time.time() < deadline:
            time.sleep(0.1)
        assert count(run, query) == 30
        assert metric(run, "mare_http_idempotent_replays_total", TOKENS["ops"][0]) == 1
        assert metric(run, 'mare_source_readings_accepted_total{source="http"}', TOKENS["ops"][0]) == 20 + 20 + 10 + 10
    # The log holds what was appended: the keyed retry is not there, the unkeyed one is.
    assert len(log_records(run.data_dir)) == 20 + 20 + 10 + 10


def bound(proc_file, port):
    """The local addresses (hex ip, as /proc/net shows it) bound to `port`."""
    out = set()
    for path in (proc_file, proc_file + "6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            ip, p = line.split()[1].split(":")
            if int(p, 16) == port:
                out.add(ip)
    return out


def test_every_listener_is_on_loopback_by_default(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    defaults = {"http": 8080, "pgwire": 8812, "tcp": 20002, "udp": 20001}
    for name, port in defaults.items():
        kind = socket.SOCK_DGRAM if name == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as s:
            # As mare's listeners bind (SO_REUSEADDR): a connection of an earlier run left in
            # TIME_WAIT on the port (this test's twin in the other build runs just before) is no
            # listener; one listening there still refuses the bind.
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as e:
                raise AssertionError(f"default port {port} ({name}) is taken on this machine: this test runs "
                                     f"`mare run` with its defaults and needs it free ({e})")
    printed = subprocess.run([MARE, "run", "--data-dir", str(data), "--print-config"], capture_output=True, text=True, check=True).stdout
    for key in ["sources.udp", "sources.tcp", "http", "pgwire"]:
        section = printed[printed.index(f"[{key}]"):]
        listen = [l for l in section.splitlines() if l.startswith("listen = ")][0]
        assert listen.startswith('listen = "127.0.0.1:'), (key, listen)
    out = open(data / "run.out", "wb")
    proc = subprocess.Popen([MARE, "run", "--data-dir", str(data)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8080/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        loopback = "0100007F"  # 127.0.0.1 in /proc/net's byte order
        assert bound("/proc/net/tcp", 8080) == {loopback}
        assert bound("/proc/net/tcp", 8812) == {loopback}
        assert bound("/proc/net/tcp", 20002) == {loopback}
        assert bound("/proc/net/udp", 20001) == {loopback}
    finally:
        stop_process(proc)
        out.close()
    assert "not loopback" not in open(data / "run.out").read()


def test_an_exposed_listener_is_warned_about(tmp_path):
    http_port, tcp_port, udp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    run = MareRun(tmp_path / "data", extra=[f'http.listen="0.0.0.0:{http_port}"', f'sources.tcp.listen="0.0.0.0:{tcp_port}"',
                                            f'sources.udp.listen="0.0.0.0:{udp_port}"'])
    run.http_port = http_port  # the harness's checks go to 127.0.0.1, which 0.0.0.0 serves
    with run:
        pass
    out = run.read_output()
    assert f"http: listening on 0.0.0.0:{http_port}, not loopback: no http.tokens are configured" in out
    assert f"tcp: listening on 0.0.0.0:{tcp_port}, not loopback: TCP ingest carries no token" in out
    assert f"udp: listening on 0.0.0.0:{udp_port}, not loopback: UDP ingest carries no token" in out
    # With tokens, HTTP is not warned about for lack of them; raw ingest still is.
    run = MareRun(tmp_path / "data2", extra=[f'http.listen="0.0.0.0:{http_port}"', tokens_setting()])
    run.http_port = http_port
    with run:
        pass
    out = run.read_output()
    assert f"http: listening on 0.0.0.0:{http_port} (" in out
    assert f"http: listening on 0.0.0.0:{http_port}, not loopback: no http.tokens" not in out
    # ...but without TLS the tokens travel in clear text, and that is said instead.
    assert f"http: listening on 0.0.0.0:{http_port}, not loopback: API tokens travel in clear text without TLS" in out


def test_a_query_token_is_a_pgwire_password(tmp_path):
    import psycopg  # scripts/setup.sh installs it; missing, the test fails
    with MareRun(tmp_path / "data", extra=[tokens_setting(), 'pgwire.auth="password"',
                                                  'pgwire.password_method="cleartext"']) as run:  # tokens: cleartext only
        base = f"host=127.0.0.1 port={run.pgwire_port} user=anyone dbname=mare connect_timeout=10"
        with psycopg.connect(base + f" password={TOKENS['web'][0]}", autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 0
        for refused in [TOKENS["buoys"][0], "wrong"]:  # an ingest token is no query password
            with pytest.raises(psycopg.OperationalError) as e:
                psycopg.connect(base + f" password={refused}")
            assert "password authentication failed" in str(e.value)
