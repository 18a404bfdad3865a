#!/usr/bin/env python3
"""A year of running, accelerated (issue 13's target: "24 simulated hours at 10,000 sensors:
RSS flat within 10 %, rollups topic <= raw topic on disk").

Starts `mare run` (embedded log, the default config otherwise) on a fresh data dir and feeds it
over TCP with `mare simulate --sensors 10000 --flat-out --start <24 h before now>`, each sensor
sending --count = hours x 3600 x rate readings, so that simulated time runs through the whole day.
--max-rate spreads them over about --minutes of wall time (simulated time then runs
86,400 s / (minutes x 60) times faster than real time), so that the samples follow the day
instead of a burst and a catch-up. Every --every seconds it samples mare's RSS (VmRSS in
/proc/<pid>/status), the raw and rollups topics' bytes on disk (their files under
<data-dir>/log/topics), the store's bytes, the dead-letter file's (with its rotated copy), and
the rollups' watermark (`mare_rollup_watermark_seconds`: simulated time as the processor has
reached it). Once simulate is done and the store and the rollups have caught up, it samples for
--settle seconds more (a compaction pass runs each log.retention_check_interval, 1 min), then
prints one row per simulated hour and the verdicts:

  - RSS flat: after the warm-up (--warmup-hours of simulated time, 2: every sensor's minute and
    hour windows, dedup window and store blocks exist by then), the highest sample is at most
    1.10 x the lowest;
  - rollups <= raw on disk, at the end; beside it the floor, what a perfectly compacted rollups
    topic would hold (one record per window: sensors x numeric fields x the minute, hour and day
    windows the readings fall in, at the mean record size), which no compaction can go below;
  - the dead-letter file's size (bounded by ingest.dead_letter_* settings).

The default rate, one reading per sensor every 10 minutes (--rate 0.0016667, 1.44 million
readings over the day), is what this shared 2-core machine can take in about half an hour: raw
is ~0.4 GB, and the rollups hold at least one minute window per reading and numeric field (5 for
a simulated buoy) whatever the compaction, ~2.6 GB (records of ~320 B). A real buoy sends every
second to every minute; at rates below one reading a minute the rollups' floor is ~5 times
raw, so the rollups <= raw verdict can only pass at about one reading every 11 s per sensor or
faster (the floor shrinks as more readings share a window): at --rate 0.1 and 10,000 sensors,
86.4 million readings and ~25 GB of raw for a day (~290 B a reading on disk). The disk holds that
now (68-79 GB free on 2026-12-07, ~25 GB the session before), but at the ~9,600 readings/s a
shared run sustains it takes about 2.5 hours of wall time. --rate 0.1 --sensors 1000 (8.64
million readings, ~2.5 GB of raw, 15 to 25 minutes) shows that regime in a session.

Usage: bench/longrun.py [--sensors N] [--rate HZ] [--hours H] [--minutes M] [--every S]
                        [--warmup-hours H] [--settle S] [--build DIR] [--dir DIR] [--keep] [--set K=V ...]"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RESOLUTIONS_S = (60, 3600, 86400)  # the rollups' default windows: 1m, 1h, 1d


def dir_bytes(path):
    """Bytes of the files under `path` (allocated size: what the disk gives up)."""
    total = 0
    for base, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(base, f)).st_blocks * 512
            except FileNotFoundError:
                pass  # a segment compacted or deleted while we walked
    return total


def status_bytes(pid):
    """VmRSS and its parts (RssAnon: the heap and stacks; RssFile: mapped files) from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0]) * (1024 if key != "Threads" else 1)
    return out


def rss_bytes(pid):
    return status_bytes(pid).get("VmRSS", 0)


class Mare:
    def __init__(self, binary, data, settings):
        self.binary, self.data = binary, data
        self.tcp_port, self.http_port = free_port(), free_port()
        sets = [f'sources.tcp.listen="127.0.0.1:{self.tcp_port}"', f'http.listen="127.0.0.1:{self.http_port}"',
                f'sources.udp.listen="127.0.0.1:{free_port()}"', f'pgwire.listen="127.0.0.1:{free_port()}"', *settings]
        args = [binary, "run", "--data-dir", data]
        for s in sets:
            args += ["--set", s]
        os.makedirs(data, exist_ok=True)
        self.out = open(os.path.join(os.path.dirname(data), "mare-run.out"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"mare run exited with {self.proc.returncode}; see {self.out.name}")
            try:
                self.metrics()
                return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as r:
            out = {}
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    out[name] = float(value)
            return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=300)
        self.out.close()
        return rc


def sample(mare, started, start_s, trace=None):
    m = mare.metrics()
    if trace:  # every metric beside the process's memory, one JSON line a sample, to find what holds it
        trace.write(json.dumps({"t": time.time() - started, **status_bytes(mare.proc.pid), "metrics": m}) + "\n")
        trace.flush()
    watermark = m.get("mare_rollup_watermark_seconds", 0.0)
    dead = sum(os.path.getsize(p) for p in (os.path.join(mare.data, "dead-letter.log"),
                                             os.path.join(mare.data, "dead-letter.log.1")) if os.path.exists(p))
    return {"wall_s": time.time() - started,
            "sim_h": max(0.0, (watermark - start_s) / 3600) if watermark else 0.0,
            "accepted": int(sum(v for k, v in m.items() if k.startswith("mare_source_readings_accepted_total"))),
            "rejected": int(sum(v for k, v in m.items() if k.startswith("mare_source_readings_rejected_total"))),
            "rss": rss_bytes(mare.proc.pid),
            "raw": dir_bytes(os.path.join(mare.data, "log", "topics", "raw")),
            "rollups": dir_bytes(os.path.join(mare.data, "log", "topics", "rollups")),
            "store": dir_bytes(os.path.join(mare.data, "store")),
            "dead": dead,
            "lag": int(m.get("mare_store_lag_records", 0) + m.get("mare_rollup_lag_records", 0)),
            # What the RSS is made of, in part: the store's index cache (bounded by
            # store.index_cache_bytes) and the forecasts table's rows (an index entry per issue).
            "index_cache": m.get("mare_store_index_cache_bytes", 0.0),
            "forecast_rows": int(m.get("mare_store_forecast_rows", 0)),
            # The rollup records' mean size as appended (compaction leaves offsets' gaps, so the
            # topic's offsets do not count what it holds).
            "rollup_record_bytes": m.get('mare_log_bytes_appended_total{topic="rollups"}', 0)
            / max(1.0, m.get('mare_log_records_appended_total{topic="rollups"}', 0))}


def windows_per_sensor(start_s, count, rate):
    """Distinct 1m, 1h and 1d windows a sensor's readings fall in (times start + i / rate)."""
    times = [start_s + i / rate for i in range(count)]
    return sum(len({int(t // r) for t in times}) for r in RESOLUTIONS_S)


def numeric_fields(binary, data):
    """The numeric fields of the first raw reading (what the rollups keep windows of)."""
    p = subprocess.run([binary, "log", "tail", "raw", "--format", "ndjson", "--data-dir", data],
                       capture_output=True, text=True, check=True)
    first = json.loads(p.stdout.splitlines()[0])["value"]
    return sorted(k for k, v in first.items()
                  if k != "sensor_id" and isinstance(v, (int, float)) and not isinstance(v, bool))


def mib(b):
    return f"{b / 2**20:,.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sensors", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=1 / 600, help="readings per second per sensor, simulated "
                    "(default 1/600: one every 10 minutes; see above why)")
    ap.add_argument("--hours", type=float, default=24, help="simulated hours")
    ap.add_argument("--minutes", type=float, default=25,
                    help="wall minutes to spread the feed over (--max-rate); 0: flat out, no cap")
    ap.add_argument("--every", type=float, default=5, help="seconds between samples")
    ap.add_argument("--warmup-hours", type=float, default=2, help="simulated hours before RSS must be flat")
    ap.add_argument("--settle", type=float, default=150,
                    help="seconds to go on sampling once caught up (compaction passes run every minute)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="its bin/mare runs")
    ap.add_argument("--dir", default=None, help="where the data dir goes (default: a new temp dir, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    ap.add_argument("--trace", default=None, help="write each sample's /proc status and every metric to this "
                    "file (JSON lines)")
    ap.add_argument("--set", action="append", default=[], help="a setting for mare run (repeatable)")
    args = ap.parse_args()

    binary = os.path.join(args.build, "bin", "mare")
    base = args.dir or tempfile.mkdtemp(prefix="mare-longrun-")
    data = os.path.join(base, "data")
    shutil.rmtree(data, ignore_errors=True)
    count = int(round(args.hours * 3600 * args.rate))
    total = count * args.sensors
    max_rate = total / (args.minutes * 60) if args.minutes > 0 else 0
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=args.hours)).replace(microsecond=0)
    start_s = start.timestamp()
    print(f"mare {binary}: {args.sensors:,} sensors x {count:,} readings (one every {1 / args.rate:,.0f} s simulated) "
          f"= {total:,} readings over {args.hours:g} simulated hours from {start:%Y-%m-%d %H:%M:%S} UTC, "
          + (f"at most {max_rate:,.0f}/s (~{args.minutes:g} min)" if max_rate else "flat out")
          + f"; data in {data}; 2 cores shared with other work", flush=True)

    mare = Mare(binary, data, args.set)
    started = time.time()
    sim_cmd = [binary, "simulate", "--target", f"tcp://127.0.0.1:{mare.tcp_port}", "--sensors", str(args.sensors),
               "--rate", repr(args.rate), "--count", str(count), "--flat-out", "--start", f"{start:%Y-%m-%d %H:%M:%S}"]
    if max_rate:
        sim_cmd += ["--max-rate", f"{max_rate:.0f}"]
    sim_out = open(os.path.join(base, "simulate.out"), "wb")
    sim = subprocess.Popen(sim_cmd, stdout=sim_out, stderr=subprocess.STDOUT)
    samples = []
    trace = open(args.trace, "w") if args.trace else None
    caught_up_at = None
    rc = None
    try:
        while True:
            time.sleep(args.every)
            if mare.proc.poll() is not None:
                raise SystemExit(f"mare run died ({mare.proc.returncode}); see {mare.out.name}")
            s = sample(mare, started, start_s, trace)
            samples.append(s)
            done = sim.poll() is not None
            if done and sim.returncode != 0:
                raise SystemExit(f"mare simulate exited {sim.returncode}; see {sim_out.name}")
            if len(samples) % max(1, int(60 / args.every)) == 0:
                print(f"  {s['wall_s'] / 60:5.1f} min: simulated {s['sim_h']:5.2f} h, {s['accepted']:,} readings, "
                      f"RSS {mib(s['rss'])} MiB, raw {mib(s['raw'])} MiB, rollups {mib(s['rollups'])} MiB, "
                      f"lag {s['lag']:,}", flush=True)
            if caught_up_at is None and done and s["accepted"] + s["rejected"] >= total and s["lag"] == 0:
                caught_up_at = s["wall_s"]
            if caught_up_at is not None and s["wall_s"] - caught_up_at >= args.settle:
                break
        fields = numeric_fields(binary, data)
    finally:
        if sim.poll() is None:
            sim.terminate()
            sim.wait()
        rc = mare.stop()
        sim_out.close()

    # One row per simulated hour (the first sample at or past it), then the last.
    rows, hour = [], 1
    for s in samples:
        if s["sim_h"] >= hour or s is samples[-1]:
            rows.append(s)
            hour = int(s["sim_h"]) + 1
    print()
    print("| simulated h | wall min | readings | RSS MiB | index cache MiB | forecast rows | raw MiB | rollups MiB "
          "| rollups / raw | store MiB | dead-letter KiB | lag |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in rows:
        ratio = s["rollups"] / s["raw"] if s["raw"] else 0
        print(f"| {s['sim_h']:.2f} | {s['wall_s'] / 60:.1f} | {s['accepted']:,} | {mib(s['rss'])} | "
              f"{mib(s['index_cache'])} | {s['forecast_rows']:,} | {mib(s['raw'])} | "
              f"{mib(s['rollups'])} | {ratio:.2f} | {mib(s['store'])} | {s['dead'] / 1024:,.1f} | {s['lag']:,} |")

    last = samples[-1]
    warm = [s["rss"] for s in samples if s["sim_h"] >= args.warmup_hours]
    low, high = min(warm), max(warm)
    flat = high <= 1.10 * low
    # The floor: one record per window the readings fall in (no compaction keeps less).
    per_sensor = windows_per_sensor(start_s, count, args.rate)
    windows = args.sensors * len(fields) * per_sensor
    record_bytes = last["rollup_record_bytes"]
    floor = windows * record_bytes
    print()
    print(f"RSS after {args.warmup_hours:g} simulated hours of warm-up: {mib(low)} to {mib(high)} MiB over {len(warm)} "
          f"samples (+{(high / low - 1) * 100:.1f} %), at the end {mib(last['rss'])} MiB: "
          + ("FLAT (within 10 %)" if flat else "NOT FLAT (more than 10 %)"))
    print(f"rollups on disk {mib(last['rollups'])} MiB (records of {record_bytes:.0f} B on average), "
          f"raw {mib(last['raw'])} MiB: rollups / raw = {last['rollups'] / last['raw']:.2f}: "
          + ("rollups <= raw: PASS" if last["rollups"] <= last["raw"] else "rollups > raw: FAIL"))
    print(f"  floor (one record per window: {args.sensors:,} sensors x {len(fields)} numeric fields "
          f"({', '.join(fields)}) x {per_sensor:,} windows of 1m/1h/1d): {windows:,} records, ~{mib(floor)} MiB "
          f"= {floor / last['raw']:.2f} x raw; on disk {last['rollups'] / floor:.2f} x the floor" if floor else "")
    caught = f"caught up {caught_up_at / 60:.1f} min after the start" if caught_up_at is not None else "never caught up"
    print(f"dead-letter file {last['dead']:,} bytes; {last['accepted']:,} readings accepted, {last['rejected']:,} rejected; "
          f"store {mib(last['store'])} MiB; {caught}")
    print(f"mare run stopped with {rc}")
    if not args.keep and not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    elif not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return 0 if flat and last["rollups"] <= last["raw"] and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
