#!/usr/bin/env python3
"""The cost of log.kafka.atomic_ingest: HTTP ingest into one local Kafka broker (the tests'
harness, tests/e2e/kafka_server.py), each request in a Kafka transaction (on) or its partitions
appended one by one (off), in the same run, alternating. `mare run` with only its sources and
log (no rollups, no store) takes POST /api/v1/ingest requests from CLIENTS keep-alive
connections for SECONDS each, READINGS readings of 8 sensors a request (so a request of 8 or more
spans the `raw` topic's 4 partitions). Reported: readings/s acknowledged (HTTP 200), readings
per CPU second of mare (all its threads, from /proc; the broker's are in none), the median
request's latency, and (on) the requests per transaction.

Usage: bench/kafka_http_ingest.py [--build DIR] [--clients 1,4,16] [--readings 1,50] [--seconds S]
                                  [--http-threads N]"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from kafka_server import KafkaCluster  # noqa: E402
from http_ingest import cpu_seconds, free_port  # noqa: E402 (this folder's)


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    out = {}
    for line in c.getresponse().read().decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def cell(binary, bootstrap, work, atomic, clients, per_request, seconds, http_threads):
    prefix = f"b{int(atomic)}c{clients}r{per_request}t{http_threads}."
    data = os.path.join(work, prefix.rstrip("."))
    port = free_port()
    sets = ["log.kind=kafka", f'log.kafka.brokers="{bootstrap}"', "log.kafka.replication_factor=1",
            f'log.kafka.topic_prefix="{prefix}"', "log.partitions=4", f"log.kafka.atomic_ingest={str(atomic).lower()}",
            f'http.listen="127.0.0.1:{port}"', f"http.threads={http_threads}", "sources.tcp.enabled=false", "sources.udp.enabled=false",
            "sources.unix.enabled=false", "rollup.enabled=false", "store.enabled=false"]
    args = [binary, "run", "--data-dir", data]
    for s in sets:
        args += ["--set", s]
    os.makedirs(data)
    out = open(os.path.join(data, "mare.out"), "wb")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                metrics(port)
                break
            except OSError:
                time.sleep(0.05)
        accepted, latencies, errors = [0] * clients, [[] for _ in range(clients)], []
        start = threading.Barrier(clients + 1)
        deadline = [0.0]

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            n = 0

            def post():
                nonlocal n
                lines = []
                for _ in range(per_request):
                    ts = 1_700_000_000_000 + (n * clients + i)
                    lines.append(json.dumps({"timestamp": ts, "sensor_id": 1 + (n + i) % 8, "temperature": 10.5}))
                    n += 1
                t0 = time.monotonic()
                c.request("POST", "/api/v1/ingest", body="\n".join(lines) + "\n",
                          headers={"Content-Type": "application/x-ndjson"})
                r = c.getresponse()
                answer = json.loads(r.read())
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {answer}")
                return answer["accepted"], time.monotonic() - t0

            try:
                post()  # the first request starts the transactional producer: not measured
                start.wait()
                while time.monotonic() < deadline[0]:
                    a, t = post()
                    accepted[i] += a
                    latencies[i].append(t)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        deadline[0] = time.monotonic() + 3600
        start.wait()
        m0, cpu0, t0 = metrics(port), cpu_seconds(proc.pid), time.monotonic()
        deadline[0] = t0 + seconds
        for t in threads:
            t.join()
        wall, cpu, m1 = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0, metrics(port)
        if errors:
            raise errors[0]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    n = sum(accepted)
    lat = sorted(x for ls in latencies for x in ls)
    requests = len(lat)
    key = 'mare_log_kafka_transactions_total{outcome="committed"}'
    txns = m1.get(key, 0) - m0.get(key, 0)
    return {"rate": n / wall, "per_cpu": n / max(cpu, 1e-9), "p50_ms": 1000 * lat[len(lat) // 2],
            "per_txn": requests / txns if txns else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--readings", default="1,50")
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--http-threads", type=int, default=4,
                    help="http.threads, which is also how many HTTP requests ingest at once")
    args = ap.parse_args()
    binary = os.path.join(args.build, "bin", "mare")
    work = tempfile.mkdtemp(prefix="mare-kafka-http-bench-")
    rows = []
    with KafkaCluster(work) as kafka:
        for per_request in [int(x) for x in args.readings.split(",")]:
            for clients in [int(x) for x in args.clients.split(",")]:
                pair = {}
                for atomic in (False, True):
                    pair[atomic] = cell(binary, kafka.bootstrap, work, atomic, clients, per_request, args.seconds,
                                        args.http_threads)
                rows.append((per_request, clients, pair))
                off, on = pair[False], pair[True]
                print(f"http.threads {args.http_threads} {per_request:>3} readings/request {clients:>2} clients | off {off['rate']:>8,.0f}/s "
                      f"{off['per_cpu']:>8,.0f}/cpu-s p50 {off['p50_ms']:6.1f} ms | on {on['rate']:>8,.0f}/s "
                      f"{on['per_cpu']:>8,.0f}/cpu-s p50 {on['p50_ms']:6.1f} ms {on['per_txn'] or 0:5.1f} req/txn | "
                      f"on/off {on['rate'] / off['rate']:.2f}x", flush=True)
    print(open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
