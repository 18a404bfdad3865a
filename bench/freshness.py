#!/usr/bin/env python3
"""Freshness: how long from a reading's arrival over UDP until the hourly row in MariaDB
reflects it, while mare ingests a steady load. Prints p50/p90/p99 per load level.

A real MariaDB (the tests' harness) and `mare run` with the MariaDB sink. The load is
udp_blast sending simulated readings (event times within the last 100 s) at a fixed rate. A
probe sensor sends a numbered reading every 100 ms; a persistent `mariadb` client polls that
sensor's rollup_hour row, and the time until its `last` shows each number is that reading's
freshness. Usage: bench/freshness.py [BUILD_DIR] [EMIT_INTERVAL=200ms]"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
os.environ.setdefault("MARE_BIN", os.path.abspath(os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "bin", "mare")))
from harness import MareRun, free_port, mare  # noqa: E402
from mariadb_server import MariaDB  # noqa: E402

from common import help_and_exit_if_asked

help_and_exit_if_asked(__doc__)

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
EMIT = sys.argv[2] if len(sys.argv) > 2 else "200ms"
PROBE = 999_999


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(run, db, load_rate, load_file, first, seconds=20):
    """Probes numbered from first + 1 (numbers only grow: the row keeps the last one seen)."""
    blast = None
    if load_rate:
        blast = subprocess.Popen([os.path.join(BUILD, "bin", "udp_blast"), str(run.udp_port), load_file, "1",
                                  str(load_rate), "100"], stdout=subprocess.DEVNULL)
        time.sleep(2)  # let the load settle
    client = subprocess.Popen(["mariadb", "-h127.0.0.1", f"-P{db.port}", "-uroot", "-B", "-N", "-n", "mare"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = {}
    latencies = []
    seen = first
    start = time.time()
    next_probe, k = start, first
    while time.time() - start < seconds or (sent and seen < k and time.time() - start < seconds + 10):
        now = time.time()
        if now >= next_probe and now - start < seconds:
            k += 1
            reading = f'{{"timestamp": {now:.6f}, "sensor_id": {PROBE}, "probe": {k}}}'
            sent[k] = time.time()
            sock.sendto(reading.encode(), ("127.0.0.1", run.udp_port))
            next_probe += 0.1
        client.stdin.write(f"SELECT COALESCE(MAX(`last`), 0) FROM rollup_hour WHERE sensor_id = {PROBE} AND field = 'probe';\n")
        last = int(float(client.stdout.readline().strip() or 0))
        t = time.time()
        while seen < last:
            seen += 1
            if seen in sent:
                latencies.append(t - sent[seen])
        time.sleep(0.005)
    client.stdin.close()
    client.wait()
    if blast:
        blast.terminate()
        blast.wait()
    return latencies, k - first


def main():
    work = tempfile.mkdtemp(prefix="mare-freshness-")
    load = os.path.join(work, "load.ndjson")
    # 100 sensors at 100 readings/s each, 10,000 readings apiece: event times within the last
    # 100 s, so none is late. (Rows to upsert scale with sensors x fields x resolutions per emit,
    # not with readings: many thousands of sensors are a different load, see the README.)
    mare("simulate", "--flat-out", "--sensors", "100", "--rate", "100", "--count", "10000", "--no-faults",
         "--target", f"file://{load}")
    print(f"Freshness: UDP arrival -> hourly row in MariaDB, rollup.emit_interval = {EMIT}, probe every 100 ms for 20 s")
    print(f"{'load (readings/s)':>18} {'probes':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    with MariaDB(work) as db:
        run = MareRun(os.path.join(work, "data"), extra=["sink.mariadb.enabled=true", f"sink.mariadb.port={db.port}",
                                                         f'rollup.emit_interval="{EMIT}"', "sources.tcp.enabled=false"])
        with run:
            probes = 0
            for rate in (0, 100_000):
                lat, sent = measure(run, db, rate, load, probes)
                probes += sent
                ms = [x * 1000 for x in lat]
                print(f"{rate:>18,} {len(ms):>4}/{sent:<3}{percentile(ms, 50):>8.0f} {percentile(ms, 90):>8.0f} "
                      f"{percentile(ms, 99):>8.0f} {max(ms):>8.0f}")
            drops = run.metric("mare_source_udp_datagrams_dropped_total")
            late = run.metric("mare_rollup_late_readings_dropped_total")
            print(f"(kernel drops {drops:.0f}, rollup readings dropped late {late:.0f})")


if __name__ == "__main__":
    main()
