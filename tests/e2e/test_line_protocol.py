"""InfluxDB line protocol into mare, written by the real clients: the official InfluxDB Python
client (influxdb-client) over /api/v2/write, plain HTTP requests to the 1.x /write, gzip
bodies, the QuestDB Python client's ILP sender over HTTP and TCP, and datagrams over UDP. Each
checks the readings through SQL with exact values; bad lines are answered with their line
numbers, their neighbours written, and dead-lettered."""
import gzip
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import MareRun, free_port

T0 = 1705831564  # 2024-01-21 10:06:04 UTC


def post(run, path, body, headers=None):
    req = urllib.request.Request(f"{run.http_url}{path}", data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_influxdb_client_writes_over_api_v2(tmp_path):
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.exceptions import InfluxDBError
    from influxdb_client.client.write_api import SYNCHRONOUS

    with MareRun(tmp_path / "data") as run:
        for gzip_on in (False, True):
            with InfluxDBClient(url=run.http_url, token="unused", org="observatory", enable_gzip=gzip_on) as client:
                write = client.write_api(write_options=SYNCHRONOUS)
                sensor = 7 if not gzip_on else 8
                points = [
                    Point("weather").tag("sensor_id", str(sensor)).tag("station", "Banyuls Sola, FR")
                    .field("temperature", 20.9 + i).field("count", i).field("ok", i % 2 == 0)
                    .field("note", 'calm "sea"').field("lat", 42.488629).field("lon", 3.185785)
                    .time((T0 + i) * 1_000_000_000 + 95_931_000, WritePrecision.NS)
                    for i in range(3)
                ]
                write.write(bucket="buoys", record=points)
        run.wait_readings(6)
        rows = run.query_rows("SELECT sensor_id, ts, temperature, count, ok, note, measurement, station, lat, lon "
                          "FROM readings ORDER BY sensor_id, ts")
        assert [r[0] for r in rows] == [7, 7, 7, 8, 8, 8]
        assert [r[2] for r in rows[:3]] == [20.9, 21.9, 22.9]
        assert [r[3] for r in rows[:3]] == [0, 1, 2]
        assert [r[4] for r in rows[:3]] == [1, 0, 1]  # booleans are 1 and 0
        assert rows[0][5:] == ['calm "sea"', "weather", "Banyuls Sola, FR", 42.488629, 3.185785]
        assert run.query_rows("SELECT count(*) FROM readings WHERE ts = TIMESTAMP '2024-01-21 10:06:05.095931'") == [[2]]

        # A batch with bad lines: the client is told which, the good ones are written.
        with InfluxDBClient(url=run.http_url, token="unused", org="observatory") as client:
            write = client.write_api(write_options=SYNCHRONOUS)
            with pytest.raises(InfluxDBError) as raised:
                write.write(bucket="buoys", write_precision=WritePrecision.S,
                            record=f"weather,sensor_id=9 temperature=1 {T0}\n"
                                   f"weather,sensor_id=9 temperature=oops {T0 + 1}\n"
                                   f"weather,sensor_id=9 temperature=3 {T0 + 2}\n"
                                   f"weather temperature=4 {T0 + 3}\n")
        assert raised.value.response.status == 400
        answer = json.loads(raised.value.response.data)
        assert answer["code"] == "invalid"
        assert "partial write: 2 of 4 lines rejected (2 written): line 2: invalid_line_protocol: " \
               "invalid value 'oops' of field 'temperature'" in answer["message"]
        assert "line 4: missing_sensor_id" in answer["message"]
        assert [(e["line"], e["reason"]) for e in answer["errors"]] == [(2, "invalid_line_protocol"), (4, "missing_sensor_id")]
        run.wait_readings(2, "sensor_id = 9")
        assert run.query_rows("SELECT temperature FROM readings WHERE sensor_id = 9 ORDER BY ts") == [[1.0], [3.0]]
        assert run.metric('mare_source_readings_rejected_total{source="line_http",reason="invalid_line_protocol"}') == 1
        assert run.metric('mare_source_readings_accepted_total{source="line_http"}') == 8
    # Dead-lettered with the line as sent (docs/formats/dead-letter.md).
    dead = (tmp_path / "data" / "dead-letter.log").read_text()
    assert " line_http invalid_line_protocol " in dead and f"weather,sensor_id=9 temperature=oops {T0 + 1}\n" in dead, dead
    assert " line_http missing_sensor_id " in dead, dead


def test_v1_write_with_plain_requests_precisions_and_gzip(tmp_path):
    with MareRun(tmp_path / "data") as run:
        status, body = post(run, "/write?db=buoys&precision=s",
                            f"weather,sensor_id=1 temperature=10.5,wave_height=1i {T0}\n".encode())
        assert (status, body) == (204, "")
        status, _ = post(run, "/write?db=buoys&precision=ms",
                         gzip.compress(f"weather,sensor_id=2 temperature=11.5 {T0 * 1000 + 250}\n".encode()),
                         {"Content-Encoding": "gzip"})
        assert status == 204
        status, _ = post(run, "/write?db=buoys&precision=h", f"weather,sensor_id=3 temperature=12.5 {T0 // 3600}\n".encode())
        assert status == 204
        status, body = post(run, "/write?db=buoys&precision=s",
                            f"# two bad lines\nweather,sensor_id=4 temperature=1 {T0}\nweather,sensor_id=4\n"
                            f"weather,sensor_id=4 temperature=2 {T0 + 1}\nweather,sensor_id=x temperature=3\n".encode())
        assert status == 400
        answer = json.loads(body)
        assert "line 3: invalid_line_protocol: missing fields" in answer["error"]
        assert "line 5: invalid_sensor_id" in answer["error"]
        status, body = post(run, "/write?precision=fortnights", b"weather,sensor_id=5 t=1 1\n")
        assert status == 400 and "invalid precision" in json.loads(body)["error"]
        run.wait_readings(5)
        assert run.query_rows("SELECT sensor_id, ts, temperature, wave_height FROM readings ORDER BY sensor_id, ts") == [
            [1, "2024-01-21T10:06:04Z", 10.5, 1],
            [2, "2024-01-21T10:06:04.250000Z", 11.5, None],
            [3, "2024-01-21T10:00:00Z", 12.5, None],
            [4, "2024-01-21T10:06:04Z", 1, None],
            [4, "2024-01-21T10:06:05Z", 2, None],
        ]


def test_questdb_sender_over_http_tcp_and_datagrams_over_udp(tmp_path):
    from questdb.ingress import Sender, TimestampNanos

    tcp_port, udp_port = free_port(), free_port(socket.SOCK_DGRAM)
    settings = ["sources.line_protocol.tcp=true", f'sources.line_protocol.tcp_listen="127.0.0.1:{tcp_port}"',
                "sources.line_protocol.udp=true", f'sources.line_protocol.udp_listen="127.0.0.1:{udp_port}"']
    with MareRun(tmp_path / "data", extra=settings) as run:
        with Sender.from_conf(f"tcp::addr=127.0.0.1:{tcp_port};protocol_version=1;") as sender:
            for i in range(100):
                sender.row("weather", symbols={"sensor_id": str(20 + i % 4), "station": "north"},
                           columns={"temperature": 15.25 + i, "count": i, "note": f"row {i}"},
                           at=TimestampNanos((T0 + i) * 1_000_000_000))
            sender.flush()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(f"weather,sensor_id=30 temperature=5.5 {T0}000000000\nbad\n"
                     f"weather,sensor_id=30 temperature=6.5 {T0 + 1}000000000\n".encode(), ("127.0.0.1", udp_port))
        # Over HTTP, with the sender's defaults: it asks GET /settings for the line protocol
        # versions the server takes (QuestDB's own endpoint; mare has none, so version 1, as with
        # InfluxDB), then POSTs /write?precision=n and wants 204.
        with Sender.from_conf(f"http::addr=127.0.0.1:{run.http_url.rsplit(':', 1)[1]};") as sender:
            assert sender.protocol_version == 1
            for i in range(10):
                sender.row("weather", symbols={"sensor_id": "40", "station": "south"},
                           columns={"temperature": 0.5 + i, "count": i, "ok": i % 2 == 0}, at=TimestampNanos((T0 + i) * 1_000_000_000))
            sender.flush()
        run.wait_readings(10, "sensor_id = 40")
        assert run.query_rows("SELECT ts, temperature, count, ok, station FROM readings WHERE sensor_id = 40 "
                              "ORDER BY ts LIMIT 2") == [["2024-01-21T10:06:04Z", 0.5, 0, 1, "south"],
                                                         ["2024-01-21T10:06:05Z", 1.5, 1, 0, "south"]]
        assert run.query_rows("SELECT count(*), sum(temperature), sum(count) FROM readings WHERE sensor_id = 40") == [
            [10, 50.0, 45]]
        assert run.metric('mare_source_readings_accepted_total{source="line_http"}') == 10
        run.wait_readings(100, "sensor_id >= 20 AND sensor_id < 24")
        run.wait_readings(2, "sensor_id = 30")
        assert run.query_rows("SELECT sensor_id, count(*), min(temperature), max(temperature), sum(count) FROM readings "
                          "WHERE sensor_id < 30 GROUP BY sensor_id ORDER BY sensor_id") == [
            [20, 25, 15.25, 111.25, sum(range(0, 100, 4))],
            [21, 25, 16.25, 112.25, sum(range(1, 100, 4))],
            [22, 25, 17.25, 113.25, sum(range(2, 100, 4))],
            [23, 25, 18.25, 114.25, sum(range(3, 100, 4))],
        ]
        assert run.query_rows("SELECT ts, note, station, measurement FROM readings WHERE sensor_id = 23 ORDER BY ts LIMIT 1") == [
            ["2024-01-21T10:06:07Z", "row 3", "north", "weather"]]
        assert run.query_rows("SELECT temperature FROM readings WHERE sensor_id = 30 ORDER BY ts") == [[5.5], [6.5]]
        assert run.metric('mare_source_readings_accepted_total{source="line_tcp"}') == 100
        assert run.metric('mare_source_readings_rejected_total{source="line_udp",reason="invalid_line_protocol"}') == 1
