#!/usr/bin/env python3
"""Sustained UDP -> durable log throughput on this machine, next to the bare receiver.

For one reading per datagram (as buoys send) and 50 per datagram (as a gateway sends), the
same sender (udp_blast: sendmmsg, 16 source sockets) offers the same readings first to
udp_sink, a bare recvmmsg receiver that discards (the loopback limit), then to `mare run`,
which validates every reading and appends it to its durable log (fsync every second), at
several fractions of the bare receiver's rate. Prints a table with the loss at each offered
rate and mare's rate as a ratio of the bare receiver's.

Usage: bench/udp.py [BUILD_DIR] [READINGS]"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import help_and_exit_if_asked

help_and_exit_if_asked(__doc__)

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
READINGS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
BIN = os.path.join(BUILD, "bin")
MARE = os.path.join(BIN, "mare")


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blast(port, path, lines, rate=0, repeat=1):
    out = subprocess.run([os.path.join(BIN, "udp_blast"), str(port), path, str(lines), str(rate), str(repeat)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"sent (\d+) datagrams \((\d+) readings\) in ([\d.]+) s", out)
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def run_sink(path, lines, rate=0, repeat=1):
    port = free_port()
    sink = subprocess.Popen([os.path.join(BIN, "udp_sink"), str(port), "1", "2"], stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    datagrams, readings, _ = blast(port, path, lines, rate, repeat)
    out = sink.communicate(timeout=60)[0]
    m = re.search(r"received (\d+) datagrams, (\d+) bytes in ([\d.]+) s", out)
    got, secs = int(m.group(1)), float(m.group(3))
    return {"sent": readings, "received": got * readings // datagrams, "secs": secs, "datagrams_per_s": got / secs}


def run_mare(path, lines, rate=0, repeat=1):
    data = tempfile.mkdtemp(prefix="mare-bench-")
    udp, http = free_port(), free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen([MARE, "run", "--data-dir", data, "--set", f"sources.udp.listen=127.0.0.1:{udp}",
                             "--set", f"http.listen=127.0.0.1:{http}", "--set", "sources.tcp.enabled=false",
                             "--set", "sources.unix.enabled=false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def metric(name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5).read().decode()
        m = re.search("^" + re.escape(name) + r" (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    time.sleep(1)  # let the previous run's process and files go
    for _ in range(200):
        try:
            metric("mare_source_udp_datagrams_received_total")
            break
        except OSError:
            time.sleep(0.05)
    # Sample the accepted count while the sender runs, to time mare from its first reading to its last.
    import threading
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append((time.monotonic(), metric('mare_source_readings_accepted_total{source="udp"}')))
            time.sleep(0.05)  # light: the sampler shares the 2 cores with mare and the sender

    t = threading.Thread(target=sample)
    t.start()
    datagrams, readings, _ = blast(udp, path, lines, rate, repeat)
    # Wait until nothing more arrives.
    stable_since = time.monotonic()
    last = -1
    while time.monotonic() - stable_since < 1.0:
        time.sleep(0.05)
        if samples and samples[-1][1] != last:
            last, stable_since = samples[-1][1], time.monotonic()
    done.set()
    t.join()
    accepted = int(samples[-1][1])
    drops = int(metric("mare_source_udp_datagrams_dropped_total"))
    rejected = int(metric('mare_source_readings_received_total{source="udp"}')) - accepted
    appended = int(metric('mare_log_records_appended_total{topic="raw"}'))
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)
    first = next(ts for ts, a in samples if a > 0)
    end = next(ts for ts, a in samples if a == accepted)
    return {"sent": readings, "received": accepted, "secs": max(end - first, 1e-9), "drops": drops, "rejected": rejected,
            "appended": appended}


def main():
    workdir = tempfile.mkdtemp(prefix="mare-udp-bench-")
    sensors = 100

    def simulated(n, name):
        path = os.path.join(workdir, name)
        subprocess.run([MARE, "simulate", "--flat-out", "--sensors", str(sensors), "--count", str(n // sensors),
                        "--no-faults", "--start", "2024-01-01 00:00:00", "--target", f"file://{path}"],
                       check=True, capture_output=True)
        return path

    # Gateways' datagrams go three times as fast: three times the readings, each its own (sending
    # one file three times would resend every reading, which ingest rightly drops as a duplicate).
    path, path3 = simulated(READINGS, "readings.ndjson"), simulated(3 * READINGS, "readings3.ndjson")
    size = os.path.getsize(path) / READINGS
    print(f"UDP -> durable log, {READINGS:,} readings of {size:.0f} bytes (3x as many at 50 a datagram), 2 receiver threads each side, "
          f"fsync every 1 s, {os.cpu_count()} cores shared with the sender")
    header = f"{'datagrams':<20} {'offered':>12} {'receiver':<8} {'readings/s':>12} {'loss':>8} {'vs bare':>8}"
    print(header)
    print("-" * len(header))
    # Buoys: offered as fractions of the bare receiver's rate. Gateways: the bare receiver only
    # counts datagrams (millions of readings/s), so offer absolute reading rates instead.
    modes = [(1, path, "1 reading each", lambda bare: [bare * f for f in (0.5, 0.8, 1.0)]),
             (50, path3, "50 readings each", lambda bare: [500_000, 1_000_000, 1_200_000])]
    for lines, path, label, offers in modes:
        bare = run_sink(path, lines)
        bare_rate = bare["received"] / bare["secs"]
        loss = 1 - bare["received"] / bare["sent"]
        print(f"{label:<20} {'flat out':>12} {'bare':<8} {bare_rate:>12,.0f} {loss:>8.2%} {1:>8.2f}")
        for offered in offers(bare_rate) + [None]:
            rate = 0 if offered is None else offered / lines  # datagrams per second
            m = run_mare(path, lines, rate=rate)
            mare_rate = m["received"] / m["secs"]
            loss = 1 - m["received"] / m["sent"]
            shown = "flat out" if offered is None else f"{offered:,.0f}/s"
            note = f"  ({m['drops']} kernel drops, {m['rejected']} rejected)" if m["drops"] or m["rejected"] else ""
            assert m["appended"] == m["received"], "every accepted reading must be in the log"
            print(f"{'':<20} {shown:>12} {'mare':<8} {mare_rate:>12,.0f} {loss:>8.2%} {mare_rate / bare_rate:>8.2f}{note}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
