#!/usr/bin/env python3
"""Fails when src/query/ reports an error other than as a value.

query/'s errors are values, as in the rest of mare: a function that can fail returns false (or
nullptr) and fills a SqlError (what, where, whose fault), which its caller passes on. Nothing in
query/ throws. What can still be thrown comes from outside (std::bad_alloc from an allocation, a
library's exception), and executor.cc alone catches it: at RunQuery's boundary, and at the top
of the aggregation's second thread (an exception must not leave a thread). Tests may do as they
like. Run by `make test` (ctest: query_errors). Usage: scripts/check_query_errors.py [SRC_DIR]"""
import os
import re
import sys

# Where a catch may stand, and what it may catch: std:: exceptions only.
CATCH_ALLOWED = {"executor.cc"}
STD_CATCH = re.compile(r"catch\s*\(\s*const\s+std::(bad_alloc|exception)\s*&")


def code_lines(path):
    """The file's lines without comments and string literals (a message may say "throw")."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
        line = re.sub(r"'(?:\\.|[^'\\])*'", "''", line)
        lines.append(line.split("//", 1)[0])
    return lines


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    folder = os.path.join(src, "query")
    problems = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith((".cc", ".h")) or name.endswith("_test.cc"):
            continue
        for n, line in enumerate(code_lines(os.path.join(folder, name)), 1):
            where = f"src/query/{name}:{n}"
            if re.search(r"\bthrow\b", line):
                problems.append(f"{where}: throws; return false (or nullptr) with the SqlError instead")
            if re.search(r"\bcatch\b", line):
                if name not in CATCH_ALLOWED:
                    problems.append(f"{where}: catches; only executor.cc catches (what the language or a library throws)")
                elif not STD_CATCH.search(line):
                    problems.append(f"{where}: catches other than std::bad_alloc or std::exception")
    for p in problems:
        print(p)
    if problems:
        sys.exit(f"{len(problems)} error(s) reported other than as values in src/query/ (see this script's docstring)")
    print("src/query/: errors are values; executor.cc alone catches std:: exceptions")


if __name__ == "__main__":
    main()
