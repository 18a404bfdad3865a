"""The MQTT source against a real broker (Debian's mosquitto, started here): readings published
with mosquitto_pub at QoS 0 and 1 reach the store with the sensor id of their topic; bad
payloads are dead-lettered with their reason; with QoS 1 a mare killed -9 mid-stream and
restarted loses nothing the broker acknowledged to the publisher; a broker restart is survived,
and so is a broker killed -9 with messages queued for mare (each stored once);
a shared subscription ($share/...) splits the messages between two processes, losing none."""
import json
import os
import resource
import signal
import time
import urllib.parse
import urllib.request

from harness import MareRun, log_records, wait_for
from mosquitto_server import Mosquitto


def mqtt_settings(broker, client_id="mare-test", topics=('observatory/+/readings',), qos=1):
    return ["sources.mqtt.enabled=true", f"sources.mqtt.port={broker.port}", f'sources.mqtt.client_id="{client_id}"',
            "sources.mqtt.topics=[" + ",".join(json.dumps(t) for t in topics) + "]", f"sources.mqtt.qos={qos}",
            'sources.mqtt.sensor_id_topic="observatory/{sensor_id}/readings"',
            'sources.mqtt.reconnect_min="50ms"', 'sources.mqtt.reconnect_max="500ms"']


def reading(i, **extra):
    # Distinct timestamps: the store keeps one reading per sensor and timestamp.
    return json.dumps({"timestamp": f"2024-01-21 10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}",
                       "temperature": 20 + i % 7, "seq": i, **extra})


def test_qos_0_and_1_readings_reach_the_store_with_the_topic_sensor_id(tmp_path):
    with Mosquitto(tmp_path) as broker, MareRun(tmp_path / "data", extra=mqtt_settings(broker)) as run:
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to connect")
        broker.publish_lines("observatory/3/readings", [reading(i) for i in range(50)], qos=0)
        broker.publish_lines("observatory/4/readings", [reading(i) for i in range(60)], qos=1)
        # Several readings in one message: NDJSON lines, and an array.
        broker.publish("observatory/5/readings", reading(1) + "\n" + reading(2) + "\n", qos=1)
        broker.publish("observatory/5/readings", "[" + reading(3) + "," + reading(4, status="ok") + "]", qos=1)
        run.wait_readings(114)
        assert run.query_rows("SELECT sensor_id, count(*), min(seq), max(seq) FROM readings GROUP BY sensor_id ORDER BY sensor_id") == [
            [3, 50, 0, 49], [4, 60, 0, 59], [5, 4, 1, 4]]
        assert run.metric('mare_source_readings_accepted_total{source="mqtt"}') == 114
        assert run.metric("mare_source_mqtt_messages_total") == 112
        assert run.metric("mare_source_mqtt_bytes_total") > 112 * 40
        # The dashboard's pipeline view lists the source, its one connection being to the broker.
        def pipeline_source():
            with urllib.request.urlopen(f"{run.http_url}/api/v1/pipeline", timeout=10) as r:
                return {s["source"]: s for s in json.loads(r.read())["now"]["sources"]}.get("mqtt")
        wait_for(lambda: (pipeline_source() or {}).get("accepted") == 114, what="the pipeline view's next sample")
        assert pipeline_source()["connections"] == 1

        # Bad payloads: dead-lettered with their reason, their neighbours unharmed.
        broker.publish("observatory/6/readings", "this is not json", qos=1)
        broker.publish("observatory/6/readings", json.dumps({"temperature": 1}) + "\n" + reading(9), qos=1)
        broker.publish("observatory/6/readings", json.dumps({"timestamp": "2024-01-21 10:00:00", "sensor_id": 6}), qos=1)
        broker.publish("observatory/station-a/readings", reading(10), qos=1)
        run.wait_readings(115)
        wait_for(lambda: run.metric('mare_source_readings_rejected_total{source="mqtt",reason="invalid_sensor_id"}') == 1,
                 what="the topic without a sensor id to be rejected")
        assert run.metric('mare_source_readings_rejected_total{source="mqtt",reason="not_json"}') == 1
        assert run.metric('mare_source_readings_rejected_total{source="mqtt",reason="missing_timestamp"}') == 1
        assert run.metric('mare_source_readings_rejected_total{source="mqtt",reason="duplicate_field"}') == 1
        assert run.query_rows("SELECT seq FROM readings WHERE sensor_id = 6") == [[9]]
    dead = (tmp_path / "data" / "dead-letter.log").read_bytes()
    assert b" mqtt not_json " in dead and b"\nthis is not json\n" in dead
    assert b" mqtt missing_timestamp " in dead and b" mqtt duplicate_field " in dead
    assert b" mqtt invalid_sensor_id " in dead and b"observatory/station-a/readings" in dead


def test_qos1_kill9_mid_stream_loses_nothing_the_broker_acknowledged(tmp_path):
    n = 20000
    with Mosquitto(tmp_path) as broker:
        run = MareRun(tmp_path / "data", extra=mqtt_settings(broker))
        run.start()
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to connect")
        publisher = broker.publish_lines_async("observatory/8/readings", [reading(i) for i in range(n)], qos=1)
        wait_for(lambda: (run.metric("mare_source_mqtt_messages_total") or 0) > 2000, what="messages to arrive", timeout=120)
        got_before = run.metric("mare_source_mqtt_messages_total")
        run.kill9()
        assert got_before < n, "the stream was over before the kill: nothing tested"
        # The broker goes on taking (and acknowledging) the publisher's messages, for the session.
        assert publisher.wait(timeout=300) == 0, publisher.stderr.read().decode()
        with MareRun(tmp_path / "data", extra=mqtt_settings(broker)) as again:
            again.wait_readings(n, timeout=180)
            # One reading per timestamp, and one timestamp per seq: every seq is there once.
            assert again.query_rows("SELECT count(*), min(seq), max(seq), sum(seq) FROM readings WHERE sensor_id = 8") == [
                [n, 0, n - 1, n * (n - 1) // 2]]
            out = again.read_output()
        assert "resumed session" in out
        # The store keeps one reading per timestamp whatever the log holds: the log itself must
        # hold each once too (issue 19), a message redelivered after the kill refused as a duplicate.
        seqs = sorted(r["value"]["seq"] for r in log_records(tmp_path / "data") if r["key"] == "8")
        assert seqs == list(range(n)), f"{len(seqs)} records for {n} messages"
        print(f"kill -9 after {got_before:.0f} of {n} messages: all {n} readings in the store after the restart")


def limited_files():
    # Writes past 256 KiB fail with EFBIG (SIGXFSZ ignored): the log's segment fills, and every
    # append after that fails, as on a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_qos1_messages_the_log_refused_are_not_acknowledged_and_come_again(tmp_path):
    # Were a PUBACK sent on receipt (libmosquitto's default), the messages of the failed appends
    # would be gone from the broker, and missing from the store at the end.
    n = 1000
    pad = "x" * 1000
    with Mosquitto(tmp_path) as broker, \
            MareRun(tmp_path / "data", extra=mqtt_settings(broker) + ["log.partitions=1", 'log.fsync="never"'],
                    preexec_fn=limited_files) as run:
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to connect")
        broker.publish_lines("observatory/9/readings", [reading(i, note=pad) for i in range(n)], qos=1)
        wait_for(lambda: (run.metric('mare_source_appends_failed_total{source="mqtt"}') or 0) >= 3,
                 what="appends to fail on the full segment")
        # The broker kept what mare could not append, and sent it again on each reconnection.
        wait_for(lambda: (run.metric("mare_source_mqtt_redeliveries_total") or 0) > 0, what="a redelivery")
        stored = run.query_rows("SELECT count(*) FROM readings")[0][0]
        assert stored < n
        # Space returns: the redelivered messages land, every one of them.
        resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        run.wait_readings(n, timeout=120)
        assert run.query_rows("SELECT count(*), min(seq), max(seq), sum(seq) FROM readings") == [[n, 0, n - 1, n * (n - 1) // 2]]
        print(f"{stored} of {n} stored while the log refused appends; {n} after, "
              f"{run.metric('mare_source_mqtt_redeliveries_total'):.0f} redeliveries seen")


def test_a_broker_restart_is_survived(tmp_path):
    with Mosquitto(tmp_path) as broker, MareRun(tmp_path / "data", extra=mqtt_settings(broker)) as run:
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to connect")
        broker.publish_lines("observatory/1/readings", [reading(i) for i in range(100)], qos=1)
        run.wait_readings(100)
        broker.stop()
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 0, what="the source to see the broker gone")
        # Published while mare is away from the broker? Not possible: the broker is down. Wait
        # long enough for a few reconnection attempts to fail, then bring the broker back.
        time.sleep(1.5)
        broker.start()
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to reconnect", timeout=30)
        broker.publish_lines("observatory/1/readings", [reading(i) for i in range(100, 200)], qos=1)
        run.wait_readings(200)


def test_a_broker_killed_9_with_messages_queued_for_mare_loses_none_it_acknowledged(tmp_path):
    # A broker that saves its persistence file after every change (mosquitto's default is every
    # 30 minutes) is killed -9 holding QoS 1 messages for mare's session, 50 of them in flight
    # (sent, not acknowledged: mare's receive maximum, max_batch) and the rest queued. mare reads
    # and appends those 50 after the kill, their PUBACKs lost; the broker, restarted, delivers
    # all it had again.
    n = 200  # the broker saves after each message it takes: publishing 500 took 3.5 s
    with Mosquitto(tmp_path, save_every_change=True) as broker, \
            MareRun(tmp_path / "data", extra=mqtt_settings(broker) + ["sources.mqtt.max_batch=50"]) as run:
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to connect")
        broker.publish("observatory/12/readings", reading(0), qos=1)
        run.wait_readings(1)  # subscribed: the broker queues for the session from here on
        # mare stopped (its socket still taking bytes) while the broker takes every message, each
        # acknowledged to mosquitto_pub, sends it 50 and queues the rest.
        os.kill(run.proc.pid, signal.SIGSTOP)
        try:
            broker.publish_lines("observatory/12/readings", [reading(i) for i in range(1, n + 1)], qos=1)
            broker.wait_saved()
            broker.kill9()
        finally:
            os.kill(run.proc.pid, signal.SIGCONT)
        wait_for(lambda: run.metric("mare_source_mqtt_up") == 0, what="the source to see the broker gone")
        in_flight = run.metric("mare_source_mqtt_messages_total") - 1
        assert in_flight == 50, f"{in_flight} messages read from the dead broker's connection"
        broker.start()
        run.wait_readings(n + 1, timeout=120)
        assert run.query_rows("SELECT count(*), min(seq), max(seq), sum(seq) FROM readings WHERE sensor_id = 12") == [
            [n + 1, 0, n, n * (n + 1) // 2]]
        # The 50 came again, with the message ids mare had not acknowledged: counted as such.
        redelivered = run.metric("mare_source_mqtt_redeliveries_total")
        assert redelivered == in_flight
        out = run.read_output()
    assert out.count("(resumed session)") == 1, "the broker came back without mare's session"
    # The messages mare appended but could not acknowledge came again: the log refused them as
    # duplicates (issue 19), as the store would.
    seqs = sorted(r["value"]["seq"] for r in log_records(tmp_path / "data") if r["key"] == "12")
    assert seqs == list(range(n + 1)), f"{len(seqs)} records for {n + 1} messages"
    print(f"broker kill -9 with {in_flight:.0f} messages in flight to mare and {n - in_flight:.0f} queued: "
          f"all {n} stored once, {redelivered:.0f} redeliveries counted")


def test_a_shared_subscription_splits_the_messages_and_loses_none(tmp_path):
    n = 2000
    topics = ("$share/mare/observatory/+/readings",)
    with Mosquitto(tmp_path) as broker, \
            MareRun(tmp_path / "a", extra=mqtt_settings(broker, client_id="mare-a", topics=topics)) as a, \
            MareRun(tmp_path / "b", extra=mqtt_settings(broker, client_id="mare-b", topics=topics)) as b:
        for run in (a, b):  # the broker's SUBACK, after which it counts the member in the group
            wait_for(lambda: "mqtt: subscribed to 1 of 1 topic filter(s)" in run.read_output(), what="both sources to subscribe")
        broker.publish_lines("observatory/2/readings", [reading(i) for i in range(n)], qos=1)

        def total():
            return a.query_rows("SELECT count(*) FROM readings")[0][0] + b.query_rows("SELECT count(*) FROM readings")[0][0]
        wait_for(lambda: total() == n, what=f"{n} readings between the two stores")
        in_a = a.query_rows("SELECT count(*) FROM readings")[0][0]
        in_b = b.query_rows("SELECT count(*) FROM readings")[0][0]
        seqs = [r[0] for r in a.query_rows("SELECT seq FROM readings") + b.query_rows("SELECT seq FROM readings")]
        assert sorted(seqs) == list(range(n)), "each reading in exactly one store"
        assert in_a > 0 and in_b > 0, f"the broker gave {in_a} and {in_b}: not shared"
        print(f"shared subscription: {in_a} + {in_b} = {n}")


def test_a_queue_of_more_than_65535_messages_reaches_the_store_whole(tmp_path):
    # Issue 17's bench hung at 100,000 queued messages: one mosquitto_pub given them all got only
    # ~34,480 through (its message ids wrap; the broker drops it; it exits 0). publish_lines now
    # publishes in runs; mare then drains a queue past the 65,535 message ids the broker has for
    # its session, each id in flight more than once over the drain.
    n = 100_000
    with Mosquitto(tmp_path) as broker:
        with MareRun(tmp_path / "data", extra=mqtt_settings(broker)) as run:
            wait_for(lambda: run.metric("mare_source_mqtt_up") == 1, what="the source to connect")
            broker.publish("observatory/11/readings", reading(0), qos=1)
            run.wait_readings(1)  # subscribed: the broker queues for the session from here on
        broker.publish_lines("observatory/11/readings", [reading(i) for i in range(1, n + 1)], qos=1)
        with MareRun(tmp_path / "data", extra=mqtt_settings(broker)) as again:
            again.wait_readings(n + 1, timeout=180)
            assert again.metric("mare_source_mqtt_messages_total") == n
            assert again.metric('mare_source_readings_accepted_total{source="mqtt"}') == n
            assert again.query_rows("SELECT count(*), min(seq), max(seq), sum(seq) FROM readings WHERE sensor_id = 11") == [
                [n + 1, 0, n, n * (n + 1) // 2]]
