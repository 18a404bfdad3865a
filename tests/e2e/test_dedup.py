"""A reading delivered twice is counted once (issue 19), against the real `mare run`: the same
batch sent twice over HTTP, TCP, UDP and MQTT (QoS 1, a real mosquitto), an HTTP retry of a
whole body after a 503, a conflicting copy, and a resend after a restart each leave every
reading once in the log, the store, the hourly rollups and MariaDB's tables (a real MariaDB)."""
import contextlib
import json
import resource
import socket
import time
import urllib.parse
import urllib.request

import pytest

from harness import MareRun, key_partition, log_records, wait_for
from mariadb_server import MariaDB
from mosquitto_server import Mosquitto
from test_faults import PARTITIONS, fill_partition, limited_files, reading

SENSORS, PER_SENSOR = 5, 10
# The previous hour's first minutes, so every reading of a sensor falls in one hourly window
# (and in the store's retention).
HOUR = int(time.time()) // 3600 * 3600 - 3600


def batch(first_sensor=1, hour=HOUR):
    return [json.dumps({"timestamp": hour + 20 * i, "sensor_id": s, "temperature": 10 + s + i / 10},
                       separators=(",", ":"))
            for s in range(first_sensor, first_sensor + SENSORS) for i in range(PER_SENSOR)]


def metric(run, name):
    return run.metric(name) or 0


def sql(run, q):
    url = f"{run.http_url}/api/v1/query?" + urllib.parse.urlencode({"q": q, "format": "json"})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())["rows"]
    except urllib.error.HTTPError as e:
        # A field's column exists once the store holds a reading with it: until the first
        # reading is flushed, "unknown column" means "not yet", which a wait_for retries.
        body = e.read().decode()
        if e.code == 400 and "unknown column" in body:
            return None
        raise AssertionError(f"query {q!r} failed: {e.code} {body}") from None


def send(run, transport, lines):
    body = "\n".join(lines) + "\n"
    if transport == "http":
        status, answer = run.post(body)
        assert status == 200, answer
        return answer
    if transport == "tcp":
        with socket.create_connection(("127.0.0.1", run.tcp_port)) as c:
            c.sendall(body.encode())
        return None
    if transport == "mqtt":  # one reading a message, QoS 1, as a buoy's gateway publishes
        run.broker.publish_lines("dedup/readings", lines, qos=1)
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(0, len(lines), 10):  # as a gateway: several readings a datagram
            s.sendto("\n".join(lines[i:i + 10]).encode(), ("127.0.0.1", run.udp_port))
    return None


class MariaDBDatabase:
    """One database of the module's MariaDB server."""
    def __init__(self, db, database):
        self.db, self.database = db, database

    def query(self, q):
        try:
            return self.db.query(q, database=self.database)
        except RuntimeError:  # the sink has not made the database or table yet
            return None


def hourly_counts(data_dir):
    """The newest revision of each sensor's hourly temperature window in the rollups topic."""
    newest = {}
    for r in log_records(data_dir, "rollups"):
        v = r["value"]
        if v["resolution"] == "1h" and v["field"] == "temperature" and v["revision"] >= newest.get(r["key"], {"revision": -1})["revision"]:
            newest[r["key"]] = v
    return {v["sensor_id"]: v["count"] for v in newest.values()}


def assert_once_everywhere(run, lines, db=None):
    """The store (SQL) and MariaDB's tables (the readings and rollup_hour), then, once the run
    stopped, the log and the hourly rollups hold every line once."""
    wait_for(lambda: sql(run, "SELECT count(*) FROM readings") == [[len(lines)]], what="the store's readings")
    got = sql(run, "SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id ORDER BY sensor_id")
    assert got == [[s, PER_SENSOR] for s in range(1, SENSORS + 1)], got
    if db is not None:
        every_sensor = [[str(s), str(PER_SENSOR)] for s in range(1, SENSORS + 1)]
        wait_for(lambda: db.query("SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id ORDER BY sensor_id")
                 == every_sensor, what="MariaDB's readings")
        # The hourly window's count is the sink's copy of the rollup, which the processor emits
        # again as it grows: wait for the newest revision.
        wait_for(lambda: db.query("SELECT sensor_id, count FROM rollup_hour WHERE field = 'temperature' "
                                  "ORDER BY sensor_id") == every_sensor, what="MariaDB's rollup_hour")
    run.stop()
    records = log_records(run.data_dir)
    sent = sorted((json.loads(l)["sensor_id"], json.loads(l)["timestamp"]) for l in lines)
    stored = sorted((int(r["key"]), r["value"]["timestamp"]) for r in records)
    assert stored == sent
    counts = hourly_counts(run.data_dir)
    assert counts == {s: PER_SENSOR for s in {json.loads(l)["sensor_id"] for l in lines}}, counts


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    with MariaDB(tmp_path_factory.mktemp("mariadb")) as db:
        yield db


@pytest.mark.parametrize("transport", ["http", "tcp", "udp", "mqtt"])
def test_the_same_batch_sent_twice_is_counted_once(tmp_path, transport, mariadb):
    lines = batch()
    database = f"dedup_{transport}"  # the server is the module's; each test its own tables
    extra = ["rollup.emit_interval=\"100ms\"", "sink.mariadb.enabled=true", f"sink.mariadb.port={mariadb.port}",
             f'sink.mariadb.database="{database}"', "sink.mariadb.readings=true"]
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(tmp_path)) if transport == "mqtt" else None
        if broker:
            extra += ["sources.mqtt.enabled=true", f"sources.mqtt.port={broker.port}", 'sources.mqtt.topics=["dedup/readings"]',
                      "sources.mqtt.qos=1", 'sources.mqtt.client_id="mare-dedup"']
        run = stack.enter_context(MareRun(tmp_path / "data", extra=extra))
        run.broker = broker
        if broker:
            wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the MQTT source to connect")
        accepted = f'mare_source_readings_accepted_total{{source="{transport}"}}'
        duplicate = f'mare_source_readings_rejected_total{{source="{transport}",reason="duplicate"}}'
        first = send(run, transport, lines)
        wait_for(lambda: metric(run, accepted) == len(lines), what="the first copy accepted")
        second = send(run, transport, lines)
        wait_for(lambda: metric(run, duplicate) == len(lines), what="the second copy refused")
        if transport == "http":
            assert first["accepted"] == len(lines) and first["rejected"] == 0, first
            assert second["accepted"] == 0 and second["reasons"] == {"duplicate": len(lines)}, second
        time.sleep(0.3)
        assert metric(run, accepted) == len(lines)
        assert_once_everywhere(run, lines, MariaDBDatabase(mariadb, database))
    # Plain resends are counted, not dead-lettered.
    dead = tmp_path / "data" / "dead-letter.log"
    assert not dead.exists() or " duplicate " not in dead.read_text()


def test_a_whole_body_resent_after_a_503_leaves_one_copy(tmp_path):
    sensors = {}
    for s in range(1, 100):
        sensors.setdefault(key_partition(str(s), PARTITIONS), []).append(s)
    filler, ok = sensors[0][0], sensors[1][:2]
    # Another sensor of the filled partition: the filler's readings are 45 minutes after these,
    # which would be late (accepted without being remembered) for the filler itself.
    full = sensors[0][1]
    with MareRun(tmp_path, extra=[f"log.partitions={PARTITIONS}", "log.fsync=\"never\""], preexec_fn=limited_files) as m:
        fill_partition(m, filler)
        lines = [reading(ok[0], 1), reading(full, 2), reading(ok[1], 3),
                 "[" + ",".join([reading(full, 4), reading(ok[0], 5), reading(full, 6)]) + "]", reading(full, 7)]
        body = "\n".join(lines) + "\n"
        status, answer = m.post(body)
        assert status == 503, answer
        # All or nothing: the full partition's share failing, the others' are not stored either.
        assert json.loads(answer)["accepted"] == 0
        # Space returns; the client resends the whole body, not just what it was told.
        resource.prlimit(m.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        status, answer = m.post(body)
        assert status == 200, answer
        assert answer["accepted"] == 7 and answer["reasons"] == {}, answer
        status, answer = m.post(body)  # and once more: nothing new
        assert status == 200 and answer["accepted"] == 0 and answer["reasons"] == {"duplicate": 7}, answer

    stored = [json.dumps(r["value"], separators=(",", ":")) for r in log_records(tmp_path)]
    for r in [reading(ok[0], 1), reading(full, 2), reading(ok[1], 3), reading(full, 4), reading(ok[0], 5),
              reading(full, 6), reading(full, 7)]:
        assert stored.count(r) == 1, (r, stored.count(r))


def test_a_conflicting_copy_is_dead_lettered_with_both_and_the_first_wins(tmp_path):
    first = json.dumps({"timestamp": HOUR, "sensor_id": 3, "temperature": 21.5}, separators=(",", ":"))
    second = json.dumps({"timestamp": HOUR, "sensor_id": 3, "temperature": 99.0}, separators=(",", ":"))
    with MareRun(tmp_path / "data") as run:
        assert run.post(first + "\n")[1]["accepted"] == 1
        status, answer = run.post(second + "\n")
        assert status == 200 and answer["accepted"] == 0 and answer["reasons"] == {"duplicate": 1}, answer
        assert "accepted before with other values" in answer["errors"][0]["detail"], answer
        wait_for(lambda: sql(run, "SELECT count(*), max(temperature) FROM readings") == [[1, 21.5]], what="the first copy stored")
    text = (tmp_path / "data" / "dead-letter.log").read_text()
    header, raw = text.splitlines()[:2]
    assert " http duplicate " in header and header.endswith("the first copy is kept: " + first), header
    assert raw == second
    assert [r["value"]["temperature"] for r in log_records(tmp_path / "data")] == [21.5]


def test_a_resend_after_a_restart_is_still_recognised(tmp_path):
    lines = batch()
    run = MareRun(tmp_path / "data", extra=["rollup.emit_interval=\"100ms\""])
    with run:
        assert run.post("\n".join(lines))[1]["accepted"] == len(lines)
    run = MareRun(tmp_path / "data", extra=["rollup.emit_interval=\"100ms\""])
    with run:
        assert "dedup windows rebuilt" in run.read_output()
        status, answer = run.post("\n".join(lines))
        assert status == 200 and answer["accepted"] == 0 and answer["reasons"] == {"duplicate": len(lines)}, answer
        # A reading older than the horizon with a new timestamp is late, not a duplicate.
        late = json.dumps({"timestamp": HOUR - 7200, "sensor_id": 1, "temperature": 5}, separators=(",", ":"))
        status, answer = run.post(late)
        assert status == 200 and answer["accepted"] == 1, answer
        wait_for(lambda: sql(run, "SELECT count(*) FROM readings") == [[len(lines) + 1]], what="the store's readings")
        run.stop()
        records = log_records(run.data_dir)
        assert len(records) == len(lines) + 1
        counts = hourly_counts(run.data_dir)
        assert all(counts[s] == PER_SENSOR for s in range(1, SENSORS + 1)), counts
