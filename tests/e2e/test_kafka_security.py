"""mare on a Kafka that requires SASL_SSL with SCRAM-SHA-512 (a real broker, its certificates made
here by openssl, its SCRAM user written when its storage is formatted): with the right user and CA,
every role's clients (the producer, the rollups' transactional member, the store's consumer) work
through it and each reading is counted once; a wrong password or a CA that did not sign the
broker's certificate stops `mare run` at start with the reason, at once (nothing to wait for)."""
import os
import subprocess
import time

import pytest

from harness import MareRun
from kafka_server import KafkaCluster, SaslSsl
from pki import make_ca, make_cert, make_pkcs12
from test_kafka import kafka_rollups, post_all, readings, settle

USER, PASSWORD = "mare", "s3cret-scram"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d, "observatory-ca")
    other_ca = make_ca(d, "other-ca")
    keystore = make_pkcs12(make_cert(d, ca, "broker", san="IP:127.0.0.1,DNS:localhost"), "keystore-pw")
    with KafkaCluster(tmp_path_factory.mktemp("kafka"), sasl_ssl=SaslSsl(USER, PASSWORD, keystore, "keystore-pw")) as k:
        yield k, ca[0], other_ca[0]


def config(path, kafka, prefix, ca, password=PASSWORD):
    with open(path, "w") as f:
        f.write(f"""[log]
kind = "kafka"

[log.kafka]
brokers = "{kafka.sasl_bootstrap}"
replication_factor = 1
topic_prefix = "{prefix}"

[log.kafka.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "SCRAM-SHA-512"
"sasl.username" = "{USER}"
"sasl.password" = "{password}"
"ssl.ca.location" = "{ca}"
""")
    return str(path)


def test_every_role_works_through_sasl_ssl_with_scram(secured, tmp_path):
    kafka, ca, _ = secured
    cfg = config(tmp_path / "mare.toml", kafka, "sec.", ca)
    rows = readings(range(1, 7), 30, seed=8)
    with MareRun(tmp_path / "run", flags=["--config", cfg]) as run:
        post_all(run, rows)
        run.wait_readings(len(rows))  # the store's consumer read them back through SASL_SSL
        raw = kafka.consume("sec.raw")  # the harness reads through the PLAINTEXT listener
        assert len(raw) == len(rows)

        def daily():
            return sum(v["count"] for v in kafka_rollups(kafka, "sec.").values()
                       if v["resolution"] == "1d" and v["field"] == "temperature")
        assert settle(daily) == len(rows)  # the rollups' transactions committed through it
        # The secret is not printed back.
        shown = subprocess.run([*run.args()[:2], "--config", cfg, "--print-config"], capture_output=True, text=True)
        assert PASSWORD not in shown.stdout and "sasl.password" in shown.stdout


@pytest.mark.parametrize("case", ["wrong password", "other CA"])
def test_refused_credentials_stop_mare_at_start_with_the_reason(secured, tmp_path, case):
    kafka, ca, other_ca = secured
    if case == "wrong password":
        cfg = config(tmp_path / "mare.toml", kafka, "refused.", ca, password="not-the-password")
        reason = "Authentication failed"
    else:
        cfg = config(tmp_path / "mare.toml", kafka, "refused.", other_ca)
        reason = "certificate verify failed"
    run = MareRun(tmp_path / "run", flags=["--config", cfg])
    os.makedirs(run.data_dir, exist_ok=True)
    t0 = time.time()
    p = subprocess.run(run.args(), capture_output=True, text=True, timeout=150)
    took = time.time() - t0
    out = p.stdout + p.stderr
    assert p.returncode != 0, out[-3000:]
    assert reason in out, out[-3000:]
    assert took < 60, f"took {took:.0f} s: it waited for brokers that had answered"
