#!/usr/bin/env python3
"""The sinks that copy the log to a server, next to that server's own best client on the same
readings in the same run (issue 18's targets: at least 0.9x the peer's rate, at most 0.3 of a
core at 100,000 readings/s).

ClickHouse: N readings (bench-shaped buoys: 8 numbers and a text each, 100 sensors) are produced
into the raw topic of an embedded log first, as in production: sent over TCP to `mare run` with
only its sources (no rollups, no store), whose ingest appends them in batches with their numbers
beside the JSON (docs/formats/log.md, attribute bit 3). `--produce log` appends them with
`mare log produce` instead: one record a batch and no numbers, as records from a producer other
than mare's ingest (Kafka's never carry numbers). Then `mare sink clickhouse` (rollups off) is started
on the full topic and timed from its start until its saved position covers all N, with its own
CPU seconds (user + system, /proc). The peer is `clickhouse-client --query "INSERT INTO ...
FORMAT RowBinary"` from a file holding the same rows in the same bytes (read back with
`SELECT ... FORMAT RowBinary` from the sink's table), into a fresh table of the same definition,
on the same server. The server's CPU seconds during each are printed too (ClickHouse CPU s; the
sink's include its start's statements and this script's polls of its position), and the peer's
own (clickhouse-client parses the RowBinary file and sends Native blocks). The server is Debian's
clickhouse-server 18.16, started by the tests' harness (tests/e2e/clickhouse_server.py) in a
temporary directory.

Usage: bench/sinks.py [--build DIR] [--readings N] [--batch ROWS] [--produce ingest|log] [--keep]"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))

from clickhouse_server import ClickHouse  # noqa: E402
from harness import free_port, scrape_metric  # noqa: E402

T0 = 1705831200  # 2024-01-21T10:00:00Z


def reading(i, sensors):
    sensor = 1 + i % sensors
    return {"timestamp": T0 + i // sensors, "sensor_id": sensor, "temperature": round(12 + (i * 37 % 101) / 10, 2),
            "humidity": 60 + i % 30, "pressure": 990 + i % 40, "water_temperature": 14.5 + (i % 13) / 10,
            "wave_height": 1 + (i % 7) / 10, "wind_speed": (i * 7 % 150) / 10, "wind_direction": i * 13 % 360,
            "dew_point": 9.5 + (i % 11) / 10, "status": "ok" if i % 5 else "degraded"}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce_by_ingest(mare, data, lines):
    """The readings through `mare run`'s TCP source and ingest (sources and log only), as in
    production; returns once the log acknowledged all of them and mare stopped."""
    tcp, http = free_port(), free_port()
    sets = [f"sources.tcp.listen=127.0.0.1:{tcp}", f"http.listen=127.0.0.1:{http}", "sources.udp.enabled=false",
            "sources.unix.enabled=false", "rollup.enabled=false", "forecast.enabled=false", "store.enabled=false",
            "pgwire.enabled=false"]
    cmd = [mare, "run", "--data-dir", data]
    for s in sets:
        cmd += ["--set", s]
    os.makedirs(data, exist_ok=True)
    out = open(os.path.join(data, "ingest.out"), "wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        name = 'mare_source_readings_accepted_total{source="tcp"}'
        deadline = time.time() + 60
        while scrape_metric(http, name) is None:
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(f"mare run exited or never answered: {open(os.path.join(data, 'ingest.out')).read()[-2000:]}")
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", tcp)) as c:
            c.sendall(lines.encode())
        n = lines.count("\n")
        while (scrape_metric(http, name) or 0) < n:
            if proc.poll() is not None:
                sys.exit(f"mare run exited: {open(os.path.join(data, 'ingest.out')).read()[-2000:]}")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--sensors", type=int, default=100)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--produce", choices=["ingest", "log"], default="ingest",
                    help="how the raw topic is filled: mare's ingest (batches, numbers carried) or mare log produce")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    mare = os.path.join(args.build, "bin/mare")
    client = shutil.which("clickhouse-client")
    if not client:
        sys.exit("clickhouse-client is not installed: run scripts/setup.sh")
    work = tempfile.mkdtemp(prefix="mare-bench-sinks-")
    n = args.readings
    try:
        data = os.path.join(work, "data")
        t = time.time()
        readings = [json.dumps(reading(i, args.sensors), separators=(",", ":")) for i in range(n)]
        if args.produce == "ingest":
            produce_by_ingest(mare, data, "".join(r + "\n" for r in readings))
        else:
            lines = "".join(f"{i % args.sensors + 1}\t{r}\n" for i, r in enumerate(readings))
            subprocess.run([mare, "log", "produce", "raw", "--data-dir", data], input=lines.encode(), check=True,
                           stdout=subprocess.DEVNULL)
        print(f"{n} readings produced into the raw topic ({args.produce}) in {time.time() - t:.1f} s")
        with ClickHouse(work) as ch:
            port = free_port()
            sets = [f"sink.clickhouse.url={ch.url}", "sink.clickhouse.database=bench", "sink.clickhouse.rollups=false",
                    f"sink.clickhouse.batch={args.batch}"]
            cmd = [mare, "sink", "clickhouse", "--data-dir", data, "--metrics-listen", f"127.0.0.1:{port}"]
            for s in sets:
                cmd += ["--set", s]
            out = open(os.path.join(work, "sink.out"), "wb")
            start, server_start = time.time(), cpu_seconds(ch.proc.pid)
            sink = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            try:
                while True:
                    if sink.poll() is not None:
                        sys.exit(f"the sink exited: {open(os.path.join(work, 'sink.out')).read()[-2000:]}")
                    try:
                        done = int(ch.query("SELECT sum(m) FROM (SELECT `partition`, max(next_offset) AS m "
                                            "FROM bench.sink_offsets GROUP BY `partition`)")[0][0])
                    except RuntimeError:
                        done = 0
                    if done >= n:
                        break
                    time.sleep(0.05)
                sink_wall = time.time() - start
                sink_cpu = cpu_seconds(sink.pid)
                sink_server_cpu = cpu_seconds(ch.proc.pid) - server_start
                inserts = scrape_metric(port, 'mare_sink_clickhouse_inserts_total{topic="raw"}')
            finally:
                sink.terminate()
                sink.wait(timeout=30)
            rows = int(ch.query("SELECT count() FROM bench.readings FINAL")[0][0])
            assert rows == n, f"{rows} rows for {n} readings"

            # The peer: the same rows, the same bytes, through ClickHouse's own client.
            path = os.path.join(work, "readings.rowbinary")
            columns = ", ".join(f"`{c}`" for c, in ch.query(
                "SELECT name FROM system.columns WHERE database = 'bench' AND table = 'readings'"))
            with open(path, "wb") as f:
                subprocess.run([client, "--port", str(ch.tcp_port), "--query",
                                f"SELECT {columns} FROM bench.readings FORMAT RowBinary"], stdout=f, check=True)
            status, text = ch.request("CREATE TABLE bench.peer AS bench.readings")
            assert status == 200, text
            start, server_start = time.time(), cpu_seconds(ch.proc.pid)
            with open(path, "rb") as f:
                peer = subprocess.Popen([client, "--port", str(ch.tcp_port), "--query",
                                         f"INSERT INTO bench.peer ({columns}) FORMAT RowBinary"], stdin=f)
                _, status, usage = os.wait4(peer.pid, 0)
                assert os.waitstatus_to_exitcode(status) == 0, "clickhouse-client failed"
            peer_wall = time.time() - start
            peer_server_cpu = cpu_seconds(ch.proc.pid) - server_start
            peer_cpu = usage.ru_utime + usage.ru_stime
            assert int(ch.query("SELECT count() FROM bench.peer")[0][0]) == n
            size = os.path.getsize(path)
        sink_rate, peer_rate = n / sink_wall, n / peer_wall
        how = "by mare's ingest, numbers carried" if args.produce == "ingest" else "by mare log produce, no numbers"
        print(f"\nClickHouse 18.16, {n} readings ({how}), {size / n:.0f} RowBinary bytes each, sink batch {args.batch} rows")
        print(f"| what | wall s | readings/s | vs peer | CPU s | cores at 100,000/s | ClickHouse CPU s |")
        print(f"| --- | --- | --- | --- | --- | --- | --- |")
        print(f"| mare sink clickhouse (full raw topic, {inserts:.0f} inserts) | {sink_wall:.2f} | {sink_rate:,.0f} | "
              f"{sink_rate / peer_rate:.2f}x | {sink_cpu:.2f} | {sink_cpu / n * 100_000:.3f} | {sink_server_cpu:.2f} |")
        print(f"| clickhouse-client INSERT ... FORMAT RowBinary from a file | {peer_wall:.2f} | {peer_rate:,.0f} | 1.00x | "
              f"{peer_cpu:.2f} | | {peer_server_cpu:.2f} |")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
