#!/usr/bin/env python3
"""Instructions per line of the line protocol converter, counted by callgrind (repeatable on a
loaded machine, unlike wall time): bench/lineproto_convert.cc converts a batch of lines shaped as
lineproto.py's (measurement, tag sensor_id, five float fields, nanosecond timestamps) ROUNDS times,
then converts and hands them to ingest ROUNDS times, each phase counted alone. With a second build
directory (an older build), both are counted in the same run and the ratio printed.

Usage: bench/lineproto_instr.py [BUILD] [BEFORE_BUILD] [--lines N] [--rounds N]"""
import glob
import os
import subprocess
import sys
import tempfile

from common import help_and_exit_if_asked

help_and_exit_if_asked(__doc__)


def option(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


LINES = option("--lines", 10_000)
ROUNDS = option("--rounds", 10)
skip = {sys.argv.index(o) + 1 for o in ("--lines", "--rounds") if o in sys.argv}
args = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and i not in skip]
BUILDS = args[:2] if args else ["build"]


def count(build):
    """Instructions per line of each phase: {'convert': x, 'convert+handover': y}."""
    binary = os.path.join(build, "bin", "lineproto_convert")
    with tempfile.TemporaryDirectory(prefix="mare-lineproto-instr-") as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, str(LINES), str(ROUNDS)],
                       check=True, capture_output=True, text=True)
        phases = {}
        for path in sorted(glob.glob(out + ".*")):
            trigger, total = None, None
            with open(path) as f:
                for line in f:
                    if line.startswith("desc: Trigger: Client Request:"):
                        trigger = line.split(":", 3)[3].strip()
                    elif line.startswith("totals:"):
                        total = int(line.split()[1])
            if trigger in ("convert", "convert+handover"):
                phases[trigger] = total / (LINES * ROUNDS)
        return phases


def main():
    results = [(build, count(build)) for build in BUILDS]
    print(f"callgrind instructions per line, {LINES:,} lines x {ROUNDS} rounds (lineproto.py's line shape)")
    header = f"{'build':<40} {'convert':>10} {'+ handover':>12}"
    if len(results) > 1:
        header += f" {'vs ' + BUILDS[1]:>14}"
    print(header)
    print("-" * len(header))
    base = results[1][1] if len(results) > 1 else None
    for build, phases in results:
        row = f"{build:<40} {phases['convert']:>10.0f} {phases['convert+handover']:>12.0f}"
        if base:
            row += f" {phases['convert'] / base['convert']:>13.2f}x"
        print(row)


if __name__ == "__main__":
    main()
