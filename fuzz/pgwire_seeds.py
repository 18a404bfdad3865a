"""Writes the seed corpus of the pgwire fuzz target: what psql, psycopg and JDBC send, message for
message, built from docs/formats/pgwire.md and the PostgreSQL protocol v3 (startup, simple
Query, the extended protocol with text and binary parameters and results, Close, Flush, Sync,
CancelRequest, SSLRequest, Terminate), so that the fuzzer starts from sessions that get past
the startup. Run from the repository's root:

    python3 fuzz/pgwire_seeds.py fuzz/corpus/pgwire
"""
import os
import struct
import sys


def startup(**params):
    body = struct.pack(">i", 196608)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack(">i", len(body) + 4) + body


def msg(kind, body=b""):
    return kind.encode() + struct.pack(">i", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def query(sql):
    return msg("Q", cstr(sql))


def parse(name, sql, oids=()):
    return msg("P", cstr(name) + cstr(sql) + struct.pack(">h", len(oids)) + b"".join(struct.pack(">i", o) for o in oids))


def bind(portal, statement, params, param_formats=(), result_formats=()):
    body = cstr(portal) + cstr(statement)
    body += struct.pack(">h", len(param_formats)) + b"".join(struct.pack(">h", f) for f in param_formats)
    body += struct.pack(">h", len(params))
    for p in params:
        body += struct.pack(">i", -1) if p is None else struct.pack(">i", len(p)) + p
    body += struct.pack(">h", len(result_formats)) + b"".join(struct.pack(">h", f) for f in result_formats)
    return msg("B", body)


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def execute(portal, rows=0):
    return msg("E", cstr(portal) + struct.pack(">i", rows))


def close(kind, name):
    return msg("C", kind.encode() + cstr(name))


SYNC, FLUSH, TERMINATE = msg("S"), msg("H"), msg("X")
SSL_REQUEST = struct.pack(">ii", 8, 80877103)
HELLO = startup(user="mare", database="mare", application_name="psql", client_encoding="UTF8")

SEEDS = {
    # psql: a statement typed at the prompt, and two in one line.
    "psql_simple": HELLO + query("SELECT sensor_id, ts, temperature FROM readings WHERE sensor_id = 1 ORDER BY ts LIMIT 3")
    + query("SELECT count(*) FROM readings; SELECT max(ts) FROM readings") + TERMINATE,
    # psql \dt and what drivers ask on connect.
    "catalog": startup(user="mare", database="mare", options="-c TimeZone=Europe/Paris")
    + query("SELECT version()") + query("SHOW TimeZone") + query("SET TIME ZONE 'UTC'")
    + query("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace")
    + query("BEGIN") + query("SELECT 1 FROM readings LIMIT 1") + query("COMMIT") + query("") + TERMINATE,
    # psycopg: SSLRequest refused, then the extended protocol with a binary int8 parameter.
    "psycopg_extended": SSL_REQUEST + HELLO
    + parse("", "SELECT ts, sensor_id, temperature, status FROM readings WHERE sensor_id = $1 ORDER BY ts", (20,))
    + bind("", "", [struct.pack(">q", 2)], (1,), (1,)) + describe("P", "") + execute("", 5) + execute("", 0) + SYNC
    + TERMINATE,
    # JDBC: named statements, text parameters, Describe of a statement, row limits, Close.
    "jdbc_named": HELLO + parse("S_1", "SELECT sensor_id, avg(temperature) FROM readings WHERE ts > $1 GROUP BY sensor_id", (1114,))
    + describe("S", "S_1") + SYNC
    + bind("C_1", "S_1", [b"2024-01-01 00:30:00"], (0,), (0,)) + execute("C_1", 1) + FLUSH + execute("C_1", 0)
    + close("P", "C_1") + close("S", "S_1") + SYNC + TERMINATE,
    # Errors: a bad statement (position), a Bind with too few parameters, a NULL and NaN.
    "errors": HELLO + query("SELECT temprature FROM readings")
    + parse("s", "SELECT * FROM readings WHERE temperature > $1 AND sensor_id = $2", (701, 20))
    + bind("", "s", [b"NaN"], (0,)) + execute("") + SYNC
    + bind("", "s", [None, b"1"], (0,)) + execute("") + SYNC + TERMINATE,
    # A CancelRequest on a connection of its own.
    "cancel": struct.pack(">iiii", 16, 80877102, 1234, 5678),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/pgwire"
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
