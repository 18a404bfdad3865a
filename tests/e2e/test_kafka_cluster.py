"""mare on a three-broker Kafka cluster (replication factor 3, min.insync.replicas 2): killing a
broker mid-stream loses no acknowledged reading, every consumer carries on past the leaders
that moved, and mare still stops cleanly."""
import json
import time

from harness import MareRun
from kafka_server import KafkaCluster
from test_kafka import Sender, kafka_rollups, settle


def test_losing_a_broker_loses_nothing_acknowledged(tmp_path):
    with KafkaCluster(tmp_path, brokers=3) as kafka:
        extra = ["log.kind=kafka", f'log.kafka.brokers="{kafka.bootstrap}"', "log.kafka.replication_factor=3",
                 'log.kafka.delivery_timeout="15s"', 'store.flush_interval="2s"', "log.kafka.atomic_ingest=true"]
        run = MareRun(tmp_path / "run", extra=extra)
        with run:
            topics = {t["topic"]: t for t in kafka.metadata()["topics"]}
            assert all(len(p["replicas"]) == 3 for p in topics["raw"]["partitions"])
            with Sender(run) as sender:
                time.sleep(2)
                kafka.stop_broker(0, kill=True)  # leader of some partitions, and a controller voter
                time.sleep(12)                    # readings go on through the leader election
            raw = kafka.consume("raw", committed=True)  # requests aborted while the leaders moved excepted
            present = {json.loads(r["payload"])["seq"] for r in raw}
            missing = set(sender.acked) - present
            assert not missing, f"{len(missing)} acknowledged readings lost"
            assert len(sender.acked) > 200, "too little was acknowledged to mean anything"
            total = len(raw)

            # The store and the rollups both hold every reading of the topic, exactly once.
            deadline = time.time() + 90
            while (got := run.query_rows("SELECT count(*) FROM readings")[0][0]) != total and time.time() < deadline:
                time.sleep(0.5)
            assert got == total, f"the store holds {got} of the topic's {total} readings"
            # The rollup group re-forms around a new coordinator, restores its state from the
            # last transaction and reads on.
            def daily():
                return sum(v["count"] for v in kafka_rollups(kafka, "").values()
                           if v["resolution"] == "1d" and v["field"] == "temperature")
            deadline = time.time() + 120
            while (counted := daily()) < total and time.time() < deadline:
                time.sleep(1)
            assert counted == total
            assert settle(daily) == total
            # Lag as the consumers see it, without asking the dead broker.
            assert run.metric("mare_store_lag_records") == 0
            assert run.metric("mare_rollup_lag_records") == 0
            print(f"acked {len(sender.acked)}, topic {total}, refused {sender.refused} requests")
            t0 = time.time()
            assert run.stop() == 0
            assert time.time() - t0 < 20, "mare took too long to stop after the broker loss"
