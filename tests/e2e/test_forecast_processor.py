"""The forecast processor inside `mare run`: real hourly buoy data (tests/data, NDBC 44005) is
POSTed with its own old timestamps, fast; every hour that closes gets one forecast of the next
24 hours in the `forecasts` topic (the day-ahead one at 00:00 UTC), GET /api/v1/forecast
answers the latest; kill -9 in the middle of the stream and a restart leave no forecast missing
and none appended twice with another content; the MariaDB sink's forecast_hour holds exactly one
row per issue and target hour through the same kill -9; SQL over the store's table forecasts (HTTP
and pgwire) holds exactly the topic's rows, also through kill -9 and restarts; a new processor
starts with the store's history."""
import calendar
import datetime
import json
import time
import urllib.error
import urllib.request

from harness import MareRun, buoy_readings, log_records, mare
from mariadb_server import MariaDB

HOUR = 3600
EXTRA = ['forecast.checkpoint_interval="2s"']


def post_days(run, days):
    for readings in days:
        if not readings:
            continue
        status, answer = run.post("\n".join(json.dumps(r) for r in readings))
        assert status == 200 and answer["accepted"] == len(readings), answer


def closed_hours(days):
    """(sensor, origin hour in seconds) of every forecast expected: one per hour with a reading,
    but the newest (its window is not final yet: the watermark is 10 min behind its reading)."""
    hours = {}
    for readings in days:
        for r in readings:
            hours.setdefault(r["sensor_id"], set()).add(r["timestamp"] // HOUR * HOUR)
    return {(s, h + HOUR) for s, hs in hours.items() for h in sorted(hs)[:-1]}


def get_forecast(run, query):
    try:
        with urllib.request.urlopen(f"{run.http_url}/api/v1/forecast?{query}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def wait_latest(run, sensor, origin, timeout=60):
    deadline = time.time() + timeout
    while True:
        status, answer = get_forecast(run, f"sensor_id={sensor}&field=temperature")
        if status == 200 and answer.get("issued_at") == iso(origin):  # none while "forecast" is null
            return answer
        assert time.time() < deadline, f"sensor {sensor}: latest forecast {status} {answer}, want issued_at {iso(origin)}"
        time.sleep(0.2)


def forecasts_by_key(data_dir):
    """key -> value of the forecasts topic; fails if one key was appended with two contents."""
    out = {}
    for r in log_records(data_dir, "forecasts"):
        value = json.dumps(r["value"], sort_keys=True)
        assert out.setdefault(r["key"], value) == value, f"{r['key']} appended with different contents"
    return out


def seconds(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


COLUMNS = "sensor_id, field, issued_at, target_hour, value, lower, upper, model, day_ahead"


def topic_rows(data_dir):
    """The forecasts topic as forecast_hour rows: (sensor_id, field, issued_at, target_hour) ->
    (value, lower, upper, model, day_ahead), times in epoch seconds."""
    rows = {}
    for value in forecasts_by_key(data_dir).values():
        v = json.loads(value)
        for h in v["hours"]:
            key = (v["sensor_id"], v["field"], seconds(v["issued_at"]), seconds(h["target_hour"]))
            rows[key] = (h["value"], h["lower"], h["upper"], v["model"], v["day_ahead"])
    return rows


def by_key(rows):
    """SQL rows in COLUMNS' order as topic_rows has them; fails on a key seen twice."""
    out = {}
    for sensor, field, issued, target, value, lower, upper, model, day_ahead in rows:
        if isinstance(issued, str):
            issued, target = seconds(issued), seconds(target)
        else:  # psycopg's datetimes
            issued, target = issued.timestamp(), target.timestamp()
        key = (sensor, field, issued, target)
        assert key not in out, f"row {key} twice"
        out[key] = (value, lower, upper, model, day_ahead)
    return out


def wait_sql_rows(run, count, timeout=60):
    """SQL's table forecasts once it holds `count` rows (the store follows the topic)."""
    deadline = time.time() + timeout
    while (n := run.query_rows("SELECT count(*) FROM forecasts")[0][0]) != count:
        assert n < count, f"forecasts holds {n} rows, more than the topic's {count}"
        assert time.time() < deadline, f"forecasts holds {n} rows, want {count}"
        time.sleep(0.2)
    return by_key(run.query_rows(f"SELECT {COLUMNS} FROM forecasts"))


def pgwire_rows(run):
    import psycopg
    with psycopg.connect(f"host=127.0.0.1 port={run.pgwire_port} user=scientist dbname=mare", autocommit=True) as conn:
        return by_key(conn.execute(f"SELECT {COLUMNS} FROM forecasts").fetchall())


def expected_keys(days):
    return {f"{s}/temperature/{h * 1_000_000}" for s, h in closed_hours(days)}


def test_every_closed_hour_gets_one_forecast_and_the_api_answers_the_latest(tmp_path):
    days = buoy_readings(16)
    with MareRun(tmp_path, extra=EXTRA) as run:
        post_days(run, days)
        last = max(h for _, h in closed_hours(days))
        answer = wait_latest(run, 1, last)
        assert answer["sensor_id"] == 1 and answer["field"] == "temperature" and answer["model"] == "ensemble"
        assert [h["target_hour"] for h in answer["hours"]] == [iso(last + i * HOUR) for i in range(24)]
        assert all(isinstance(h["value"], (int, float)) for h in answer["hours"])
        # Two weeks in, the intervals have their 20 errors: each holds its forecast.
        assert all(h["lower"] <= h["value"] <= h["upper"] for h in answer["hours"]), answer
        # The processor appends as it goes (every 50 ms in a burst): sensor 1's latest says
        # nothing of sensor 2's, so wait for that too before reading its day-ahead.
        wait_latest(run, 2, max(h for s, h in closed_hours(days) if s == 2))
        status, day = get_forecast(run, "sensor_id=2&day_ahead=true")
        assert status == 200 and day["day_ahead"] is True
        assert day["issued_at"] == iso(last // 86400 * 86400)
        # No forecast yet is an answer, not a 404 (a console error in the dashboard's browser).
        assert get_forecast(run, "sensor_id=3") == (200, {"sensor_id": 3, "field": "temperature", "day_ahead": False, "forecast": None})
        assert get_forecast(run, "sensor_id=x")[0] == 400
        wait_latest(run, 2, max(h for s, h in closed_hours(days) if s == 2))
        assert run.metric("mare_forecast_kept_series") == 2
        # SQL over the store's copy: every row of every issue, once.
        sql = wait_sql_rows(run, 24 * len(expected_keys(days)))
        pg = pgwire_rows(run)
        day7 = run.query_rows("SELECT target_hour, value FROM forecasts WHERE sensor_id = 2 AND field = 'temperature' AND day_ahead "
                             f"AND issued_at = TIMESTAMP '{iso(last // 86400 * 86400)}' ORDER BY target_hour")
    got = forecasts_by_key(str(tmp_path))
    assert set(got) == expected_keys(days)
    topic = topic_rows(str(tmp_path))
    assert sql == topic
    assert pg == topic
    assert [[seconds(t), v] for t, v in day7] == [[seconds(h["target_hour"]), h["value"]] for h in day["hours"]]
    day_ahead = {k for k, v in got.items() if json.loads(v)["day_ahead"]}
    assert day_ahead == {k for k in got if int(k.rsplit("/", 1)[1]) % 86_400_000_000 == 0}
    assert len(day_ahead) >= 2 * 14


def test_kill9_and_restart_neither_lose_nor_change_a_forecast(tmp_path):
    days = buoy_readings(20)
    run = MareRun(tmp_path, extra=EXTRA).start()
    post_days(run, days[:8])
    wait_latest(run, 1, max(h for _, h in closed_hours(days[:8])))
    time.sleep(2.5)  # a checkpoint, then more forecasts after it
    post_days(run, days[8:12])
    time.sleep(0.3)
    run.kill9()
    run = MareRun(tmp_path, extra=EXTRA).start()
    post_days(run, days[12:])
    wait_latest(run, 1, max(h for s, h in closed_hours(days) if s == 1))
    wait_latest(run, 2, max(h for s, h in closed_hours(days) if s == 2))
    sql = wait_sql_rows(run, 24 * len(expected_keys(days)))
    run.kill9()
    got = forecasts_by_key(str(tmp_path))
    assert set(got) == expected_keys(days)
    topic = topic_rows(str(tmp_path))
    assert sql == topic
    # Restarted after a kill -9, the store holds them at once (its journal), each row once.
    with MareRun(tmp_path, extra=EXTRA) as run:
        assert by_key(run.query_rows(f"SELECT {COLUMNS} FROM forecasts")) == topic
        assert pgwire_rows(run) == topic
    # `mare query --offline` reads the same journal.
    offline = mare("query", "--offline", "--data-dir", tmp_path, "--format", "csv", "SELECT count(*) FROM forecasts")
    assert int(offline.stdout.strip().splitlines()[-1]) == len(topic), offline.stdout


def test_a_new_processor_starts_with_the_stores_history(tmp_path):
    days = buoy_readings(17)
    with MareRun(tmp_path, extra=["forecast.enabled=false"]) as run:
        post_days(run, days[:16])
        deadline = time.time() + 30
        while run.metric("mare_store_memtable_rows") + (run.metric("mare_store_disk_rows") or 0) < sum(map(len, days[:16])):
            assert time.time() < deadline
            time.sleep(0.2)
    with MareRun(tmp_path, extra=EXTRA) as run:
        # The rollups of those days are in the topic, but the store gave their hours first: the
        # first forecasts are the new day's, with intervals from the start.
        post_days(run, days[16:])
        answer = wait_latest(run, 1, max(h for s, h in closed_hours(days) if s == 1))
        assert all(h["lower"] <= h["value"] <= h["upper"] for h in answer["hours"]), answer
        issued = run.metric("mare_forecast_forecasts_issued_total")
    new_hours = {(s, h) for s, h in closed_hours(days) if h > max(x for _, x in closed_hours(days[:16]))}
    # One per new closed hour, the first of them the hour the store was still filling.
    assert issued == len(new_hours)


def test_forecast_hour_in_mariadb_exactly_once_through_kill9(tmp_path):
    days = buoy_readings(12)
    data = tmp_path / "data"
    with MariaDB(tmp_path) as db:
        extra = EXTRA + ["sink.mariadb.enabled=true", f"sink.mariadb.port={db.port}"]
        run = MareRun(data, extra=extra).start()
        post_days(run, days[:6])
        wait_latest(run, 1, max(h for _, h in closed_hours(days[:6])))
        post_days(run, days[6:8])
        time.sleep(0.5)
        run.kill9()
        with MareRun(data, extra=extra) as run:
            post_days(run, days[8:])
            for sensor in (1, 2):
                wait_latest(run, sensor, max(h for s, h in closed_hours(days) if s == sensor))
            deadline = time.time() + 60
            expected = 24 * len(closed_hours(days))
            while int(db.query("SELECT COUNT(*) FROM forecast_hour")[0][0]) < expected:
                assert time.time() < deadline, db.query("SELECT COUNT(*) FROM forecast_hour")
                time.sleep(0.3)
        topic = {k: json.loads(v) for k, v in forecasts_by_key(str(data)).items()}
        rows = db.query("SELECT sensor_id, field, issued_at, target_hour, value, lower, upper, model, day_ahead "
                        "FROM forecast_hour")
        assert len(rows) == expected == 24 * len(topic)
        for sensor, field, issued_at, target_hour, value, lower, upper, model, day_ahead in rows:
            issued = calendar.timegm(datetime.datetime.fromisoformat(issued_at).timetuple())
            record = topic[f"{sensor}/{field}/{issued * 1_000_000}"]
            hour = record["hours"][(calendar.timegm(datetime.datetime.fromisoformat(target_hour).timetuple()) - issued) // HOUR]
            assert float(value) == hour["value"], (issued_at, target_hour)
            assert (lower == "NULL") == (hour["lower"] is None) and (upper == "NULL") == (hour["upper"] is None)
            if lower != "NULL":
                assert float(lower) == hour["lower"] and float(upper) == hour["upper"]
            assert model == "ensemble" and int(day_ahead) == record["day_ahead"]


def test_a_sensor_that_goes_quiet_still_gets_its_last_hours_forecast(tmp_path):
    """Issue 14: a forecast within 1 s of its hour closing. A buoy's last reading is 1 s before
    its hour's end, then nothing more arrives anywhere: no newer reading will move the rollups'
    watermark past the hour. The silence does (rollup.idle_watermark), once the rest of the hour
    and the lateness (3 s here) have passed, and the hour's forecast follows."""
    days = buoy_readings(2)
    sensor1 = [r for d in days for r in d if r["sensor_id"] == 1]
    end = (sensor1[-1]["timestamp"] // HOUR + 1) * HOUR
    quiet = [r for r in sensor1 if r["timestamp"] < end - HOUR] + [
        {"timestamp": end - HOUR + 1800, "sensor_id": 1, "temperature": 5.5},
        {"timestamp": end - 1, "sensor_id": 1, "temperature": 5.0},
    ]
    with MareRun(tmp_path, extra=EXTRA + ['rollup.lateness="3s"']) as run:
        post_days(run, [quiet])
        posted = time.time()
        answer = wait_latest(run, 1, end, timeout=30)
        assert time.time() - posted >= 3, "closed before the rest of the hour and the lateness had passed"
        assert answer["hours"][0]["target_hour"] == iso(end)
