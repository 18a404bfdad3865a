"""The Python client (python/, package `mare`) against a real `mare run`: a DataFrame of readings
in, validated like any other (rejects raised with the server's reasons), SQL answers out as pandas
DataFrames and Arrow tables with UTC timestamps and NULLs kept (an integer column with NULLs as
pandas' exact Int64), the sensors, exports to Parquet and CSV, errors carrying the server's
message and position, and a token sent to a server that asks for one. The package tested is this
checkout's python/, whatever else is installed; one test installs it with pip."""
import datetime as dt
import hashlib
import json
import math
import os
import select
import subprocess
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from harness import MareRun, wait_for

PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
sys.path.insert(0, PYTHON_DIR)
import mare  # noqa: E402: this checkout's client, ahead of any installed one
import mare.frames  # noqa: E402

T0 = pd.Timestamp("2024-01-21 10:00:00", tz="UTC")
N = 120


def readings():
    """Three buoys, one reading every 10 s; sensor 3 has no position and reports no
    temperature every fifth reading; sensor 2 names its station."""
    rows = []
    for i in range(N):
        sensor = i % 3 + 1
        rows.append({
            "timestamp": T0 + pd.Timedelta(seconds=10 * i),
            "sensor_id": sensor,
            "temperature": float("nan") if sensor == 3 and i % 5 == 0 else 14.0 + i / 8,
            "wave_height": 0.5 + (i % 7) / 10,
            "station": "Banyuls-Sola" if sensor == 2 else None,
            "lat": None if sensor == 3 else 42.48 + sensor / 100,
            "lon": None if sensor == 3 else 3.13 + sensor / 100,
        })
    return pd.DataFrame(rows)


def wait_rows(client, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if client.query("SELECT count(*) AS n FROM readings")["n"][0] == n:
            return
        time.sleep(0.1)
    raise AssertionError(f"the store did not reach {n} readings")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with MareRun(tmp_path_factory.mktemp("python-client")) as run:
        c = mare.connect(run.http_url)
        assert c.ingest(readings()) == {"accepted": N}
        wait_rows(c, N)
        yield c


def test_query_gives_a_dataframe_with_utc_timestamps_and_nulls(client):
    df = client.query("SELECT ts, sensor_id, temperature, station, lat, temperature > 20 AS warm FROM readings ORDER BY ts")
    sent = readings()
    assert len(df) == N
    assert list(df.columns) == ["ts", "sensor_id", "temperature", "station", "lat", "warm"]
    assert isinstance(df["ts"].dtype, pd.DatetimeTZDtype) and str(df["ts"].dt.tz) == "UTC"
    assert list(df["ts"]) == list(sent["timestamp"])
    assert df["sensor_id"].dtype == "int64" and list(df["sensor_id"]) == list(sent["sensor_id"])
    assert df["temperature"].dtype == "float64"
    assert df["temperature"].isna().tolist() == sent["temperature"].isna().tolist()
    assert df["temperature"].dropna().tolist() == sent["temperature"].dropna().tolist()
    assert df["station"].tolist() == sent["station"].tolist()
    assert df["lat"].isna().sum() == N // 3
    # A boolean with NULLs keeps them as pd.NA in pandas' nullable boolean dtype.
    assert str(df["warm"].dtype) == "boolean"
    assert df["warm"].isna().tolist() == sent["temperature"].isna().tolist()
    assert df["warm"].dropna().tolist() == (sent["temperature"].dropna() > 20).tolist()


def test_a_small_answer_is_built_as_pyarrow_would_and_can_be_modified(client):
    # Fixed-width columns with and without NULLs: the frame mare.frames builds itself, which
    # must equal pyarrow's to_pandas (the path of larger answers and text columns) exactly.
    sql = ("SELECT ts, time_bucket('10m', ts) AS bucket, sensor_id, temperature, lat, temperature > 20 AS warm, "
           "sensor_id > 1 AS far FROM readings ORDER BY ts")
    table = client.query_arrow(sql)
    assert mare.frames._small_frame(table) is not None, "the answer took the small-answer path"
    df = client.query(sql)
    pd.testing.assert_frame_equal(df, mare.frames.frame_by_pyarrow(table), check_exact=True)
    assert [str(t) for t in df.dtypes] == ["datetime64[us, UTC]", "datetime64[us, UTC]", "int64", "float64", "float64",
                                           "boolean", "bool"]
    # A scientist's first clean-up: the frame's arrays are its own, not Arrow's read-only buffers.
    df.loc[df["temperature"] > 25, "temperature"] = float("nan")
    df.loc[0, "sensor_id"] = 99
    df.loc[1, "ts"] = T0
    df.loc[2, "warm"] = True
    assert df.loc[0, "sensor_id"] == 99 and df.loc[1, "ts"] == T0 and bool(df.loc[2, "warm"])
    assert df["temperature"].isna().sum() == (readings()["temperature"].isna() | (readings()["temperature"] > 25)).sum()
    # A second frame of the same columns shares nothing the first one changed (its column index).
    df.columns.name = "mine"
    assert client.query(sql).columns.name is None


def test_an_integer_column_with_nulls_is_pandas_int64_with_exact_values(client):
    # Above 2**53, where a float64 column (pyarrow's to_pandas for an int64 with NULLs) would
    # round the values: both of the client's paths keep them exact, NULLs as pd.NA.
    # `0 % 0` is NULL (docs/sql.md): NULL for sensor 3, 2**53 + sensor_id for the others.
    big = 2**53
    sql = f"SELECT ts, {big} + sensor_id + 0 % (sensor_id - 3) AS tagged FROM readings ORDER BY ts"
    want = [None if s == 3 else big + s for s in readings()["sensor_id"]]
    assert 0 < want.count(None) < N and any(v is not None and v % 2 for v in want)
    table = client.query_arrow(sql)
    assert table.schema.field("tagged").type == pa.int64()
    assert table.column("tagged").to_pylist() == want
    assert table.column("tagged").to_pandas().dtype == "float64"  # what the client's mapping avoids
    assert mare.frames._small_frame(table) is not None, "the answer took the small-answer path"
    for df in (client.query(sql), mare.frames.frame_by_pyarrow(table)):
        assert str(df["tagged"].dtype) == "Int64"
        assert [None if v is pd.NA else int(v) for v in df["tagged"]] == want
        assert str(df["ts"].dtype) == "datetime64[us, UTC]"


def test_query_arrow_gives_a_typed_table(client):
    table = client.query_arrow("SELECT time_bucket('10m', ts) AS bucket, sensor_id, count(*) AS n, avg(wave_height) AS waves "
                               "FROM readings GROUP BY bucket, sensor_id ORDER BY bucket, sensor_id")
    assert isinstance(table, pa.Table)
    assert table.schema.field("bucket").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("n").type == pa.int64()
    sent = readings()
    sent["bucket"] = sent["timestamp"].dt.floor("10min")
    expected = sent.groupby(["bucket", "sensor_id"]).agg(n=("wave_height", "size"), waves=("wave_height", "mean")).reset_index()
    got = table.to_pandas()
    assert got["n"].tolist() == expected["n"].tolist()
    assert got["sensor_id"].tolist() == expected["sensor_id"].tolist()
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got["waves"], expected["waves"]))


def test_batches_arrive_one_by_one(client):
    batches = list(client.batches("SELECT ts, temperature FROM readings"))
    assert sum(b.num_rows for b in batches) == N
    assert all(b.schema.field("ts").type == pa.timestamp("us", tz="UTC") for b in batches)


def test_sensors(client):
    s = client.sensors()
    assert s["sensor_id"].tolist() == [1, 2, 3]
    assert s["readings"].tolist() == [N // 3] * 3
    assert s["first_seen"].tolist() == [T0, T0 + pd.Timedelta(seconds=10), T0 + pd.Timedelta(seconds=20)]
    assert str(s["last_seen"].dt.tz) == "UTC"
    assert s.loc[0, "lat"] == pytest.approx(42.49) and s.loc[1, "lon"] == pytest.approx(3.15)
    assert math.isnan(s.loc[2, "lat"])
    assert "station" in s.loc[1, "fields"] and "temperature" in s.loc[0, "fields"]


def test_export_to_parquet_and_csv(client, tmp_path):
    sql = "SELECT ts, sensor_id, temperature, station FROM readings WHERE sensor_id >= 2 ORDER BY ts"
    expected = client.query(sql)
    parquet = tmp_path / "buoys.parquet"
    assert client.export(sql, parquet) == len(expected) == 2 * N // 3
    back = pq.read_table(parquet)
    assert back.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    pd.testing.assert_frame_equal(back.to_pandas(), expected)
    csv_path = tmp_path / "buoys.csv"
    assert client.export(sql, str(csv_path)) == len(expected)
    again = pacsv.read_csv(csv_path).to_pandas()
    assert again["sensor_id"].tolist() == expected["sensor_id"].tolist()
    assert again["temperature"].isna().tolist() == expected["temperature"].isna().tolist()
    assert list(pd.to_datetime(again["ts"], utc=True)) == list(expected["ts"])
    with pytest.raises(ValueError, match="parquet or .csv"):
        client.export(sql, tmp_path / "buoys.xlsx")
    assert sorted(os.listdir(tmp_path)) == ["buoys.csv", "buoys.parquet"], "no partial file left behind"


def test_a_bad_statement_raises_the_servers_message_and_position(client, tmp_path):
    with pytest.raises(mare.QueryError) as e:
        client.query("SELECT temprature\nFROM readings")
    assert e.value.status == 400
    assert (e.value.line, e.value.column) == (1, 8)
    assert 'unknown column "temprature"' in str(e.value)
    with pytest.raises(mare.QueryError):
        client.export("SELECT nope FROM readings", tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_ingest_raises_the_servers_reasons_and_keeps_the_valid_rows(tmp_path):
    with MareRun(tmp_path) as run:
        c = mare.connect(run.http_url)
        df = pd.DataFrame({
            "ts": [dt.datetime(2024, 1, 21, 10, 0, tzinfo=dt.timezone.utc), "2024-01-21 10:00:01", 1705831202, "yesterday"],
            "sensor_id": [4, 4, -1, 4],
            "temperature": [20.5, 21.0, 22.0, 23.0],
        }, index=["a", "b", "c", "d"])
        with pytest.raises(mare.IngestError) as e:
            c.ingest(df)
        err = e.value
        assert (err.accepted, err.rejected) == (2, 2)
        assert sum(err.reasons.values()) == 2
        assert sorted(x["row"] for x in err.errors) == ["c", "d"]
        assert all(x["reason"] for x in err.errors)
        assert "rejected 2 of 4" in str(err)
        wait_rows(c, 2)
        got = c.query("SELECT ts, temperature FROM readings ORDER BY ts")
        assert got["temperature"].tolist() == [20.5, 21.0]
        assert got["ts"].tolist() == [pd.Timestamp("2024-01-21 10:00:00", tz="UTC"), pd.Timestamp("2024-01-21 10:00:01", tz="UTC")]
        # A query's own answer goes back in as it came out (ts, lat/lon, fields; NaN left out).
        assert c.ingest(got.assign(sensor_id=5)) == {"accepted": 2}


def test_connections_are_kept_alive_and_replaced_when_the_server_closed_them(tmp_path):
    # The server closes a connection idle for 1 s, and any after its third request.
    settings = ['http.idle_timeout="1s"', "http.keep_alive_max_requests=3"]
    with MareRun(tmp_path, extra=settings) as run, mare.connect(run.http_url) as c:
        opened = []
        new = c._connections._new
        c._connections._new = lambda: opened.append(1) or new()
        df = readings()
        assert c.ingest(df, rows_per_request=40) == {"accepted": N}  # 3 requests, 1 connection
        assert len(opened) == 1
        wait_rows(c, N)
        before = len(opened)
        for _ in range(5):  # a small answer, read to its end: its connection is used again
            assert c.query("SELECT count(*) AS n FROM readings")["n"][0] == N
        assert len(opened) - before <= 3  # at most one new connection per 3 requests
        c.close()
        assert c.query("SELECT count(*) AS n FROM readings")["n"][0] == N  # a connection's first request
        # Past the idle timeout the server closes the kept connection: its socket reads EOF.
        idle = len(c._connections._idle)
        kept = c._connections._idle[-1].sock
        wait_for(lambda: select.select([kept], [], [], 0)[0], 10, what="the server to close the idle connection")
        before = len(opened)
        assert c.query("SELECT count(*) AS n FROM readings")["n"][0] == N
        assert len(opened) == before + 1 and idle >= 1  # the closed one tried, then replaced
        # A batch abandoned half way: its connection is closed, not used again mid-answer.
        it = c.batches("SELECT * FROM readings")
        next(it)
        it.close()
        assert len(c.query("SELECT * FROM readings")) == N
        # Each ingest body carries an Idempotency-Key: were it sent again (a lost answer), the
        # server answers from the key and appends nothing.
        replays = run.metric("mare_http_idempotent_replays_total") or 0
        keys = []
        request = c._connections.request
        def twice(method, path, body=None, headers=None):
            if path == "/api/v1/ingest":
                keys.append(headers["Idempotency-Key"])
                request(method, path, body, headers).close()  # the first answer, lost
            return request(method, path, body, headers)
        c._connections.request = twice
        more = df.assign(sensor_id=df["sensor_id"] + 10)
        assert c.ingest(more, rows_per_request=60) == {"accepted": N}
        assert len(keys) == 2 and keys[0] != keys[1]
        assert run.metric("mare_http_idempotent_replays_total") == replays + 2
        wait_rows(c, 2 * N)


def test_a_token_is_sent_with_every_request(tmp_path):
    # The server asks for tokens (http.tokens, as tests/e2e/test_security.py sets them): the
    # client's token= opens the query, sensors and ingest API; without it, or with one of
    # another scope, the server's refusal is raised with its status.
    tokens = {"notebook": ("notebook-token-1", ["query", "ingest"]), "web": ("query-token-2", ["query"])}
    entries = ", ".join(f'{{name = "{name}", scopes = {json.dumps(scopes)}, '
                        f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"}}' for name, (token, scopes) in tokens.items())
    with MareRun(tmp_path, extra=[f"http.tokens=[{entries}]"]) as run:
        with mare.connect(run.http_url, token="notebook-token-1") as c:
            assert c.ingest(readings()) == {"accepted": N}
            wait_rows(c, N)
            assert c.sensors()["sensor_id"].tolist() == [1, 2, 3]
            assert c.query_arrow("SELECT ts FROM readings").num_rows == N
            assert c.export("SELECT ts, temperature FROM readings", tmp_path / "t.parquet") == N
        for token in (None, "not-a-token"):
            with pytest.raises(mare.QueryError) as e:
                mare.connect(run.http_url, token=token).query("SELECT count(*) FROM readings")
            assert e.value.status == 401
        reader = mare.connect(run.http_url, token="query-token-2")
        assert reader.query("SELECT count(*) AS n FROM readings")["n"][0] == N
        with pytest.raises(mare.IngestError) as e:
            reader.ingest(readings())
        assert e.value.status == 403 and "query-token-2" not in str(e.value)


def test_an_unreachable_server_raises_mare_error():
    c = mare.connect("http://127.0.0.1:9", timeout=5)
    with pytest.raises(mare.MareError, match="cannot reach mare"):
        c.query("SELECT 1 FROM readings")


def test_pip_installs_the_package(tmp_path):
    # Into a target folder, with the setuptools already here: no network needed.
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(tmp_path / "site"), PYTHON_DIR], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    probe = subprocess.run([sys.executable, "-c", "import mare; print(mare.__file__, mare.connect('http://x:1').url)"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
                           cwd=str(tmp_path), timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(tmp_path / "site")) and probe.stdout.strip().endswith("http://x:1")


def ndbc_air_temperature(days):
    """The first `days` days of NDBC 44005 (2012, tests/data) as readings of sensor 1: its hourly
    air temperature (99.0 is missing)."""
    from harness import buoy_readings
    rows = [r for day in buoy_readings(days) for r in day if r["sensor_id"] == 1]
    return pd.DataFrame([{**r, "timestamp": pd.Timestamp(r["timestamp"], unit="s", tz="UTC")} for r in rows])


def api_forecast(url, query):
    import json
    import urllib.request
    with urllib.request.urlopen(f"{url}/api/v1/forecast?{query}", timeout=5) as r:
        return json.loads(r.read())


def test_forecast_gives_the_latest_and_the_day_ahead_forecast_by_hour(tmp_path):
    import time
    sent = ndbc_air_temperature(16)
    hours = sent["timestamp"].dt.floor("h").drop_duplicates().sort_values()
    # The newest hour is not final yet (the watermark trails its reading): the one before issues.
    origin = hours.iloc[-2] + pd.Timedelta(hours=1)
    with MareRun(tmp_path, extra=['forecast.checkpoint_interval="2s"']) as run:
        c = mare.connect(run.http_url)
        with pytest.raises(mare.QueryError) as e:
            c.forecast(1)
        assert e.value.status == 404
        assert c.ingest(sent) == {"accepted": len(sent)}
        deadline = time.time() + 60
        while True:
            try:
                df = c.forecast(1, "temperature")
                if df.attrs["issued_at"] == origin:
                    break
            except mare.QueryError as e:
                assert e.status == 404
            assert time.time() < deadline, "no forecast issued at the last closed hour"
            time.sleep(0.2)
        latest = api_forecast(run.http_url, "sensor_id=1&field=temperature")
        frozen = api_forecast(run.http_url, "sensor_id=1&field=temperature&day_ahead=true")
        with pytest.raises(mare.QueryError) as e:
            c.forecast(2)
        assert e.value.status == 404
        with pytest.raises(mare.QueryError) as e:
            c.forecast(1, "wave_height")  # not in forecast.fields
        assert e.value.status == 404

    assert list(df.columns) == ["hour", "mean", "lo80", "hi80", "day_ahead_mean", "day_ahead_lo80", "day_ahead_hi80"]
    assert str(df["hour"].dt.tz) == "UTC" and df["hour"].is_monotonic_increasing and df["hour"].is_unique
    assert all(df[c].dtype == "float64" for c in df.columns[1:])
    assert df.attrs["model"] == latest["model"] and df.attrs["sensor_id"] == 1 and df.attrs["field"] == "temperature"
    assert df.attrs["day_ahead_issued_at"] == pd.Timestamp(frozen["issued_at"]) == origin.floor("D")

    # The latest forecast: its 24 hours from the origin, each as the API has it.
    ahead = df[df["mean"].notna()].reset_index(drop=True)
    assert list(ahead["hour"]) == [origin + pd.Timedelta(hours=i) for i in range(24)]
    assert ahead["mean"].tolist() == [h["value"] for h in latest["hours"]]
    assert ahead["lo80"].tolist() == [h["lower"] for h in latest["hours"]]
    assert ahead["hi80"].tolist() == [h["upper"] for h in latest["hours"]]
    assert ((ahead["lo80"] <= ahead["mean"]) & (ahead["mean"] <= ahead["hi80"])).all()

    # The day-ahead forecast: today's 24 hours, the earlier ones with no latest mean beside them.
    day = df[df["day_ahead_mean"].notna()].reset_index(drop=True)
    assert list(day["hour"]) == [origin.floor("D") + pd.Timedelta(hours=i) for i in range(24)]
    assert day["day_ahead_mean"].tolist() == [h["value"] for h in frozen["hours"]]
    assert day["day_ahead_lo80"].tolist() == [h["lower"] for h in frozen["hours"]]
    assert day["day_ahead_hi80"].tolist() == [h["upper"] for h in frozen["hours"]]
    assert df["mean"].isna().sum() == (day["hour"] < origin).sum()
    assert len(df) == len(set(ahead["hour"]) | set(day["hour"]))
