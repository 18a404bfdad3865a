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

from common import help_and_exit_if_asked, MareSources, best_of_rounds, print_rates, send_file

help_and_exit_if_asked(__doc__)

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
    by_name = {name: (settings, binary) for name, settings, binary in configs}
    best = best_of_rounds([name for name, _, _ in configs], ROUNDS, lambda name: run(path, *by_name[name]))
    print_rates(f"TCP -> durable log (sources and log only), {READINGS:,} readings of 100 sensors, best of {ROUNDS} "
                f"rounds, {os.cpu_count()} cores shared", "configuration", best)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
