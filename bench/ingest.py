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
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
READINGS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BEFORE = sys.argv[4] if len(sys.argv) > 4 else None
MARE = os.path.join(BUILD, "bin", "mare")
TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def run(path, settings, binary=MARE):
    data = tempfile.mkdtemp(prefix="mare-ingest-bench-")
    tcp, http = free_port(), free_port()
    args = [binary, "run", "--data-dir", data, "--set", f"sources.tcp.listen=127.0.0.1:{tcp}", "--set",
            f"http.listen=127.0.0.1:{http}", "--set", "sources.udp.enabled=false", "--set", "sources.unix.enabled=false",
            "--set", "rollup.enabled=false", "--set", "store.enabled=false"]
    for s in settings:
        args += ["--set", s]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def accepted():
        text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith('mare_source_readings_accepted_total{source="tcp"} '):
                return int(float(line.split()[-1]))
        return 0

    for _ in range(200):
        try:
            accepted()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    with open(path, "rb") as f, socket.create_connection(("127.0.0.1", tcp)) as c:
        while chunk := f.read(1 << 20):
            c.sendall(chunk)
    while accepted() < READINGS:
        time.sleep(0.02)
    cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
    proc.terminate()
    proc.wait(timeout=60)
    shutil.rmtree(data, ignore_errors=True)
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
