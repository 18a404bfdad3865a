"""Arrow answers of a real `mare run` (docs/formats/arrow.md), read by pyarrow: every type mare
has, NULLs as NULLs, the same values as the JSON answer, several record batches, the Accept
header and the JSON body's format, and errors still as JSON."""
import json
import urllib.error
import urllib.parse
import urllib.request

import pyarrow as pa
import pytest

from harness import MareRun

T0 = 1705831200  # 2024-01-21T10:00:00Z
ARROW = "application/vnd.apache.arrow.stream"


def get(run, sql, fmt="arrow", accept=None):
    params = {"q": sql}
    if fmt:
        params["format"] = fmt
    req = urllib.request.Request(f"{run.http_url}/api/v1/query?" + urllib.parse.urlencode(params))
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def arrow(run, sql, **kw):
    status, body, headers = get(run, sql, **kw)
    assert status == 200, body
    assert headers["Content-Type"] == ARROW
    table = pa.ipc.open_stream(body).read_all()
    table.validate(full=True)
    return table


def json_rows(run, sql):
    status, body, _ = get(run, sql, fmt="json")
    assert status == 200, body
    return json.loads(body)["rows"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with MareRun(tmp_path_factory.mktemp("arrow")) as r:
        readings = []
        for i in range(12):
            one = {"timestamp": T0 + i, "sensor_id": i % 3 + 1, "location": {"lat": 42.48 + i / 1000, "lon": 3.13}}
            if i % 4 != 1:  # every fourth reading has no temperature: a NULL
                one["temperature"] = 12.5 + i / 4
            if i % 3 != 2:
                one["status"] = "drifting, \"said\" buoy é" if i == 0 else "ok"
            readings.append(one)
        status, answer = r.post("\n".join(json.dumps(x) for x in readings))
        assert status == 200 and answer["accepted"] == 12, answer
        r.wait_readings(12)
        yield r


EVERY_TYPE = ("SELECT ts, sensor_id, temperature, status, temperature > 13 AS warm, "
              "ts - TIMESTAMP '2024-01-21 10:00:00' AS age, lat FROM readings ORDER BY ts")


def test_every_type_reads_with_its_arrow_type_and_nulls(run):
    table = arrow(run, EVERY_TYPE)
    assert table.schema == pa.schema([
        ("ts", pa.timestamp("us", tz="UTC")), ("sensor_id", pa.int64()), ("temperature", pa.float64()),
        ("status", pa.string()), ("warm", pa.bool_()), ("age", pa.duration("us")), ("lat", pa.float64())])
    assert table.num_rows == 12
    got = table.to_pylist()
    assert got[0]["ts"].isoformat() == "2024-01-21T10:00:00+00:00"
    assert got[11]["ts"].isoformat() == "2024-01-21T10:00:11+00:00"
    assert [r["sensor_id"] for r in got] == [i % 3 + 1 for i in range(12)]
    assert [r["temperature"] for r in got] == [None if i % 4 == 1 else 12.5 + i / 4 for i in range(12)]
    assert [r["status"] for r in got] == [
        None if i % 3 == 2 else "drifting, \"said\" buoy é" if i == 0 else "ok" for i in range(12)]
    assert [r["warm"] for r in got] == [None if i % 4 == 1 else 12.5 + i / 4 > 13 for i in range(12)]
    assert [r["age"].total_seconds() for r in got] == list(range(12))
    assert table.column("temperature").null_count == 3
    assert table.column("status").null_count == 4
    assert table.column("warm").null_count == 3


def test_arrow_and_json_answers_hold_the_same_values(run):
    sql = "SELECT sensor_id, count(*) AS n, avg(temperature) AS mean, min(ts) AS first, last(status) AS s FROM readings GROUP BY sensor_id ORDER BY sensor_id"
    table = arrow(run, sql)
    rows = json_rows(run, sql)
    assert len(rows) == table.num_rows == 3
    for mine, theirs in zip(table.to_pylist(), rows):
        assert [mine["sensor_id"], mine["n"], mine["s"]] == [theirs[0], theirs[1], theirs[4]]
        assert mine["mean"] == pytest.approx(theirs[2], rel=1e-15)
        assert mine["first"].strftime("%Y-%m-%dT%H:%M:%SZ") == theirs[3]


def test_pandas_keeps_utc_timestamps_and_nulls(run):
    df = arrow(run, EVERY_TYPE).to_pandas()
    assert str(df["ts"].dtype) in ("datetime64[us, UTC]", "datetime64[ns, UTC]")
    assert df["temperature"].isna().sum() == 3
    assert df["status"].isna().sum() == 4
    assert df["sensor_id"].dtype == "int64"


def test_a_column_of_null_constants_and_an_empty_answer(run):
    table = arrow(run, "SELECT NULL AS nothing, 1 AS one FROM readings LIMIT 2")
    assert table.num_rows == 2
    assert table.column("nothing").null_count == 2
    assert table.column("one").to_pylist() == [1, 1]
    empty = arrow(run, "SELECT ts, temperature FROM readings WHERE sensor_id = 99")
    assert empty.num_rows == 0
    assert empty.schema.field("ts").type == pa.timestamp("us", tz="UTC")


def test_accept_header_and_json_body_choose_arrow(run):
    table = arrow(run, "SELECT count(*) AS n FROM readings", fmt=None, accept=ARROW)
    assert table.column("n").to_pylist() == [12]
    req = urllib.request.Request(f"{run.http_url}/api/v1/query", method="POST",
                                 data=json.dumps({"q": "SELECT max(sensor_id) AS m FROM readings", "format": "arrow"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"] == ARROW
        assert pa.ipc.open_stream(r.read()).read_all().column("m").to_pylist() == [3]


def test_errors_stay_json(run):
    status, body, headers = get(run, "SELECT nope FROM readings")
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert "unknown column" in json.loads(body)["error"]


def test_an_answer_of_several_batches(tmp_path):
    # 70,000 rows: two record batches (65,536 + 4,464), text and NULLs crossing the cut.
    n = 70_000
    with MareRun(tmp_path) as r:
        for start in range(0, n, 10_000):
            body = "\n".join(json.dumps({"timestamp": T0 + i, "sensor_id": 5, "seq": i,
                                         **({"station": f"s{i}"} if i % 7 else {})})
                             for i in range(start, start + 10_000))
            status, answer = r.post(body)
            assert status == 200 and answer["accepted"] == 10_000, answer
        r.wait_readings(n, timeout=60)
        status, body, _ = get(r, "SELECT ts, seq, station FROM readings ORDER BY ts")
        assert status == 200
        reader = pa.ipc.open_stream(body)
        batches = list(reader)
        assert [b.num_rows for b in batches] == [65_536, n - 65_536]
        table = pa.Table.from_batches(batches)
        assert table.column("seq").to_pylist() == [float(i) for i in range(n)]
        assert table.column("station").to_pylist() == [f"s{i}" if i % 7 else None for i in range(n)]
