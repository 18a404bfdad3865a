"""TLS and tokens end to end (issue 13, "Security"), against the real `mare run` with a
self-signed certificate the test makes with the openssl CLI: readings in over HTTPS with curl,
requests and urllib, queried back; a plaintext request or a stalled handshake refused while the
server goes on; `mare simulate` and `mare replay` with --token and --cacert; psql and psycopg
with sslmode=require on the PostgreSQL port; the unix socket's mode."""
import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import psycopg
import pytest
import requests

from harness import MARE, MareRun

INGEST, QUERY, ADMIN = "ingest-tok-1", "query-tok-2", "admin-tok-3"
HOUR = int(time.time()) // 3600 * 3600 - 3600


def tokens_setting():
    entries = ", ".join(f'{{name = "{name}", scopes = ["{scope}"], sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"}}'
                        for name, scope, token in [("buoys", "ingest", INGEST), ("web", "query", QUERY), ("ops", "admin", ADMIN)])
    return f"http.tokens=[{entries}]"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """(cert.pem, key.pem) for 127.0.0.1 and localhost, self-signed: the certificate is its own CA."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=mare test",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return cert, key


def readings(first_sensor, sensors, n):
    return "".join(json.dumps({"timestamp": HOUR + i, "sensor_id": first_sensor + s, "temperature": 10 + i / 100})
                   + "\n" for s in range(sensors) for i in range(n))


def query(run, sql, cafile):
    r = requests.get(f"{run.http_url}/api/v1/query", params={"q": sql}, headers={"Authorization": f"Bearer {QUERY}"},
                     verify=cafile, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def tls_run(tmp_path, cert, extra=()):
    c, k = cert
    return MareRun(tmp_path / "data", tls_ca=c,
                   extra=[tokens_setting(), f'http.tls_cert="{c}"', f'http.tls_key="{k}"', 'http.header_timeout="1s"', *extra])


def test_https_ingest_and_query_with_curl_requests_and_urllib(tmp_path, cert):
    cafile = cert[0]
    with tls_run(tmp_path, cert) as run:
        url = f"{run.http_url}/api/v1/ingest"
        # curl, trusting the test's CA.
        body = tmp_path / "a.ndjson"
        body.write_text(readings(1, 2, 50))
        out = subprocess.run(["curl", "-sS", "--cacert", cafile, "-H", f"Authorization: Bearer {INGEST}",
                              "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{body}", url],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["accepted"] == 100
        # Python requests.
        r = requests.post(url, data=readings(3, 2, 40), headers={"Authorization": f"Bearer {INGEST}",
                                                                  "Content-Type": "application/x-ndjson"},
                          verify=cafile, timeout=10)
        assert r.status_code == 200 and r.json()["accepted"] == 80, r.text
        # urllib with an SSL context holding the CA.
        req = urllib.request.Request(url, data=readings(5, 1, 30).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {INGEST}", "Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(req, timeout=10, context=ssl.create_default_context(cafile=cafile)) as resp:
            assert json.loads(resp.read())["accepted"] == 30
        # Without the CA the certificate is not trusted: nothing is sent.
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(url, data=readings(9, 1, 1), headers={"Authorization": f"Bearer {INGEST}"}, timeout=10)

        # Everything is queried back over HTTPS.
        deadline = time.time() + 20
        while time.time() < deadline and query(run, "SELECT count(*) FROM readings", cafile)[0][0] < 210:
            time.sleep(0.2)
        rows = query(run, "SELECT sensor_id, count(*), min(temperature), max(temperature) FROM readings "
                          "GROUP BY sensor_id ORDER BY sensor_id", cafile)
        assert rows == [[1, 50, 10.0, 10.49], [2, 50, 10.0, 10.49], [3, 40, 10.0, 10.39], [4, 40, 10.0, 10.39],
                        [5, 30, 10.0, 10.29]]
        # curl's query: a token is still needed over TLS.
        q = urllib.parse.urlencode({"q": "SELECT count(*) FROM readings"})
        out = subprocess.run(["curl", "-sS", "--cacert", cafile, "-o", "/dev/null", "-w", "%{http_code}",
                              f"{run.http_url}/api/v1/query?{q}"], capture_output=True, text=True, timeout=20)
        assert out.stdout == "401"


def test_plaintext_and_stalled_handshakes_are_refused_and_the_server_goes_on(tmp_path, cert):
    cafile = cert[0]
    with tls_run(tmp_path, cert) as run:
        plain = f"http://127.0.0.1:{run.http_port}"
        # A plaintext request is answered in plaintext, 400, saying what to do.
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(plain + "/healthz", timeout=5)
        assert e.value.code == 400
        assert "this port speaks HTTPS (http.tls_cert is set)" in e.value.read().decode()
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {INGEST}",
                              "-H", "Content-Type: application/x-ndjson", "--data-binary", readings(1, 1, 5),
                              plain + "/api/v1/ingest"], capture_output=True, text=True, timeout=20)
        assert out.stdout.endswith("\n400"), out
        # Clients that connect and stall in the handshake (silent, or a ClientHello cut short)
        # are dropped after http.header_timeout (1 s); meanwhile others are served at once.
        stalled = []
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", run.http_port))
            if i % 2:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")
            stalled.append(s)
        start = time.time()
        r = requests.get(f"{run.http_url}/healthz", verify=cafile, timeout=5)
        assert r.status_code == 200 and time.time() - start < 0.9
        for s in stalled:
            s.settimeout(5)
            assert s.recv(100) == b""  # closed by the server
            s.close()
        assert time.time() - start < 4
        # The server is up, counted each refusal, and stored nothing of the plaintext ingest.
        assert run.proc.poll() is None
        metrics = requests.get(f"{run.http_url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, verify=cafile,
                               timeout=5).text
        samples = {l.split()[0]: float(l.split()[1]) for l in metrics.splitlines() if l.startswith("mare_http_tls_")}
        assert samples['mare_http_tls_handshakes_failed_total{reason="plaintext"}'] == 2
        assert samples['mare_http_tls_handshakes_failed_total{reason="timeout"}'] == 30
        assert query(run, "SELECT count(*) FROM readings", cafile) == [[0]]


def test_simulate_and_replay_with_token_and_cacert(tmp_path, cert):
    cafile = cert[0]
    with tls_run(tmp_path, cert) as run:
        url = f"{run.http_url}/api/v1/ingest"
        base = [MARE, "simulate", "--target", url, "--sensors", "3", "--count", "20", "--flat-out", "--no-faults"]
        env = {k: v for k, v in os.environ.items() if k != "MARE_TOKEN"}
        # No token: refused at the first batch, with what to do, and the feed stops.
        p = subprocess.run(base + ["--cacert", cafile], capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1, p.stderr
        assert "HTTP 401: the server wants an API token with the ingest scope (--token or $MARE_TOKEN)" in p.stderr
        # A token without the ingest scope: 403.
        p = subprocess.run(base + ["--cacert", cafile, "--token", QUERY], capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1 and "HTTP 403: the token lacks the ingest scope" in p.stderr, p.stderr
        # The right token but no CA for the self-signed certificate: refused by the client.
        p = subprocess.run(base + ["--token", INGEST], capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1 and "the server's certificate does not verify: it is not signed by a CA this system trusts (pass --cacert)" in p.stderr, p.stderr
        # http:// to the HTTPS port.
        p = subprocess.run([MARE, "simulate", "--target", f"http://127.0.0.1:{run.http_port}", "--count", "1", "--token", INGEST],
                           capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1 and "HTTP 400" in p.stderr and "speaks HTTPS" in p.stderr, p.stderr
        # --token, then $MARE_TOKEN: every reading taken.
        p = subprocess.run(base + ["--cacert", cafile, "--token", INGEST], capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 0 and "sent 60 readings to 1 target(s), 0 send errors" in p.stderr, p.stderr
        csv = tmp_path / "station.csv"
        csv.write_text("timestamp,temperature\n" + "".join(f"{HOUR + i},{i}\n" for i in range(25)))
        p = subprocess.run([MARE, "replay", str(csv), "--sensor-id", "77", "--target", url, "--cacert", cafile],
                           capture_output=True, text=True, timeout=60, env={**env, "MARE_TOKEN": INGEST})
        assert p.returncode == 0 and "sent 25 readings to 1 target(s), 0 send errors" in p.stderr, p.stderr
        p = subprocess.run([MARE, "replay", str(csv), "--sensor-id", "78", "--target", url, "--cacert", cafile],
                           capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1 and "--token or $MARE_TOKEN" in p.stderr, p.stderr

        deadline = time.time() + 20
        while time.time() < deadline and query(run, "SELECT count(*) FROM readings", cafile)[0][0] < 85:
            time.sleep(0.2)
        rows = query(run, "SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id ORDER BY sensor_id", cafile)
        assert rows == [[1, 20], [2, 20], [3, 20], [77, 25]]
        # mare query over https: the CA from --cacert, the token from $MARE_TOKEN.
        p = subprocess.run([MARE, "query", "--url", run.http_url, "--cacert", cafile, "--format", "csv",
                            "SELECT count(*) FROM readings WHERE sensor_id = 77"],
                           capture_output=True, text=True, timeout=60, env={**env, "MARE_TOKEN": QUERY})
        assert p.returncode == 0 and p.stdout.strip().splitlines()[-1] == "25", (p.stdout, p.stderr)
        p = subprocess.run([MARE, "query", "--url", run.http_url, "SELECT 1"], capture_output=True, text=True, timeout=60,
                           env={**env, "MARE_TOKEN": QUERY})
        assert p.returncode != 0, p.stdout


def test_pgwire_tls_with_psql_and_psycopg(tmp_path, cert):
    c, k = cert
    with tls_run(tmp_path, cert, extra=[f'pgwire.tls_cert="{c}"', f'pgwire.tls_key="{k}"', 'pgwire.auth="password"',
                                            'pgwire.password_method="cleartext"']) as run:  # tokens: cleartext only
        requests.post(f"{run.http_url}/api/v1/ingest", data=readings(1, 1, 12),
                      headers={"Authorization": f"Bearer {INGEST}", "Content-Type": "application/x-ndjson"},
                      verify=c, timeout=10).raise_for_status()
        conninfo = f"host=127.0.0.1 port={run.pgwire_port} user=scientist dbname=mare connect_timeout=10"
        env = {**os.environ, "PGPASSWORD": QUERY}
        deadline = time.time() + 20
        while True:
            p = subprocess.run(["psql", conninfo + f" sslmode=verify-full sslrootcert={c}", "-XAt", "-c",
                                "SELECT count(*) FROM readings"], capture_output=True, text=True, timeout=30, env=env)
            assert p.returncode == 0, p.stderr
            if p.stdout.strip() == "12" or time.time() > deadline:
                break
            time.sleep(0.2)
        assert p.stdout.strip() == "12"
        with psycopg.connect(conninfo + f" sslmode=require password={QUERY}", autocommit=True) as conn:
            assert conn.pgconn.ssl_in_use
            rows = conn.execute("SELECT sensor_id, count(*), max(temperature) FROM readings GROUP BY sensor_id").fetchall()
            assert rows == [(1, 12, 10.11)]
        # A client that does not ask for TLS is still served (sslmode=disable), as PostgreSQL does
        # without hostssl rules.
        with psycopg.connect(conninfo + f" sslmode=disable password={QUERY}", autocommit=True) as conn:
            assert not conn.pgconn.ssl_in_use
            assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 12


def test_unix_socket_mode(tmp_path):
    with MareRun(tmp_path / "a") as run:
        assert stat.S_IMODE(os.stat(run.unix_path).st_mode) == 0o660
    with MareRun(tmp_path / "b", extra=['sources.unix.mode="0600"']) as run:
        assert stat.S_IMODE(os.stat(run.unix_path).st_mode) == 0o600
    bad = MareRun(tmp_path / "c", extra=['sources.unix.mode="rw-rw----"'])
    with pytest.raises(RuntimeError) as e:
        bad.start()
    assert 'sources.unix.mode "rw-rw----": an octal mode such as "0660" is expected' in str(e.value)
