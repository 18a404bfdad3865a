#!/usr/bin/env python3
"""The batch benchmark of issue 15: the seed's batch path side by side. The same CSV archive
(bench/store.py's data set: 100 sensors, one reading per second each; temperature, humidity,
pressure) to hourly count/min/max/mean per sensor and field:

- mare: `mare import FILE.csv` into a fresh store, then `mare batch rollups` over the whole
  period with `rollup.resolutions = "1h"` (the hourly windows alone, as the peers compute), its
  rollup messages written to a file; and again with the default 1m, 1h, 1d.
- DuckDB reading the CSV (`read_csv` ... GROUP BY sensor, hour), in-process, every row fetched.
- Spark (PySpark, master local[2], reading the CSV), when `pyspark` imports; else skipped.

Each is timed end to end (wall clock, CSV to hourly rows) and in CPU seconds (the process and
its children). Prints the times, readings/s, and mare's ratios against each peer, per wall second
and per CPU second; checks mare's hourly rows against DuckDB's (same groups, count/min/max equal,
mean within 1e-9 relative).

Usage: bench/batch.py [--size XS|S|L] [--build build/bin] [--dir /tmp/mare-bench] [--skip-spark]"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import store as store_bench  # noqa: E402  (the data set: generated once, cached, checked)

FIELDS = ("temperature", "humidity", "pressure")


def progress(msg):
    print(f"[batch] {msg}", file=sys.stderr, flush=True)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_mare(mare, data, work, resolutions):
    d = tempfile.mkdtemp(prefix="mare-", dir=work)
    out = os.path.join(d, "rollups.ndjson")
    cpu0, t0 = children_cpu(), time.perf_counter()
    subprocess.run([mare, "import", data["path"], "--data-dir", d, "--quiet"], check=True, stderr=subprocess.DEVNULL)
    t_import = time.perf_counter() - t0
    with open(out, "w") as f:
        p = subprocess.run([mare, "batch", "rollups", "--from", "2024-01-01", "--to", "2100-01-01", "--data-dir", d, "--quiet",
                            "--set", "rollup.resolutions=[" + ",".join(f'"{r}"' for r in resolutions.split(",")) + "]"], stdout=f, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"mare batch rollups failed: {p.stderr}")
    wall = time.perf_counter() - t0
    cpu = children_cpu() - cpu0
    rows = {}
    if resolutions == "1h":
        with open(out) as f:
            for line in f:
                m = json.loads(line)
                rows[(m["sensor_id"], m["field"], m["window_start"][:19].replace("T", " "))] = (
                    m["count"], m["min"], m["max"], m["mean"])
    shutil.rmtree(d, ignore_errors=True)
    return {"wall": wall, "cpu": cpu, "import": t_import, "rows": rows, "summary": p.stderr.strip().splitlines()[-1]}


def run_duckdb(data):
    import duckdb
    selects = ", ".join(f"count({f}), min({f}), max({f}), avg({f})" for f in FIELDS)
    sql = (f"SELECT sensor_id, time_bucket(INTERVAL 1 hour, ts) AS hour, {selects} "
           f"FROM read_csv('{data['path']}', header = true) GROUP BY ALL ORDER BY ALL")
    cpu0, t0 = self_cpu(), time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    result = con.execute(sql).fetchall()
    wall = time.perf_counter() - t0
    cpu = self_cpu() - cpu0
    con.close()
    rows = {}
    for r in result:
        for i, f in enumerate(FIELDS):
            rows[(r[0], f, r[1].strftime("%Y-%m-%d %H:%M:%S"))] = tuple(r[2 + 4 * i: 6 + 4 * i])
    return {"wall": wall, "cpu": cpu, "rows": rows}


def run_spark(data):
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return None
    script = f"""
import json, os, sys, time
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "2").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
def cpu(pid):
    with open(f"/proc/{{pid}}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
jvm_cpu0 = cpu(jvm)
df = spark.read.csv({data['path']!r}, header=True, inferSchema=False).selectExpr(
    "cast(ts as timestamp) ts", "cast(sensor_id as int) sensor_id",
    {', '.join(repr(f'cast({f} as double) {f}') for f in FIELDS)})
aggs = []
for f in {FIELDS!r}:
    aggs += [F.count(f), F.min(f), F.max(f), F.avg(f)]
t0 = time.perf_counter()
rows = df.groupBy("sensor_id", F.window("ts", "1 hour")).agg(*aggs).collect()
query_wall = time.perf_counter() - t0
print(json.dumps({{"query_wall": query_wall, "jvm_cpu": cpu(jvm), "query_jvm_cpu": cpu(jvm) - jvm_cpu0, "rows": len(rows)}}))
"""
    cpu0, t0 = children_cpu(), time.perf_counter()
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if p.returncode != 0:
        progress(f"spark failed: {p.stderr[-2000:]}")
        return None
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # The JVM is the driver's child, not ours: its CPU is read from /proc before the session ends.
    return {"wall": time.perf_counter() - t0, "query_wall": out["query_wall"], "cpu": children_cpu() - cpu0 + out["jvm_cpu"],
            "query_cpu": out["query_jvm_cpu"], "groups": out["rows"]}


def compare(mare_rows, duck_rows):
    if set(mare_rows) != set(duck_rows):
        return f"DIFFER: {len(set(mare_rows) ^ set(duck_rows))} groups on one side only"
    bad = 0
    for k, (c, lo, hi, mean) in duck_rows.items():
        mc, mlo, mhi, mmean = mare_rows[k]
        if c != mc or lo != mlo or hi != mhi or abs(mean - mmean) > 1e-9 * max(abs(mean), abs(mmean)):
            bad += 1
    return f"agree ({len(duck_rows):,} hourly rows)" if bad == 0 else f"DIFFER in {bad} of {len(duck_rows)} rows"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(store_bench.SIZES), default="S")
    ap.add_argument("--build", default="build/bin")
    ap.add_argument("--dir", default=os.environ.get("MARE_BENCH_DIR", "/tmp/mare-bench"))
    ap.add_argument("--skip-spark", action="store_true")
    args = ap.parse_args()
    mare = os.path.abspath(os.path.join(args.build, "mare"))
    data = store_bench.dataset(args.size, args.dir)
    work = tempfile.mkdtemp(prefix="batch-", dir=args.dir)
    try:
        progress("mare: import + batch rollups (1h)")
        m1h = run_mare(mare, data, work, "1h")
        progress("mare: import + batch rollups (1m,1h,1d)")
        mall = run_mare(mare, data, work, "1m,1h,1d")
        progress("DuckDB: read_csv + GROUP BY hour")
        duck = run_duckdb(data)
        spark = None if args.skip_spark else run_spark(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = data["readings"]
    print(f"\nbatch: {n:,} readings ({data['bytes'] / 1e6:.0f} MB of CSV, size {args.size}) to hourly "
          f"count/min/max/mean per sensor and field\n")
    print(f"{'system':<40}{'wall s':>9}{'CPU s':>9}{'readings/s':>14}")
    lines = [("mare import + batch rollups (1h)", m1h), ("mare import + batch rollups (1m,1h,1d)", mall),
             ("DuckDB read_csv + GROUP BY", duck)]
    if spark:
        lines.append(("Spark local[2] read.csv + groupBy", spark))
    for name, r in lines:
        print(f"{name:<40}{r['wall']:>9.2f}{r['cpu']:>9.2f}{n / r['wall']:>14,.0f}")
    print(f"\nmare's import alone: {m1h['import']:.2f} s; {m1h['summary']}")
    print("\nratios (peer time / mare time; > 1: mare faster), mare computing 1h:")
    for name, r in lines[2:]:
        print(f"  vs {name:<34} wall {r['wall'] / m1h['wall']:6.2f}x   per CPU second {r['cpu'] / m1h['cpu']:6.2f}x")
    if spark:
        print(f"  Spark's query alone (session up, JVM start-up excluded): {spark['query_wall']:.2f} s wall, "
              f"{spark['query_cpu']:.2f} JVM CPU s: {spark['query_wall'] / m1h['wall']:.2f}x mare's wall, "
              f"{spark['query_cpu'] / m1h['cpu']:.2f}x mare's CPU")
    if spark is None and not args.skip_spark:
        print("  Spark: skipped (pyspark does not import; scripts/setup-bench.sh installs it)")
    print(f"\nmare's hourly rows vs DuckDB's: {compare(m1h['rows'], duck['rows'])}")


if __name__ == "__main__":
    main()
