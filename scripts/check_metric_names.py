#!/usr/bin/env python3
"""Fails when a metric name breaks mare's naming rule, when README.md's metrics table and the
names the components declare differ, when C++ outside the names headers spells a metric name
as a literal, or when a test, benchmark or document names a metric nobody declares (a rename
would otherwise leave them reading nothing, silently).

Each component declares its metrics in one header of its folder, src/**/<component>_metrics.h:
    inline constexpr metrics::Metric kReadingsAccepted{"mare_source_readings_accepted_total", "..."};
Run by `make test` (ctest: metric_names). Usage: scripts/check_metric_names.py [REPO_DIR]"""
import os
import re
import sys

COMPONENTS = ("source", "dead_letter", "log", "rollup", "forecast", "store", "sink", "query", "http", "pgwire")
# The unit a gauge or a histogram ends with; a counter ends with _total (after its own unit, if any).
# "up" is a state gauge's unit: 1 while the thing works, 0 while not.
UNITS = ("bytes", "seconds", "records", "rows", "windows", "series", "segments", "connections", "offset", "partitions", "up")

DECLARATION = re.compile(r'inline constexpr metrics::Metric (k\w+)\{"([^"]*)", "([^"]*)"\};')
LITERAL = re.compile(r'"mare_[a-z0-9_]+')
NAME = re.compile(r"mare_[a-z0-9_]+")


def rule_faults(name):
    """Why `name` breaks mare_<component>_<what>_<unit>, or [] when it does not."""
    if not re.fullmatch(r"mare(_[a-z0-9]+)+", name):
        return [f"{name}: lower-case words joined by single underscores"]
    rest = name[len("mare_"):]
    component = next((c for c in sorted(COMPONENTS, key=len, reverse=True) if rest.startswith(c + "_")), None)
    if component is None:
        return [f"{name}: no component (one of {', '.join(COMPONENTS)}) after mare_"]
    words = rest[len(component) + 1:].split("_")
    unit = words[-1]
    if unit != "total" and unit not in UNITS:
        return [f"{name}: ends in neither _total nor a unit ({', '.join(UNITS)})"]
    if len(words) < 2:
        return [f"{name}: says its unit but not what it measures"]
    return []


def declared(src):
    """name -> (header, constant, help) for every metric the names headers declare."""
    out, faults = {}, []
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith("_metrics.h"):
                continue
            path = os.path.relpath(os.path.join(root, f), os.path.dirname(src))
            text = open(os.path.join(root, f), encoding="utf-8").read()
            for const, name, help_text in DECLARATION.findall(text):
                if name in out:
                    faults.append(f"{name}: declared twice ({out[name][0]} and {path})")
                if not help_text:
                    faults.append(f"{name}: no help text ({path})")
                out[name] = (path, const, help_text)
    return out, faults


def readme_names(readme):
    text = open(readme, encoding="utf-8").read()
    start = text.index("\n## Metrics\n")
    end = text.index("\n## ", start + 1)
    table = [line for line in text[start:end].splitlines() if line.startswith("| `mare_")]
    return {n for line in table for n in NAME.findall(line.split(" | ")[0])}


def literals(repo):
    """Metric names spelled as literals outside the names headers and tests."""
    faults = []
    for top in ("src", "bench"):
        for root, _, files in os.walk(os.path.join(repo, top)):
            for f in sorted(files):
                if not f.endswith((".h", ".cc")) or f.endswith(("_metrics.h", "_test.cc")):
                    continue
                path = os.path.join(root, f)
                for i, line in enumerate(open(path, encoding="utf-8"), 1):
                    if LITERAL.search(line) and not line.lstrip().startswith("//"):
                        faults.append(f"{os.path.relpath(path, repo)}:{i}: a metric name as a literal; "
                                      "use the component's <component>_metrics.h")
    return faults


# Names of the mare_<component>_ form that are not metrics: the MariaDB sink's positions table.
NOT_METRICS = {"mare_sink_offsets"}
MENTION = re.compile(r"(?<=[`\"'])mare_(?:%s)_[a-z0-9_]+" % "|".join(COMPONENTS))


def stale_mentions(repo, names):
    """Metric names that tests, benchmarks and documents read or cite but nobody declares."""
    faults = []
    paths = [os.path.join(repo, "README.md")]
    for top, exts in (("tests/e2e", (".py",)), ("bench", (".py", ".md")), ("docs", (".md",))):
        for root, _, files in os.walk(os.path.join(repo, top)):
            paths += [os.path.join(root, f) for f in sorted(files) if f.endswith(exts)]
    for path in paths:
        renames = os.path.basename(path) == "metrics-renames.md"  # old -> new: only "new" is declared
        for i, line in enumerate(open(path, encoding="utf-8"), 1):
            cited = line.split(" | ")[1] if renames and line.startswith("| `mare_") else "" if renames else line
            for name in MENTION.findall(cited):
                if name.endswith("_"):
                    continue  # a prefix, not a name
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if name not in names and base not in names and name not in NOT_METRICS:
                    faults.append(f"{os.path.relpath(path, repo)}:{i}: {name} is declared by no src/**/*_metrics.h")
    return faults


def main():
    repo = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    names, faults = declared(os.path.join(repo, "src"))
    if not names:
        faults.append("no src/**/*_metrics.h declares a metric")
    for name in sorted(names):
        faults += rule_faults(name)
    listed = readme_names(os.path.join(repo, "README.md"))
    for name in sorted(set(names) - listed):
        faults.append(f"{name}: declared in {names[name][0]}, missing from README.md's metrics table")
    for name in sorted(listed - set(names)):
        faults.append(f"{name}: in README.md's metrics table, declared by no src/**/*_metrics.h")
    faults += literals(repo)
    faults += stale_mentions(repo, names)
    for f in faults:
        print(f)
    print(f"metric names: {len(faults)} fault(s)" if faults else f"metric names: {len(names)} names follow the rule, "
          "README.md lists exactly them, no literal elsewhere, no stale name read")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
