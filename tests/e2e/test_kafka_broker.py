"""The test Kafka itself (kafka_server.py): a KRaft broker from Apache Kafka's jars starts, takes
records from kcat and gives them back, keeps them across a restart, and stops without leftovers;
three brokers form one cluster that survives the loss of one."""
from kafka_server import KafkaCluster


def test_single_broker_produce_consume_restart(tmp_path):
    kafka = KafkaCluster(tmp_path)
    with kafka:
        kafka.create_topic("t", 2)
        kafka.produce("t", [f"{i}\tvalue-{i}" for i in range(100)])
        got = kafka.consume("t")
        assert sorted(r["payload"] for r in got) == sorted(f"value-{i}" for i in range(100))
        kafka.stop_broker(0)
        kafka.start_broker(0)
        again = kafka.consume("t")
        assert sorted(r["payload"] for r in again) == sorted(f"value-{i}" for i in range(100))
    assert all(b.proc is None for b in kafka.brokers)


def test_three_brokers_survive_losing_one(tmp_path):
    with KafkaCluster(tmp_path, brokers=3) as kafka:
        assert len(kafka.metadata()["brokers"]) == 3
        kafka.create_topic("t", 3, replication=3)
        kafka.produce("t", [f"{i}\tbefore-{i}" for i in range(50)])
        kafka.stop_broker(0, kill=True)
        kafka.wait_ready(brokers=[2, 3])
        kafka.produce("t", [f"{i}\tafter-{i}" for i in range(50)])
        values = sorted(r["payload"] for r in kafka.consume("t"))
        assert values == sorted([f"before-{i}" for i in range(50)] + [f"after-{i}" for i in range(50)])
