"""mare on a real Apache Kafka (log.kind = "kafka"): the same readings give the same rollups and
the same store answers as on the embedded log; kcat interoperates both ways; a broker killed
and restarted loses nothing that was acknowledged; an HTTP request whose send fails in one
partition leaves none of its readings visible, and its retry stores each once, while the
requests that shared its transaction are stored; a mare killed with a transaction open, started
again, reads its partitions back to their end at once. One KRaft
broker serves the whole module; each test keeps to its own topics and groups through
log.kafka.topic_prefix."""
import json
import os
import random
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from harness import MareRun, key_partition, log_records, mare, wait_for
from kafka_server import KafkaCluster

BASE = 1705831200  # 2024-01-21T10:00:00Z


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with KafkaCluster(tmp_path_factory.mktemp("kafka")) as cluster:
        yield cluster


def on_kafka(kafka, prefix, *more):
    """The settings of a mare on the module's broker; HTTP ingest in transactions whatever the default."""
    return ["log.kind=kafka", f'log.kafka.brokers="{kafka.bootstrap}"', "log.kafka.replication_factor=1",
            f'log.kafka.topic_prefix="{prefix}"', "log.kafka.atomic_ingest=true", *more]


def readings(sensors, per_sensor, seed):
    """Deterministic readings over a few hours, each sensor's in time order, none late."""
    rnd = random.Random(seed)
    out = []
    for i in range(per_sensor):
        for s in sensors:
            ts = BASE + i * 37 + s
            r = {"timestamp": ts, "sensor_id": s, "temperature": round(rnd.uniform(5, 25), 2),
                 "pressure": round(rnd.uniform(990, 1030), 1), "location": {"lat": 42.48, "lon": 3.18}}
            if s % 3 == 0:
                r["wave_height"] = round(rnd.uniform(0, 4), 2)
                r["status"] = "ok"
            out.append(r)
    return out


def post_all(run, rows, chunk=200):
    for i in range(0, len(rows), chunk):
        status, body = run.post("".join(json.dumps(r) + "\n" for r in rows[i:i + chunk]))
        assert status == 200 and body["accepted"] == len(rows[i:i + chunk]), (status, body)


def send_udp(run, rows):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for r in rows:
            s.sendto(json.dumps(r).encode(), ("127.0.0.1", run.udp_port))
            time.sleep(0.0005)


def newest(values):
    """Rollup messages (dicts) -> the newest revision of each window, as consumers upsert."""
    out = {}
    for v in values:
        key = f'{v["sensor_id"]}/{v["field"]}/{v["resolution"]}/{v["window_start"]}'
        old = out.get(key)
        if old is None or (v["revision"], v["final"]) >= (old["revision"], old["final"]):
            out[key] = v
    return out


def kafka_rollups(kafka, prefix):
    records = kafka.consume(prefix + "rollups", committed=True)  # as a transactional topic is read
    for r in records:  # what kcat sees: a key and a JSON value per the rollups format
        v = json.loads(r["payload"])
        assert r["key"].startswith(f'{v["sensor_id"]}/{v["field"]}/{v["resolution"]}/')
    return newest(json.loads(r["payload"]) for r in records)


def embedded_rollups(data_dir):
    return newest(r["value"] for r in log_records(data_dir, "rollups"))


def settle(fetch, timeout=60):
    """Polls fetch() until two answers a couple of emit intervals apart agree."""
    deadline = time.time() + timeout
    last = fetch()
    while time.time() < deadline:
        time.sleep(2.5)
        now = fetch()
        if now == last and now:
            return now
        last = now
    raise AssertionError("rollups did not settle")


STORE_QUERIES = [
    "SELECT count(*), sum(temperature), min(temperature), max(temperature), sum(pressure), sum(wave_height) FROM readings",
    "SELECT sensor_id, count(*), sum(temperature), avg(pressure), max(wave_height) FROM readings GROUP BY sensor_id ORDER BY sensor_id",
    "SELECT time_bucket('1h', ts) AS h, count(*), min(temperature), max(temperature) FROM readings GROUP BY h ORDER BY h",
]


def test_pipeline_on_kafka_equals_the_embedded_log(kafka, tmp_path):
    http_part = readings(range(1, 13), 60, seed=1)
    udp_part = readings(range(20, 24), 25, seed=2)
    total = len(http_part) + len(udp_part)
    answers = {}
    for kind in ("embedded", "kafka"):
        extra = ["sources.udp.threads=1", "store.flush_interval=\"2s\""]
        if kind == "kafka":
            extra = on_kafka(kafka, "equal.", *extra)
        with MareRun(tmp_path / kind, extra=extra) as run:
            post_all(run, http_part)
            send_udp(run, udp_part)
            run.wait_readings(total)
            store = [run.query_rows(q) for q in STORE_QUERIES]
            if kind == "kafka":
                rollups = settle(lambda: kafka_rollups(kafka, "equal."))
            else:
                rollups = settle(lambda: embedded_rollups(str(tmp_path / kind)))
            answers[kind] = (store, rollups)
            if kind == "kafka":
                # The raw topic holds each reading once, keyed by sensor, in the partition Kafka's
                # default partitioner gives its key: (murmur2(key) & 0x7fffffff) mod 4.
                raw = kafka.consume("equal.raw")
                assert len(raw) == total
                for r in raw:
                    v = json.loads(r["payload"])
                    assert r["key"] == str(v["sensor_id"]) and r["partition"] == key_partition(r["key"], 4)
                # The processors' groups committed where Kafka's own tools see them: each partition
                # read to its end, past the transactions' markers (which take offsets of their own).
                positions = [o for (t, _), o in kafka.group_offsets("equal.store").items() if t == "equal.raw"]
                assert len(positions) == 4 and all(committed == end for committed, end in positions), positions
                assert sum(committed for committed, _ in positions) > total
    store_e, rollups_e = answers["embedded"]
    store_k, rollups_k = answers["kafka"]
    assert store_k == store_e
    assert store_k[0][0][0] == total
    assert len(rollups_k) == len(rollups_e) > 0
    assert rollups_k == rollups_e


def test_kcat_interoperates_both_ways(kafka, tmp_path):
    prefix = "kcat."
    with MareRun(tmp_path / "run", extra=on_kafka(kafka, prefix)) as run:
        ours = readings([1, 2], 10, seed=3)
        post_all(run, ours)
        # Another producer: kcat, key = sensor id, its own partitioner, no mare headers.
        theirs = readings([31, 32, 33], 20, seed=4)
        kafka.produce(prefix + "raw", [f'{r["sensor_id"]}\t{json.dumps(r)}' for r in theirs])
        run.wait_readings(len(ours) + len(theirs))
        got = run.query_rows("SELECT sensor_id, count(*), sum(temperature) FROM readings WHERE sensor_id > 30 "
                         "GROUP BY sensor_id ORDER BY sensor_id")
        for sensor, count, total in got:
            mine = [r["temperature"] for r in theirs if r["sensor_id"] == sensor]
            assert count == len(mine) and abs(total - sum(mine)) < 1e-6
        assert len(got) == 3

        # Rollups, read by kcat as JSON, count kcat's readings in the windows of their own
        # timestamps (the event time comes from the reading when no mare header says it).
        def hourly():
            return {k: v for k, v in kafka_rollups(kafka, prefix).items()
                    if v["resolution"] == "1h" and v["field"] == "temperature" and v["sensor_id"] > 30}
        windows = settle(hourly)
        want = {}
        for r in theirs:
            start = (r["timestamp"] // 3600) * 3600
            key = (r["sensor_id"], time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(start)))
            want.setdefault(key, []).append(r["temperature"])
        got_windows = {(v["sensor_id"], v["window_start"]): v for v in windows.values()}
        assert set(got_windows) == set(want)
        for key, temps in want.items():
            v = got_windows[key]
            assert (v["count"], v["min"], v["max"]) == (len(temps), min(temps), max(temps))
            assert v["first"] == temps[0] and v["last"] == temps[-1]

        # mare's own raw records, read by kcat: the reading's JSON, keyed by sensor, with the
        # event time in header mare.ts.
        raw = [r for r in kafka.consume(prefix + "raw") if r["key"] in ("1", "2")]
        assert sorted(json.dumps(json.loads(r["payload"]), sort_keys=True) for r in raw) == \
            sorted(json.dumps(r, sort_keys=True) for r in ours)
        for r in raw:
            headers = dict(zip(r["headers"][::2], r["headers"][1::2]))
            assert int(headers["mare.ts"]) == json.loads(r["payload"])["timestamp"] * 1_000_000


class Sender:
    """Posts batches of 20 numbered readings until stopped; remembers which were acknowledged,
    and which a 503 said were not stored (a request is all or nothing, its outcome unknown only
    when the brokers never answered its commit)."""

    def __init__(self, run):
        self.run, self.acked, self.refused, self.unstored = run, [], 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.send)

    def send(self):
        seq = 0
        while not self.stop.is_set():
            batch = [{"timestamp": BASE + seq + i, "sensor_id": 1 + (seq + i) % 7, "temperature": 10.0, "seq": seq + i}
                     for i in range(20)]
            seq += 20
            try:
                status, answer = self.run.post("".join(json.dumps(r) + "\n" for r in batch))
            except OSError:
                status = None
            if status == 200:
                self.acked.extend(r["seq"] for r in batch)
            else:
                self.refused += 1
                if status == 503 and "outcome is unknown" not in str(answer):
                    self.unstored.extend(r["seq"] for r in batch)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def assert_nothing_acknowledged_lost(kafka, run, sender, topic):
    assert sender.acked, "nothing was acknowledged"
    assert len(sender.acked) == len(set(sender.acked))
    # As mare's consumers read it: what requests' transactions committed.
    committed = kafka.consume(topic, committed=True)
    present = {json.loads(r["payload"])["seq"] for r in committed}
    missing = sorted(set(sender.acked) - present)
    assert not missing, f"{len(missing)} acknowledged readings lost, e.g. {missing[:10]}"
    stored = sorted(set(sender.unstored) & present)
    assert not stored, f"{len(stored)} readings of requests answered 503 (nothing stored) are in the log, e.g. {stored[:10]}"
    # Every consumer came through: the store holds what the topic holds, and the rollups
    # (transactions aborted while the broker was away are redone) count each reading once.
    total = len(committed)
    run.wait_readings(total)
    prefix = topic[:-len("raw")]

    def daily():
        return sum(v["count"] for v in kafka_rollups(kafka, prefix).values()
                   if v["resolution"] == "1d" and v["field"] == "temperature")
    deadline = time.time() + 120
    while daily() < total and time.time() < deadline:
        time.sleep(1)
    assert settle(daily) == total
    print(f"acknowledged {len(sender.acked)} readings, {sender.refused} requests refused "
          f"({len(sender.unstored) // 20} of them answered 503, none stored)")


def test_broker_kill_and_restart_loses_nothing_acknowledged(kafka, tmp_path):
    prefix = "restart."
    with MareRun(tmp_path / "run", extra=on_kafka(kafka, prefix, 'log.kafka.delivery_timeout="8s"')) as run:
        with Sender(run) as sender:
            time.sleep(2)
            kafka.stop_broker(0, kill=True)
            time.sleep(3)
            kafka.start_broker(0)
            time.sleep(4)
        assert_nothing_acknowledged_lost(kafka, run, sender, prefix + "raw")


def post_keyed(run, body, key):
    """POSTs an ingest body with an Idempotency-Key: (status, headers, JSON answer)."""
    req = urllib.request.Request(f"{run.http_url}/api/v1/ingest", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": key})
    try:
        with run.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_a_request_failing_in_one_partition_stores_nothing_and_its_retry_stores_it_once(kafka, tmp_path):
    """Issue 13: the brokers refuse one partition's share of a request (a reading over the topic's
    max.message.bytes) while taking the other three: the request is one transaction, aborted, so
    a read_committed consumer (the store, kcat) sees none of it, and the 503 names every line.
    Sent again with the same Idempotency-Key once the topic takes it: each reading once."""
    prefix = "txn."
    topic = prefix + "raw"
    sensors = {}  # partition -> a sensor placed there
    for s in range(1, 100):
        sensors.setdefault(key_partition(str(s), 4), s)
    rnd = random.Random(13)
    rows = [{"timestamp": BASE + p, "sensor_id": sensors[p], "temperature": 10.0 + p} for p in range(3)]
    # Eight text fields of 1000 random letters: over 4 KB even compressed (lz4).
    big = {"timestamp": BASE + 3, "sensor_id": sensors[3], "temperature": 13.0,
           **{f"note{i}": "".join(rnd.choices(string.ascii_letters, k=1000)) for i in range(8)}}
    body = "".join(json.dumps(r) + "\n" for r in rows + [big])

    def config(*change):
        kafka.tool("kafka.admin.ConfigCommand", "--alter", "--entity-type", "topics", "--entity-name", topic, *change)

    with MareRun(tmp_path / "run", extra=on_kafka(kafka, prefix, 'store.flush_interval="1s"')) as run:
        config("--add-config", "max.message.bytes=4096")
        status, _, answer = post_keyed(run, body, "gateway-7/batch-1")
        assert status == 503, answer
        assert answer["accepted"] == 0 and answer["unacknowledged_lines"] == [1, 2, 3, 4], answer
        assert "nothing of this request is stored" in answer["error"], answer
        # The three small readings reached their partitions, in a transaction since aborted.
        aborted = {json.loads(r["payload"])["sensor_id"] for r in kafka.consume(topic, aborted=True)}
        assert aborted == {sensors[0], sensors[1], sensors[2]}, aborted
        assert kafka.consume(topic, committed=True) == []
        assert run.metric('mare_log_kafka_transactions_total{outcome="aborted"}') == 1

        config("--delete-config", "max.message.bytes")
        for _ in range(20):  # until the broker applies it; a 503 kept no key: each retry runs
            status, headers, answer = post_keyed(run, body, "gateway-7/batch-1")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200 and answer["accepted"] == 4 and "Idempotent-Replayed" not in headers, answer.get("error")
        status, headers, again = post_keyed(run, body, "gateway-7/batch-1")
        assert status == 200 and again == answer and headers["Idempotent-Replayed"] == "true"
        stored = [json.loads(r["payload"]) for r in kafka.consume(topic, committed=True)]
        assert sorted(r["sensor_id"] for r in stored) == sorted(sensors.values())
        run.wait_readings(4)
        assert run.metric('mare_log_kafka_transactions_total{outcome="committed"}') == 1


def test_a_request_refused_for_good_does_not_fail_those_in_its_transaction(kafka, tmp_path):
    """Issue 13: requests ingested at once share a transaction; one whose reading the brokers
    refuse for good (over the topic's max.message.bytes) is answered 503 with the reason, and the
    others run again without it in a new transaction: each of their readings stored once."""
    prefix = "refused."
    topic = prefix + "raw"
    rnd = random.Random(17)
    with MareRun(tmp_path / "run", extra=on_kafka(kafka, prefix, 'store.flush_interval="1s"')) as run:
        kafka.tool("kafka.admin.ConfigCommand", "--alter", "--entity-type", "topics", "--entity-name", topic,
                   "--add-config", "max.message.bytes=4096")
        sent = []
        for round_ in range(40):
            # A request of one oversized reading, among three of small ones sent at the same moment
            # (until one round had them share a transaction: the group commit decides that).
            big = {"timestamp": BASE + round_, "sensor_id": 50, "temperature": 1.0,
                   **{f"note{i}": "".join(rnd.choices(string.ascii_letters, k=1000)) for i in range(8)}}
            smalls = [[{"timestamp": BASE + round_ * 10 + j, "sensor_id": 1 + (k * 5 + j) % 8, "temperature": 10.0 + j}
                       for j in range(5)] for k in range(3)]
            answers = {}
            start = threading.Barrier(4)

            def post(name, rows):
                start.wait()
                answers[name] = run.post("".join(json.dumps(r) + "\n" for r in rows))
            threads = [threading.Thread(target=post, args=("big", [big]))]
            threads += [threading.Thread(target=post, args=(k, rows)) for k, rows in enumerate(smalls)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            status, answer = answers["big"]
            assert status == 503, answer
            answer = json.loads(answer)  # the harness gives an error's body as text
            assert "too large" in answer["error"].lower() and "nothing of this request is stored" in answer["error"], answer
            assert answer["unacknowledged_lines"] == [1], answer
            for k, rows in enumerate(smalls):
                assert answers[k][0] == 200 and answers[k][1]["accepted"] == len(rows), (round_, answers)
                sent += rows
            if (run.metric("mare_log_kafka_appends_rerun_total") or 0) > 0:
                break
        assert run.metric("mare_log_kafka_appends_rerun_total") > 0, "the oversized request never shared a transaction"
        assert run.metric('mare_log_kafka_transactions_total{outcome="aborted"}') >= 1
        stored = sorted((r["sensor_id"], r["timestamp"]) for r in
                        (json.loads(x["payload"]) for x in kafka.consume(topic, committed=True)))
        assert stored == sorted((r["sensor_id"], r["timestamp"]) for r in sent)
        run.wait_readings(len(sent))


# A producer with mare's transactional.id whose transaction is left open, as a mare killed
# mid-request leaves it: it prints "open" once its reading is in the partition, then waits to be killed.
HOLD_TRANSACTION_OPEN = """
import sys, time
from confluent_kafka import Producer
bootstrap, txn_id, topic, key, value = sys.argv[1:]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 300000,
              "partitioner": "murmur2_random"})
p.init_transactions(60)
p.begin_transaction()
p.produce(topic, key=key, value=value)
assert p.flush(60) == 0
print("open", flush=True)
time.sleep(600)
"""


def test_a_restart_after_a_kill_mid_request_reads_the_log_back_to_its_end(kafka, tmp_path):
    """Issue 13: mare killed (-9) with a request's transaction open holds the partition's last
    stable offset there, so that read_committed readers see nothing after it, until the brokers
    time the transaction out. Started again, mare fences its predecessor (the same
    transactional.id) before it reads its partitions back for the duplicate windows: that read
    sees every committed reading, those appended after the open transaction began too, and the
    readings sent before the kill and again after are each stored once."""
    prefix = "killed."
    topic = prefix + "raw"
    run = MareRun(tmp_path / "run", extra=on_kafka(kafka, prefix, 'store.flush_interval="1s"'), start_timeout=120)
    txn_id = f"{prefix}ingest-{socket.gethostname()}-127.0.0.1:{run.http_port}"
    rows = readings(range(1, 9), 5, seed=31)
    # A sensor of partition 0, where the transaction is left open and another producer then appends.
    sensor = next(s for s in range(100, 200) if key_partition(str(s), 4) == 0)
    run.start()
    try:
        post_all(run, rows)
        run.kill9()
        held = {"timestamp": BASE + 1, "sensor_id": sensor, "temperature": -1.0}
        hold = subprocess.Popen([sys.executable, "-c", HOLD_TRANSACTION_OPEN, kafka.bootstrap, txn_id, topic,
                                 str(sensor), json.dumps(held)], stdout=subprocess.PIPE, text=True)
        assert hold.stdout.readline().strip() == "open"
        hold.kill()
        hold.wait()
        # Committed, but after the open transaction's first offset: invisible to read_committed
        # readers while it is open (a reading appended by another mare ingest, say).
        after = {"timestamp": BASE + 2, "sensor_id": sensor, "temperature": 2.0}
        kafka.produce(topic, [f"{sensor}\t{json.dumps(after)}"], partition=0)
        assert len(kafka.consume(topic, committed=True)) == len(rows)

        before = len(run.read_output())
        run.start()
        out = run.read_output()[before:]  # this start's lines
        assert "not rebuilt" not in out, out
        # The windows hold every committed reading: those before the open transaction and the one after.
        assert f"({len(rows) + 1} readings, " in out, out
        # Sent again: each a duplicate, appended nowhere.
        for r in rows[:10] + [after]:
            status, answer = run.post(json.dumps(r) + "\n")
            assert status == 200 and answer["accepted"] == 0 and answer["reasons"] == {"duplicate": 1}, answer
        committed = [json.loads(r["payload"]) for r in kafka.consume(topic, committed=True)]
        assert sorted((r["sensor_id"], r["timestamp"]) for r in committed) == \
            sorted((r["sensor_id"], r["timestamp"]) for r in rows + [after])
        run.wait_readings(len(rows) + 1)
        # The held reading: aborted by the restart's fence, never read.
        assert run.query_rows(f"SELECT count(*) FROM readings WHERE sensor_id = {sensor}")[0][0] == 1
    finally:
        if run.proc and run.proc.poll() is None:
            rc = run.stop()
            assert rc == 0, run.read_output()


def test_mare_log_reads_the_kafka_topics(kafka, tmp_path):
    prefix = "logcmd."
    sets = []
    for s in on_kafka(kafka, prefix):
        sets += ["--set", s]
    rows = readings([1, 2, 3, 4, 5], 8, seed=5)
    with MareRun(tmp_path / "run", extra=on_kafka(kafka, prefix, 'store.flush_interval="1s"')) as run:
        post_all(run, rows)
        run.wait_readings(len(rows))
        time.sleep(2.5)  # a store flush, which commits the store's group
        topics = mare("log", "topics", *sets).stdout
        # One request, one transaction: its marker takes an offset after its records in each partition.
        assert any(l.split()[:3] == ["raw", "4", str(len(rows) + 4)] for l in topics.splitlines()), topics
        assert any(l.split()[:2] == ["rollups", "4"] for l in topics.splitlines()), topics
        parts = mare("log", "partitions", "raw", *sets).stdout.splitlines()
        # 8 readings of each sensor, in the partition of its key (sensors 2; 4; 5; 1 and 3).
        per_partition = [8 * sum(1 for s in range(1, 6) if key_partition(str(s), 4) == p) for p in range(4)]
        assert per_partition == [8, 8, 8, 16]
        assert [l.split()[:4] for l in parts[1:]] == [[str(p), "0", str(e + 1), str(e + 1)] for p, e in
                                                      enumerate(per_partition)], parts
        groups = mare("log", "groups", "raw", *sets).stdout
        assert "rollup" in groups and "store" in groups, groups
        for line in groups.splitlines()[1:]:
            if line.split()[0] == "store":
                assert line.split()[4] == "0", groups  # no lag after the flush
        tail = mare("log", "tail", "raw", "--from-beginning", "--format", "ndjson", *sets).stdout
        got = [json.loads(l) for l in tail.splitlines()]
        assert sorted(json.dumps(r["value"], sort_keys=True) for r in got) == \
            sorted(json.dumps(r, sort_keys=True) for r in rows)
        # The event time, from header mare.ts, is the reading's.
        assert all(r["timestamp"].startswith("2024-01-21") for r in got)
        # mare log produce writes to Kafka as well.
        mare("log", "produce", "rollups", *sets, input="9/x/1h/0\t{\"hello\":1}\n")
        assert [r["partition"] for r in kafka.consume(prefix + "rollups") if r["key"] == "9/x/1h/0"] == \
            [key_partition("9", 4)]  # the partition of its sensor, by the topic's partitioner
        verify = mare("log", "verify", *sets, check=False)
        assert verify.returncode != 0 and "embedded" in verify.stderr


def test_mare_run_started_before_kafka_waits_for_it(kafka, tmp_path):
    """Started while the broker is down (docker compose starts both at once; a reboot), `mare run`
    says it waits, and is up and ingesting once the broker is; `mare log` (one-shot) fails at once."""
    sets = on_kafka(kafka, "late.", 'log.kafka.request_timeout="2s"')
    kafka.stop_broker(0)
    run = MareRun(tmp_path / "run", extra=sets, start_timeout=120)
    seen = {}

    def operator():  # reads mare's log, tries a one-shot command, then starts Kafka
        try:
            wait_for(lambda: os.path.exists(run.output) and "waiting for the brokers" in run.read_output(), 60,
                     "mare run said it waits")
            seen["one_shot"] = mare("log", "topics", "--data-dir", tmp_path / "log",
                                    *[a for s in sets for a in ("--set", s)], check=False, timeout=60)
        except Exception as e:  # noqa: BLE001 (reported by the test below)
            seen["error"] = e
        finally:
            kafka.start_broker(0)

    watcher = threading.Thread(target=operator)
    watcher.start()
    try:
        with run:
            watcher.join()
            assert "error" not in seen, seen.get("error")
            one_shot = seen["one_shot"]
            assert one_shot.returncode != 0 and "is Kafka running" in one_shot.stderr + one_shot.stdout
            rows = readings(range(1, 4), 10, seed=3)
            post_all(run, rows)
            run.wait_readings(len(rows))
    finally:
        watcher.join()
