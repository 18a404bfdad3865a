"""The pipeline on Kafka as separate processes, one per role, as on separate machines:
`mare ingest` -> Kafka -> two `mare stream` (one consumer group, Kafka transactions) ->
`mare sink mariadb`, and `mare store` answering queries. The rollups must be exactly those
computed from scratch over the readings, also when one stream processor is killed mid-run and
the other takes its partitions over."""
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from harness import MARE, MareRun, free_port, key_partition, scrape_metric, wait_for
from kafka_server import KafkaCluster
from mosquitto_server import Mosquitto
from mariadb_server import MariaDB
from sink_helpers import STARTED
from sink_helpers import no_sink_outlives_its_test  # noqa: F401 (autouse: kills the roles a failed test leaves)
from test_kafka import BASE, Sender, assert_nothing_acknowledged_lost, kafka_rollups, on_kafka, post_all, readings, settle
from test_mqtt import mqtt_settings, reading


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with KafkaCluster(tmp_path_factory.mktemp("kafka")) as cluster:
        yield cluster


class Role(MareRun):
    """`mare ingest` or `mare store`: the same flags and health check as `mare run`."""

    def __init__(self, command, data_dir, extra=()):
        super().__init__(data_dir, extra)
        self.command = command
        if command != "ingest":
            self.unix_path = self.data_dir  # no ingest socket to wait for: healthy is enough

    def args(self):
        out = super().args()
        out[1] = self.command
        return out


class Proc:
    """`mare stream` or `mare sink mariadb`, with its /metrics on a free port."""

    def __init__(self, args, data_dir, sets, listen_flag="--metrics-listen"):
        os.makedirs(data_dir, exist_ok=True)
        self.port = free_port()
        self.output = os.path.join(data_dir, "out.log")
        cmd = [MARE, *args, "--data-dir", str(data_dir), listen_flag, f"127.0.0.1:{self.port}"]
        for s in sets:
            cmd += ["--set", s]
        self.proc = subprocess.Popen(cmd, stdout=open(self.output, "ab"), stderr=subprocess.STDOUT)
        STARTED.append(self.proc)

    def metric(self, name):
        return scrape_metric(self.port, name)

    def text(self):
        return open(self.output).read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        assert self.proc.returncode == 0, self.text()[-3000:]


def wait_shared(streams, partitions=4, timeout=60):
    """Until the group has settled with each processor holding its share of the partitions."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        held = []
        for s in streams:
            lines = [l for l in s.text().splitlines() if "assigned partitions" in l or "revoked partitions" in l]
            last = lines[-1] if lines else ""
            held.append(len(last.split("assigned partitions ")[1].split()[0].split(",")) if "assigned" in last else 0)
        if sum(held) == partitions and all(held):
            return
        time.sleep(0.2)
    raise AssertionError(f"the stream processors did not share the partitions: {held}")


def listed_roles(store):
    """The roles `mare store`'s pipeline view lists as up (GET /api/v1/pipeline)."""
    with urllib.request.urlopen(f"{store.http_url}/api/v1/pipeline", timeout=10) as r:
        return {x["role"] for x in json.load(r)["now"]["roles"] if not x["stale"]}


def window_start(ts, length):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(ts - ts % length))


def from_scratch(rows, fields=("temperature", "pressure")):
    """(sensor, field, resolution, window_start) -> count, min, max, sum, first, last."""
    out = {}
    for r in rows:  # each sensor's readings in time order
        for field in fields:
            for res, length in (("1m", 60), ("1h", 3600), ("1d", 86400)):
                key = (r["sensor_id"], field, res, window_start(r["timestamp"], length))
                v = r[field]
                c, lo, hi, total, first, _ = out.get(key, (0, v, v, 0.0, v, v))
                out[key] = (c + 1, min(lo, v), max(hi, v), total + v, first, v)
    return out


def assert_exact(rollups, rows):
    want = from_scratch(rows)
    got = {(v["sensor_id"], v["field"], v["resolution"], v["window_start"]): v for v in rollups.values()
           if v["field"] in ("temperature", "pressure")}
    assert set(got) == set(want), f"{len(set(want) - set(got))} windows missing, {len(set(got) - set(want))} extra"
    for key, (count, lo, hi, total, first, last) in want.items():
        v = got[key]
        assert (v["count"], v["min"], v["max"], v["first"], v["last"]) == (count, lo, hi, first, last), (key, v)
        assert abs(v["mean"] - total / count) <= 1e-9 * max(1.0, abs(total / count)), (key, v)


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_each_role_in_its_own_process(kafka, tmp_path):
    prefix = "roles."
    sets = on_kafka(kafka, prefix)
    with MariaDB(tmp_path) as db:
        with Role("ingest", tmp_path / "ingest", sets) as ingest, \
                Role("store", tmp_path / "store", [*sets, 'store.flush_interval="2s"']) as store:
            # `mare forecast run` started before the stream processors make the rollups topic waits
            # for it, answering /readyz "not ready" meanwhile; stopped while waiting, it exits 0.
            forecast = Proc(["forecast", "run"], tmp_path / "forecast", sets, listen_flag="--listen")
            early = Proc(["forecast", "run"], tmp_path / "forecast-early", sets, listen_flag="--listen")
            wait_for(lambda: "waiting for the rollups topic" in forecast.text() and
                     "waiting for the rollups topic" in early.text(), 30, "forecast run never said it waits")
            ready = http_status(f"http://127.0.0.1:{forecast.port}/readyz")
            assert ready == 503, f"/readyz while waiting: {ready}"
            early.stop()
            assert "stopped while waiting" in early.text(), early.text()[-2000:]
            streams = [Proc(["stream", "--member", name], tmp_path / name, sets) for name in ("a", "b")]
            sink = Proc(["sink", "mariadb"], tmp_path / "sink", [*sets, f"sink.mariadb.port={db.port}"])
            wait_shared(streams)
            rows = readings(range(1, 13), 60, seed=11)
            post_all(ingest, rows)
            # The store role answers queries over what the ingest role wrote.
            store.wait_readings(len(rows))
            # The two stream processors share the partitions, and the rollups are exact.
            assert_exact(settle(lambda: kafka_rollups(kafka, prefix)), rows)
            shares = [s.metric("mare_rollup_readings_counted_total") or 0 for s in streams]
            assert all(n > 0 for n in shares), f"a stream processor got no partition: {shares}"
            # The sink role upserted them into MariaDB: checked with the mariadb client.
            deadline = time.time() + 60
            want = {(k[0], k[3][:19].replace("T", " ")): v[0] for k, v in from_scratch(rows, ("temperature",)).items()
                    if k[2] == "1h"}
            while time.time() < deadline:
                try:  # the sink creates the tables when it starts
                    out = db.query("SELECT sensor_id, window_start, `count` FROM rollup_hour WHERE field = 'temperature'")
                except RuntimeError:
                    out = []
                hourly = {(int(s), w[:19]): int(c) for s, w, c in out}
                if hourly == want:
                    break
                time.sleep(0.5)
            assert hourly == want
            # Every role's status reaches the dashboard of `mare store` (docs/formats/role-status.md),
            # the sink's and the forecast processor's too; stopped on purpose, a role leaves the list.
            wait_for(lambda: {"ingest", "stream", "mariadb sink", "forecast"} <= listed_roles(store), 30,
                     lambda: f"every role listed on the store's pipeline view (listed: {listed_roles(store)})")
            for s in streams:
                s.stop()
            sink.stop()
            forecast.stop()
            wait_for(lambda: not {"stream", "mariadb sink", "forecast"} & listed_roles(store), 30,
                     "the stopped roles gone from the pipeline view")
            assert "assigned partitions" in streams[0].text() and "assigned partitions" in streams[1].text()


def test_a_stream_processor_killed_mid_run_loses_and_doubles_nothing(kafka, tmp_path):
    prefix = "kill."
    sets = on_kafka(kafka, prefix)
    with Role("ingest", tmp_path / "ingest", sets) as ingest:
        a = Proc(["stream", "--member", "a"], tmp_path / "a", sets)
        b = Proc(["stream", "--member", "b"], tmp_path / "b", sets)
        wait_shared([a, b])
        sent, stop = [], threading.Event()

        def send():
            seq = 0
            while not stop.is_set():
                batch = [{"timestamp": BASE + seq + i, "sensor_id": 1 + (seq + i) % 8,
                          "temperature": round(10 + ((seq + i) * 7919 % 1000) / 100, 2),
                          "pressure": round(1000 + ((seq + i) * 104729 % 500) / 10, 1)} for i in range(100)]
                post_all(ingest, batch, chunk=100)
                sent.extend(batch)
                seq += 100
                time.sleep(0.05)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            time.sleep(4)
            assert (a.metric("mare_rollup_readings_counted_total") or 0) > 0, "member a took no part before the kill"
            a.proc.send_signal(signal.SIGKILL)  # mid-transaction, most likely
            a.proc.wait()
            time.sleep(6)
        finally:
            stop.set()
            sender.join()
        # b takes a's partitions over (after the group's session timeout) from the state a
        # last committed, and recounts exactly what a had not committed.
        deadline = time.time() + 120
        while True:
            rollups = kafka_rollups(kafka, prefix)
            daily = sum(v["count"] for v in rollups.values() if v["resolution"] == "1d" and v["field"] == "temperature")
            if daily >= len(sent) or time.time() > deadline:
                break
            time.sleep(1)
        rollups = settle(lambda: kafka_rollups(kafka, prefix))
        assert_exact(rollups, sent)
        assert sum(v["count"] for v in rollups.values() if v["resolution"] == "1d" and v["field"] == "temperature") == len(sent)
        b.stop()
        assert "restored from rollup-state" in b.text()
        print(f"{len(sent)} readings; member b's log:\n" + "\n".join(
            l for l in b.text().splitlines() if "group" in l or "restored" in l))


def test_a_sensor_from_kcat_and_from_mare_ingest_meets_in_one_partition_and_one_window(kafka, tmp_path):
    """Readings keyed by their sensor, half produced by kcat with the Java client's default
    partitioner (librdkafka's murmur2_random) and half by `mare ingest`, land in the same
    partition of raw, and the rollups count each sensor's readings of both in one window."""
    prefix = "meet."
    sets = on_kafka(kafka, prefix)
    sensors = range(1, 9)
    # The point of the test: for some of these sensors, sensor_id mod 4 is another partition.
    assert [s for s in sensors if key_partition(str(s), 4) != s % 4]
    rnd = random.Random(12)
    rows = []  # each sensor's in time order, 6.5 minutes in all: nothing is later than the lateness
    for i in range(40):
        for s in sensors:
            rows.append({"timestamp": BASE + i * 10, "sensor_id": s, "temperature": round(rnd.uniform(5, 25), 2),
                         "pressure": round(rnd.uniform(990, 1030), 1)})
    ours = [r for r in rows if r["timestamp"] // 10 % 2 == 0]
    theirs = [r for r in rows if r["timestamp"] // 10 % 2 == 1]
    with Role("ingest", tmp_path / "ingest", sets) as ingest:
        stream = Proc(["stream", "--member", "a"], tmp_path / "a", sets)
        wait_shared([stream])
        post_all(ingest, ours)
        kafka.produce(prefix + "raw", [f'{r["sensor_id"]}\t{json.dumps(r)}' for r in theirs], partitioner="murmur2_random")

        raw = kafka.consume(prefix + "raw")
        assert len(raw) == len(rows)
        placed = {}  # sensor -> {partition: {"mare", "kcat"}}
        for r in raw:
            producer = "mare" if "mare.ts" in (r.get("headers") or [])[::2] else "kcat"
            placed.setdefault(int(r["key"]), {}).setdefault(r["partition"], set()).add(producer)
        assert placed == {s: {key_partition(str(s), 4): {"mare", "kcat"}} for s in sensors}

        # One window per sensor, field and resolution, counting the readings of both producers.
        rollups = settle(lambda: kafka_rollups(kafka, prefix))
        hourly = [v for v in rollups.values() if v["resolution"] == "1h" and v["field"] == "temperature"]
        assert sorted((v["sensor_id"], v["count"]) for v in hourly) == [(s, 40) for s in sensors]
        assert_exact(rollups, rows)
        # Each sensor's rollups are in its readings' partition.
        for r in kafka.consume(prefix + "rollups", committed=True):
            assert r["partition"] == key_partition(r["key"].split("/")[0], 4), r
        stream.stop()


def test_a_long_broker_outage_stops_no_stage_for_good(kafka, tmp_path):
    """The broker away for many times the delivery timeout: the rollups' transactions cannot even
    be aborted in time, yet every stage of `mare run` and a `mare stream` beside it (one consumer
    group) resume by themselves once it is back (the 3 a.m. case: nobody restarts mare after
    Kafka's maintenance window), and the rollups count every reading once."""
    prefix = "outage."
    sets = on_kafka(kafka, prefix, 'log.kafka.delivery_timeout="1s"')
    with MareRun(tmp_path / "run", extra=sets) as run:
        stream = Proc(["stream", "--member", "beside"], tmp_path / "stream", sets)
        wait_shared_with_run = lambda: "assigned partitions" in stream.text()  # noqa: E731
        wait_for(wait_shared_with_run, 60, "mare stream joined the group")
        with Sender(run) as sender:
            time.sleep(3)
            kafka.stop_broker(0, kill=True)
            try:
                time.sleep(14)  # 14 times the delivery timeout, past the transactions' 10 s timeout
            finally:
                kafka.start_broker(0)
            time.sleep(5)
        assert_nothing_acknowledged_lost(kafka, run, sender, prefix + "raw")
        for name in ("mare_rollup_consumer_up", "mare_store_consumer_up", "mare_forecast_consumer_up"):
            wait_for(lambda: run.metric(name) == 1, 60, name)
        assert stream.proc.poll() is None, stream.text()[-3000:]
        wait_for(lambda: stream.metric("mare_rollup_consumer_up") == 1, 60, "mare stream consuming")
        stream.stop()


def test_two_stream_processors_with_one_name_leave_one_running(kafka, tmp_path):
    """A second `mare stream --member a` fences the first (Kafka's transactional.id): the first
    stops and says why (exit code 1), instead of fencing the second back for ever, and the
    rollups stay exact."""
    prefix = "fence."
    sets = on_kafka(kafka, prefix)
    with Role("ingest", tmp_path / "ingest", sets) as ingest:
        first = Proc(["stream", "--member", "a"], tmp_path / "first", sets)
        wait_shared([first])
        rows = readings(range(1, 9), 40, seed=5)
        post_all(ingest, rows[:160])
        wait_for(lambda: (first.metric("mare_rollup_readings_counted_total") or 0) >= 160, 60, "the first counted")
        second = Proc(["stream", "--member", "a"], tmp_path / "second", sets)
        # The first learns it was fenced at its next transaction, which needs readings to count:
        # sent before the second has its producer, they were all counted by the first, which then
        # sat idle and unaware for up to a minute.
        wait_for(lambda: "joined group" in second.text(), 60, "the second joined")
        post_all(ingest, rows[160:])
        assert first.proc.wait(timeout=120) == 1, first.text()[-3000:]
        assert "fenced by another with the same name" in first.text() and "stopped" in first.text()
        # The second takes every partition once the group has moved on from the first (up to
        # its session timeout), restores their state and counts the rest.
        wait_for(lambda: sum(v["count"] for v in kafka_rollups(kafka, prefix).values()
                             if v["resolution"] == "1d" and v["field"] == "temperature") == len(rows), 120,
                 "the second counted every reading", step=1)
        assert_exact(settle(lambda: kafka_rollups(kafka, prefix)), rows)
        assert second.metric("mare_rollup_consumer_up") == 1
        second.stop()


def test_two_mare_ingest_share_an_mqtt_subscription_and_raw_has_each_message_once(kafka, tmp_path):
    """Issue 17: several `mare ingest` processes share one MQTT 5 subscription ($share/...):
    the broker gives each message to one of them, and the raw topic holds every message once."""
    prefix = "mqttshare."
    n = 1000
    topics = ("$share/g/observatory/+/readings",)
    sets = on_kafka(kafka, prefix)
    with Mosquitto(tmp_path) as broker, \
            Role("ingest", tmp_path / "a", sets + mqtt_settings(broker, client_id="ingest-a", topics=topics)) as a, \
            Role("ingest", tmp_path / "b", sets + mqtt_settings(broker, client_id="ingest-b", topics=topics)) as b:
        for run in (a, b):  # the broker's SUBACK, after which it counts the member in the group
            wait_for(lambda: "mqtt: subscribed to 1 of 1 topic filter(s)" in run.read_output(), what="both sources to subscribe")
        broker.publish_lines("observatory/2/readings", [reading(i) for i in range(n)], qos=1)

        def accepted(run):
            return run.metric('mare_source_readings_accepted_total{source="mqtt"}') or 0
        wait_for(lambda: accepted(a) + accepted(b) == n, what=f"{n} readings between the two")
        got = (accepted(a), accepted(b))
        raw = kafka.consume(prefix + "raw")
    seqs = sorted(json.loads(r["payload"])["seq"] for r in raw)
    assert seqs == list(range(n)), f"{len(raw)} records in raw for {n} messages"
    assert min(got) > 0, f"the broker gave {got[0]} and {got[1]}: not shared"
    print(f"two `mare ingest` sharing $share/g: {got[0]} + {got[1]} = {n}, each once in raw")
