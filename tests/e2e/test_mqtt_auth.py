"""The MQTT source's username/password and TLS against a real broker (Debian's mosquitto, started
here with a password file made by mosquitto_passwd, or a TLS listener whose CA and certificates
the openssl CLI makes here): with the right credentials, CA and client certificate mare stores
what is published; with a wrong password, an anonymous login, a CA that did not sign the broker's
certificate or no client certificate for a broker that requires one, mare says what is wrong
and what to set (a log line per attempt, mare_source_mqtt_connect_failures_total by reason),
keeps retrying and stays up; settings that cannot work stop it at start with the reason."""
import datetime
import os
import re
import subprocess
import time

import pytest

from harness import MareRun, wait_for
from pki import make_ca, make_cert
from mosquitto_server import Mosquitto
from test_mqtt import mqtt_settings, reading

UP = "mare_source_mqtt_up"


def failures(run, reason):
    return run.metric(f'mare_source_mqtt_connect_failures_total{{reason="{reason}"}}') or 0


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    ca = make_ca(str(d), "observatory-ca")
    other = make_ca(str(d), "other-ca")
    server = make_cert(str(d), ca, "broker", san="IP:127.0.0.1,DNS:localhost")
    client = make_cert(str(d), ca, "mare-client")
    return {"ca": ca[0], "other_ca": other[0], "server": server, "client": client}


def settings(broker, client_id, *more):
    return mqtt_settings(broker, client_id=client_id) + list(more)


def stays_up_and_stores_nothing(run, broker, topic, failures_reason):
    """The source keeps failing (counted, retried) and mare goes on: other sources still ingest."""
    wait_for(lambda: failures(run, failures_reason) >= 3, what=f"three failed attempts ({failures_reason})")
    assert run.metric(UP) == 0
    broker.publish_lines(topic, [reading(i) for i in range(5)], qos=1)
    time.sleep(1.0)
    assert run.query_rows("SELECT count(*) FROM readings")[0][0] == 0
    status, _ = run.post(reading(1, sensor_id=99) + "\n")
    assert status == 200
    run.wait_readings(1)
    assert run.proc.poll() is None


def test_username_and_password_from_the_toml_or_a_file_and_a_clear_refusal_else(tmp_path):
    with Mosquitto(tmp_path, users={"buoy": "s3cret", "gateway": "other"}) as broker:
        # The right user and password: readings published with credentials are stored.
        with MareRun(tmp_path / "good", extra=settings(broker, "mare-good", 'sources.mqtt.username="buoy"',
                                                        'sources.mqtt.password="s3cret"')) as run:
            wait_for(lambda: run.metric(UP) == 1, what="the source to log in")
            broker.publish_lines("observatory/11/readings", [reading(i) for i in range(40)], qos=1)
            run.wait_readings(40)
            assert run.query_rows("SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id") == [[11, 40]]
            assert failures(run, "credentials") == 0

        # The password on the first line of a file (a mounted secret), not in the TOML.
        secret = tmp_path / "mqtt-password"
        secret.write_text("s3cret\n")
        with MareRun(tmp_path / "file", extra=settings(broker, "mare-file", 'sources.mqtt.username="buoy"',
                                                        f'sources.mqtt.password_file="{secret}"')) as run:
            wait_for(lambda: run.metric(UP) == 1, what="the source to log in with the password file")
            broker.publish_lines("observatory/12/readings", [reading(i) for i in range(30)], qos=1)
            run.wait_readings(30)
        assert "s3cret" not in (tmp_path / "file" / "mare-run.out").read_text()

        # A wrong password: said at each attempt, with what to check; counted; mare stays up.
        with MareRun(tmp_path / "wrong", extra=settings(broker, "mare-wrong", 'sources.mqtt.username="buoy"',
                                                         'sources.mqtt.password="guess"')) as run:
            stays_up_and_stores_nothing(run, broker, "observatory/13/readings", "credentials")
            wait_for(lambda: failures(run, "credentials") >= 6, what="six refused attempts")
            out = run.read_output()
        assert f"mqtt: broker 127.0.0.1:{broker.port} refused user 'buoy' (Not authorized): check " \
               "sources.mqtt.username and sources.mqtt.password against the broker's password file; retrying in" in out
        assert "guess" not in out
        # The backoff (reconnect_min 50ms, reconnect_max 500ms): doubling, then capped, each wait
        # as long as the line before said.
        attempts = [(datetime.datetime.fromisoformat(m[1]), float(m[2])) for m in
                    re.finditer(r"^(\S+) error mqtt: broker \S+ refused user 'buoy'.*; retrying in ([0-9.]+)s$", out, re.M)]
        assert [wait for _, wait in attempts[:6]] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5], attempts
        for (at, wait), (next_at, _) in zip(attempts, attempts[1:]):
            assert (next_at - at).total_seconds() >= wait - 0.002, attempts

        # No user at all, to a broker that refuses anonymous clients.
        with MareRun(tmp_path / "anon", extra=settings(broker, "mare-anon")) as run:
            wait_for(lambda: failures(run, "credentials") >= 2, what="two refused anonymous attempts")
            assert run.metric(UP) == 0
            out = run.read_output()
        assert "refused an anonymous connection (Not authorized): it wants a user; set sources.mqtt.username" in out


def test_settings_that_cannot_work_stop_mare_at_start_with_the_reason(tmp_path, pki):
    cases = [
        (['sources.mqtt.username="buoy"', 'sources.mqtt.password="a"', f'sources.mqtt.password_file="{pki["ca"]}"'],
         "set password or password_file, not both"),
        (['sources.mqtt.username="buoy"', f'sources.mqtt.password_file="{tmp_path}/missing"'],
         f"sources.mqtt.password_file '{tmp_path}/missing' cannot be read: No such file or directory"),
        (['sources.mqtt.password="a"'], "a password without a username"),
        ([f'sources.mqtt.tls_ca_file="{tmp_path}/nope.crt"'], f"sources.mqtt.tls_ca_file '{tmp_path}/nope.crt' cannot be read"),
        ([f'sources.mqtt.tls_ca_file="{pki["ca"]}"', f'sources.mqtt.tls_cert_file="{pki["client"][0]}"'],
         "tls_cert_file and tls_key_file go together"),
        ([f'sources.mqtt.tls_cert_file="{pki["client"][0]}"', f'sources.mqtt.tls_key_file="{pki["client"][1]}"'],
         "tls_cert_file needs tls_ca_file"),
    ]
    empty = tmp_path / "empty-password"
    empty.write_text("\n")
    cases.append((['sources.mqtt.username="buoy"', f'sources.mqtt.password_file="{empty}"'],
                  "holds no password on its first line"))
    for i, (more, message) in enumerate(cases):
        # Run to its exit: the HTTP port may answer before the source is started and refused.
        run = MareRun(tmp_path / f"bad{i}", extra=["sources.mqtt.enabled=true", "sources.mqtt.port=1", *more])
        os.makedirs(run.data_dir)
        p = subprocess.run(run.args(), capture_output=True, timeout=120)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode == 1, out
        assert message in out, out


def test_tls_with_the_right_ca_stores_and_a_foreign_ca_is_refused_clearly(tmp_path, pki):
    tls = {"cafile": pki["ca"], "certfile": pki["server"][0], "keyfile": pki["server"][1]}
    with Mosquitto(tmp_path, tls=tls) as broker:
        with MareRun(tmp_path / "good", extra=settings(broker, "mare-tls", f'sources.mqtt.tls_ca_file="{pki["ca"]}"')) as run:
            wait_for(lambda: run.metric(UP) == 1, what="the source to connect over TLS")
            broker.publish_lines("observatory/21/readings", [reading(i) for i in range(40)], qos=1)
            run.wait_readings(40)
            assert failures(run, "tls") == 0

        # A CA that did not sign the broker's certificate: refused, said, counted; mare stays up.
        with MareRun(tmp_path / "foreign", extra=settings(broker, "mare-foreign",
                                                           f'sources.mqtt.tls_ca_file="{pki["other_ca"]}"')) as run:
            stays_up_and_stores_nothing(run, broker, "observatory/22/readings", "tls")
            out = run.read_output()
        assert f"mqtt: TLS with 127.0.0.1:{broker.port} failed: OpenSSL Error" in out
        assert "certificate verify failed" in out
        assert f"must be signed by the CA in sources.mqtt.tls_ca_file ('{pki['other_ca']}')" in out

        # No TLS at all to a TLS listener: the broker hangs up; mare says TLS may be the cause.
        with MareRun(tmp_path / "plain", extra=settings(broker, "mare-plain")) as run:
            wait_for(lambda: failures(run, "closed") >= 2, what="two attempts closed by the broker")
            assert run.metric(UP) == 0
            out = run.read_output()
        assert "closed the connection before accepting it" in out
        assert "if it is a TLS listener, set sources.mqtt.tls_ca_file" in out


def test_mutual_tls_with_a_client_certificate(tmp_path, pki):
    tls = {"cafile": pki["ca"], "certfile": pki["server"][0], "keyfile": pki["server"][1], "require_certificate": True}
    with Mosquitto(tmp_path, tls=tls, client_cert=pki["client"][0], client_key=pki["client"][1]) as broker:
        cert = [f'sources.mqtt.tls_ca_file="{pki["ca"]}"', f'sources.mqtt.tls_cert_file="{pki["client"][0]}"',
                f'sources.mqtt.tls_key_file="{pki["client"][1]}"']
        with MareRun(tmp_path / "good", extra=settings(broker, "mare-mtls", *cert)) as run:
            wait_for(lambda: run.metric(UP) == 1, what="the source to connect with its certificate")
            broker.publish_lines("observatory/31/readings", [reading(i) for i in range(25)], qos=1)
            run.wait_readings(25)

        # Without a client certificate the broker ends the handshake: said, with what to set.
        with MareRun(tmp_path / "nocert", extra=settings(broker, "mare-nocert",
                                                          f'sources.mqtt.tls_ca_file="{pki["ca"]}"')) as run:
            stays_up_and_stores_nothing(run, broker, "observatory/32/readings", "tls")
            out = run.read_output()
        assert f"mqtt: TLS with 127.0.0.1:{broker.port} failed: OpenSSL Error" in out
        assert "a broker that requires client certificates needs tls_cert_file and tls_key_file" in out
