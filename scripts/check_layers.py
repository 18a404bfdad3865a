#!/usr/bin/env python3
"""Fails when a folder of src/ includes a header of a folder it may not use, or when two units
(a header and its .cc) include each other, directly or through others.

A reading flows one way (sources -> log -> processors -> store and sinks -> query -> dashboard),
and the code's layers follow it: a lower layer never includes a higher one. The rules are the
table under "## Layers" in docs/architecture.md; a folder may always include itself.
Run by `make test` (ctest: layers). Usage: scripts/check_layers.py [SRC_DIR]"""
import os
import re
import sys

ARCHITECTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "architecture.md")


def read_rules(path):
    """folder -> the folders it may include (besides itself), or None for anything: the table
    under "## Layers" in docs/architecture.md, the one place the rules are written."""
    text = open(path, encoding="utf-8").read()
    start = text.index("## Layers")
    end = text.find("\n## ", start + 1)
    rules = {}
    for m in re.finditer(r"^\| `src/([a-z_]+)/` \| ([^|]+) \|$", text[start:end if end > 0 else None], re.M):
        folders = m.group(2).strip()
        rules[m.group(1)] = None if folders == "anything" else [] if folders == "nothing" else [
            f.strip() for f in folders.split(",")]
    if not rules:
        sys.exit(f"{path}: no layer table under '## Layers'")
    return rules


INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_]+)?', re.M)


def component(parts):
    """The unit a file belongs to: 'processors/rollup', 'sinks/mariadb', or a top folder."""
    if parts[0] in ("processors", "sinks") and len(parts) > 2:
        return parts[0] + "/" + parts[1]
    return parts[0]


def unit_cycles(src):
    """Include cycles between units: unit a/b (a/b.h with a/b.cc) uses unit c/d when either of its
    files includes c/d.h. Tests are left out: a test may use what it likes."""
    uses = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith((".h", ".cc")) or name.endswith("_test.cc"):
                continue
            unit = os.path.relpath(os.path.join(root, name), src).rsplit(".", 1)[0]
            text = open(os.path.join(root, name), encoding="utf-8").read()
            for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)\.h"', text, re.M):
                if inc != unit:
                    uses.setdefault(unit, set()).add(inc)
    faults, state = [], {}

    def visit(unit, stack):
        state[unit] = 1
        stack.append(unit)
        for dep in sorted(uses.get(unit, ())):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                faults.append("include cycle: " + " -> ".join(cycle))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[unit] = 2

    for unit in sorted(uses):
        if unit not in state:
            visit(unit, [])
    return faults


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    src = os.path.abspath(src)
    ALLOWED = read_rules(ARCHITECTURE)
    faults = []
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src).split(os.sep)
            top = rel[0]
            if top not in ALLOWED:
                faults.append(f"src/{'/'.join(rel)}: folder src/{top}/ has no rule in docs/architecture.md (## Layers)")
                continue
            allowed = ALLOWED[top]
            if allowed is None:
                continue
            me = component(rel)
            text = open(path, encoding="utf-8").read()
            for m in INCLUDE.finditer(text):
                inc_top = m.group(1)
                if inc_top == top:
                    # Two components of one kind (two sinks, two processors) stay apart.
                    # A file at the top of src/sinks/ (src/processors/) is theirs to share.
                    shared = m.group(2) and os.path.isfile(os.path.join(src, top, m.group(2) + ".h"))
                    if top in ("processors", "sinks") and m.group(2) and not shared and me != top + "/" + m.group(2):
                        line = text.count("\n", 0, m.start()) + 1
                        faults.append(f"src/{'/'.join(rel)}:{line}: {me} includes {inc_top}/{m.group(2)}/")
                    continue
                if inc_top not in allowed:
                    line = text.count("\n", 0, m.start()) + 1
                    faults.append(f"src/{'/'.join(rel)}:{line}: {top}/ may not include {inc_top}/ "
                                  f"(allowed: {', '.join(allowed) or 'nothing'})")
    faults += unit_cycles(src)
    for f in faults:
        print(f)
    print(f"layers: {len(faults)} fault(s)" if faults else "layers: every include follows the layers")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
