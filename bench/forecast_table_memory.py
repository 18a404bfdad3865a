#!/usr/bin/env python3
"""Memory of the store's forecasts table (issue 13: "memory flat over a year"): what `mare query
--offline` holds after reading back a forecasts journal of --sensors series x --hours hourly
issues of 24 target hours each (docs/formats/store.md, "Forecasts journal"), against the same
command on an empty journal. Prints the peak RSS of each (ru_maxrss) and the bytes per issue;
with --mare OTHER, the same for another build (a previous version) in the same run.

At the default 10,000 series x 24 hours (one day of issues, 240,000 lines of ~1.7 KB: 400 MB of
journal), per-issue bytes x 24 x 35 is what one series costs under the 35 days' retention.

Usage: bench/forecast_table_memory.py [--sensors N] [--hours H] [--build DIR] [--mare BIN ...]"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import tempfile
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
T0 = datetime.datetime(2024, 1, 21, tzinfo=datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def write_journal(path, sensors, hours):
    """One line per issue, as the store journals a forecasts record."""
    offset = 0
    with open(path, "w") as f:
        for h in range(hours):
            origin = T0 + datetime.timedelta(hours=h)
            for s in range(sensors):
                hs = [{"target_hour": iso(origin + datetime.timedelta(hours=i)), "value": round(12.5 + 0.01 * i + 0.001 * s, 3),
                       "lower": round(11.5 + 0.01 * i, 3), "upper": round(13.5 + 0.01 * i, 3)} for i in range(24)]
                value = json.dumps({"sensor_id": s, "field": "temperature", "issued_at": iso(origin), "day_ahead": h % 24 == 0,
                                    "model": "ensemble", "hours": hs}, separators=(",", ":"))
                f.write(f"{s % 4} {offset} {zlib.crc32(value.encode()):08x} {value}\n")
                offset += 1
    return offset


def peak_rss_kb(mare, data_dir, sql):
    p = subprocess.Popen([mare, "query", "--offline", "--data-dir", data_dir, sql], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    if status != 0:
        raise RuntimeError(f"{mare} query failed: {err[-2000:]}")
    return usage.ru_maxrss, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--sensors", type=int, default=10000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mare", action="append", default=[], help="another mare binary to measure beside this build's")
    args = ap.parse_args()
    binaries = [os.path.join(args.build, "bin", "mare"), *args.mare]
    work = tempfile.mkdtemp(prefix="mare-bench-forecast-mem-")
    try:
        empty, full = os.path.join(work, "empty", "store"), os.path.join(work, "full", "store")
        os.makedirs(empty)
        os.makedirs(full)
        issues = write_journal(os.path.join(full, "forecasts.journal"), args.sensors, args.hours)
        size = os.path.getsize(os.path.join(full, "forecasts.journal"))
        # One series' rows: what the table holds, not what a query of all rows would copy.
        sql = "SELECT count(*) FROM forecasts WHERE sensor_id = 1"
        print(f"forecasts table memory: {issues:,} issues of 24 hours ({args.sensors:,} series x {args.hours} h), "
              f"journal {size / 1e6:,.0f} MB")
        header = f"{'mare':<40} {'empty MB':>9} {'full MB':>9} {'bytes/issue':>12} {'MB/series, 35 d':>16}"
        print(header)
        print("-" * len(header))
        for mare in binaries:
            base, _ = peak_rss_kb(mare, os.path.dirname(empty), sql)
            peak, out = peak_rss_kb(mare, os.path.dirname(full), sql)
            if str(args.hours * 24) not in out:
                raise RuntimeError(f"{mare}: expected {args.hours * 24} rows, got {out!r}")
            per_issue = (peak - base) * 1024 / issues
            print(f"{os.path.relpath(mare, ROOT):<40} {base / 1024:>9.0f} {peak / 1024:>9.0f} {per_issue:>12,.0f} "
                  f"{per_issue * 24 * 35 / 1e6:>16.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
