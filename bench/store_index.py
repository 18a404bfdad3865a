#!/usr/bin/env python3
"""The store's resident memory against the days it holds (issue 13: "memory over a year of running
must be flat"). Writes days of readings at --sensors sensors (one every 10 minutes each, three
fields and the location; merged into one segment a day, one block per sensor and hour, as
`mare run` leaves them) with `store_index_bench write`, and after each of --days opens the store
in a fresh process (`store_index_bench open`), answers a query over the last day and lists the
sensors (the dashboard's walk over every segment), reading the process's RSS after each step.

Peer, in the same run: the same store opened with an index cache larger than every index
(`store.index_cache_bytes` = 2^62), which keeps every segment's block index resident, as the
store did before the cache; against it, the bounded cache (--cache, and the default 512 MiB).
The answers of every configuration are compared.

The sensor list (GET /api/v1/sensors, the dashboard's overview, every second) is timed three
ways in each configuration, CPU seconds per call: from the segments' sensor summaries (this
build, the mean of five calls; the index cache misses it caused, which must be 0), walking every
segment's block index (this build's scan=true, the list as it was: the peer, same process), and,
with --before DIR, the `store_index_bench` of another build (main's, before the summaries) on
the same store. Their answers are compared.

Usage: bench/store_index.py [--build build/bin] [--sensors 10000] [--days 1,2,4,8]
                            [--cache 64] [--dir /tmp/mare-store-index] [--keep] [--before DIR]"""
import argparse
import json
import os
import shutil
import subprocess
import sys

UNBOUNDED = 1 << 62
MIB = 1 << 20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build/bin")
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--days", default="1,2,4,8", help="day counts to measure at (increasing)")
    parser.add_argument("--cache", type=int, default=64, help="the bounded cache, MiB (512 MiB, the default, is measured too)")
    parser.add_argument("--dir", default="/tmp/mare-store-index")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--before", help="bin directory of a build before the sensor summaries (its store_index_bench)")
    args = parser.parse_args()
    bench = os.path.join(args.build, "store_index_bench")
    days = [int(d) for d in args.days.split(",")]
    store = os.path.join(args.dir, "store")
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(store)
    configs = [("all resident (peer)", UNBOUNDED), ("512 MiB (default)", 512 * MIB), (f"{args.cache} MiB", args.cache * MIB)]
    rows = []
    try:
        written = 0
        for d in days:
            out = subprocess.run([bench, "write", store, str(written), str(d), str(args.sensors)], check=True,
                                 capture_output=True, text=True).stdout
            layout = json.loads(out)
            written = d
            for name, limit in configs:
                out = subprocess.run([bench, "open", store, str(limit), str(d)], check=True, capture_output=True, text=True).stdout
                r = json.loads(out)
                if args.before:
                    before = subprocess.run([os.path.join(args.before, "store_index_bench"), "open", store, str(limit), str(d)],
                                            check=True, capture_output=True, text=True).stdout
                    b = json.loads(before)
                    r["before_sensors_cpu"] = b["sensors_cpu"]
                    r["before_same"] = (b["sensors"], b["sensor_readings"]) == (r["sensors"], r["sensor_readings"])
                    print(f"days {d}: {name}: before: {before.strip()}", file=sys.stderr, flush=True)
                rows.append((d, layout, name, r))
                print(f"days {d}: {name}: {out.strip()}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)

    print(f"\nStore memory at {args.sensors:,} sensors (RSS after opening the store, after a query over its last day,"
          " after listing every sensor, after LATEST ON; MiB; CPU seconds of the sensor list and of LATEST ON)\n")
    print("| days | blocks | segment MiB | index cache | RSS open | RSS query | RSS sensors | RSS latest | peak RSS | cache MiB | "
          "misses | sensors CPU s | latest CPU s | RSS latest / peer | answers |")
    print("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    answers_ok = True
    for d, layout, name, r in rows:
        peer = next(p for dd, _, n, p in rows if dd == d and n == configs[0][0])
        keys = ("day_count", "day_avg", "day_max", "sensors", "sensor_readings", "latest_rows", "latest_sum")
        same = all(r[k] == peer[k] for k in keys)
        answers_ok = answers_ok and same
        print(f"| {d} | {layout['blocks']:,} | {layout['bytes'] / MIB:,.0f} | {name} | {r['rss_open'] / MIB:,.0f} | "
              f"{r['rss_query'] / MIB:,.0f} | {r['rss_sensors'] / MIB:,.0f} | {r['rss_latest'] / MIB:,.0f} | {r['hwm'] / MIB:,.0f} | "
              f"{r['cache_bytes'] / MIB:,.1f} | {r['misses']} | {r['sensors_cpu']:.2f} | {r['latest_cpu']:.2f} | "
              f"{r['rss_latest'] / peer['rss_latest']:.2f} | "
              f"{'same' if same else 'DIFFERENT'} |")

    print(f"\nThe sensor list at {args.sensors:,} sensors: CPU seconds per call from the sensor summaries (mean of 5), walking"
          " every block index (the peer: this build's scan), and main's build (--before: "
          f"{args.before or 'not given'}); index cache misses of the summaries' list and of the scan; summaries' MiB\n")
    print("| days | index cache | summaries CPU s | scan CPU s | before CPU s | summaries / scan | misses (summaries) | "
          "misses (scan) | summaries MiB | answers |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for d, layout, name, r in rows:
        same = r["sensors_same"] and r.get("before_same", True)
        answers_ok = answers_ok and same and r["sensors_misses"] == 0
        before = f"{r['before_sensors_cpu']:.3f}" if "before_sensors_cpu" in r else "-"
        ratio = r["sensors_cpu"] / r["sensors_scan_cpu"] if r["sensors_scan_cpu"] > 0 else float("nan")
        print(f"| {d} | {name} | {r['sensors_cpu']:.4f} | {r['sensors_scan_cpu']:.3f} | {before} | {ratio:.4f} | "
              f"{r['sensors_misses']} | {r['scan_misses']} | {r['sensor_summary_bytes'] / MIB:,.2f} | "
              f"{'same' if same else 'DIFFERENT'} |")
    print("\nanswers: " + ("every configuration agrees with the peer" if answers_ok else "MISMATCH"))
    return 0 if answers_ok else 1


if __name__ == "__main__":
    sys.exit(main())
