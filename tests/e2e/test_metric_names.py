"""The metrics a running `mare run` registers, every stage on (the MariaDB and Elasticsearch sinks
and the MQTT source too, retrying against ports nobody listens on): each name follows mare_<component>_<what>_<unit>, a counter
and only a counter ends in _total, and the names are exactly those the components declare in
their src/**/*_metrics.h and README.md lists, but for the Kafka producer's (`log.kind = "kafka"`
only) and the batch reconcile's (`mare batch reconcile` only; scripts/check_metric_names.py
checks those statically)."""
import os
import re
import sys

from harness import MareRun, free_port

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(REPO, "scripts"))
import check_metric_names as names  # noqa: E402


def families(text):
    """name -> type of every family in a /metrics text."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def test_a_running_pipeline_registers_exactly_the_declared_names(tmp_path):
    declared, faults = names.declared(os.path.join(REPO, "src"))
    assert not faults, faults
    run = MareRun(tmp_path / "data", extra=["sink.mariadb.enabled=true", f"sink.mariadb.port={free_port()}",
                                                "sink.elasticsearch.enabled=true", "sink.elasticsearch.rollups=true",
                                                f'sink.elasticsearch.url="http://127.0.0.1:{free_port()}"',
                                                "sink.clickhouse.enabled=true",
                                                f'sink.clickhouse.url="http://127.0.0.1:{free_port()}"',
                                                "sources.mqtt.enabled=true", f"sources.mqtt.port={free_port()}"])
    with run:
        status, answer = run.post('{"timestamp":"2024-01-21 10:06:04","sensor_id":7,"temperature":20.9}\n')
        assert status == 200 and answer["accepted"] == 1, answer
        text = run.metrics()
    registered = families(text)

    for name, kind in sorted(registered.items()):
        assert names.rule_faults(name) == [], name
        assert (kind == "counter") == name.endswith("_total"), f"{name} is a {kind}"
    kafka_only = {n for n in declared if n.startswith("mare_log_kafka_")}
    assert kafka_only, "the Kafka producer's names are declared in src/log/log_metrics.h"
    assert sorted(set(registered) - set(declared)) == [], "registered without a declaration"
    batch_only = {n for n in declared if n.startswith("mare_rollup_batch_")}
    assert batch_only, "the batch reconcile's names are declared in src/batch/batch_metrics.h"
    assert sorted(set(declared) - kafka_only - batch_only - set(registered)) == [], "declared, not registered by mare run"
    assert names.readme_names(os.path.join(REPO, "README.md")) == set(registered) | kafka_only | batch_only
