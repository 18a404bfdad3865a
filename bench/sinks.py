#!/usr/bin/env python3
"""The sinks that copy the log to a server (ClickHouse, Elasticsearch), each next to that
server's own best client on the same readings in the same run (issue 18's targets: at least 0.9x
the peer's rate, at most 0.3 of a core at 100,000 readings/s; and their hourly answers equal to
mare's own SQL).

The readings (bench-shaped buoys: 8 numbers and a text each, 100 sensors) are produced into the
raw topic of an embedded log first, as in production: sent over TCP to `mare run` with only its
sources (no rollups, no store), whose ingest appends them in batches with their numbers beside
the JSON (docs/formats/log.md, attribute bit 3). `--produce log` appends them with `mare log
produce` instead: one record a batch and no numbers, as records from a producer other than mare's
ingest (Kafka's never carry numbers). Elasticsearch gets a topic of its own of `--es-readings`
readings (fewer: a JVM on two shared cores is slow), the first of the same readings.

Each round runs the sink, then the peer, on a fresh table or index of the same definition; the
best round of each is printed (`--rounds`; the machine is shared, so wall times vary from run to
run; CPU seconds vary much less), and each round's own ratio with their median. A sink is started on the full topic (`mare sink <kind>`, rollups
off) and timed from its start until its saved position covers all N, with its own CPU seconds
(user + system of the sink process, /proc) projected to cores at 100,000 readings/s. The server's
CPU seconds during each are printed too (the sink's include its start's statements; this script
polls the sink's metrics, and the server for the saved position only once every row is written).

ClickHouse (Debian's clickhouse-server 18.16, started by the tests' harness,
tests/e2e/clickhouse_server.py): the peer is `clickhouse-client --query "INSERT INTO ... FORMAT
RowBinary"` from a file holding the same rows in the same bytes (read back with `SELECT ... FORMAT
RowBinary` from the sink's table); its own CPU seconds are printed (clickhouse-client parses the
RowBinary file and sends Native blocks). While the sink inserts, system.parts is polled every 50
ms for the most active parts one partition of its table holds (18.16 delays inserts at
parts_to_delay_insert, 150, and refuses them at parts_to_throw_insert, 300: "too many parts"), and
system.events gives the inserts it delayed or refused; `--batch` shows what the sink's batch size
does to them.

Elasticsearch (7.10.2 from Maven Central's jars, started by the tests' harness,
tests/e2e/elasticsearch_server.py): the peer is the official Python client's
`helpers.parallel_bulk` (elasticsearch-py 7.13.4, the newest that talks to a 7.10 node whose
build flavor is not "default", from the venv scripts/setup-bench.sh gives it: the script runs
again under that venv's python when python3 lacks it, bench/peer_python.py; `--es-threads`, `--es-chunk`) indexing the same documents (read back
from the sink's index with a scroll: the same _index naming, _id and _source, the sources handed
over as JSON text, so the client only frames them) into a fresh index with the sink's index's
mappings and settings; its CPU seconds are this process's during the run. Both count until the
last item is acknowledged (the sink: its position saved in Elasticsearch, after every item).
Request bodies are sent as the client sends them by default, uncompressed, by both (the sink's
own default is gzip, which on loopback only costs CPU on both sides); `--es-gzip` gzips both.

Answers: after the sinks, `mare run` with its store on reads the same topic, and mare's SQL
(`time_bucket('1h', ts)`, count/min/max/avg of several fields per sensor and hour) is compared with
ClickHouse's SQL on the sink's table (`FINAL`, `toStartOfHour`) and Elasticsearch's terms +
date_histogram aggregation on the sink's index: count, min and max exact, avg within 1e-9
relative. A mismatch exits 1.

Usage: bench/sinks.py [--build DIR] [--sinks clickhouse,elasticsearch] [--readings N] [--es-readings N]
                      [--rounds N] [--batch ROWS] [--es-batch DOCS] [--es-threads N] [--es-chunk DOCS] [--es-gzip]
                      [--produce ingest|log] [--keep]"""
import argparse
import datetime
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))

from clickhouse_server import ClickHouse  # noqa: E402
from harness import free_port, scrape_metric  # noqa: E402
from peer_python import run_under_peer_venv  # noqa: E402

T0 = 1705831200  # 2024-01-21T10:00:00Z
FIELDS = ("temperature", "pressure", "wave_height")  # whose hourly answers are compared


def reading(i, sensors):
    sensor = 1 + i % sensors
    return {"timestamp": T0 + i // sensors, "sensor_id": sensor, "temperature": round(12 + (i * 37 % 101) / 10, 2),
            "humidity": 60 + i % 30, "pressure": 990 + i % 40, "water_temperature": 14.5 + (i % 13) / 10,
            "wave_height": 1 + (i % 7) / 10, "wind_speed": (i * 7 % 150) / 10, "wind_direction": i * 13 % 360,
            "dew_point": 9.5 + (i % 11) / 10, "status": "ok" if i % 5 else "degraded"}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def start_mare_run(mare, data, sets, log_name):
    """`mare run` on data with only what `sets` turns on; returns (process, HTTP port)."""
    http = free_port()
    cmd = [mare, "run", "--data-dir", data, "--set", f"http.listen=127.0.0.1:{http}"]
    for s in ["sources.udp.enabled=false", "sources.unix.enabled=false", "rollup.enabled=false",
              "forecast.enabled=false", "pgwire.enabled=false", *sets]:
        cmd += ["--set", s]
    os.makedirs(data, exist_ok=True)
    out = open(os.path.join(data, log_name), "wb")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), http


def produce_by_ingest(mare, data, lines):
    """The readings through `mare run`'s TCP source and ingest (sources and log only), as in
    production; returns once the log acknowledged all of them and mare stopped."""
    tcp = free_port()
    proc, http = start_mare_run(mare, data, [f"sources.tcp.listen=127.0.0.1:{tcp}", "store.enabled=false"], "ingest.out")
    try:
        name = 'mare_source_readings_accepted_total{source="tcp"}'
        deadline = time.time() + 60
        while scrape_metric(http, name) is None:
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(f"mare run exited or never answered: {open(os.path.join(data, 'ingest.out')).read()[-2000:]}")
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", tcp)) as c:
            c.sendall(lines.encode())
        n = lines.count("\n")
        while (scrape_metric(http, name) or 0) < n:
            if proc.poll() is not None:
                sys.exit(f"mare run exited: {open(os.path.join(data, 'ingest.out')).read()[-2000:]}")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def produce(args, mare, data, readings):
    t = time.time()
    if args.produce == "ingest":
        produce_by_ingest(mare, data, "".join(r + "\n" for r in readings))
    else:
        lines = "".join(f"{i % args.sensors + 1}\t{r}\n" for i, r in enumerate(readings))
        subprocess.run([mare, "log", "produce", "raw", "--data-dir", data], input=lines.encode(), check=True,
                       stdout=subprocess.DEVNULL)
    print(f"{len(readings)} readings produced into the raw topic of {os.path.basename(data)} ({args.produce}) "
          f"in {time.time() - t:.1f} s", flush=True)


def epoch_s(text):
    """Seconds since the epoch of mare's or ClickHouse's text timestamp (UTC)."""
    text = text.replace("Z", "+00:00").replace(" ", "T")
    if "+" not in text[10:]:
        text += "+00:00"
    return int(datetime.datetime.fromisoformat(text).timestamp())


def mare_answers(mare, data, n):
    """{(sensor, hour start s, field): (count, min, max, avg)} from mare's own SQL, with its store
    fed from the data dir's raw topic by `mare run`."""
    proc, http = start_mare_run(mare, data, ["sources.tcp.enabled=false", 'store.flush_interval="1s"'], "store.out")

    def sql(q):
        url = f"http://127.0.0.1:{http}/api/v1/query?" + urllib.parse.urlencode({"q": q})
        with urllib.request.urlopen(url, timeout=120) as r:
            return json.loads(r.read())["rows"]
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                sys.exit(f"mare run exited: {open(os.path.join(data, 'store.out')).read()[-2000:]}")
            try:
                if sql("SELECT count(*) FROM readings")[0][0] == n:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("mare's store did not hold every reading within 300 s")
            time.sleep(0.2)
        out = {}
        for f in FIELDS:
            for s, hour, c, lo, hi, avg in sql(f"SELECT sensor_id, time_bucket('1h', ts) AS hour, count({f}), min({f}), "
                                               f"max({f}), avg({f}) FROM readings GROUP BY sensor_id, hour"):
                out[(int(s), epoch_s(hour), f)] = (int(c), lo, hi, avg)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def compare(what, got, want):
    """Prints and returns the number of groups of `got` that differ from `want` (mare's SQL)."""
    bad = 0
    for k in sorted(set(got) | set(want)):
        g, w = got.get(k), want.get(k)
        same = g is not None and w is not None and g[:3] == w[:3] and abs(g[3] - w[3]) <= 1e-9 * max(1.0, abs(w[3]))
        if not same:
            if bad < 5:
                print(f"  {what} differs at {k}: {g} vs mare's {w}")
            bad += 1
    print(f"answers, {what} vs mare's SQL: {len(want)} groups (sensor, hour, field), "
          f"{'all equal' if bad == 0 else f'{bad} differ'}")
    return bad


def table(title, rows, sinks=None, peers=None):
    print(f"\n{title}")
    if sinks:
        # Each round's sink and peer ran within seconds of each other: their ratio, round by
        # round, shows how much the best-of figure owes to a quiet moment of the machine.
        ratios = sorted(p[0] / s[0] for s, p in zip(sinks, peers))
        print("sink / peer rate, round by round: " + ", ".join(f"{p[0] / s[0]:.2f}x" for s, p in zip(sinks, peers)) +
              f" (median {ratios[len(ratios) // 2]:.2f}x)")
    print("| what | wall s | readings/s | vs peer | CPU s | cores at 100,000/s | server CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


# ----- ClickHouse -----------------------------------------------------------------------------

def wait_saved(sink, port, metric, saved, n, out_path, step):
    """Until the sink counts n written (its metric: its own HTTP thread, no work for the server)
    and then its saved positions cover n readings; exits if the sink does."""
    while (scrape_metric(port, metric) or 0) < n or saved() < n:
        if sink.poll() is not None:
            sys.exit(f"the sink exited: {open(out_path).read()[-2000:]}")
        time.sleep(step)


class PartsWatch:
    """While the sink inserts: the most active parts one partition of {db}.readings held
    (system.parts, polled every 50 ms: what ClickHouse's merges had not caught up with; 18.16
    delays inserts at parts_to_delay_insert, 150, and refuses them at parts_to_throw_insert, 300),
    and the inserts ClickHouse delayed or refused for it (system.events)."""

    EVENTS = ("DelayedInserts", "RejectedInserts")

    def __init__(self, ch, db):
        self.ch, self.db, self.most = ch, db, 0
        self.stopping = threading.Event()
        self.before = self.events()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def events(self):
        names = ", ".join(f"'{e}'" for e in self.EVENTS)
        got = dict(self.ch.query(f"SELECT event, value FROM system.events WHERE event IN ({names})"))
        return {e: int(got.get(e, 0)) for e in self.EVENTS}

    def watch(self):
        while not self.stopping.wait(0.05):
            rows = self.ch.query(f"SELECT max(c) FROM (SELECT `partition`, count() AS c FROM system.parts "
                                 f"WHERE database = '{self.db}' AND table = 'readings' AND active GROUP BY `partition`)")
            if rows and rows[0][0] not in ("", "0"):
                self.most = max(self.most, int(rows[0][0]))

    def stop(self):
        """(most active parts in a partition, {event: count during the watch})."""
        self.stopping.set()
        self.thread.join()
        after = self.events()
        return self.most, {e: after[e] - self.before[e] for e in self.EVENTS}


def clickhouse_sink_round(args, mare, ch, data, n, db, work):
    port = free_port()
    sets = [f"sink.clickhouse.url={ch.url}", f"sink.clickhouse.database={db}", "sink.clickhouse.rollups=false",
            f"sink.clickhouse.batch={args.batch}", *args.ch_set]
    cmd = [mare, "sink", "clickhouse", "--data-dir", data, "--metrics-listen", f"127.0.0.1:{port}"]
    for s in sets:
        cmd += ["--set", s]
    out_path = os.path.join(work, f"sink-{db}.out")
    start, server_start = time.time(), cpu_seconds(ch.proc.pid)
    sink = subprocess.Popen(cmd, stdout=open(out_path, "wb"), stderr=subprocess.STDOUT)
    def saved():
        try:
            return int(ch.query(f"SELECT sum(m) FROM (SELECT `partition`, max(next_offset) AS m "
                                f"FROM {db}.sink_offsets GROUP BY `partition`)")[0][0])
        except RuntimeError:
            return 0
    parts = PartsWatch(ch, db)
    try:
        wait_saved(sink, port, 'mare_sink_clickhouse_rows_written_total{topic="raw"}', saved, n, out_path, 0.02)
        wall = time.time() - start
        cpu = cpu_seconds(sink.pid)
        server = cpu_seconds(ch.proc.pid) - server_start
        inserts = scrape_metric(port, 'mare_sink_clickhouse_inserts_total{topic="raw"}')
    finally:
        most_parts, events = parts.stop()
        sink.terminate()
        sink.wait(timeout=30)
    rows = int(ch.query(f"SELECT count() FROM {db}.readings FINAL")[0][0])
    assert rows == n, f"{rows} rows for {n} readings"
    return wall, cpu, server, inserts, most_parts, events


def clickhouse_peer_round(client, ch, db, columns, path, n, k):
    status, text = ch.request(f"CREATE TABLE {db}.peer{k} AS {db}.readings")
    assert status == 200, text
    start, server_start = time.time(), cpu_seconds(ch.proc.pid)
    with open(path, "rb") as f:
        peer = subprocess.Popen([client, "--port", str(ch.tcp_port), "--query",
                                 f"INSERT INTO {db}.peer{k} ({columns}) FORMAT RowBinary"], stdin=f)
        _, status, usage = os.wait4(peer.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "clickhouse-client failed"
    wall = time.time() - start
    server = cpu_seconds(ch.proc.pid) - server_start
    assert int(ch.query(f"SELECT count() FROM {db}.peer{k}")[0][0]) == n
    return wall, usage.ru_utime + usage.ru_stime, server


def clickhouse_answers(ch, db):
    out = {}
    for f in FIELDS:
        for s, hour, c, lo, hi, avg in ch.query(
                f"SELECT sensor_id, toStartOfHour(ts) AS hour, count({f}), min({f}), max({f}), avg({f}) "
                f"FROM {db}.readings FINAL GROUP BY sensor_id, hour"):
            out[(int(s), epoch_s(hour), f)] = (int(c), float(lo), float(hi), float(avg))
    return out


def bench_clickhouse(args, mare, work, data, n, want):
    client = shutil.which("clickhouse-client")
    with ClickHouse(work) as ch:
        sinks, peers = [], []
        path = os.path.join(work, "readings.rowbinary")
        for k in range(args.rounds):
            db = f"bench{k}"
            sinks.append(clickhouse_sink_round(args, mare, ch, data, n, db, work))
            if k == 0:  # the peer's file: the sink's rows, as ClickHouse holds them
                columns = ", ".join(f"`{c}`" for c, in ch.query(
                    "SELECT name FROM system.columns WHERE database = 'bench0' AND table = 'readings'"))
                with open(path, "wb") as f:
                    subprocess.run([client, "--port", str(ch.tcp_port), "--query",
                                    f"SELECT {columns} FROM bench0.readings FORMAT RowBinary"], stdout=f, check=True)
            peers.append(clickhouse_peer_round(client, ch, db, columns, path, n, k))
            print(f"ClickHouse round {k + 1}: sink {n / sinks[-1][0]:,.0f} readings/s ({sinks[-1][3]:.0f} inserts, at most "
                  f"{sinks[-1][4]} active parts in a partition, inserts delayed {sinks[-1][5]['DelayedInserts']}, "
                  f"refused {sinks[-1][5]['RejectedInserts']}), peer {n / peers[-1][0]:,.0f} readings/s", flush=True)
        got = clickhouse_answers(ch, "bench0")
    size = os.path.getsize(path)
    sink, peer = min(sinks), min(peers)
    parts = max(r[4] for r in sinks)
    delayed, refused = (sum(r[5][e] for r in sinks) for e in PartsWatch.EVENTS)
    how = "by mare's ingest, numbers carried" if args.produce == "ingest" else "by mare log produce, no numbers"
    table(f"ClickHouse 18.16, {n} readings ({how}), {size / n:.0f} RowBinary bytes each, sink batch {args.batch} rows, "
          f"best of {args.rounds} rounds",
          [[f"mare sink clickhouse (full raw topic, {sink[3]:.0f} inserts)", f"{sink[0]:.2f}", f"{n / sink[0]:,.0f}",
            f"{peer[0] / sink[0]:.2f}x", f"{sink[1]:.2f}", f"{sink[1] / n * 100_000:.3f}", f"{sink[2]:.2f}"],
           ["clickhouse-client INSERT ... FORMAT RowBinary from a file", f"{peer[0]:.2f}", f"{n / peer[0]:,.0f}",
            "1.00x", f"{peer[1]:.2f}", "", f"{peer[2]:.2f}"]], sinks, peers)
    print(f"Active parts in one partition of the sink's table, at most (every 50 ms, all rounds): {parts}; inserts "
          f"ClickHouse delayed: {delayed}, refused: {refused} (18.16 delays at 150 parts, refuses at 300)")
    return compare("ClickHouse SQL (FINAL, toStartOfHour)", got, want) if want is not None else 0


# ----- Elasticsearch --------------------------------------------------------------------------

def es_client():
    # elasticsearch-py 7.13 reads numpy's float_ when numpy imports, which numpy 2 removed; the
    # bench hands it no numpy values, so it is kept from importing numpy.
    saved = sys.modules.get("numpy")
    sys.modules["numpy"] = None
    try:
        import elasticsearch
        from elasticsearch import helpers
    except ImportError:
        sys.exit("the Python client elasticsearch (7.13.4) is missing: run scripts/setup-bench.sh")
    finally:
        if saved is None:
            del sys.modules["numpy"]
        else:
            sys.modules["numpy"] = saved
    return elasticsearch, helpers


def es_sink_round(args, mare, es, data, n, prefix, work):
    port = free_port()
    sets = [f"sink.elasticsearch.url={es.url}", f"sink.elasticsearch.index_prefix={prefix}",
            "sink.elasticsearch.replicas=0", "sink.elasticsearch.rollups=false",
            f"sink.elasticsearch.batch={args.es_batch}", f"sink.elasticsearch.gzip={str(args.es_gzip).lower()}",
            *args.es_set]
    cmd = [mare, "sink", "elasticsearch", "--data-dir", data, "--metrics-listen", f"127.0.0.1:{port}"]
    for s in sets:
        cmd += ["--set", s]
    out_path = os.path.join(work, f"sink-{prefix}.out")
    start, server_start = time.time(), cpu_seconds(es.proc.pid)
    sink = subprocess.Popen(cmd, stdout=open(out_path, "wb"), stderr=subprocess.STDOUT)

    def saved():
        es.request("POST", f"/{prefix}-sink-offsets/_refresh")
        status, body = es.request("POST", f"/{prefix}-sink-offsets/_search",
                                  {"size": 100, "query": {"term": {"topic": "raw"}}})
        return sum(h["_source"]["next_offset"] for h in body["hits"]["hits"]) if status == 200 else 0
    try:
        wait_saved(sink, port, 'mare_sink_elasticsearch_documents_written_total{topic="raw"}', saved, n, out_path, 0.05)
        wall = time.time() - start
        cpu = cpu_seconds(sink.pid)
        server = cpu_seconds(es.proc.pid) - server_start
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    assert es.count(f"{prefix}-readings-*") == n
    return wall, cpu, server


def es_documents(elasticsearch, helpers, es, prefix):
    """[(index suffix after the prefix, _id, _source as JSON text)] of the sink's documents."""
    client = elasticsearch.Elasticsearch([es.url], timeout=120)
    out = []
    for hit in helpers.scan(client, index=f"{prefix}-readings-*", query={"query": {"match_all": {}}}, size=5000):
        out.append((hit["_index"][len(prefix):], hit["_id"], json.dumps(hit["_source"], separators=(",", ":"))))
    return out


def es_peer_round(args, elasticsearch, helpers, es, docs, template_index, prefix):
    status, mapping = es.request("GET", f"/{template_index}/_mapping")
    assert status == 200, mapping
    status, settings = es.request("GET", f"/{template_index}/_settings")
    index_settings = settings[template_index]["settings"]["index"]
    body = {"settings": {"number_of_shards": int(index_settings["number_of_shards"]),
                         "number_of_replicas": int(index_settings["number_of_replicas"]),
                         "refresh_interval": index_settings.get("refresh_interval", "1s")},
            "mappings": mapping[template_index]["mappings"]}
    for suffix in sorted({d[0] for d in docs}):
        status, text = es.request("PUT", f"/{prefix}{suffix}", body)
        assert status == 200, text
    client = elasticsearch.Elasticsearch([es.url], timeout=120, http_compress=args.es_gzip)
    actions = ({"_index": prefix + d[0], "_id": d[1], "_source": d[2]} for d in docs)
    start, server_start, own_start = time.time(), cpu_seconds(es.proc.pid), self_cpu_seconds()
    failed = 0
    for ok, item in helpers.parallel_bulk(client, actions, thread_count=args.es_threads, chunk_size=args.es_chunk,
                                          raise_on_error=False):
        failed += not ok
    wall = time.time() - start
    server = cpu_seconds(es.proc.pid) - server_start
    own = self_cpu_seconds() - own_start
    assert failed == 0, f"{failed} items failed"
    assert es.count(f"{prefix}-readings-*") == len(docs)
    return wall, own, server


def es_answers(es, prefix):
    aggs = {}
    for f in FIELDS:
        aggs.update({f"{f}.n": {"value_count": {"field": f}}, f"{f}.min": {"min": {"field": f}},
                     f"{f}.max": {"max": {"field": f}}, f"{f}.avg": {"avg": {"field": f}}})
    body = es.search(f"{prefix}-readings-*", {"size": 0, "aggs": {"s": {
        "terms": {"field": "sensor_id", "size": 100_000},
        "aggs": {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}, "aggs": aggs}}}}})
    out = {}
    for s in body["aggregations"]["s"]["buckets"]:
        for h in s["h"]["buckets"]:
            for f in FIELDS:
                if h[f"{f}.n"]["value"]:
                    out[(int(s["key"]), h["key"] // 1000, f)] = (
                        int(h[f"{f}.n"]["value"]), h[f"{f}.min"]["value"], h[f"{f}.max"]["value"], h[f"{f}.avg"]["value"])
    return out


def bench_elasticsearch(args, mare, work, data, n, want):
    from elasticsearch_server import Elasticsearch
    elasticsearch, helpers = es_client()
    with Elasticsearch(work) as es:
        sinks, peers, docs = [], [], None
        for k in range(args.rounds):
            prefix = f"sink{k}"
            sinks.append(es_sink_round(args, mare, es, data, n, prefix, work))
            if docs is None:
                docs = es_documents(elasticsearch, helpers, es, prefix)
                assert len(docs) == n
                status, indices = es.request("GET", f"/{prefix}-readings-*/_settings")
                template_index = sorted(indices)[0]
            peers.append(es_peer_round(args, elasticsearch, helpers, es, docs, template_index, f"peer{k}"))
            print(f"Elasticsearch round {k + 1}: sink {n / sinks[-1][0]:,.0f} readings/s, "
                  f"peer {n / peers[-1][0]:,.0f} readings/s", flush=True)
        got = es_answers(es, "sink0")
        status, info = es.request("GET", "/")
        version = info["version"]["number"]
    sink, peer = min(sinks), min(peers)
    size = sum(len(d[2]) for d in docs) / n
    table(f"Elasticsearch {version} (one node), {n} readings, {size:.0f} bytes of _source each, "
          f"sink batch {args.es_batch}, request bodies {'gzipped' if args.es_gzip else 'not compressed'} by both, "
          f"best of {args.rounds} rounds",
          [["mare sink elasticsearch (full raw topic)", f"{sink[0]:.2f}", f"{n / sink[0]:,.0f}", f"{peer[0] / sink[0]:.2f}x",
            f"{sink[1]:.2f}", f"{sink[1] / n * 100_000:.3f}", f"{sink[2]:.2f}"],
           [f"elasticsearch-py helpers.parallel_bulk ({args.es_threads} threads, chunks of {args.es_chunk})",
            f"{peer[0]:.2f}", f"{n / peer[0]:,.0f}", "1.00x", f"{peer[1]:.2f}", "", f"{peer[2]:.2f}"]], sinks, peers)
    return compare("Elasticsearch terms + date_histogram", got, want) if want is not None else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--sinks", default="clickhouse,elasticsearch", help="which sinks, comma-separated")
    ap.add_argument("--readings", type=int, default=1_000_000, help="readings for ClickHouse (1,000,000)")
    ap.add_argument("--es-readings", type=int, default=100_000, help="readings for Elasticsearch (100,000)")
    ap.add_argument("--sensors", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="sink-then-peer rounds; the best of each is printed (3)")
    ap.add_argument("--batch", type=int, default=100_000, help="sink.clickhouse.batch (100,000)")
    ap.add_argument("--es-batch", type=int, default=5000, help="sink.elasticsearch.batch (5,000, its default)")
    ap.add_argument("--es-threads", type=int, default=4, help="parallel_bulk's thread_count (4, its default)")
    ap.add_argument("--es-chunk", type=int, default=500, help="parallel_bulk's chunk_size (500, its default)")
    ap.add_argument("--es-gzip", action="store_true",
                    help="both compress request bodies (the sink's default; the client's is not to): off unless given")
    ap.add_argument("--ch-set", action="append", default=[], metavar="KEY=VALUE", help="more settings for the ClickHouse sink")
    ap.add_argument("--es-set", action="append", default=[], metavar="KEY=VALUE",
                    help="more settings for the Elasticsearch sink")
    ap.add_argument("--produce", choices=["ingest", "log"], default="ingest",
                    help="how the raw topic is filled: mare's ingest (batches, numbers carried) or mare log produce")
    ap.add_argument("--no-answers", action="store_true", help="skip the comparison with mare's SQL")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    kinds = [k for k in args.sinks.split(",") if k]
    if not kinds or set(kinds) - {"clickhouse", "elasticsearch"}:
        sys.exit(f"--sinks: clickhouse, elasticsearch or both, not {args.sinks!r}")
    mare = os.path.join(args.build, "bin/mare")
    if not os.path.exists(mare):
        sys.exit(f"no {mare}: build mare first, or give --build")
    if "clickhouse" in kinds and not shutil.which("clickhouse-client"):
        sys.exit("clickhouse-client is not installed: run scripts/setup-bench.sh")
    if "elasticsearch" in kinds:
        # elasticsearch-py 7.13.4 lives in a venv of its own (scripts/setup-bench.sh): the whole
        # run goes there (the rest needs only the standard library), before anything starts.
        run_under_peer_venv("elasticsearch", ["elasticsearch"])
        es_client()
    work = tempfile.mkdtemp(prefix="mare-bench-sinks-")
    bad = 0
    try:
        sizes = {k: args.readings if k == "clickhouse" else args.es_readings for k in kinds}
        readings = [json.dumps(reading(i, args.sensors), separators=(",", ":")) for i in range(max(sizes.values()))]
        for k in kinds:
            n = sizes[k]
            data = os.path.join(work, f"data-{k}")
            produce(args, mare, data, readings[:n])
            want = None if args.no_answers else mare_answers(mare, data, n)
            run = bench_clickhouse if k == "clickhouse" else bench_elasticsearch
            bad += run(args, mare, os.path.join(work, k), data, n, want)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
