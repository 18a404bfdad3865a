#!/usr/bin/env python3
"""Parse rate on one core: mare's parser (parse + validation) vs bare simdjson On-Demand,
measured in the same run. Prints a table.  Usage: bench/parse.py [BUILD_DIR]"""
import json
import os
import subprocess
import sys

from common import help_and_exit_if_asked

help_and_exit_if_asked(__doc__)

build = sys.argv[1] if len(sys.argv) > 1 else "build"
binary = os.path.join(build, "bin", "parse_bench")
out = subprocess.run(["taskset", "-c", "0", binary, "--benchmark_format=json", "--benchmark_filter=BM_MareParser|BM_BareSimdjson"],
                     capture_output=True, text=True, check=True)
results = {b["name"].split("/")[0]: b for b in json.loads(out.stdout)["benchmarks"]}
mare, peer = results["BM_MareParser"], results["BM_BareSimdjson"]
print("Parse rate, one core, 10,000 readings of ~200 bytes per iteration")
print(f"{'parser':<44} {'readings/s':>14} {'MB/s':>8} {'vs bare simdjson':>17}")
for name, b in [("mare ReadingParser (parse + validate)", mare), ("bare simdjson On-Demand (no validation)", peer)]:
    print(f"{name:<44} {b['items_per_second']:>14,.0f} {b['bytes_per_second'] / 1e6:>8.0f} "
          f"{b['items_per_second'] / peer['items_per_second']:>16.2f}x")
