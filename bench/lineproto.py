#!/usr/bin/env python3
"""InfluxDB line protocol over TCP, in one run: mare (`mare run` with only its sources and its
durable log, as bench/ingest.py) against QuestDB's own ILP/TCP ingestion of the same lines
(QuestDB from its Maven Central jar, started as bench/notebook.py does), and mare's NDJSON
over TCP of the same readings for reference. Each is timed from the first byte sent until it
reports every reading taken (mare: mare_source_readings_accepted_total; QuestDB: count() of the
table, its commits being asynchronous); best of ROUNDS. Then the parse rates on one core
(bench/parse_bench.cc, taskset -c 0). Prints two tables.

Usage: bench/lineproto.py [BUILD_DIR] [READINGS] [ROUNDS] [--no-questdb]"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import commit_note, help_and_exit_if_asked, QUESTDB_VERSION, MareSources, QuestDBServer, free_port, send_file

help_and_exit_if_asked(__doc__)

args = [a for a in sys.argv[1:] if not a.startswith("--")]
BUILD = args[0] if len(args) > 0 else "build"
READINGS = int(args[1]) if len(args) > 1 else 2_000_000
ROUNDS = int(args[2]) if len(args) > 2 else 3
WITH_QUESTDB = "--no-questdb" not in sys.argv
MARE = os.path.join(BUILD, "bin", "mare")
QUESTDB_JAR_DIR = "/tmp/mare-bench/questdb-jar"
T0 = 1_704_067_200  # 2024-01-01 00:00:00 UTC


def write_inputs(workdir):
    """The same readings (100 sensors, one a second each) as line protocol and as NDJSON."""
    lines_path, json_path = os.path.join(workdir, "readings.lp"), os.path.join(workdir, "readings.ndjson")
    with open(lines_path, "w") as lp, open(json_path, "w") as js:
        for i in range(READINGS):
            sensor, second = i % 100 + 1, i // 100
            t, h, p = 15 + (i % 97) / 10, 60 + (i % 31) / 3, 1000 + (i % 53) / 5
            lp.write(f"weather,sensor_id={sensor} temperature={t:.2f},humidity={h:.2f},pressure={p:.2f},"
                     f"lat=42.48,lon=3.18 {(T0 + second) * 1_000_000_000}\n")
            js.write(f'{{"timestamp":{T0 + second},"sensor_id":{sensor},"temperature":{t:.2f},"humidity":{h:.2f},'
                     f'"pressure":{p:.2f},"location":{{"lat":42.48,"lon":3.18}},"measurement":"weather"}}\n')
    return lines_path, json_path


def run_mare(path, line_protocol):
    line_tcp = free_port()
    settings = ["sources.line_protocol.tcp=true", f"sources.line_protocol.tcp_listen=127.0.0.1:{line_tcp}",
                "pgwire.enabled=false"]
    with MareSources(MARE, settings, prefix="mare-lineproto-bench-") as mare:
        t0 = time.monotonic()
        send_file(path, line_tcp if line_protocol else mare.tcp_port)
        mare.wait_accepted("line_tcp" if line_protocol else "tcp", READINGS)
        return READINGS / (time.monotonic() - t0)


class QuestDB(QuestDBServer):
    def __init__(self, workdir):
        super().__init__(workdir, QUESTDB_JAR_DIR)

    def count(self):
        try:
            return self.exec("SELECT count() FROM weather", timeout=60)["dataset"][0][0]
        except (OSError, KeyError):
            return 0

    def ingest(self, path):
        try:
            self.exec("DROP TABLE weather", timeout=60)
        except OSError:
            pass
        t0 = time.monotonic()
        send_file(path, self.ilp_port)
        deadline = t0 + 600
        while (n := self.count()) < READINGS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"QuestDB took only {n} of {READINGS} rows")
            time.sleep(0.02)
        return READINGS / (time.monotonic() - t0)


def parse_rates():
    binary = os.path.join(BUILD, "bin", "parse_bench")
    out = subprocess.run(["taskset", "-c", "0", binary, "--benchmark_format=json"], capture_output=True, text=True, check=True)
    results = {b["name"].split("/")[0]: b for b in json.loads(out.stdout)["benchmarks"]}
    peer = results["BM_BareSimdjson"]
    print("\nParse rate, one core, 10,000 readings per iteration (the same readings as line protocol and as JSON)")
    header = f"{'parser':<62} {'readings/s':>12} {'MB/s':>6} {'vs simdjson':>12}"
    print(header)
    print("-" * len(header))
    for name, key in [("line protocol -> JSON readings (LineProtocolParser)", "BM_LineProtocolToJson"),
                      ("line protocol, whole path (parse, validate, hand to ingest)", "BM_LineProtocolIngestPath"),
                      ("JSON, mare ReadingParser (parse + validate)", "BM_MareParser"),
                      ("JSON, bare simdjson On-Demand (no validation)", "BM_BareSimdjson")]:
        b = results[key]
        print(f"{name:<62} {b['items_per_second']:>12,.0f} {b['bytes_per_second'] / 1e6:>6.0f} "
              f"{b['items_per_second'] / peer['items_per_second']:>11.2f}x")


def main():
    workdir = tempfile.mkdtemp(prefix="mare-lineproto-bench-")
    lines_path, json_path = write_inputs(workdir)
    best = {"mare line protocol": 0.0, "mare NDJSON": 0.0}
    questdb = None
    if WITH_QUESTDB:
        questdb = QuestDB(workdir)
        questdb.start()
        best["QuestDB ILP"] = 0.0
    try:
        for _ in range(ROUNDS):
            best["mare line protocol"] = max(best["mare line protocol"], run_mare(lines_path, True))
            best["mare NDJSON"] = max(best["mare NDJSON"], run_mare(json_path, False))
            if questdb:
                best["QuestDB ILP"] = max(best["QuestDB ILP"], questdb.ingest(lines_path))
    finally:
        if questdb:
            questdb.stop()
    print(f"TCP -> durable storage, {READINGS:,} readings of 100 sensors over one connection, best of {ROUNDS} rounds, "
          f"{os.cpu_count()} cores shared{commit_note()}")
    header = f"{'system':<58} {'readings/s':>12} {'vs QuestDB':>11}"
    print(header)
    print("-" * len(header))
    peer = best.get("QuestDB ILP")
    for name, what in [("mare line protocol", "mare, line protocol -> log (sources and log only)"),
                       ("mare NDJSON", "mare, NDJSON -> log (the same readings)"),
                       ("QuestDB ILP", f"QuestDB {QUESTDB_VERSION}, ILP/TCP -> table (visible)")]:
        if name in best:
            ratio = f"{best[name] / peer:>10.2f}x" if peer else ""
            print(f"{what:<58} {best[name]:>12,.0f} {ratio}")
    parse_rates()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
