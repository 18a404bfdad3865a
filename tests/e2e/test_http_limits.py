"""The HTTP server under hostile or careless clients (issue 13): slow clients cannot starve the
others, bodies are bounded with a message for every content type, a form body is NDJSON like
any other, and a bare word in place of a value is rejected, never logged."""
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from harness import MareRun, log_records

READING = {"timestamp": "2024-01-21 10:06:04", "sensor_id": 7, "temperature": 20.9}


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def post(url, body, content_type):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw_request(port, head, timeout=5):
    """Sends a request head (no body) and returns everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode())
        s.settimeout(timeout)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")


@pytest.mark.parametrize("slow", [20, 200])
def test_slow_clients_do_not_stop_ingest_metrics_or_health(tmp_path, slow):
    """Reproduced: 20 connections sending a byte a second blocked every request while they lasted."""
    with MareRun(tmp_path / "data") as run:
        request = b"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200\r\n\r\n"
        clients = [socket.create_connection(("127.0.0.1", run.http_port)) for _ in range(slow)]
        try:
            rounds = 0
            for i in range(4):  # four seconds, a byte a second from each
                for c in clients:
                    c.send(request[i:i + 1])
                (status, _), took = timed(lambda: get(f"{run.http_url}/healthz"))
                assert status == 200 and took < 1, f"/healthz took {took:.2f} s beside {slow} slow clients"
                # A reading of its own each round: ingest takes a repeated one for a duplicate.
                reading = {**READING, "timestamp": f"2024-01-21 10:06:0{i}"}
                (status, answer), took = timed(lambda: post(f"{run.http_url}/api/v1/ingest", json.dumps(reading).encode(),
                                                            "application/x-ndjson"))
                assert status == 200 and took < 1, f"ingest took {took:.2f} s beside {slow} slow clients: {answer}"
                assert json.loads(answer)["accepted"] == 1
                rounds += 1
                (status, text), took = timed(lambda: get(f"{run.http_url}/metrics"))
                assert status == 200 and took < 1, f"/metrics took {took:.2f} s beside {slow} slow clients"
                time.sleep(max(0.0, 1 - took))
            assert run.metric('mare_source_readings_accepted_total{source="http"}') == rounds
        finally:
            for c in clients:
                c.close()


def test_a_cross_site_content_type_is_refused_with_what_to_send(tmp_path):
    """Reproduced: curl --data (a form content type) was refused with an empty 413 above 8 KB. A
    form or text/plain body is what any web page may POST cross-site, so it is refused (415) with
    the command to use instead; JSON and NDJSON are taken, of any size."""
    def body_of(first_sensor):  # readings of their own for each post: a repeated one is a duplicate
        lines = [json.dumps({**READING, "sensor_id": first_sensor + i}) for i in range(1000)]
        return ("\n".join(lines) + "\n").encode()

    body = body_of(0)
    assert len(body) > 8 * 1024
    with MareRun(tmp_path / "data") as run:
        for content_type in ["application/x-www-form-urlencoded", "text/plain", "text/plain; charset=utf-8", "multipart/form-data; boundary=x"]:
            status, answer = post(f"{run.http_url}/api/v1/ingest", body, content_type)
            assert status == 415, (content_type, answer)
            assert "Content-Type: application/x-ndjson" in json.loads(answer)["error"]
        for k, content_type in enumerate(["application/x-ndjson", "application/json"]):
            status, answer = post(f"{run.http_url}/api/v1/ingest", body_of(1000 * k), content_type)
            assert status == 200, answer
            assert json.loads(answer)["accepted"] == 1000
        assert run.metric('mare_http_requests_refused_total{reason="content_type"}') == 4
    assert len(log_records(run.data_dir)) == 2000


def test_every_content_type_over_max_body_bytes_gets_413_with_a_message(tmp_path):
    with MareRun(tmp_path / "data", extra=['http.max_body_bytes="1MiB"']) as run:
        for content_type in ["application/x-www-form-urlencoded", "application/x-ndjson", "text/plain", "application/json"]:
            # Refused from the head alone: the 70 MB never need to be sent.
            answer = raw_request(run.http_port, f"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                                                f"Content-Length: 70000000\r\n\r\n")
            assert answer.startswith("HTTP/1.1 413 "), answer
            assert "request body of 70000000 bytes exceeds http.max_body_bytes (1048576 bytes)" in answer
            status, text = post(f"{run.http_url}/api/v1/ingest", b"x" * (1048576 + 1), content_type)
            assert status == 413 and "exceeds http.max_body_bytes" in text, (content_type, text)
        # Right at the limit is fine.
        # Readings of equal length and distinct times (a repeated one would be a duplicate).
        line_of = lambda n: json.dumps({**READING, "timestamp": 1705831564000 + n}).encode() + b"\n"
        count = 1048576 // len(line_of(0))
        body = b"".join(line_of(n) for n in range(count))
        status, answer = post(f"{run.http_url}/api/v1/ingest", body, "application/x-ndjson")
        assert len(body) <= 1048576 and status == 200 and json.loads(answer)["accepted"] == count, answer


def test_a_bare_word_in_place_of_a_value_is_rejected_and_not_logged(tmp_path):
    """Reproduced: "temperature":nonsense was taken for null and the text kept in the log."""
    with MareRun(tmp_path / "data") as run:
        body = "\n".join([
            '{"timestamp":"2024-01-21 10:00:00","sensor_id":1,"temperature":nonsense}',
            '{"timestamp":"2024-01-21 10:00:01","sensor_id":1,"temperature":nope}',
            '{"timestamp":"2024-01-21 10:00:02","sensor_id":1,"temperature":nan5}',
            '{"timestamp":"2024-01-21 10:00:03","sensor_id":1,"ok":trueish}',
            '{"timestamp":"2024-01-21 10:00:04","sensor_id":1,"location":nope}',
            '{"timestamp":"2024-01-21 10:00:05","sensor_id":1,"temperature":null}',
        ]).encode()
        status, answer = post(f"{run.http_url}/api/v1/ingest", body, "application/x-ndjson")
        assert status == 200
        answer = json.loads(answer)
        assert answer["accepted"] == 1 and answer["reasons"] == {"not_json": 5}
        assert "nonsense is not a JSON value" in answer["errors"][0]["detail"]
    values = [r["value"] for r in log_records(run.data_dir)]
    assert values == [{"timestamp": "2024-01-21 10:00:05", "sensor_id": 1, "temperature": None}]
