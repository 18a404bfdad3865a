"""Three kill -9 trials of the soak (tests/e2e/soak.py; bench/soak.py runs 100): under load over
HTTP, TCP, UDP and MQTT (a real mosquitto, QoS 1), every acknowledged reading (for MQTT: every
message the broker acknowledged to the publisher) is in the log exactly once, nothing is doubled,
an HTTP request unanswered at a kill is in the log whole or not at all,
the store equals the log, the rollups equal a recompute from the log, and MariaDB's tables equal
the rollups."""
import random

from mariadb_server import MariaDB
from mosquitto_server import Mosquitto
from soak import Soak, failures, table


def test_three_kill9_trials_under_load_lose_and_double_nothing(tmp_path):
    seed = random.randrange(1 << 32)
    with MariaDB(tmp_path) as db, Mosquitto(tmp_path) as broker:
        soak = Soak(tmp_path / "data", db, seed, broker)
        for _ in range(3):
            soak.trial()
        report = soak.verify()
    print(table(report))
    assert not report["errors"], report["errors"]
    http = report["transports"]["http"]
    assert http["acknowledged"] > 0, f"seed {seed}: no HTTP reading was acknowledged"
    mqtt = report["transports"]["mqtt"]
    assert mqtt["acknowledged"] > 0 and mqtt["not acknowledged"] == 0, f"seed {seed}: the broker acknowledged {mqtt}"
    for t, p in report["transports"].items():
        assert p["in log"] > 0, f"seed {seed}: no {t} reading reached the log"
        assert not p["lost"], f"seed {seed}: {t} lost {len(p['lost'])} acknowledged readings"
        assert not p["doubled"], f"seed {seed}: {t} doubled {len(p['doubled'])} readings"
    # An unanswered request (the kill came before its answer) is in the log whole or not at all.
    partial = [(trial, n, k) for trial, n, k in http["unanswered"] if 0 < k < n]
    assert not partial, f"seed {seed}: requests in the log in part (trial, readings, stored): {partial}"
    assert not report["phantom"] and not report["same sensor and time"]
    for name, (compared, differ) in report["checks"].items():
        assert compared > 0, f"{name}: nothing compared"
        assert not differ, f"seed {seed}: {name}: {len(differ)} differ, e.g. {differ[:3]}"
    assert report["clean stop"] == 0 and report["log verify"] == 0
    assert not failures(report)
