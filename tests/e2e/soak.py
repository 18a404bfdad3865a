"""kill -9 soak (issue 13): `mare run` with the MariaDB sink, under load over HTTP, TCP, UDP and
MQTT (a real mosquitto broker, QoS 1, mare's persistent session), killed at seeded random
moments and restarted on the same data dir; then every acknowledged reading once in the log,
the store equal to the log, the rollups equal to a recompute from the log, and the MariaDB
tables equal to the rollups. Shared by tests/e2e/test_soak.py (3 trials) and bench/soak.py (100).

MQTT's "acknowledged" is the broker's PUBACK to the publisher (paho-mqtt, QoS 1): the broker,
never killed, then owes the message to mare's session; mare PUBACKs it to the broker only once
its log holds it, so a message mare read but had not acknowledged at a kill is sent again after
the restart, and ingest's duplicate rule (same sensor and timestamp, within
ingest.dedup_horizon, rebuilt from the log's tail at start) keeps it from being appended twice.
The publisher goes on while mare is down (the broker queues for the session); before the final
check a last reading (the fence) is published and waited for in the store, so that everything
the broker queued before it has been delivered."""
import array
import collections
import datetime
import http.client
import json
import math
import random
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import paho.mqtt.client as paho

from harness import MARE, MareRun, log_records, mare

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# Each transport has sensors of its own, so a reading's sensor says how it came.
SENSORS = {"http": range(1, 9), "tcp": range(11, 19), "udp": range(21, 29), "mqtt": range(31, 39)}
# Unique sequence numbers per transport: a reading's seq says who sent it and which one it is.
SEQ_BASE = {"http": 0, "tcp": 100_000_000, "udp": 200_000_000, "mqtt": 300_000_000}
TABLES = {"1m": "rollup_minute", "1h": "rollup_hour", "1d": "rollup_day"}
RESOLUTION_US = {"1m": 60_000_000, "1h": 3_600_000_000, "1d": 86_400_000_000}
# Readings per second each sender offers, and readings per request / write / datagram (MQTT: per
# burst, each reading a message of its own on its sensor's topic, as a buoy publishes).
RATES = {"http": 2000, "tcp": 2000, "udp": 1000, "mqtt": 1000}
CHUNK = {"http": 50, "tcp": 50, "udp": 10, "mqtt": 20}
# The sensor id of an MQTT reading is in its topic (sources.mqtt.sensor_id_topic), not its body.
MQTT_TOPIC = "soak/{sensor_id}/readings"
DUPLICATES_MQTT = 'mare_source_readings_rejected_total{source="mqtt",reason="duplicate"}'


# Transports whose sender learns what was stored: HTTP's answers, MQTT's broker PUBACKs (the
# broker owes those to mare's session). TCP and UDP acknowledge nothing: at most once.
ACKNOWLEDGING = ("http", "mqtt")


def transport_of(sensor):
    for name, sensors in SENSORS.items():
        if sensor in sensors:
            return name
    return None


def micros(iso):
    return (datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")) - EPOCH) // datetime.timedelta(microseconds=1)


def iso(us):
    return (EPOCH + datetime.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Sender:
    """One transport's readings: wall-clock event times (strictly increasing per transport, so
    none is late and no sensor has two readings at one time, across every trial), and what was
    sent and what was acknowledged."""

    def __init__(self, transport):
        self.transport = transport
        self.seq = SEQ_BASE[transport]
        self.last_us = 0
        self.sent = set()
        self.acked = set()
        self.unanswered = []  # (trial, seqs) of requests whose answer never came: outcome unknown
        self.trial = 0
        self.partial_503 = 0
        self.refused_503 = 0
        self.lock = threading.Lock()
        self.mqtt = None      # MQTT: the publisher's paho client, connected to the broker
        self.in_flight = []   # MQTT: (message info, seq) published, the broker's PUBACK not yet seen
        self.not_acked = 0    # MQTT: messages the broker never acknowledged (settle() timed out)

    def readings(self, n):
        out = []
        for _ in range(n):
            self.last_us = max(self.last_us + 1, time.time_ns() // 1000)
            sensors = SENSORS[self.transport]
            out.append({"timestamp": iso(self.last_us), "sensor_id": sensors[self.seq % len(sensors)], "seq": self.seq,
                        "temperature": round(10 + (self.seq * 37 % 1000) / 100, 2)})
            self.seq += 1
        return out

    def run(self, run, stop):
        """Sends until `stop` or until the server is gone (its kill)."""
        n = CHUNK[self.transport]
        pause = n / RATES[self.transport]
        try:
            if self.transport == "tcp":
                conn = socket.create_connection(("127.0.0.1", run.tcp_port), timeout=5)
            elif self.transport == "udp":
                conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            while not stop.is_set():
                batch = self.readings(n)
                seqs = [r["seq"] for r in batch]
                if self.transport == "mqtt":
                    # To the broker, which is never killed: published whether mare is up or not.
                    self.publish(batch)
                    stop.wait(pause)
                    continue
                body = "\n".join(json.dumps(r) for r in batch).encode() + b"\n"
                if self.transport == "http":
                    self.sent.update(seqs)
                    self.post(run, body, seqs)
                elif self.transport == "tcp":
                    conn.sendall(body)
                    self.sent.update(seqs)  # handed to the kernel; TCP ingest acknowledges nothing
                else:
                    conn.sendto(body, ("127.0.0.1", run.udp_port))
                    self.sent.update(seqs)
                stop.wait(pause)
        except (OSError, http.client.HTTPException):
            return  # the server died (mid-answer, say): the outcome is unknown, nothing counted as acknowledged

    def publish(self, batch):
        for r in batch:
            sensor = r.pop("sensor_id")
            info = self.mqtt.publish(MQTT_TOPIC.format(sensor_id=sensor), json.dumps(r), qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise AssertionError(f"MQTT publish of seq {r['seq']}: {paho.error_string(info.rc)}")
            self.sent.add(r["seq"])
            self.in_flight.append((info, r["seq"]))

    def settle(self, timeout=60):
        """MQTT: waits for the broker's PUBACKs of what was published; those are acknowledged."""
        deadline = time.time() + timeout
        for info, seq in self.in_flight:
            try:
                info.wait_for_publish(max(0.0, deadline - time.time()))
            except (RuntimeError, ValueError):
                pass
            if info.is_published():
                self.acked.add(seq)
            else:
                self.not_acked += 1
        self.in_flight = []

    def post(self, run, body, seqs):
        req = urllib.request.Request(f"{run.http_url}/api/v1/ingest", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
        try:
            self.unanswered.append((self.trial, seqs))
            with urllib.request.urlopen(req, timeout=10) as r:
                answer = json.loads(r.read())
            self.unanswered.pop()
            if answer["accepted"] != len(seqs):
                raise AssertionError(f"HTTP 200 accepted {answer['accepted']} of {len(seqs)}: {answer}")
            self.acked.update(seqs)
        except urllib.error.HTTPError as e:
            self.unanswered.pop()
            text = e.read().decode(errors="replace")
            if e.code != 503:
                raise AssertionError(f"HTTP {e.code}: {text}")
            try:
                answer = json.loads(text)
            except ValueError:
                self.refused_503 += 1  # text/plain 503: nothing stored
                return
            self.partial_503 += 1
            unacked = set(answer.get("unacknowledged_lines", []))  # 1-based line numbers
            self.acked.update(s for i, s in enumerate(seqs, 1) if i not in unacked)
            raise OSError("503 from the log")


class Soak:
    """One data dir, one MariaDB; trials of start, load, kill -9; then `verify()`."""

    def __init__(self, data_dir, db, seed, broker, say=print):
        """`broker`: a started mosquitto_server.Mosquitto, for the MQTT transport."""
        self.data = str(data_dir)
        self.db = db
        self.broker = broker
        self.seed = seed
        self.rng = random.Random(seed)
        self.say = say
        self.senders = {t: Sender(t) for t in SENSORS}
        self.trials = 0
        self.errors = []
        self.mqtt_duplicates = 0  # MQTT readings ingest refused as duplicates, every process's (scraped before each kill)
        self.publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="mare-soak-publisher",
                                     clean_session=True)
        self.publisher.max_inflight_messages_set(1000)
        self.publisher.max_queued_messages_set(0)
        self.publisher.connect("127.0.0.1", broker.port)
        self.publisher.loop_start()
        self.senders["mqtt"].mqtt = self.publisher
        self.open_mqtt_session()

    def mare_run(self):
        return MareRun(self.data, extra=[
            "sink.mariadb.enabled=true", f"sink.mariadb.port={self.db.port}", "store.flush_interval=1s",
            "sources.mqtt.enabled=true", f"sources.mqtt.port={self.broker.port}", 'sources.mqtt.client_id="mare-soak"',
            'sources.mqtt.topics=["soak/+/readings"]', "sources.mqtt.qos=1",
            f'sources.mqtt.sensor_id_topic="{MQTT_TOPIC}"',
            'sources.mqtt.reconnect_min="50ms"', 'sources.mqtt.reconnect_max="500ms"'])

    def open_mqtt_session(self):
        """mare's MQTT session made before the first trial, as mare's own first connection
        would make it (client id, clean start off, a session expiry, the subscription), so that
        the broker keeps for it everything published from the first trial on (before any
        subscription, the broker would drop it); mare resumes it at each start."""
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="mare-soak", protocol=paho.MQTTv5)
        props = paho.Properties(paho.PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 86400
        subscribed = threading.Event()
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_connect = lambda c, *args: c.subscribe("soak/+/readings", qos=1)
        client.connect("127.0.0.1", self.broker.port, clean_start=False, properties=props)
        client.loop_start()
        if not subscribed.wait(30):
            raise RuntimeError("the broker did not acknowledge the soak's subscription")
        client.disconnect()
        client.loop_stop()

    def mqtt_fence(self, run, timeout=120):
        """Publishes one more MQTT reading and waits until the store has it."""
        sender = self.senders["mqtt"]
        seq = sender.seq
        sender.publish(sender.readings(1))
        sender.settle()
        deadline = time.time() + timeout
        while True:
            sql = f"SELECT count(*) FROM readings WHERE seq = {seq}"
            try:
                with urllib.request.urlopen(f"{run.http_url}/api/v1/query?format=json&q={urllib.parse.quote(sql)}",
                                            timeout=30) as r:
                    if json.loads(r.read())["rows"][0][0] >= 1:
                        return
            except urllib.error.HTTPError:
                pass  # before the store's first flush, the column seq is not known yet
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for the MQTT fence (seq {seq}) in the store")
            time.sleep(0.2)

    def trial(self):
        """Starts mare run, loads it over every transport, kills it -9 at a random moment."""
        kill_after = self.rng.uniform(0.2, 2.5)
        run = self.mare_run().start()
        stop = threading.Event()
        before = {t: (len(s.sent), len(s.acked)) for t, s in self.senders.items()}
        for s in self.senders.values():
            s.trial = self.trials + 1
        threads = [threading.Thread(target=self.guarded, args=(s, run, stop)) for s in self.senders.values()]
        for t in threads:
            t.start()
        time.sleep(kill_after)
        self.count_mqtt_duplicates(run)
        run.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        self.senders["mqtt"].settle()
        self.trials += 1
        self.say(f"trial {self.trials}: kill -9 after {kill_after:.2f} s; sent/acknowledged "
                 + ", ".join(f"{t} {len(s.sent) - before[t][0]}/"
                             + (f"{len(s.acked) - before[t][1]}" if t in ACKNOWLEDGING else "-")
                             for t, s in self.senders.items()))

    def count_mqtt_duplicates(self, run):
        """Adds what this process refused as MQTT duplicates (the broker's redeliveries of what
        an earlier process had appended but not yet acknowledged), to show the path was taken."""
        try:
            self.mqtt_duplicates += run.metric(DUPLICATES_MQTT) or 0
        except OSError:
            pass

    def guarded(self, sender, run, stop):
        try:
            sender.run(run, stop)
        except Exception as e:  # a wrong answer, not a dead server: a failure of the soak
            self.errors.append(f"trial {self.trials + 1} {sender.transport}: {type(e).__name__}: {e}")

    def verify(self, timeout=180):
        """A clean restart; waits for the store, the rollups and the sink to catch up (or
        `timeout`); returns the report: per transport and per check."""
        run = self.mare_run().start()
        try:
            # The fence: the broker hands mare's session its messages in order, so once this
            # last one is in the store, everything acknowledged to the publisher before it has
            # reached mare (and, were any missing from the log, it is lost, not late).
            self.mqtt_fence(run)
            scan = scan_raw(self.data)
            report = self.check_log(scan)
            expected = scan.windows_done()
            deadline = time.time() + timeout
            while True:
                checks = {"store = log": self.check_store(run, scan.per_sensor),
                          "rollups = recompute": None, "mariadb = rollups": None}
                newest = newest_rollups(log_records(self.data, "rollups"))
                checks["rollups = recompute"] = compare_rollups(newest, expected)
                checks["mariadb = rollups"] = self.check_mariadb(newest)
                caught_up = all(run.metric(m) == 0 for m in (
                    "mare_store_lag_records", "mare_rollup_lag_records", 'mare_sink_lag_records{sink="mariadb"}'))
                if caught_up and all(not c[1] for c in checks.values()) or time.time() > deadline:
                    break
                time.sleep(1)
            self.count_mqtt_duplicates(run)
        finally:
            rc = run.stop()
        report["checks"] = checks
        report["clean stop"] = rc
        self.publisher.loop_stop()
        self.publisher.disconnect()
        verify = mare("log", "verify", "--data-dir", self.data, check=False)
        report["log verify"] = verify.returncode
        report["errors"] = list(self.errors)
        report["trials"] = self.trials
        report["mqtt duplicates"] = int(self.mqtt_duplicates)
        report["seed"] = self.seed
        return report

    def check_log(self, scan):
        per = {}
        phantom = list(scan.phantom)
        for t, s in self.senders.items():
            counts = scan.counts[t]
            present = {q for q in s.sent if counts.get(q - SEQ_BASE[t])}
            phantom += [q + SEQ_BASE[t] for q in counts.seen() if q + SEQ_BASE[t] not in s.sent]
            per[t] = {"sent": len(s.sent), "acknowledged": len(s.acked) if t in ACKNOWLEDGING else None,
                      "not acknowledged": s.not_acked,
                      "in log": len(present),
                      "lost": sorted(s.acked - present),
                      "doubled": sorted(q for q in present if counts.get(q - SEQ_BASE[t]) > 1),
                      "partial 503": s.partial_503, "refused 503": s.refused_503,
                      # An HTTP request is all or nothing in the log (its partitions appended
                      # together): a kill leaves an unanswered request's batch whole or not at
                      # all, never in part (failures() says so).
                      "unanswered": [(trial, len(seqs), sum(1 for q in seqs if counts.get(q - SEQ_BASE[t])))
                                     for trial, seqs in s.unanswered]}
        return {"transports": per, "phantom": sorted(phantom), "same sensor and time": scan.same_time()}

    def check_store(self, run, want):
        """Per sensor: count, sum, min and max of seq, the store's (SQL over HTTP) against the log's."""
        sql = "SELECT sensor_id, count(*), sum(seq), min(seq), max(seq) FROM readings GROUP BY sensor_id"
        with urllib.request.urlopen(f"{run.http_url}/api/v1/query?format=json&q={urllib.parse.quote(sql)}", timeout=60) as r:
            rows = json.loads(r.read())["rows"]
        got = {row[0]: [int(x) for x in row[1:]] for row in rows}
        differ = [f"sensor {s}: store {got.get(s)}, log {want.get(s)}" for s in sorted(set(got) | set(want))
                  if got.get(s) != want.get(s)]
        return len(set(got) | set(want)), differ

    def check_mariadb(self, newest):
        got = {}
        for resolution, table in TABLES.items():
            for r in self.db.query(f"SELECT sensor_id, field, window_start, count, min, max, mean, stddev, first, last, "
                                   f"revision FROM {table}"):
                start = micros(r[2].replace(" ", "T") + "Z")
                got[(int(r[0]), r[1], resolution, start)] = (int(r[3]), *map(float, r[4:10]), int(r[10]))
        want = {k: (m["count"], m["min"], m["max"], m["mean"], m["stddev"], m["first"], m["last"], m["revision"])
                for k, m in newest.items()}
        differ = []
        for k in sorted(set(got) | set(want)):
            g, w = got.get(k), want.get(k)
            if g is None or w is None or g[0] != w[0] or g[7] != w[7] or \
                    not all(close(x, y, 1e-12) for x, y in zip(g[1:7], w[1:7])):
                differ.append(f"{k}: mariadb {g}, rollups {w}")
        return len(set(got) | set(want)), differ


def close(a, b, rel):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def newest_rollups(records):
    """(sensor, field, resolution, window start us) -> the highest revision's message."""
    out = {}
    for r in records:
        m = r["value"]
        k = (m["sensor_id"], m["field"], m["resolution"], micros(m["window_start"]))
        if k not in out or m["revision"] >= out[k]["revision"]:
            out[k] = m
    return out


class Counts:
    """How often each sequence number of one transport is in the log: a byte per number (they
    are dense from the transport's base), so millions of readings take megabytes."""

    def __init__(self):
        self.n = bytearray()

    def add(self, i):
        if i >= len(self.n):
            self.n.extend(bytes(max(i + 1 - len(self.n), len(self.n))))
        self.n[i] = min(self.n[i] + 1, 255)

    def get(self, i):
        return self.n[i] if 0 <= i < len(self.n) else 0

    def seen(self):
        return [i for i, c in enumerate(self.n) if c]


class RawScan:
    """One pass over the raw topic (streamed from `mare log tail`, never held whole): seq counts
    per transport, sequence numbers of no transport, event times per sensor, per sensor count,
    sum, min and max of seq, and the rollups recomputed from scratch (Welford's mean and
    variance; first and last by event time, ties by log order)."""

    def __init__(self):
        self.counts = {t: Counts() for t in SENSORS}
        self.phantom = []
        self.times = collections.defaultdict(lambda: array.array("q"))
        self.per_sensor = {}
        self.windows = {}

    def add(self, record):
        v = record["value"]
        sensor, seq, ts = v["sensor_id"], v["seq"], micros(record["timestamp"])
        t = transport_of(sensor)
        if t is None or seq < SEQ_BASE[t]:
            self.phantom.append(seq)
        else:
            self.counts[t].add(seq - SEQ_BASE[t])
        self.times[sensor].append(ts)
        w = self.per_sensor.setdefault(sensor, [0, 0, seq, seq])
        w[0] += 1
        w[1] += seq
        w[2] = min(w[2], seq)
        w[3] = max(w[3], seq)
        for field, x in v.items():
            if field in ("timestamp", "sensor_id") or isinstance(x, bool) or not isinstance(x, (int, float)):
                continue
            x = float(x)
            for resolution, length in RESOLUTION_US.items():
                key = (sensor, field, resolution, ts // length * length)
                a = self.windows.get(key)
                if a is None:  # count, mean, m2, min, max, first ts, first, last ts, last
                    self.windows[key] = [1, x, 0.0, x, x, ts, x, ts, x]
                    continue
                a[0] += 1
                d = x - a[1]
                a[1] += d / a[0]
                a[2] += d * (x - a[1])
                a[3] = min(a[3], x)
                a[4] = max(a[4], x)
                if ts < a[5]:
                    a[5], a[6] = ts, x
                if ts >= a[7]:
                    a[7], a[8] = ts, x

    def same_time(self):
        """(sensor, event time) held more than once."""
        out = []
        for sensor, times in self.times.items():
            ordered = sorted(times)
            out += [(sensor, a) for a, b in zip(ordered, ordered[1:]) if a == b]
        return out

    def windows_done(self):
        """(sensor, field, resolution, window start us) -> count, min, max, mean, stddev, first, last."""
        return {k: (a[0], a[3], a[4], a[1], math.sqrt(max(a[2], 0.0) / a[0]), a[6], a[8]) for k, a in self.windows.items()}


def scan_raw(data_dir):
    """Streams the raw topic in log order (partition by partition, offsets ascending) through a RawScan."""
    scan = RawScan()
    p = subprocess.Popen([MARE, "log", "tail", "raw", "--from-beginning", "--format", "ndjson", "--data-dir", str(data_dir)],
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.strip():
            scan.add(json.loads(line))
    if p.wait() != 0:
        raise AssertionError(f"mare log tail raw exited {p.returncode}")
    return scan


def compare_rollups(newest, expected):
    differ = []
    for k in sorted(set(newest) | set(expected)):
        m, e = newest.get(k), expected.get(k)
        if m is None or e is None:
            differ.append(f"{k}: rollups {m}, recompute {e}")
            continue
        g = (m["count"], m["min"], m["max"], m["mean"], m["stddev"], m["first"], m["last"])
        if g[0] != e[0] or m["revision"] != e[0] or not all(close(x, y, 1e-12) for x, y in zip(g[1:3] + g[5:], e[1:3] + e[5:])) \
                or not close(g[3], e[3], 1e-9) or not close(g[4], e[4], 1e-9):
            differ.append(f"{k}: rollups {g} rev {m['revision']}, recompute {e}")
    return len(set(newest) | set(expected)), differ


def failures(report):
    """Every way the report fails, as lines (empty: it passed)."""
    out = list(report["errors"])
    for t, p in report["transports"].items():
        if p["lost"]:
            out.append(f"{t}: {len(p['lost'])} acknowledged readings missing, e.g. seq {p['lost'][:5]}")
        if p["doubled"]:
            out.append(f"{t}: {len(p['doubled'])} readings more than once, e.g. seq {p['doubled'][:5]}")
    partial = [f"trial {trial}: {k} of {n}" for trial, n, k in report["transports"]["http"]["unanswered"] if 0 < k < n]
    if partial:
        out.append(f"{len(partial)} HTTP requests unanswered at a kill are in the log in part ({', '.join(partial[:5])})")
    if report["phantom"]:
        out.append(f"{len(report['phantom'])} readings in the log never sent, e.g. seq {report['phantom'][:5]}")
    if report["same sensor and time"]:
        out.append(f"{len(report['same sensor and time'])} sensor/time pairs more than once")
    for name, (_, differ) in report["checks"].items():
        out += [f"{name}: {d}" for d in differ[:5]]
        if len(differ) > 5:
            out.append(f"{name}: ... {len(differ)} in all")
    if report["clean stop"] != 0:
        out.append(f"the final mare run exited {report['clean stop']}")
    if report["log verify"] != 0:
        out.append(f"mare log verify exited {report['log verify']}")
    return out


def table(report):
    lines = [f"seed {report['seed']}, {report['trials']} kill -9 trials", "",
             "| transport | sent | acknowledged | in log | lost | doubled | 503 partial / refused |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t, p in report["transports"].items():
        ack = "none (no acknowledgement)" if p["acknowledged"] is None else f"{p['acknowledged']:,}"
        lost = "n/a" if p["acknowledged"] is None else len(p["lost"])
        lines.append(f"| {t} | {p['sent']:,} | {ack} | {p['in log']:,} | {lost} | {len(p['doubled'])} | "
                     f"{p['partial 503']} / {p['refused 503']} |")
    un = report["transports"]["http"]["unanswered"]
    whole = sum(1 for _, n, k in un if k == n)
    none = sum(1 for _, n, k in un if k == 0)
    partly = [f"trial {trial}: {k} of {n}" for trial, n, k in un if 0 < k < n]
    mqtt = report["transports"]["mqtt"]
    lines += ["", f"MQTT: {mqtt['acknowledged']:,} of {mqtt['sent']:,} messages acknowledged by the broker "
                  f"({mqtt['not acknowledged']} never); {report['mqtt duplicates']:,} redelivered to a restarted mare "
                  "and refused as duplicates (the broker's redeliveries of readings already in the log)"]
    lines += ["", f"HTTP requests unanswered at a kill (outcome unknown to the sender): {len(un)}; "
                  f"their batch in the log whole {whole}, not at all {none}, in part {len(partly)}"
                  + (f" ({', '.join(partly)})" if partly else "")]
    lines += ["", "| check | compared | mismatches |", "| --- | ---: | ---: |",
              f"| log: readings never sent | - | {len(report['phantom'])} |",
              f"| log: sensor and time twice | - | {len(report['same sensor and time'])} |"]
    for name, (n, differ) in report["checks"].items():
        lines.append(f"| {name} | {n:,} | {len(differ)} |")
    lines.append(f"| mare log verify, clean stop | - | {int(report['log verify'] != 0) + int(report['clean stop'] != 0)} |")
    return "\n".join(lines)
