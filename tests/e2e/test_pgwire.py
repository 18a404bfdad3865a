"""The PostgreSQL wire protocol (docs/formats/pgwire.md) of a real `mare run`, with real clients:
psql (Debian's postgresql-client), psycopg 3, pandas.read_sql through SQLAlchemy + psycopg, and
the PostgreSQL JDBC driver (Maven Central) from a small Java program. Each reads typed results of
known data; errors carry SQLSTATE and position; a CancelRequest stops a running statement; an
answer of 1.2 million rows streams in flat memory; hostile bytes end only their own connection.
A missing client fails the test: it is installed by scripts/setup.sh."""
import os
import shutil
import socket
import struct
import subprocess
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import psycopg
import pytest
import sqlalchemy

from harness import MareRun, mare
from maven_jars import JDBC_LIB, JDBC_POM, maven_jars

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
T0 = 1704067200  # 2024-01-01T00:00:00Z
ROWS = 1_200_000


def expected(i):
    return T0 + i, i % 4 + 1, (i % 1000) / 10, f"s{i % 3}"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("pgwire")
    csv_path = data / "readings.csv"
    with open(csv_path, "w") as f:
        f.write("ts,sensor_id,temperature,station\n")
        for start in range(0, ROWS, 100_000):
            f.write("".join("{},{},{},{}\n".format(*expected(i)) for i in range(start, start + 100_000)))
    mare("import", csv_path, "--data-dir", data, "--quiet")
    os.unlink(csv_path)
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=8"
    try:
        with MareRun(data, extra=["query.max_rows=1000"]) as r:
            yield r
    finally:
        os.environ["ASAN_OPTIONS"] = asan


def dsn(run, user="scientist"):
    return f"host=127.0.0.1 port={run.pgwire_port} user={user} dbname=mare"


def psql(run, *args, check=True):
    assert shutil.which("psql"), "psql is not installed: run scripts/setup.sh (postgresql-client)"
    p = subprocess.run(["psql", "-X", "-v", "VERBOSITY=verbose", dsn(run), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_psql_runs_statements_and_reads_typed_text(run):
    out = psql(run, "-A", "-t", "-F", "|", "-c",
               "SELECT ts, sensor_id, temperature, station FROM readings WHERE sensor_id = 2 ORDER BY ts LIMIT 2").stdout
    rows = [line.split("|") for line in out.strip().splitlines()]
    want = [expected(1), expected(5)]
    assert rows == [[datetime.fromtimestamp(w[0], timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00"), str(w[1]), str(w[2]), w[3]]
                    for w in want]
    # Several statements in one Query, the session statements psql users type, and a count.
    out = psql(run, "-A", "-t", "-c", "SET application_name = 'notebook'; SHOW application_name; SELECT count(*) FROM readings").stdout
    assert out.split() == ["SET", "notebook", str(ROWS)]  # psql prints a SET's command tag
    assert psql(run, "-A", "-t", "-c", "SELECT version()").stdout.startswith("PostgreSQL 14.0")


def test_psql_errors_carry_sqlstate_and_position(run):
    p = psql(run, "-c", "SELECT temprature FROM readings", check=False)
    assert p.returncode != 0
    assert "ERROR:  42703: unknown column \"temprature\"" in p.stderr
    # psql draws the caret from the Position field: under column 8.
    lines = p.stderr.splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith("LINE 1: "))
    assert lines[at + 1].index("^") - len("LINE 1: ") == len("SELECT ")
    p = psql(run, "-c", "SELECT ts FROM buoys", check=False)
    assert "ERROR:  42P01: unknown table \"buoys\"" in p.stderr
    p = psql(run, "-c", "SELECT ts FROM readings WHERE", check=False)
    assert "ERROR:  42601:" in p.stderr


def test_psycopg_text_and_binary_results_with_parameters(run):
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        assert conn.info.parameter_status("server_version") == "14.0"
        assert conn.info.parameter_status("TimeZone") == "UTC"
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute("SELECT ts, sensor_id, temperature, station FROM readings "
                        "WHERE station = %s AND ts >= %s AND sensor_id = %s ORDER BY ts LIMIT 3",
                        ("s1", datetime.fromtimestamp(T0 + 100, timezone.utc), 3))
            assert [d.type_code for d in cur.description] == [1184, 20, 701, 25]
            want = [expected(i) for i in range(100, 200) if expected(i)[3] == "s1" and expected(i)[1] == 3][:3]
            assert cur.fetchall() == [(datetime.fromtimestamp(w[0], timezone.utc), w[1], w[2], w[3]) for w in want]
        # A parameter is a value, never SQL.
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM readings WHERE station = %s", ("s1' OR 'a' = 'a",))
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*), min(temperature), max(temperature) FROM readings WHERE sensor_id = %s", (4,))
        assert cur.fetchone() == (ROWS // 4, min(expected(i)[2] for i in range(3, 1000, 4)), max(expected(i)[2] for i in range(3, 1000, 4)))
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT current_setting('standard_conforming_strings'), current_schema()")
        assert cur.fetchone() == ("on", "public")


def test_psycopg_errors_carry_sqlstate_and_position(run):
    with psycopg.connect(dsn(run)) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn) as e:
            conn.execute("SELECT ts, nope FROM readings WHERE sensor_id = %s", (1,))
        assert e.value.sqlstate == "42703" and e.value.diag.statement_position == str(len("SELECT ts, ") + 1)
        conn.rollback()
        # Past a parameter: the position is in the client's text (with its $1), not mare's.
        with pytest.raises(psycopg.errors.SyntaxError) as e:
            conn.execute("SELECT ts FROM readings WHERE sensor_id = %s AND AND", (1,))
        assert e.value.diag.statement_position == str(len("SELECT ts FROM readings WHERE sensor_id = $1 AND ") + 1)
        conn.rollback()
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT x FROM nowhere")
        conn.rollback()
        # Inside a failed transaction block nothing runs until its end, as in PostgreSQL.
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT nope FROM readings")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT count(*) FROM readings")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (ROWS,)


def test_pandas_read_sql_through_sqlalchemy(run):
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://scientist@127.0.0.1:{run.pgwire_port}/mare")
    df = pd.read_sql("SELECT ts, sensor_id, temperature, station FROM readings ORDER BY ts LIMIT 1000", engine)
    assert list(df.columns) == ["ts", "sensor_id", "temperature", "station"]
    assert str(df["ts"].dtype).startswith("datetime64") and str(df["ts"].dt.tz) == "UTC"
    assert df["sensor_id"].dtype == "int64" and df["temperature"].dtype == "float64"
    assert df["ts"].iloc[7] == pd.Timestamp(T0 + 7, unit="s", tz="UTC")
    assert df["temperature"].sum() == pytest.approx(sum(expected(i)[2] for i in range(1000)))
    hourly = pd.read_sql(sqlalchemy.text(
        "SELECT sensor_id, count(*) AS n, avg(temperature) AS mean FROM readings WHERE sensor_id >= :s "
        "GROUP BY sensor_id ORDER BY sensor_id"), engine, params={"s": 3})
    assert hourly["sensor_id"].tolist() == [3, 4] and hourly["n"].tolist() == [ROWS // 4] * 2
    engine.dispose()


def jdbc_classpath():
    assert shutil.which("javac"), "javac is not installed: run scripts/setup.sh"
    lib = maven_jars(JDBC_POM, JDBC_LIB, "the PostgreSQL JDBC driver")
    classes = os.path.join(ROOT, "build/pgwire/classes")
    jars = ":".join(os.path.join(lib, j) for j in sorted(os.listdir(lib)) if j.endswith(".jar"))
    sources = sorted(os.path.join(ROOT, "tests/pgwire", f) for f in os.listdir(os.path.join(ROOT, "tests/pgwire"))
                     if f.endswith(".java"))
    p = subprocess.run(["javac", "-d", classes, "-cp", jars, *sources], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return jars + ":" + classes


def test_jdbc_driver_reads_typed_results(run):
    cp = jdbc_classpath()
    p = subprocess.run(["java", "-cp", cp, "JdbcCheck", f"jdbc:postgresql://127.0.0.1:{run.pgwire_port}/mare?user=analyst"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "types timestamptz int8 float8 text"
    want = [expected(i) for i in (1, 5, 9)]
    assert lines[1:4] == [f"row {w[0]} {w[1]} {w[2]} {w[3]}" for w in want]
    assert lines[4] == f"count {ROWS}"
    assert lines[5] == f"error 42703 {len('SELECT ') + 1}"
    # fetchSize 100: 12,000 Executes of 100 rows, each ended by PortalSuspended but the last.
    assert lines[6] == f"fetched {ROWS} {sum(k % 4 + 1 for k in range(4)) * ROWS // 4}"


def test_cancel_request_stops_a_running_statement(run):
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        rows = 0
        with pytest.raises(psycopg.errors.QueryCanceled) as e:
            for _ in conn.cursor().stream("SELECT ts, sensor_id, temperature FROM readings"):
                rows += 1
                if rows == 10:
                    conn.cancel_safe()
        assert e.value.sqlstate == "57014"
        assert rows < ROWS
        # The connection goes on.
        assert conn.execute("SELECT count(*) FROM readings WHERE sensor_id = 1").fetchone() == (ROWS // 4,)


def test_a_million_rows_stream_in_flat_memory(run):
    before = rss_kb(run.proc.pid)
    peak = before
    rows = sensor_sum = 0
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        for row in conn.cursor(binary=True).stream("SELECT ts, sensor_id, temperature, station FROM readings"):
            rows += 1
            sensor_sum += row[1]
            if rows % 100_000 == 0:
                peak = max(peak, rss_kb(run.proc.pid))
    assert rows == ROWS and sensor_sum == 10 * ROWS // 4
    # A batch of 65,536 rows and the socket's buffers, not the answer (~50 MB as text).
    assert peak - before < 64 * 1024, f"RSS grew by {(peak - before) // 1024} MB while streaming"


def frame(type_byte, body):
    return type_byte + struct.pack("!i", len(body) + 4) + body


def startup(user=b"hostile"):
    body = struct.pack("!i", 196608) + b"user\0" + user + b"\0\0"
    return struct.pack("!i", len(body) + 4) + body


def read_until_ready(sock):
    data = b""
    sock.settimeout(10)
    while not data.endswith(b"Z\0\0\0\x05I") and not data.endswith(b"Z\0\0\0\x05T"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_hostile_bytes_end_only_their_connection(run):
    addr = ("127.0.0.1", run.pgwire_port)
    # SSLRequest is answered 'N'; then a message claiming 2 GB is refused with 08P01 at once.
    with socket.create_connection(addr) as s:
        s.sendall(struct.pack("!ii", 8, 80877103))
        assert s.recv(1) == b"N"
        s.sendall(startup())
        assert b"Z" in read_until_ready(s)
        s.sendall(b"Q" + struct.pack("!I", 0x7FFFFFFF))
        s.settimeout(10)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        assert reply[:1] == b"E" and b"C08P01\0" in reply and b"pgwire.max_message_bytes" in reply
    # A client that goes away mid-message, a malformed Bind, a length below 4, a garbage startup.
    with socket.create_connection(addr) as s:
        s.sendall(startup())
        read_until_ready(s)
        s.sendall(b"Q" + struct.pack("!i", 1000) + b"SELECT")
    with socket.create_connection(addr) as s:
        s.sendall(startup())
        read_until_ready(s)
        s.sendall(frame(b"B", b"\0\0" + struct.pack("!h", 5)))
        s.settimeout(10)
        assert b"C08P01\0" in s.recv(4096)
    with socket.create_connection(addr) as s:
        s.sendall(startup())
        read_until_ready(s)
        s.sendall(b"Q" + struct.pack("!i", 2))
        assert b"C08P01\0" in s.recv(4096)
    with socket.create_connection(addr) as s:
        s.sendall(struct.pack("!i", 0x7FFFFFFF) + b"\xff" * 64)
        s.settimeout(10)
        assert b"C08P01\0" in s.recv(4096)
    # The server still serves, and counted what it did.
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (ROWS,)
        assert run.metric("mare_pgwire_open_connections") >= 1
    assert run.metric("mare_pgwire_queries_total") > 0
    assert run.metric("mare_pgwire_errors_total") > 0


def test_password_and_max_connections(tmp_path):
    with MareRun(tmp_path, extra=['pgwire.auth="password"', 'pgwire.password="s3cret"', "pgwire.max_connections=1"]) as r:
        base = f"host=127.0.0.1 port={r.pgwire_port} user=a dbname=mare"
        with pytest.raises(psycopg.OperationalError) as e:
            psycopg.connect(base + " password=wrong")
        assert "password authentication failed" in str(e.value)
        with psycopg.connect(base + " password=s3cret", autocommit=True) as conn:
            assert conn.execute("SHOW transaction isolation level").fetchone() == ("read committed",)
            with pytest.raises(psycopg.OperationalError) as e:
                psycopg.connect(base + " password=s3cret")
            assert "too many clients" in str(e.value)


def test_scram_and_md5_logins_with_psql_psycopg_and_jdbc(tmp_path):
    cp = jdbc_classpath()
    for method in ("scram-sha-256", "md5"):
        with MareRun(tmp_path / method, extra=['pgwire.auth="password"', 'pgwire.password="s3cret pencil"',
                                               f'pgwire.password_method="{method}"']) as r:
            base = f"host=127.0.0.1 port={r.pgwire_port} user=scientist dbname=mare"
            # psql with the password from the environment, as scripts do.
            p = subprocess.run(["psql", "-X", "-A", "-t", base, "-c", "SELECT count(*) FROM readings"],
                               capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": "s3cret pencil"})
            assert p.returncode == 0 and p.stdout.strip() == "0", (method, p.stderr)
            p = subprocess.run(["psql", "-X", "-A", "-t", base, "-c", "SELECT 1"],
                               capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": "s3cret"})
            assert p.returncode != 0 and 'password authentication failed for user "scientist"' in p.stderr, (method, p.stderr)
            # libpq refuses a server that skips the exchange it asked for; require_auth names it.
            want = "scram-sha-256" if method == "scram-sha-256" else "md5"
            with psycopg.connect(base + f" password='s3cret pencil' require_auth={want}", autocommit=True) as conn:
                assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
            with pytest.raises(psycopg.OperationalError) as e:
                psycopg.connect(base + " password=wrong")
            assert "password authentication failed" in str(e.value)
            # JDBC: the SQLSTATE of a refusal is the server's ErrorResponse's, 28P01.
            url = f"jdbc:postgresql://127.0.0.1:{r.pgwire_port}/mare?user=analyst&password="
            for password, want_line in (("s3cret%20pencil", "count 0"), ("wrong", "refused 28P01")):
                p = subprocess.run(["java", "-cp", cp, "JdbcLogin", url + password], capture_output=True, text=True, timeout=120)
                assert p.returncode == 0 and p.stdout.strip() == want_line, (method, p.stdout, p.stderr)
            # Each refusal was an ErrorResponse (JDBC's SQLSTATE above is the server's C field).
            assert r.metric("mare_pgwire_errors_total") >= 3


def test_cleartext_without_tls_is_warned_about_and_a_password_without_auth_refused(tmp_path):
    with MareRun(tmp_path / "clear", extra=['pgwire.auth="password"', 'pgwire.password="s3cret"',
                                            'pgwire.password_method="cleartext"']) as r:
        with psycopg.connect(f"host=127.0.0.1 port={r.pgwire_port} user=a dbname=mare password=s3cret "
                             "require_auth=password", autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert 'pgwire: password_method = "cleartext" without TLS' in r.read_output()
    run = MareRun(tmp_path / "trust", extra=['pgwire.password="s3cret"'])
    with pytest.raises(RuntimeError) as e:
        run.start()
    assert 'pgwire.password is set but pgwire.auth is "trust"' in str(e.value)
    # It exited (with 1), rather than hanging in its HTTP server's shutdown as it once did.
    assert "mare run exited with 1" in str(e.value), str(e.value)


JDBC_TYPES = {1184: ("timestamptz", 93), 20: ("int8", -5), 701: ("float8", 8), 25: ("text", 12), 16: ("bool", -7),
              1186: ("interval", 1111)}
DATA_TYPES = {1184: "timestamp with time zone", 20: "bigint", 701: "double precision", 25: "text", 16: "boolean",
              1186: "interval"}


def sql_columns(run, table):
    """The columns mare's SQL gives `SELECT *` of a table: what every catalog answer must agree with."""
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        cur = conn.execute(f"SELECT * FROM {table} LIMIT 0")
        return [(d.name, d.type_code) for d in cur.description]


def test_catalog_through_jdbc_metadata_and_information_schema(run):
    readings, forecasts = sql_columns(run, "readings"), sql_columns(run, "forecasts")
    # The loaded fields are there, typed as stored.
    assert ("temperature", 701) in readings and ("station", 25) in readings and readings[0] == ("ts", 1184)
    p = subprocess.run(["java", "-cp", jdbc_classpath(), "JdbcCatalog", f"jdbc:postgresql://127.0.0.1:{run.pgwire_port}/mare?user=dbeaver"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    facts = lambda kind: [line.split(" ", 1)[1] for line in lines if line.startswith(kind + " ")]
    assert facts("schema") == ["public"]
    assert facts("table") == ["public forecasts TABLE", "public readings TABLE"]
    assert facts("like") == ["readings"]
    assert facts("view") == []
    want = []
    for table, cols in (("readings", readings), ("forecasts", forecasts)):
        want += [f"{table} {k + 1} {name} {JDBC_TYPES[o][0]} {JDBC_TYPES[o][1]} 1" for k, (name, o) in enumerate(cols)]
    assert facts("column") == want
    assert facts("pattern") == [name for name, _ in readings if name.startswith("temp")]
    assert facts("is_table") == ["public forecasts BASE TABLE", "public readings BASE TABLE"]
    assert facts("is_column") == [f"{name} {DATA_TYPES[o]} {k + 1}" for k, (name, o) in enumerate(readings)]


def test_catalog_through_psql_and_information_schema(run):
    out = psql(run, "-A", "-t", "-F", "|", "-c", "\\dt").stdout
    assert out.strip().splitlines() == ["public|forecasts|table|mare", "public|readings|table|mare"]
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        # Grafana's PostgreSQL data source: tables, then a table's columns by a parameter.
        rows = conn.execute("SELECT quote_ident(table_name) AS \"table\" FROM information_schema.tables WHERE "
                            "quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog') AND table_type = 'BASE TABLE' "
                            "ORDER BY table_name").fetchall()
        assert rows == [("forecasts",), ("readings",)]
        rows = conn.execute("SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM information_schema.columns "
                            "WHERE quote_ident(table_name) = %s ORDER BY ordinal_position", ("readings",)).fetchall()
        assert rows == [(name, DATA_TYPES[o]) for name, o in sql_columns(run, "readings")]
        assert conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'nowhere'").fetchall() == []


def test_psql_describes_tables(run):
    """psql's `\\d readings`, `\\d+`, `\\d` and a pattern: the columns and types are those
    `SELECT * FROM readings LIMIT 0` describes, from psql's own catalog queries."""
    readings, forecasts = sql_columns(run, "readings"), sql_columns(run, "forecasts")
    assert readings[0] == ("ts", 1184) and {("sensor_id", 20), ("temperature", 701), ("station", 25)} <= set(readings)
    lines = psql(run, "-A", "-F", "|", "-c", "\\d readings").stdout.splitlines()
    assert lines[0] == 'Table "public.readings"'
    assert lines[1] == "Column|Type|Collation|Nullable|Default"
    assert lines[2:] == [f"{name}|{DATA_TYPES[o]}|||" for name, o in readings]
    # \d+: storage, compression, statistics target and description too; the access method.
    lines = psql(run, "-A", "-F", "|", "-c", "\\d+ forecasts").stdout.splitlines()
    assert lines[0] == 'Table "public.forecasts"'
    assert lines[1] == "Column|Type|Collation|Nullable|Default|Storage|Compression|Stats target|Description"
    assert [line.split("|")[:2] for line in lines[2:2 + len(forecasts)]] == [[n, DATA_TYPES[o]] for n, o in forecasts]
    assert "Access method: mare" in lines[2 + len(forecasts):]
    # \d with no name lists the tables; a pattern describes each table it matches, in order.
    out = psql(run, "-A", "-t", "-F", "|", "-c", "\\d").stdout
    assert out.strip().splitlines() == ["public|forecasts|table|mare", "public|readings|table|mare"]
    titles = [line for line in psql(run, "-A", "-F", "|", "-c", "\\d *s").stdout.splitlines() if line.startswith("Table ")]
    assert titles == ['Table "public.forecasts"', 'Table "public.readings"']
    p = psql(run, "-c", "\\d buoys", check=False)
    assert p.returncode != 0 and 'Did not find any relation named "buoys".' in p.stderr
    # \dn, \l; and a LIMIT past 64 bits on a catalog query (it once ended the process).
    assert psql(run, "-A", "-t", "-F", "|", "-c", "\\dn").stdout.split() == ["public|mare"]
    assert psql(run, "-A", "-t", "-F", "|", "-c", "\\l").stdout.split("|")[:3] == ["mare", "mare", "UTF8"]
    out = psql(run, "-A", "-t", "-c", "SELECT table_name FROM information_schema.tables ORDER BY 1 LIMIT 99999999999999999999999")
    assert out.stdout.split() == ["forecasts", "readings"]


def bound_rows(start):
    """The rows of the typed-parameter statements: ts >= start, sensor 3, temperature >= 10.5, station s1."""
    return [expected(i) for i in range(start - T0, start - T0 + 1000)
            if expected(i)[1] == 3 and expected(i)[2] >= 10.5 and expected(i)[3] == "s1"][:3]


def test_jdbc_typed_parameters(run):
    """setTimestamp (text, no type, the JVM zone's offset: Europe/Paris), setLong and setDouble
    (binary int8 and float8), setString, setObject(OffsetDateTime) (timestamptz, text),
    setObject(LocalDateTime) (timestamp), setInt and setFloat (binary int4, float4),
    setBigDecimal (numeric, text) and setNull, unnamed and then named statements (past
    prepareThreshold)."""
    start = T0 + 100
    p = subprocess.run(["java", "-Duser.timezone=Europe/Paris", "-cp", jdbc_classpath(), "JdbcBinds",
                        f"jdbc:postgresql://127.0.0.1:{run.pgwire_port}/mare?user=analyst", str(start)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    want = [f"{w[0]} {w[1]} {w[2]} {w[3]}" for w in bound_rows(start)]
    assert len(want) == 3
    lines = p.stdout.splitlines()
    for what in ["timestamp"] + [f"again{k}" for k in range(1, 6)] + ["offset", "local", "decimal"]:
        assert [line.split(" ", 1)[1] for line in lines if line.startswith(what + " ")] == want, (what, p.stdout)
    assert [line for line in lines if line.startswith("null")] == ["null done"]
    # The driver sent the JVM's zone as TimeZone: timestamptz text is written in it (+01 in January).
    assert "zone Europe/Paris" in lines
    assert f"zoned 2024-01-01 01:00:01+01 {T0 + 1}" in lines


def test_psycopg_typed_parameters_text_and_binary(run):
    """int8, float8, timestamptz, text and numeric parameters, each sent by psycopg in text and
    in binary (%t and %b); a timestamp in another zone; server-side prepared statements."""
    start = T0 + 100
    want = [(datetime.fromtimestamp(w[0], timezone.utc), w[1], w[2], w[3]) for w in bound_rows(start)]
    sql = ("SELECT ts, sensor_id, temperature, station FROM readings WHERE ts >= {p} AND sensor_id = {p} "
           "AND temperature >= {p} AND station = {p} ORDER BY ts LIMIT 3")
    params = (datetime.fromtimestamp(start, timezone.utc), 3, 10.5, "s1")
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        for placeholder in ("%t", "%b"):
            for binary in (False, True):
                cur = conn.cursor(binary=binary)
                cur.execute(sql.format(p=placeholder), params)
                assert cur.fetchall() == want, (placeholder, binary)
                # A timestamp in another zone is the same instant; a large int8 needs 8 bytes.
                paris = datetime.fromtimestamp(start, timezone.utc).astimezone(
                    __import__("zoneinfo").ZoneInfo("Europe/Paris"))
                cur.execute(sql.format(p=placeholder), (paris, 3, 10.5, "s1"))
                assert cur.fetchall() == want, (placeholder, binary, "paris")
                cur.execute(f"SELECT count(*) FROM readings WHERE sensor_id < {placeholder}", (2 ** 40,))
                assert cur.fetchone() == (ROWS,)
                cur.execute(f"SELECT count(*) FROM readings WHERE station = {placeholder}", ("it's",))
                assert cur.fetchone() == (0,)
                # numeric (binary with %b): Decimal, as JDBC's setBigDecimal sends it too.
                cur.execute(f"SELECT count(*) FROM readings WHERE sensor_id = {placeholder} AND temperature < {placeholder}",
                            (Decimal("2"), Decimal("-0.50")))
                assert cur.fetchone() == (0,)
                cur.execute(f"SELECT count(*) FROM readings WHERE sensor_id <= {placeholder}", (Decimal("2.0"),))
                assert cur.fetchone() == (ROWS // 2,)
        # Prepared (server-side, named) and run again with other values.
        for k, sensor in enumerate((1, 2, 3, 4, 3, 2)):
            cur = conn.cursor(binary=k % 2 == 1)
            cur.execute("SELECT count(*) FROM readings WHERE sensor_id = %s AND temperature >= %s", (sensor, 0.0), prepare=True)
            assert cur.fetchone() == (ROWS // 4,)


def test_time_zone_setting_with_psql_psycopg(run):
    """TimeZone (libpq's PGTZ at startup, options=-c, SET TIME ZONE, SET TimeZone) is honoured for
    timestamptz text and reported; a zone the tz database lacks is 22023; timestamps bound without
    an offset are the session zone's wall-clock time. (JDBC: test_jdbc_typed_parameters.)"""
    first = "SELECT ts FROM readings WHERE sensor_id = 2 ORDER BY ts LIMIT 1"  # T0 + 1
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", dsn(run), "-c", "SHOW TimeZone", "-c", first],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PGTZ": "Europe/Paris"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["Europe/Paris", "2024-01-01 01:00:01+01"]
    out = psql(run, "-q", "-A", "-t", "-c", "SET TIME ZONE 'asia/kolkata'", "-c", "SHOW TimeZone", "-c", first,
               "-c", "SET TIME ZONE -7", "-c", first, "-c", "SET TimeZone = 'UTC+3'", "-c", first,
               "-c", "RESET TimeZone", "-c", first).stdout
    assert out.split("\n")[:5] == ["Asia/Kolkata", "2024-01-01 05:30:01+05:30", "2023-12-31 17:00:01-07",
                                   "2023-12-31 21:00:01-03", "2024-01-01 00:00:01+00"]
    p = psql(run, "-c", "SET TIME ZONE 'Mars/Olympus'", check=False)
    assert p.returncode != 0 and 'ERROR:  22023: invalid value for parameter "TimeZone": "Mars/Olympus"' in p.stderr

    with psycopg.connect(dsn(run) + " options='-c TimeZone=Europe/Paris'", autocommit=True) as conn:
        assert conn.info.parameter_status("TimeZone") == "Europe/Paris"
        for binary in (False, True):
            ts = conn.cursor(binary=binary).execute(first).fetchone()[0]
            assert ts == datetime.fromtimestamp(T0 + 1, timezone.utc)
            # Text carries the session's offset; psycopg shows a binary instant in the session's zone too.
            assert ts.utcoffset().total_seconds() == 3600, (binary, ts)
        # A naive datetime (psycopg: timestamp without time zone) is Paris's wall-clock time.
        for placeholder in ("%t", "%b"):
            n = conn.execute(f"SELECT count(*) FROM readings WHERE ts < {placeholder}",
                             (datetime(2024, 1, 1, 1, 0, 10),)).fetchone()[0]
            assert n == 10, placeholder
        conn.execute("SET TIME ZONE 'America/New_York'")
        assert conn.info.parameter_status("TimeZone") == "America/New_York"
        ts = conn.execute(first).fetchone()[0]
        assert ts.utcoffset().total_seconds() == -5 * 3600 and ts == datetime.fromtimestamp(T0 + 1, timezone.utc)
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            conn.execute("SET TimeZone = 'Europe/Atlantis'")
        assert e.value.sqlstate == "22023" and "Europe/Atlantis" in str(e.value)
        assert conn.info.parameter_status("TimeZone") == "America/New_York"
    with pytest.raises(psycopg.OperationalError, match="TimeZone"):
        psycopg.connect(dsn(run) + " options='-c TimeZone=Nowhere/Land'")


def test_numeric_and_float_special_values_and_integer_range(run):
    """numeric NaN and ±Infinity in binary (sign words 0xC000, 0xD000, 0xF000) and text, float8's
    in text and binary, bound and read back; an int8 past its range, bound or written, is 22003."""
    inf, nan = float("inf"), float("nan")
    with psycopg.connect(dsn(run), autocommit=True) as conn:
        for placeholder in ("%t", "%b"):
            for binary in (False, True):
                cur = conn.cursor(binary=binary)
                for value, below in ((inf, ROWS), (-inf, 0), (Decimal("Infinity"), ROWS), (Decimal("-Infinity"), 0)):
                    cur.execute(f"SELECT count(*) FROM readings WHERE temperature < {placeholder}", (value,))
                    assert cur.fetchone() == (below,), (placeholder, binary, value)
                for value in (nan, Decimal("NaN")):
                    cur.execute(f"SELECT count(*) FROM readings WHERE temperature = {placeholder}", (value,))
                    assert cur.fetchone() == (0,), (placeholder, binary, value)
                # Read back as float8 (text: Infinity, -Infinity, NaN).
                cur.execute(f"SELECT {placeholder} AS a, {placeholder} AS b, {placeholder} AS c FROM readings LIMIT 1",
                            (Decimal("Infinity"), -inf, Decimal("NaN")))
                a, b, c = cur.fetchone()
                assert (a, b) == (inf, -inf) and c != c, (placeholder, binary, a, b, c)
        # int8 past its range: bound (psycopg's Int8 sends the type) and written in the statement.
        big = psycopg.types.numeric.Int8(2 ** 63)
        with pytest.raises(psycopg.errors.NumericValueOutOfRange) as e:
            conn.execute("SELECT count(*) FROM readings WHERE sensor_id = %t", (big,))
        assert "9223372036854775808" in str(e.value) and "bigint" in str(e.value)
        with pytest.raises(psycopg.errors.NumericValueOutOfRange) as e:
            conn.execute("SELECT count(*) FROM readings WHERE sensor_id = 9223372036854775808")
        assert e.value.diag.statement_position == str(len("SELECT count(*) FROM readings WHERE sensor_id = ") + 1)
        assert conn.execute("SELECT count(*) FROM readings WHERE sensor_id = %t",
                            (psycopg.types.numeric.Int8(-2 ** 63),)).fetchone() == (0,)
    p = psql(run, "-c", "SELECT ts FROM readings WHERE sensor_id > 99999999999999999999", check=False)
    assert p.returncode != 0 and "ERROR:  22003:" in p.stderr


def test_psql_table_sizes_are_the_stores_bytes_on_disk(run):
    """\\dt+ Size: the readings' segment files, the forecasts' journal, as pg_size_pretty writes them."""
    def pretty(n):  # PostgreSQL's pg_size_pretty
        if n < 10240:
            return f"{n} bytes"
        n >>= 9
        for unit in ("kB", "MB", "GB"):
            if n < 20479:
                return f"{(n + 1) // 2} {unit}"
            n >>= 10
        return f"{(n + 1) // 2} TB"
    sizes = {os.path.join(d, f): os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(run.data_dir) for f in files}
    segments = sum(n for path, n in sizes.items() if path.endswith(".seg"))
    forecasts = sum(n for path, n in sizes.items() if path.endswith("/forecasts.journal"))
    assert segments > 1_000_000
    rows = [line.split("|") for line in psql(run, "-A", "-t", "-F", "|", "-c", "\\dt+").stdout.strip().splitlines()]
    assert [(r[1], r[6]) for r in rows] == [("forecasts", pretty(forecasts)), ("readings", pretty(segments))]
