#!/usr/bin/env python3
"""kill -9 soak (issue 13's target): N trials on one data dir, each `mare run` (MariaDB sink on,
against one real MariaDB started once; MQTT source on, subscribed to one real mosquitto started
once) loaded over HTTP, TCP, UDP and MQTT (QoS 1, one reading a message, published with
paho-mqtt) with unique sequence numbers, killed -9 at a seeded random moment (0.2-2.5 s into the
load) and restarted; after the last, a clean restart, and once the broker has delivered
everything (a last reading, the fence, is in the store) and the store, the rollups and the sink
have caught up:

  (a) every reading HTTP acknowledged, and every MQTT message the broker acknowledged to the
      publisher, is in the raw topic exactly once (MQTT: the broker redelivers what mare read but
      had not acknowledged at a kill, and ingest refuses those copies as duplicates); TCP and
      UDP acknowledge nothing, so for them: at most once; and nothing in the log that was never sent;
  (b) the store equals the log: per sensor count, sum, min and max of seq, by SQL over HTTP;
  (c) the rollups topic (newest revision per window, 1m/1h/1d) equals a recompute in Python
      from the raw records: count, min, max, first, last within 1e-12, mean, stddev within 1e-9;
  (d) MariaDB's rollup_minute/hour/day equal those rollups (revision and count exact, the rest
      within 1e-12); and `mare log verify` passes and the last stop is clean;
  (e) an HTTP request unanswered at a kill (its outcome unknown to the sender) is in the log
      whole or not at all, never in part.

Prints a table and exits 1 on any failure. The code is tests/e2e/soak.py, which
tests/e2e/test_soak.py runs with 3 trials in `make test`.

Usage: bench/soak.py [--trials N] [--seed S] [--load X] [--http-chunk N] [--build DIR] [--dir DIR] [--keep]"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None, help="the kill moments' seed (default: random, printed)")
    ap.add_argument("--load", type=float, default=1.0,
                    help="multiplies the offered rates (2,000 readings/s over HTTP and TCP, 1,000 over UDP and MQTT)")
    ap.add_argument("--http-chunk", type=int, default=None,
                    help="readings per HTTP request (default 50); larger requests are longer to append, so more "
                         "of the kills land inside one")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="its bin/mare runs (or $MARE_BIN if set)")
    ap.add_argument("--dir", default=None, help="where the data dir and MariaDB go (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the directory")
    args = ap.parse_args()
    os.environ.setdefault("MARE_BIN", os.path.join(args.build, "bin", "mare"))
    sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))
    import soak  # noqa: E402 (reads MARE_BIN through harness)
    from mariadb_server import MariaDB  # noqa: E402
    from mosquitto_server import Mosquitto  # noqa: E402

    for t in soak.RATES:
        soak.RATES[t] = int(soak.RATES[t] * args.load)
    if args.http_chunk:
        soak.CHUNK["http"] = args.http_chunk
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    base = args.dir or tempfile.mkdtemp(prefix="mare-soak-")
    os.makedirs(base, exist_ok=True)
    print(f"mare {os.environ['MARE_BIN']}, seed {seed}, {args.trials} trials, data in {base}", flush=True)
    started = time.time()
    try:
        with MariaDB(base) as db, Mosquitto(base) as broker:
            s = soak.Soak(os.path.join(base, "data"), db, seed, broker, say=lambda line: print(line, flush=True))
            for _ in range(args.trials):
                s.trial()
            trials_s = time.time() - started
            report = s.verify()
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(soak.table(report))
    print(f"\n{trials_s:.0f} s of trials, {time.time() - started:.0f} s in all")
    bad = soak.failures(report)
    for line in bad:
        print("FAIL:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
