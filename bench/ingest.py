#!/usr/bin/env python3
"""The ingest path's cost per reading, with deduplication (ingest.dedup_horizon, issue 19) and
without, in the same run: `mare run` with only its sources and log (no rollups, no store) takes
the same readings flat out over TCP (lossless, so every reading is counted), and its CPU seconds
(all threads, from /proc) are divided into the readings accepted. Each configuration runs
ROUNDS times, alternating, and the best round is kept (the machine is shared). Prints a table.

Usage: bench/ingest.py [BUILD_DIR] [READINGS] [ROUNDS] [BEFORE_BUILD_DIR]
BEFORE_BUILD_DIR: a build of mare before deduplication, measured in the same rounds."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import MareSources, send_file

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
READINGS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BEFORE = sys.argv[4] if len(sys.argv) > 4 else None
MARE = os.path.join(BUILD, "bin", "mare")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def run(path, settings, binary=MARE):
    with MareSources(binary, settings, prefix="mare-ingest-bench-") as mare:
        cpu0, t0 = cpu_seconds(mare.proc.pid), time.monotonic()
        send_file(path, mare.tcp_port)
        while mare.accepted("tcp") < READINGS:
            time.sleep(0.02)
        cpu, wall = cpu_seconds(mare.proc.pid) - cpu0, time.monotonic() - t0
    return READINGS / cpu, READINGS / wall


def main():
    workdir = tempfile.mkdtemp(prefix="mare-ingest-bench-")
    path = os.path.join(workdir, "readings.ndjson")
    subprocess.run([MARE, "simulate", "--flat-out", "--sensors", "100", "--count", str(READINGS // 100), "--no-faults",
                    "--start", "2024-01-01 00:00:00", "--target", f"file://{path}"], check=True, capture_output=True)
    configs = [("dedup off (ingest.dedup_horizon = 0s)", ["ingest.dedup_horizon=0s"], MARE),
               ("dedup on (ingest.dedup_horizon = 10m, the default)", [], MARE)]
    if BEFORE:
        configs.insert(0, (f"before dedup ({BEFORE})", [], os.path.join(BEFORE, "bin", "mare")))
    best = {name: (0.0, 0.0) for name, _, _ in configs}
    for _ in range(ROUNDS):
        for name, settings, binary in configs:
            per_cpu, per_wall = run(path, settings, binary)
            best[name] = max(best[name], (per_cpu, per_wall))
    print(f"TCP -> durable log (sources and log only), {READINGS:,} readings of 100 sensors, best of {ROUNDS} rounds, "
          f"{os.cpu_count()} cores shared")
    header = f"{'configuration':<52} {'readings/CPU s':>15} {'readings/s':>12} {'vs first':>8}"
    print(header)
    print("-" * len(header))
    base = best[configs[0][0]][0]
    for name, _, _ in configs:
        per_cpu, per_wall = best[name]
        print(f"{name:<52} {per_cpu:>15,.0f} {per_wall:>12,.0f} {per_cpu / base:>8.2f}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
