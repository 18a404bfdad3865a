#!/usr/bin/env python3
"""Runs mare's libFuzzer targets (fuzz/, built with MARE_FUZZ=ON) one after another, each for a
given time on its seed corpus (fuzz/corpus/<target>) plus the corpus kept in the build directory,
and prints a table: target, seconds run, executions, exec/s, corpus size, findings. A finding (a
crash, a leak, a timeout, running out of memory, an invariant broken) is kept in
<build>/fuzz-artifacts/<target>/ and its log's tail printed; the exit code is then 1.

Usage: bench/fuzz.py [--build build-fuzz] [--seconds 600] [TARGET ...]   (default: every target)
Reproduce a finding: <build>/bin/<target> <artifact>"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ["reading_parser", "log_batch", "store_column", "store_segment", "rollup_checkpoint", "forecast_checkpoint",
           "sql", "http_ingest", "archive", "line_protocol", "pgwire"]
DICTS = {"reading_parser": "json.dict", "http_ingest": "json.dict", "sql": "sql.dict", "pgwire": "sql.dict"}
ARTIFACT = re.compile(r"^(crash|leak|timeout|oom|slow-unit)-")


def run(build, target, seconds):
    binary = os.path.join(build, "bin", target)
    work = os.path.join(build, "fuzz-corpus", target)      # grows run after run
    artifacts = os.path.join(build, "fuzz-artifacts", target)
    logs = os.path.join(build, "fuzz-logs")
    for d in (work, artifacts, logs):
        os.makedirs(d, exist_ok=True)
    before = set(os.listdir(artifacts))
    args = [binary, work, os.path.join(ROOT, "fuzz", "corpus", target), f"-max_total_time={seconds}",
            "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={artifacts}/"]
    if target in DICTS:
        args.append("-dict=" + os.path.join(ROOT, "fuzz", DICTS[target]))
    log_path = os.path.join(logs, target + ".log")
    start = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT).returncode
    elapsed = time.monotonic() - start
    text = open(log_path, errors="replace").read()
    stat = lambda name: int(m.group(1)) if (m := re.search(rf"stat::{name}:\s+(\d+)", text)) else 0
    found = sorted(f for f in set(os.listdir(artifacts)) - before if ARTIFACT.match(f))
    # A failure that left no artifact (the harness aborted at start, say) is a finding too.
    findings = len(found) or (1 if code != 0 else 0)
    # The corpus in memory at the end (libFuzzer's last "corp: N/size" status), seeds included.
    corp = re.findall(r"corp: (\d+)/", text)
    return {"target": target, "seconds": elapsed, "execs": stat("number_of_executed_units"),
            "corpus": int(corp[-1]) if corp else len(os.listdir(work)), "findings": findings, "artifacts": found, "log": log_path, "text": text,
            "code": code}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build-fuzz")
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("targets", nargs="*", default=TARGETS)
    a = p.parse_args()
    rows = []
    for t in a.targets:
        if t not in TARGETS:
            sys.exit(f"unknown fuzz target {t}; known: {' '.join(TARGETS)}")
        r = run(a.build, t, a.seconds)
        rows.append(r)
        if r["findings"]:
            print(f"--- {t}: finding(s) {' '.join(r['artifacts']) or '(exit code %d)' % r['code']}; log {r['log']}:")
            print("\n".join(r["text"].splitlines()[-60:]))
    print(f"libFuzzer + ASan + UBSan, {a.seconds} s per target (corpus: kept in {a.build}/fuzz-corpus + fuzz/corpus seeds)")
    print(f"{'target':<18} {'seconds':>8} {'executions':>12} {'exec/s':>8} {'corpus':>7} {'findings':>9}")
    for r in rows:
        rate = r["execs"] / r["seconds"] if r["seconds"] else 0
        print(f"{r['target']:<18} {r['seconds']:>8.0f} {r['execs']:>12,} {rate:>8,.0f} {r['corpus']:>7} {r['findings']:>9}")
    sys.exit(1 if any(r["findings"] for r in rows) else 0)


if __name__ == "__main__":
    main()
