#!/usr/bin/env python3
"""Rollup rate on one core (1m, 1h, 1d windows, 5 numeric fields per reading): the synchronous
core (parse + aggregate), the aggregation alone, and the whole processor reading a prepared raw
topic; next to the parse alone (the same parse, no aggregation), measured in the same run. The
core and the processor are measured twice: on records with the numbers ingest parsed (as the
embedded log carries them, docs/formats/log.md) and on records whose JSON they must parse (as
from Kafka, or from a writer other than ingest).
Rates are readings per CPU second (the bench's thread for the core paths, the whole process for
the processor): per core, even when other work shares the core. Prints a table.
Usage: bench/rollup.py [BUILD_DIR] [READINGS] [SENSORS]"""
import json
import os
import subprocess
import sys

from common import help_and_exit_if_asked

help_and_exit_if_asked(__doc__)

build = sys.argv[1] if len(sys.argv) > 1 else "build"
readings = sys.argv[2] if len(sys.argv) > 2 else "2000000"
sensors = sys.argv[3] if len(sys.argv) > 3 else "1000"
binary = os.path.join(build, "bin", "rollup_bench")
# One core for everything: the processor's thread, the log's and the bench's main thread.
out = subprocess.run(["taskset", "-c", "0", binary, readings, sensors], capture_output=True, text=True, check=True)
rows = {r["name"]: r for r in (json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))}
peer = rows["parse_only"]["readings_per_second"]
target = 5_000_000
print(f"Rollup rate per core (readings per CPU second), {int(readings):,} readings of ~{rows['core']['mb_per_second'] * 1e6 / rows['core']['readings_per_second']:.0f} bytes "
      f"from {int(sensors):,} sensors, 5 numeric fields, windows 1m,1h,1d, pinned to one core")
print(f"{'path':<58} {'readings/s':>12} {'vs parse alone':>15} {'vs 5M target':>13}")
labels = [
    ("parse_only", "parse alone (simdjson On-Demand pass, no aggregation)"),
    ("aggregate_only", "aggregate alone (RollupState::Add, pre-parsed)"),
    ("core_numbers", "synchronous core (RollupState::AddRecord + Emit)"),
    ("processor", "whole processor (raw topic -> rollups topic, checkpoints)"),
    ("processor_plain", "whole processor, rollups topic uncompressed"),
    ("core", "synchronous core, parsing each record's JSON"),
    ("processor_json", "whole processor, parsing each record's JSON"),
    ("processor_dedup", "whole processor, duplicate filter on (log.dedup)"),
    ("processor_json_dedup", "whole processor, parsing JSON, duplicate filter on"),
]
for key, label in labels:
    r = rows[key]["readings_per_second"]
    print(f"{label:<58} {r:>12,.0f} {r / peer:>14.2f}x {r / target:>12.2f}x")
c = rows["core_numbers"]
print(f"core: {c['messages']:,} messages formatted in {c['emit_seconds']:.2f} s "
      f"({c['emit_seconds'] / max(c['messages'], 1) * 1e6:.1f} us each), included above; "
      f"without them {c['readings'] / (c['seconds'] - c['emit_seconds']):,.0f} readings/s")
p = rows["processor"]
print(f"processor: {p['emitted']:,} messages emitted, {p['checkpoints']} checkpoints, "
      f"{p['checkpoint_seconds_mean'] * 1000:.1f} ms each on average (Log::Sync included; the prepared topic is synced before); "
      "its time includes the final emission and checkpoint at Stop")
pp = rows["processor_plain"]
print(f"rollups compressed with zstd (rollup.compression, the default): {p['seconds'] / pp['seconds']:.3f}x the CPU "
      f"seconds of the uncompressed topic; on disk {p['rollup_bytes'] / 2**20:,.1f} MiB against "
      f"{pp['rollup_bytes'] / 2**20:,.1f} MiB ({pp['rollup_bytes'] / max(p['rollup_bytes'], 1):.1f} times smaller)")
d, dj, pj = rows["processor_dedup"], rows["processor_json_dedup"], rows["processor_json"]
print(f"duplicate filter (log.dedup, every record within the horizon): {d['seconds'] / p['seconds']:.3f}x the "
      f"processor's CPU seconds with the numbers carried, {dj['seconds'] / pj['seconds']:.3f}x parsing JSON")
cpu = sum(rows[k]["seconds"] for k, _ in labels)
wall = sum(rows[k]["wall_seconds"] for k, _ in labels)
best = rows["processor"]["readings_per_second"]
print(f"target (whole processor, as ingest writes the raw topic): {best:,.0f} readings/s per core, "
      f"{'met' if best >= target else 'NOT met'}")
print(f"CPU {cpu:.2f} s in {wall:.2f} s of wall time: the core was {cpu / wall:.0%} ours")
