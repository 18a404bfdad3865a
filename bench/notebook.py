#!/usr/bin/env python3
"""Issue 16's Targets: answers into a pandas DataFrame, the way a scientist's notebook gets them,
on the store benchmark's data set (../shared/bench/SPEC.md, generated and loaded as bench/store.py
does): Q3 (sensor 7's last hour, 3,600 rows) and a full `SELECT *` of at most 10,000,000 rows: the
whole table at S (and XS), and at L (100,000,000 readings, ~5.6 GB as one DataFrame, more than
psycopg's Python tuples fit in this machine's memory) the first 100,000 seconds of all sensors,
`ts < start + 100,000 s` in each system's SQL: the 10,000,000 rows every system answers alike.

Each client fetches every row and builds the DataFrame (timed end to end, timestamps as
datetime64):
  mare       over HTTP + Arrow, with the Python client (python/: pyarrow reads the IPC stream)
  mare       over the PostgreSQL wire protocol ([pgwire], trust on a port of this run) with
             psycopg; printed "not available" when the port does not answer
  DuckDB     in-process, `.df()`
  ClickHouse over HTTP, TabSeparatedWithNames read by pandas.read_csv
  QuestDB    over its PostgreSQL wire protocol with psycopg (its documented way to pandas), and
             its HTTP CSV export (/exp) read by pandas.read_csv; the Maven Central jar, fetched
             once with mvn into --dir
Prints the medians, mare's time as a ratio of each peer's measured in the same run against the
issue's targets, and mare's peak resident memory (sampled every 5 ms from /proc) while it
streams the full table; then mare's wire protocol against QuestDB's, both through psycopg (no
target: the ratio of servers and text forms behind one client). One system at a time; every
answer checked against DuckDB's by a summary of its warm-up frame (rows; per column the count,
sum, min and max; a hash of the sorted (ts, sensor_id) keys), the frame itself freed before the
timed runs, so that no full frame outlives its own run. A client whose warm-up takes over 30 s
is timed once.

Usage: bench/notebook.py [--size S|L|XS] [--runs 5] [--full-runs 3]
                         [--systems mare,duckdb,clickhouse,questdb] [--build build/bin] [--dir /tmp/mare-bench]
Run it under `flock /tmp/mare-bench.lock` on a shared machine."""
import argparse
import datetime as dt
import hashlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))  # this checkout's client, ahead of any installed

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import store  # noqa: E402: the data set, the queries' bounds, the systems' start and load
from store import EPOCH, SIZES, free_port, progress  # noqa: E402

# mare's time divided by the peer's: Q3 at most 0.2x the fastest server peer and no slower than
# DuckDB in-process; the full table at least 0.5x DuckDB's speed (time at most 2x) and 5x faster
# than the fastest server peer (time at most 0.2x). mare's memory while streaming it: 256 MB.
TARGETS = {("Q3", "server"): 0.2, ("Q3", "DuckDB"): 1.0, ("full", "server"): 0.2, ("full", "DuckDB"): 2.0}
RSS_TARGET_MB = 256
SLOW_S = 30  # a client whose warm-up takes longer is timed once (the machine is shared)
FULL_ROWS = 10_000_000  # the "full SELECT * of 10,000,000 rows"


def full_bounds(data):
    """{"full_before": "YYYY-mm-dd HH:MM:SS" or None, "full_rows": n}: the whole table when it
    has at most FULL_ROWS readings, else its first FULL_ROWS / sensors seconds of every sensor."""
    if data["readings"] <= FULL_ROWS:
        return {"full_before": None, "full_rows": data["readings"]}
    seconds = FULL_ROWS // data["sensors"]
    before = (EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    return {"full_before": before, "full_rows": seconds * data["sensors"]}


def full_sql(system, b):
    """The full table (or its first FULL_ROWS readings by time) in a system's dialect, its bound a
    literal as bench/store.py writes Q2 and Q3's."""
    if b["full_before"] is None:
        return "SELECT * FROM readings"
    t = b["full_before"]
    where = {"mare": f"ts < TIMESTAMP '{t}'", "duckdb": f"ts < TIMESTAMP '{t}'",
             "clickhouse": f"ts < toDateTime('{t}')",
             "questdb": f"ts < '{t.replace(' ', 'T')}.000000Z'"}[system]
    return f"SELECT * FROM readings WHERE {where}"


def queries(system, b):
    """Q3 from the system's own SQL of bench/store.py, and the full table."""
    sql = {"mare": store.mare_sql, "duckdb": store.duckdb_sql, "clickhouse": store.clickhouse_sql,
           "questdb": store.questdb_sql}[system](b)
    return {"Q3": sql["Q3"], "full": full_sql(system, b)}


class RssSampler:
    """Peak VmRSS and RssAnon of a process, sampled every 5 ms on a thread while in the `with`."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = {"VmRSS": 0, "RssAnon": 0}

    def sample(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(line.split()[1]) * 1024)

    def run(self):
        while not self.done.is_set():
            self.sample()
            self.done.wait(0.005)

    def __enter__(self):
        self.done = threading.Event()
        self.sample()
        self.before = dict(self.peak)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.sample()


# ---------------------------------------------------------------------------------------------
# Clients: each gives frame(sql) -> DataFrame
# ---------------------------------------------------------------------------------------------

class MareArrow:
    name = "mare HTTP+Arrow"
    server = "mare"

    def __init__(self, mare_system):
        import mare
        import mare.frames
        self.pid = mare_system.run.proc.pid
        self.client = mare.connect(mare_system.run.http_url)
        self.sql = queries("mare", mare_system.bounds)
        self.how = (f"python/ client {mare.__version__}: pyarrow {__import__('pyarrow').__version__} IPC stream -> "
                    f"mare.frames (to_pandas for text columns and from {mare.frames.SMALL_ROWS:,} rows)")

    def frame(self, sql):
        return self.client.query(sql)


class MarePgwire:
    """The slot for mare's PostgreSQL wire protocol (issue 16, part 5): psycopg, text results,
    fetchall into a DataFrame (QuestDB's documented way to pandas)."""
    name = "mare pgwire (psycopg)"
    server = "mare"

    def __init__(self, mare_system, port):
        import psycopg
        self.pid = mare_system.run.proc.pid
        self.con = psycopg.connect(host="127.0.0.1", port=port, user="mare", password="mare", dbname="mare",
                                   autocommit=True, connect_timeout=5)
        self.sql = queries("mare", mare_system.bounds)
        self.how = f"psycopg {psycopg.__version__}, port {port}"

    def frame(self, sql):
        return pg_frame(self.con, sql)


def pg_frame(con, sql):
    with con.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
        columns = [d.name for d in cur.description]
    return pd.DataFrame(rows, columns=columns)


class DuckDBInProcess:
    name = "DuckDB in-process"
    server = None

    def __init__(self, system):
        import duckdb
        self.con = system.con
        self.sql = queries("duckdb", system.bounds)
        self.how = f"duckdb {duckdb.__version__}, .df()"

    def frame(self, sql):
        return self.con.execute(sql).df()


class ClickHouseTsv:
    name = "ClickHouse HTTP TSV"
    server = "ClickHouse"

    def __init__(self, system):
        self.system = system
        self.sql = queries("clickhouse", system.bounds)
        self.how = f"ClickHouse {system.version}, HTTP TabSeparatedWithNames -> pandas.read_csv"

    def frame(self, sql):
        body = self.system.post(sql + " FORMAT TabSeparatedWithNames")
        return pd.read_csv(io.BytesIO(body), sep="\t", parse_dates=["ts"])


class QuestDBPgwire:
    name = "QuestDB pgwire (psycopg)"
    server = "QuestDB"

    def __init__(self, system):
        import psycopg
        self.con = psycopg.connect(host="127.0.0.1", port=system.pg_port, user="admin", password="quest", dbname="qdb",
                                   autocommit=True)
        self.sql = queries("questdb", system.bounds)
        self.how = f"QuestDB {system.VERSION}, psycopg {psycopg.__version__} fetchall -> DataFrame"

    def frame(self, sql):
        return pg_frame(self.con, sql)


class QuestDBCsv:
    name = "QuestDB HTTP CSV"
    server = "QuestDB"

    def __init__(self, system):
        self.port = system.http_port
        self.sql = queries("questdb", system.bounds)
        self.how = f"QuestDB {system.VERSION}, HTTP /exp CSV -> pandas.read_csv"

    def frame(self, sql):
        url = f"http://127.0.0.1:{self.port}/exp?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(url, timeout=3600) as r:
            return pd.read_csv(r, parse_dates=["ts"])


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def pgwire_port(settings):
    """The port mare's wire protocol should listen on in this run, or None when this mare has no
    `[pgwire]` section yet (config/mare.toml lists every key)."""
    toml = os.path.join(HERE, "..", "config", "mare.toml")
    if "[pgwire]" not in open(toml).read():
        return None
    port = free_port()
    settings.append(f'pgwire.listen="127.0.0.1:{port}"')
    return port


def summarize(df):
    """What an answer is checked by, so that no full frame need be kept: rows, columns, and per
    column the non-null count, sum, min and max (ts as int64 microseconds UTC, sensor_id as int64,
    whatever type the client gave: a tz-aware or naive datetime64, Python datetimes, QuestDB's
    SYMBOL as text), and a SHA-256 of the sorted (ts, sensor_id) keys."""
    out = {"rows": len(df), "columns": sorted(df.columns), "stats": {}}
    keys = {}
    for c in df.columns:
        col = df[c]
        if c == "ts":
            ts = pd.to_datetime(col, utc=True)
            v = ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")).to_numpy(dtype="int64")
            # sums of seconds and of microsecond parts: a plain sum of 10^7 epoch microseconds overflows int64
            out["stats"][c] = (len(v), (int((v // 1_000_000).sum()), int((v % 1_000_000).sum())),
                               int(v.min()) if len(v) else None, int(v.max()) if len(v) else None)
            keys[c] = v
        elif c == "sensor_id":
            v = col.astype("int64").to_numpy()
            out["stats"][c] = (len(v), int(v.sum()), int(v.min()) if len(v) else None, int(v.max()) if len(v) else None)
            keys[c] = v
        else:
            v = col.astype("float64").to_numpy()
            ok = v[~np.isnan(v)]
            out["stats"][c] = (len(ok), float(ok.sum()), float(ok.min()) if len(ok) else None,
                               float(ok.max()) if len(ok) else None)
    if len(keys) == 2:  # ts * 1024 + sensor_id stays in int64 until the year 2254 (sensor ids below 1024)
        k = np.sort(keys["ts"] * 1024 + keys["sensor_id"])
        out["keys"] = hashlib.sha256(k.tobytes()).hexdigest()
    return out


def answers_agree(got, reference):
    """Two summaries (summarize) alike: rows, columns and keys exactly; integer columns' count,
    sum, min, max exactly; float columns' min and max within 1e-12 and sums within 1e-9 relative
    (a sum's rounding depends on the order of the rows). A string for the report."""
    if got["rows"] != reference["rows"]:
        return f"DIFFER: {got['rows']:,} rows, DuckDB {reference['rows']:,}"
    if got["columns"] != reference["columns"]:
        return f"DIFFER: columns {got['columns']}"
    if got.get("keys") != reference.get("keys"):
        return "DIFFER in the sorted (ts, sensor_id) keys"
    for c, (n, total, lo, hi) in reference["stats"].items():
        gn, gtotal, glo, ghi = got["stats"][c]
        if c in ("ts", "sensor_id"):
            same = (n, total, lo, hi) == (gn, gtotal, glo, ghi)
        else:
            close = lambda a, b, rel: a == b or (a is not None and b is not None and abs(a - b) <= rel * abs(b))  # noqa: E731
            same = n == gn and close(gtotal, total, 1e-9) and close(glo, lo, 1e-12) and close(ghi, hi, 1e-12)
        if not same:
            return f"DIFFER in column {c}: count, sum, min, max {(gn, gtotal, glo, ghi)}, DuckDB's {(n, total, lo, hi)}"
    return f"agree ({got['rows']:,} rows; per column count, sum, min, max; sorted keys' hash)"


def time_frame(client, query, runs, sampler_pid=None):
    """The summary of the warm-up's DataFrame (freed before the timed runs, each of whose frames
    is dropped as it returns), the median of `runs` timed runs, and mare's RSS peak of the first
    timed run when sampler_pid is given."""
    sql = client.sql[query]
    t = time.perf_counter()
    df = client.frame(sql)
    if time.perf_counter() - t > SLOW_S:
        runs = 1
    summary = summarize(df)
    del df
    times, rss = [], None
    for i in range(runs):
        if sampler_pid and i == 0:
            with RssSampler(sampler_pid) as s:
                t = time.perf_counter()
                client.frame(sql)
                times.append(time.perf_counter() - t)
            rss = s
        else:
            t = time.perf_counter()
            client.frame(sql)
            times.append(time.perf_counter() - t)
    return summary, statistics.median(times), rss


def fmt_s(s):
    return f"{s * 1000:,.1f} ms" if s < 1 else f"{s:,.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="S")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of Q3 after one warm-up")
    ap.add_argument("--full-runs", type=int, default=3,
                    help="timed runs of the full table after one warm-up (0: not run, Q3 alone)")
    ap.add_argument("--systems", default="mare,duckdb,clickhouse,questdb")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build", "bin"))
    ap.add_argument("--dir", default="/tmp/mare-bench")
    ap.add_argument("--pgwire-port", type=int, default=None,
                    help="mare's wire protocol port (default: a free one given to the mare this run starts)")
    args = ap.parse_args()
    args.mare_set = []
    wanted = args.systems.split(",")

    data = store.dataset(args.size, args.dir)
    bounds = {k: data[k] for k in ("day_after", "hour_after", "newest")}
    bounds.update(full_bounds(data))
    work = tempfile.mkdtemp(prefix="notebook-", dir=args.dir)
    results = {}   # client name -> {query: seconds}
    how, checks, rss_report = {}, [], None
    reference = {}
    order = [s for s in ("duckdb", "mare", "clickhouse", "questdb") if s in wanted]
    pg_port = args.pgwire_port or pgwire_port(args.mare_set)
    try:
        for key in order:
            system = {"duckdb": store.DuckDB, "mare": store.Mare, "clickhouse": store.ClickHouse,
                      "questdb": store.QuestDB}[key](work, args)
            system.bounds = bounds
            progress(f"{system.name}: loading {data['readings']:,} readings")
            try:
                system.start()
                system.load(data["path"])
            except Exception as e:  # noqa: BLE001: a peer that fails is reported, the others still run
                if key in ("duckdb", "mare"):
                    raise
                print(f"{system.name}: left out, it failed to start or load: {e}", flush=True)
                system.stop()
                continue
            try:
                clients = []
                if key == "duckdb":
                    clients = [DuckDBInProcess(system)]
                elif key == "clickhouse":
                    clients = [ClickHouseTsv(system)]
                elif key == "questdb":
                    clients = [QuestDBPgwire(system), QuestDBCsv(system)]
                else:
                    clients = [MareArrow(system)]
                    # The slot for the wire protocol: tried only on a port this run gave this mare
                    # (or --pgwire-port), never on a default another process may hold.
                    if pg_port is None:
                        print("mare over the PostgreSQL wire protocol: not available (this mare has no [pgwire] "
                              "section in config/mare.toml; --pgwire-port to try a port)", flush=True)
                    else:
                        try:
                            clients.append(MarePgwire(system, pg_port))
                        except Exception as e:  # noqa: BLE001: any failure to connect means the slot is empty
                            first = str(e).strip().splitlines()[0] if str(e).strip() else "no answer"
                            print(f"mare over the PostgreSQL wire protocol: not available on port {pg_port} "
                                  f"({type(e).__name__}: {first})", flush=True)
                for client in clients:
                    how[client.name] = client.how
                    results[client.name] = {}
                    for query, runs in (("Q3", args.runs), ("full", args.full_runs)):
                        if runs == 0:  # --full-runs 0: Q3 alone
                            results[client.name][query] = float("nan")
                            continue
                        progress(f"{client.name}: {query}")
                        sampled = client.pid if client.server == "mare" and query == "full" else None
                        try:
                            summary, seconds, rss = time_frame(client, query, runs, sampled)
                        except Exception as e:  # noqa: BLE001: reported; the other clients still run
                            if key in ("duckdb", "mare"):
                                raise
                            print(f"{client.name} {query}: failed: {e}", flush=True)
                            seconds, rss = float("nan"), None
                            results[client.name][query] = seconds
                            continue
                        results[client.name][query] = seconds
                        if rss:
                            rss_report = rss_report or {}
                            rss_report[client.name] = rss
                        if key == "duckdb":
                            reference[query] = summary
                        elif query in reference:
                            checks.append(f"{client.name} {query}: {answers_agree(summary, reference[query])}")
            finally:
                system.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    full_rows = bounds["full_rows"]
    print(f"\nInto a pandas DataFrame, size {args.size} ({data['readings']:,} readings), "
          f"median of {args.runs} (Q3) and {args.full_runs} (full table) runs after one warm-up")
    if bounds["full_before"] is None:
        print(f"SELECT *: the whole table, {full_rows:,} rows\n")
    else:
        print(f"SELECT *: {full_rows:,} rows, the first {full_rows // data['sensors']:,} s of all {data['sensors']} sensors "
              f"(ts < '{bounds['full_before']}' in each system's SQL; the whole table would not fit as one frame)\n")
    names = list(results)
    width = max(len(n) for n in names) + 2
    print(f"{'client':<{width}}{'Q3 (3,600 rows)':>18}{'SELECT * ':>18}{'rows/s':>16}")
    for n in names:
        r = results[n]
        print(f"{n:<{width}}{fmt_s(r['Q3']):>18}{fmt_s(r['full']):>18}{full_rows / r['full']:>16,.0f}")
    print()
    for n in names:
        print(f"  {n}: {how[n]}")

    for mare_name in ("mare HTTP+Arrow", "mare pgwire (psycopg)"):
        if mare_name not in results:
            continue
        print(f"\n{mare_name}'s time / the peer's (targets from issue 16):")
        peers = [n for n in names if not n.startswith("mare")]
        servers = [n for n in peers if n != "DuckDB in-process"]
        for query in ("Q3", "full"):
            for n in peers:
                if results[mare_name][query] != results[mare_name][query]:
                    continue  # not run
                ratio = results[mare_name][query] / results[n][query]
                target = TARGETS.get((query, "DuckDB" if n == "DuckDB in-process" else "server"))
                verdict = ""
                if n == "DuckDB in-process" or (servers and n == min(servers, key=lambda s: results[s][query])):
                    verdict = f"  target <= {target}: {'met' if ratio <= target else 'NOT met'}"
                print(f"  {query:<5} vs {n:<{width}} {ratio:6.2f}x{verdict}")
        if rss_report and mare_name in rss_report and mare_name == "mare HTTP+Arrow":
            s = rss_report[mare_name]
            mb = lambda b: b / 2**20  # noqa: E731
            print(f"\nmare's memory while streaming the full table over HTTP+Arrow: peak RSS {mb(s.peak['VmRSS']):.0f} MB "
                  f"(anonymous {mb(s.peak['RssAnon']):.0f} MB), before the query {mb(s.before['VmRSS']):.0f} MB "
                  f"(anonymous {mb(s.before['RssAnon']):.0f} MB); target < {RSS_TARGET_MB} MB: "
                  f"{'met' if s.peak['VmRSS'] < RSS_TARGET_MB * 2**20 else 'NOT met'}")
    # The wire protocol against the wire protocol: the same client (psycopg, text results,
    # fetchall) on both sides, so the ratio is the servers' and their text forms'.
    pg_mare, pg_quest = "mare pgwire (psycopg)", "QuestDB pgwire (psycopg)"
    if pg_mare in results and pg_quest in results:
        print(f"\n{pg_mare}'s time / {pg_quest}'s (same client; no target in issue 16):")
        for query in ("Q3", "full"):
            print(f"  {query:<5} {results[pg_mare][query] / results[pg_quest][query]:6.2f}x")
    if checks:
        print("\nAnswers against DuckDB's:")
        for c in checks:
            print(f"  {c}")


if __name__ == "__main__":
    main()
