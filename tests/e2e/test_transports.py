"""simulate -> run -> the log holds exactly the readings sent, over every transport."""
import collections
import json
import socket
import time

import pytest

from harness import MareRun, canonical, log_records, mare, raw_values

SIM = ["--sensors", "5", "--count", "60", "--seed", "7", "--start", "2024-01-21 10:00:00", "--flat-out"]


def expected_lines(tmp_path, extra=()):
    out = tmp_path / "expected.ndjson"
    mare("simulate", *SIM, *extra, "--target", f"file://{out}")
    lines = [l for l in out.read_text().splitlines() if l.strip()]
    assert len(lines) == 5 * 60
    return lines


def assert_log_holds_exactly(data_dir, lines):
    records = log_records(data_dir)
    assert sorted(raw_values(records)) == sorted(canonical(l) for l in lines)
    # Each sensor's readings are in one partition, in the order they were sent.
    by_sensor = collections.defaultdict(list)
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        assert r["key"] == str(r["value"]["sensor_id"])
        by_sensor[r["key"]].append(r)
    sent = collections.defaultdict(list)
    for l in lines:
        sent[str(json.loads(l)["sensor_id"])].append(canonical(l))
    for key, recs in by_sensor.items():
        assert len({r["partition"] for r in recs}) == 1
        assert raw_values(recs) == sent[key]


@pytest.mark.parametrize("transport", ["tcp", "unix", "http"])
def test_reliable_transports_deliver_exactly_what_was_sent(tmp_path, transport):
    lines = expected_lines(tmp_path)
    run = MareRun(tmp_path / "data")
    with run:
        target = {
            "tcp": f"tcp://127.0.0.1:{run.tcp_port}",
            "unix": f"unix://{run.unix_path}",
            "http": f"{run.http_url}/api/v1/ingest",
        }[transport]
        p = mare("simulate", *SIM, "--target", target)
        assert "sent 300 readings" in p.stderr
    assert_log_holds_exactly(run.data_dir, lines)


def test_udp_at_a_modest_rate_delivers_every_reading(tmp_path):
    lines = expected_lines(tmp_path)
    run = MareRun(tmp_path / "data")
    with run:
        mare("simulate", *SIM, "--max-rate", "2000", "--target", f"udp://127.0.0.1:{run.udp_port}")
        # UDP has no acknowledgement: wait until the receivers have taken all 300.
        for _ in range(100):
            if run.metric('mare_source_readings_accepted_total{source="udp"}') == 300:
                break
            time.sleep(0.05)
        assert run.metric("mare_source_udp_datagrams_dropped_total") == 0
    assert_log_holds_exactly(run.data_dir, lines)


def test_several_readings_per_datagram_and_per_line(tmp_path):
    run = MareRun(tmp_path / "data")
    with run:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        datagram = "\n".join(json.dumps({"timestamp": 1705831560 + i, "sensor_id": 1, "temperature": 20 + i / 10}) for i in range(10))
        sock.sendto(datagram.encode(), ("127.0.0.1", run.udp_port))
        with socket.create_connection(("127.0.0.1", run.tcp_port)) as c:
            batch = [{"timestamp": 1705831570 + i, "sensor_id": 2, "pressure": 1010 + i} for i in range(5)]
            c.sendall((json.dumps(batch) + "\n").encode())
        for _ in range(100):
            if (run.metric('mare_source_readings_accepted_total{source="udp"}') or 0) + (
                    run.metric('mare_source_readings_accepted_total{source="tcp"}') or 0) == 15:
                break
            time.sleep(0.05)
    records = log_records(run.data_dir)
    assert sorted(r["value"]["timestamp"] for r in records if r["key"] == "1") == [1705831560 + i for i in range(10)]
    assert [r["value"]["pressure"] for r in records if r["key"] == "2"] == [1010 + i for i in range(5)]


def test_bad_readings_are_rejected_counted_and_kept_without_harming_neighbours(tmp_path):
    run = MareRun(tmp_path / "data")
    with run:
        body = "\n".join([
            json.dumps({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": 20.5}),
            '{"timestamp": "2024-01-21 10:00:01", "sensor_id": 1, "temperature": NaN}',
            "this is not json",
            json.dumps({"timestamp": "2024-01-21 10:00:02", "sensor_id": 1, "location": {"lat": 95, "lon": 3}}),
            json.dumps({"timestamp": "2024-01-21 10:00:03", "sensor_id": 1, "temperature": 20.7}),
        ])
        status, answer = run.post(body)
        assert status == 200
        assert answer["accepted"] == 2
        assert answer["rejected"] == 3
        assert answer["reasons"] == {"invalid_number": 1, "not_json": 1, "invalid_location": 1}
        assert [(e["line"], e["reason"]) for e in answer["errors"]] == [(2, "invalid_number"), (3, "not_json"), (4, "invalid_location")]
        assert "lat 95" in answer["errors"][2]["detail"]

        with socket.create_connection(("127.0.0.1", run.tcp_port)) as c:
            c.sendall(b'{"timestamp": "2024-01-21 10:00:04", "sensor_id": "buoy"}\n')
            c.sendall(b'{"timestamp": "2024-01-21 10:00:05", "sensor_id": 3, "temperature": 21}\n')
        for _ in range(100):
            if run.metric('mare_source_readings_accepted_total{source="tcp"}') == 1:
                break
            time.sleep(0.05)
        assert run.metric('mare_source_readings_rejected_total{source="http",reason="not_json"}') == 1
        assert run.metric('mare_source_readings_rejected_total{source="http",reason="invalid_number"}') == 1
        assert run.metric('mare_source_readings_rejected_total{source="tcp",reason="invalid_sensor_id"}') == 1
        assert run.metric("mare_dead_letter_readings_written_total") == 4
    dead = (tmp_path / "data" / "dead-letter.log").read_bytes()
    assert b" http not_json 16 not JSON" in dead and b"\nthis is not json\n" in dead
    assert b" tcp invalid_sensor_id " in dead
    temps = [r["value"].get("temperature") for r in log_records(run.data_dir)]
    assert sorted(t for t in temps if t is not None) == [20.5, 20.7, 21]


def test_oversized_datagram_is_rejected(tmp_path):
    run = MareRun(tmp_path / "data", extra=["sources.udp.max_datagram_bytes=200"])
    with run:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(json.dumps({"timestamp": 1705831560, "sensor_id": 1, "status": "x" * 300}).encode(), ("127.0.0.1", run.udp_port))
        sock.sendto(json.dumps({"timestamp": 1705831560, "sensor_id": 2}).encode(), ("127.0.0.1", run.udp_port))
        for _ in range(100):
            if run.metric('mare_source_readings_accepted_total{source="udp"}') == 1:
                break
            time.sleep(0.05)
        assert run.metric('mare_source_readings_rejected_total{source="udp",reason="oversized"}') == 1
    assert [r["key"] for r in log_records(run.data_dir)] == ["2"]
