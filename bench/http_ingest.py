#!/usr/bin/env python3
"""HTTP ingest's cost per reading: `mare run` with only its sources and log (no rollups, no
store) takes POST /api/v1/ingest requests flat out from CLIENTS keep-alive connections, each
request READINGS_PER_REQUEST readings of 8 sensors (so every request spans the `raw` topic's 4
partitions, as the soak's do), and its CPU seconds (all threads, from /proc) are divided into
the readings acknowledged. Each build runs ROUNDS times, alternating, and the best round is kept
(the machine is shared). Prints a table; the first build is the reference.

Usage: bench/http_ingest.py [--readings N] [--per-request N] [--clients N] [--rounds N] BUILD_DIR [BUILD_DIR ...]"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from common import best_of_rounds, print_rates

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def bodies(total, per_request, clients):
    """Per client, its request bodies: unique (sensor, timestamp) pairs, so none is a duplicate."""
    out = [[] for _ in range(clients)]
    base = 1_700_000_000_000
    for r in range(total // per_request):
        lines = []
        for i in range(per_request):
            n = r * per_request + i
            lines.append(json.dumps({"timestamp": base + n, "sensor_id": 1 + n % 8, "temperature": 10 + n % 100 / 10}))
        out[r % clients].append(("\n".join(lines) + "\n").encode())
    return out


def run(binary, work):
    data = tempfile.mkdtemp(prefix="mare-http-bench-")
    port = free_port()
    proc = subprocess.Popen([binary, "run", "--data-dir", data, "--set", f"http.listen=127.0.0.1:{port}",
                             "--set", f"sources.tcp.listen=127.0.0.1:{free_port()}", "--set", "sources.udp.enabled=false",
                             "--set", "sources.unix.enabled=false", "--set", "rollup.enabled=false",
                             "--set", "store.enabled=false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/metrics")
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)
    accepted = [0] * len(work)

    def client(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in work[i]:
            c.request("POST", "/api/v1/ingest", body=body, headers={"Content-Type": "application/x-ndjson"})
            r = c.getresponse()
            answer = json.loads(r.read())
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {answer}")
            accepted[i] += answer["accepted"]

    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
    proc.terminate()
    proc.wait(timeout=60)
    shutil.rmtree(data, ignore_errors=True)
    n = sum(accepted)
    return n / cpu, n / wall, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--readings", type=int, default=400_000)
    ap.add_argument("--per-request", type=int, default=50)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = bodies(args.readings, args.per_request, args.clients)
    counted = []

    def measure(b):
        per_cpu, per_wall, n = run(os.path.join(b, "bin", "mare") if os.path.isdir(b) else b, work)
        counted.append(n)
        return per_cpu, per_wall

    best = best_of_rounds(args.builds, args.rounds, measure)
    print_rates(f"HTTP POST /api/v1/ingest -> durable log (sources and log only), {counted[-1]:,} readings, "
                f"{args.per_request} per request over 8 sensors, {args.clients} clients, best of {args.rounds} rounds, "
                f"{os.cpu_count()} cores shared", "build", best)


if __name__ == "__main__":
    main()
