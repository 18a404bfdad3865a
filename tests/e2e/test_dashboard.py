"""The dashboard in a real browser: Debian's Chromium, driven by playwright-core (from web/'s
npm ci) through test_dashboard.mjs, against a real `mare run` fed by `mare simulate` — three
hours of history over TCP, then live readings over UDP — and one station through the InfluxDB
line protocol's POST /write. The browser script reports what each
view showed; this file checks it against what the simulator sent and against the rollups
topic itself. Screenshots of every view go to $MARE_ARTIFACTS/dashboard (tests/artifacts/
by default). Chromium, Node and playwright-core are required: without them the test fails."""
import datetime
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

from harness import MARE, MareRun, free_port, log_records, mare, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(os.environ.get("MARE_ARTIFACTS", os.path.join(REPO, "tests/artifacts")), "dashboard")
SENSORS = 6
STEP = 5  # seconds between a sensor's readings in the history
HISTORY = 3 * 3600
SENSOR = 3  # the buoy the test opens
QUIET = 99  # a station without a position that reported once, three hours ago
FIELDS = ["humidity", "pressure", "temperature", "water_temperature", "wave_height"]
# Where the map must show land and sea when it opens on the simulated buoys (off Banyuls-sur-Mer,
# 42.48 N 3.13 E): just inland of the town, and the open sea by the buoys.
MAP_PLACES = [["inland of Banyuls-sur-Mer", 42.48, 3.10], ["sea off Banyuls-sur-Mer", 42.50, 3.18]]


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def query(m, sql):
    url = f"{m.http_url}/api/v1/query?" + urllib.parse.urlencode({"q": sql})
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def final_hourly_rollups(data_dir, sensor):
    """The newest revision of each closed hourly window of the sensor, from the rollups topic."""
    newest = {}
    for rec in log_records(data_dir, "rollups"):
        v = rec["value"]
        if v["sensor_id"] != sensor or v["resolution"] != "1h":
            continue
        key = (v["field"], epoch(v["window_start"]))
        if key not in newest or v["revision"] >= newest[key]["revision"]:
            newest[key] = v
    return {k: v for k, v in newest.items() if v["final"]}


def snapshot(m):
    with urllib.request.urlopen(f"{m.http_url}/api/v1/live/snapshot", timeout=10) as r:
        return {s["sensor_id"]: s for s in json.loads(r.read())["sensors"]}


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def test_dashboard(tmp_path):
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh installs it)"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    assert os.path.isdir(os.path.join(REPO, "web/node_modules/playwright-core")), \
        "web/node_modules/playwright-core is missing: the build runs npm ci in web/"

    now = int(time.time())
    start = now - HISTORY
    start -= start % STEP
    count = (now - 60 - start) // STEP + 1  # the history ends a minute before the live feed starts
    history_end = start + (count - 1) * STEP

    # The line protocol over TCP is on too, and nothing is sent through it: the pipeline view
    # lists it all the same. The measurement is dropped, so the quiet station's reading is the
    # same as JSON.
    m = MareRun(tmp_path / "data", extra=['sources.line_protocol.measurement_field=""', "sources.line_protocol.tcp=true",
                                          f'sources.line_protocol.tcp_listen="127.0.0.1:{free_port()}"'])
    m.start()
    live = None
    try:
        # First the quiet station (before the history, so that the rollups take it in time),
        # through the line protocol's POST /write.
        req = urllib.request.Request(f"{m.http_url}/write?precision=s", method="POST",
                                     data=f"station,sensor_id={QUIET} temperature=11.5 {start + 30}\n".encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 204, r.status
        mare("simulate", "--sensors", SENSORS, "--rate", 1 / STEP, "--seed", 7, "--start", iso(start), "--count", count,
             "--flat-out", "--target", f"tcp://127.0.0.1:{m.tcp_port}")
        history_sql = f"SELECT count(*) FROM readings WHERE sensor_id <= {SENSORS} AND ts <= TIMESTAMP '{iso(history_end)}'"
        wait_for(lambda: query(m, history_sql)["rows"][0][0] == SENSORS * count, 60, what="the history in the store")
        live = subprocess.Popen([MARE, "simulate", "--sensors", str(SENSORS), "--seed", "7",
                                 "--target", f"udp://127.0.0.1:{m.udp_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        live_sql = f"SELECT count(*) FROM readings WHERE ts > TIMESTAMP '{iso(history_end)}'"
        wait_for(lambda: query(m, live_sql)["rows"][0][0] >= 3 * SENSORS, 30, what="live readings in the store")
        # A reading of the opened buoy that is rejected: the overview counts it against the buoy.
        status, body = m.post(json.dumps({"timestamp": iso(time.time()), "sensor_id": SENSOR, "temperature": "warm"}))
        assert status == 200 and body["rejected"] == 1, body
        health = wait_for(lambda: (lambda s: s if s[SENSOR]["rejects"] == 1 else None)(snapshot(m)),
                          15, what="the reject in the snapshot")
        assert health[QUIET]["health"] == "stale" and health[QUIET]["position"] is None, health[QUIET]
        assert sum(s["faults_1h"] or 0 for s in health.values()) > 0, "the simulator's faults are counted"
        # The live feed moves the watermark (newest event time minus 10 min) past the history's
        # hours: wait until the rollups have closed them.
        wait_for(lambda: (m.metric("mare_rollup_watermark_seconds") or 0) >= now - 600 - 5,
                 30, what="the rollups' watermark")
        time.sleep(2.5)
        expected_rollups = final_hourly_rollups(m.data_dir, SENSOR)
        # The closed hours gave the buoy a forecast of its temperature.
        wait_for(lambda: get_forecast(m, SENSOR), 30, what="the buoy's forecast")
        assert len(expected_rollups) >= 2 * len(FIELDS), expected_rollups.keys()

        cfg = {
            "url": m.http_url,
            "chromium": CHROMIUM,
            "artifacts": ARTIFACTS,
            "sensors": SENSORS,
            "rows": SENSORS + 1,
            "sensor": SENSOR,
            "advanceWaitMs": 4000,
            "mapPlaces": MAP_PLACES,
            "sql": {
                "known": "SELECT sensor_id, count(*) AS readings, min(ts) AS first, max(ts) AS last FROM readings\n"
                         f"WHERE sensor_id <= {SENSORS} AND ts <= TIMESTAMP '{iso(history_end)}'\nGROUP BY sensor_id ORDER BY sensor_id",
                "chart": "SELECT time_bucket('10m', ts) AS t, sensor_id, avg(temperature) AS temperature\n"
                         "FROM readings GROUP BY t, sensor_id ORDER BY t",
                "invalid": "SELECT temprature FROM readings",
            },
            "stats": {"from": iso(start)[:10], "to": iso(time.time())[:10]},
        }
        began = time.time()
        seen = browse(node, tmp_path, cfg)
        print(f"browser: {time.time() - began:.1f} s")
    finally:
        if live is not None:
            live.terminate()
            live.wait(timeout=15)
        rc = m.stop()
    assert rc == 0, f"mare run exited with {rc}:\n{m.read_output()}"

    # Overview: one marker per simulated buoy, one row per sensor (the quiet station has no
    # position, so no marker), each sensor's health, the live stream connected.
    assert seen["overview"]["markers"] == list(range(1, SENSORS + 1))
    assert sorted(seen["overview"]["rows"]) == list(range(1, SENSORS + 1)) + [QUIET]
    shown = dict(zip(seen["overview"]["rows"], seen["overview"]["health"]))
    assert shown[QUIET] == "stale", shown
    assert shown[SENSOR] == "1 rejected" or shown[SENSOR].startswith("fault: "), shown
    assert seen["overview"]["live"] == "live"
    # The map opens on the buoys (at their zoom, not the world's) with the coast beside them:
    # land and sea both in view, the land just inland of Banyuls-sur-Mer and the sea off it.
    shown = seen["map"]
    assert shown["zoom"] >= 10, shown
    assert shown["land"] >= 0.05 and shown["water"] >= 0.2, shown
    assert shown["places"]["inland of Banyuls-sur-Mer"] == "land", shown
    assert shown["places"]["sea off Banyuls-sur-Mer"] in ("water", "line"), shown  # a buoy's track may cross it
    assert seen["opened"].startswith(f"#/sensor/{SENSOR}")

    # Sensor view: a chart per field with points that advance; the minute between the history
    # and the live feed is drawn as a gap; the day view shows the hourly band.
    sensor = seen["sensor"]
    assert sensor["charts"] == FIELDS
    assert sensor["canvases"] >= len(FIELDS)
    assert sensor["before"]["points"] > 0
    assert sensor["after"]["last"] > sensor["before"]["last"], sensor
    assert sensor["after"]["points"] > sensor["before"]["points"], sensor
    assert sensor["before"]["gaps"] >= 1, sensor
    assert sensor["day"]["points"] > 0 and sensor["day"]["bandHours"] >= 3, sensor
    # Every y axis is wide enough for its labels, whatever the field's magnitude: the leftmost
    # ink of the labels is inside the chart, not cut at its left edge (pressure's "1,006.95"
    # was drawn as ",006.95"); in the hour, zoomed in (labels with more digits) and the day.
    for view, charts in seen["axisInk"].items():
        assert [c["field"] for c in charts] == FIELDS, (view, charts)
        for c in charts:
            assert c["leftInk"] is not None and c["leftInk"] >= 2, (view, c)
        # and a sensor's charts, stacked, share one axis width: their time axes line up.
        assert len({c["axis"] for c in charts}) == 1, (view, charts)
    zoom = seen["zoom"]
    assert 3500 < zoom["full"] < 3700, zoom  # the last hour, in seconds
    assert zoom["zoomed"] < 0.9 * zoom["full"] and abs(zoom["other"] - zoom["zoomed"]) < 1e-6, zoom
    assert abs(zoom["reset"] - zoom["full"]) < 60, zoom

    # The day view's temperature chart continues with the latest forecast the browser asked
    # for, as the forecasts topic holds it, drawn to the end of its last hour (a day past now);
    # no other field has one (forecast.fields is temperature).
    fc = seen["forecast"]
    issued_us = int(epoch(fc["issued"]) * 1_000_000)
    records = {r["key"]: r["value"] for r in log_records(m.data_dir, "forecasts")}
    record = records[f"{SENSOR}/temperature/{issued_us}"]
    assert fc["hours"] == len(record["hours"]) == 24, fc
    assert fc["values"] == [h["value"] for h in record["hours"]], (fc, record)
    assert any(v is not None for v in fc["values"]), fc
    assert fc["intervalHours"] == sum(h["lower"] is not None and h["upper"] is not None for h in record["hours"])
    assert fc["xMax"] == epoch(record["hours"][-1]["target_hour"]) + 3600, fc
    assert fc["now"] + 22 * 3600 < fc["xMax"] <= fc["now"] + 25 * 3600, fc
    assert fc["otherCharts"] == ["temperature"], fc
    assert {"forecast", "forecast 10 %", "forecast 90 %"} <= set(fc["legend"]), fc["legend"]
    assert "forecast issued" in fc["info"], fc["info"]

    # SQL console: the right rows for a known statement, the error of a bad one at its place.
    assert seen["sql"]["columns"] == ["sensor_id", "readings", "first", "last"]
    assert seen["sql"]["rows"] == [[str(s), str(count), iso(start), iso(history_end)] for s in range(1, SENSORS + 1)]
    assert seen["sql"]["chartSeries"] == SENSORS + 1  # and the quiet station
    csv_lines = seen["sqlCsv"].splitlines()
    assert csv_lines[0] == "sensor_id,readings,first,last"
    assert csv_lines[1:] == [",".join(row) for row in seen["sql"]["rows"]]
    err = seen["sqlError"]
    assert "line 1, column 8" in err["message"] and "temprature" in err["message"], err
    assert (err["markLine"], err["markColumn"], err["markText"], err["selection"]) == (1, 8, "temprature", 7), err
    assert err["caret"].splitlines()[1].index("^") - err["caret"].splitlines()[0].index("SELECT") == 7, err["caret"]

    # Stats: every closed hourly window of the rollups topic, equal in the table.
    table = {}
    for row in seen["stats"]:
        assert row["sensor_id"] == str(SENSOR), row
        table[(row["field"], epoch(row["window_start"]))] = row
    for key, r in sorted(expected_rollups.items()):
        assert key in table, f"rollup window {key} is not in the stats table"
        t = table[key]
        assert not t["open"], f"{key} is closed in the rollups but shown open"
        assert int(t["count"]) == r["count"], (key, t, r)
        for col in ("min", "max", "first", "last"):
            assert float(t[col]) == r[col], (key, col, t, r)
        assert close(float(t["mean"]), r["mean"]), (key, t, r)
        assert close(float(t["stddev"]), r["stddev"]), (key, t, r)
    assert seen["statsSortedMax"] == sorted(seen["statsSortedMax"]), "sorting by max"
    csv = seen["statsCsv"]
    assert csv["name"].endswith(".csv"), csv["name"]
    lines = csv["text"].splitlines()
    assert lines[0] == "sensor_id,window_start,field,count,min,max,mean,stddev,first,last"
    assert len(lines) == 1 + len(seen["stats"])
    by_key = {(l.split(",")[2], epoch(l.split(",")[1])): l.split(",") for l in lines[1:]}
    for key, r in expected_rollups.items():
        assert int(by_key[key][3]) == r["count"] and float(by_key[key][4]) == r["min"], (key, by_key[key], r)

    # Pipeline health.
    pipeline = seen["pipeline"]
    assert "readings/s" in pipeline["rate"]
    assert {"rollup", "store"} <= set(pipeline["lags"])
    assert {"raw", "rollups"} <= set(pipeline["topics"])
    # Every source that is on, with its counts: the history over TCP, the live feed over UDP,
    # the quiet station through the line protocol's /write, and the line protocol's TCP port,
    # on but unused.
    assert pipeline["sourceHeaders"] == ["source", "received", "accepted", "rejected", "accepted /s", "rejected /s",
                                         "connections"], pipeline["sourceHeaders"]
    sources = {row[0]: dict(zip(pipeline["sourceHeaders"], row)) for row in pipeline["sources"]}
    assert set(sources) == {"tcp", "udp", "unix", "http", "line_http", "line_tcp"}, sources
    count_of = lambda source, column: float(sources[source][column].replace(",", ""))
    assert count_of("tcp", "accepted") == SENSORS * count
    assert count_of("udp", "accepted") > 0 and count_of("udp", "accepted /s") > 0, sources["udp"]
    assert count_of("line_http", "accepted") == 1 and count_of("line_http", "received") == 1, sources["line_http"]
    assert count_of("http", "rejected") == 1, sources["http"]
    assert count_of("line_tcp", "received") == 0 and count_of("line_tcp", "connections") == 0, sources["line_tcp"]
    assert pipeline["sinks"][0][:2] == ["mariadb", "disabled"]

    # No errors in the browser's console. The one expected: the HTTP 400 answering the bad
    # statement, which Chromium itself logs as a failed resource load.
    errors = [e for e in seen["errors"] if not ("status of 400" in e and "/api/v1/query" in e)]
    assert errors == [], errors
    assert len(seen["errors"]) - len(errors) <= 1, seen["errors"]

    for path in seen["screenshots"]:
        assert os.path.getsize(path) > 10_000, path
    assert len(seen["screenshots"]) == 7


def get_forecast(m, sensor):
    """The sensor's latest forecast from the API, or None while it has none ("forecast": null)."""
    with urllib.request.urlopen(f"{m.http_url}/api/v1/forecast?sensor_id={sensor}", timeout=10) as r:
        body = json.loads(r.read())
    return body if "hours" in body else None


def browse(node, tmp_path, cfg):
    """Runs the browser script with this config; returns what it saw."""
    cfg_path = tmp_path / "dashboard.json"
    cfg_path.write_text(json.dumps(cfg))
    p = subprocess.run([node, os.path.join(os.path.dirname(__file__), "test_dashboard.mjs"), str(cfg_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"the browser script failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert "failure" not in seen, f"in the browser, at {seen['failure']}\nerrors: {seen['errors']}"
    return seen


def test_map_of_a_buoy_far_offshore(tmp_path):
    """One buoy 35 km off the coast, alone: around it at the buoys' zoom there is only water, so
    the map reaches to the nearest shore instead of opening on an empty sea."""
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh installs it)"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    buoy = {"lat": 42.60, "lon": 3.45}
    with MareRun(tmp_path / "data") as m:
        status, body = m.post(json.dumps({"timestamp": iso(time.time()), "sensor_id": 1, "temperature": 14.5,
                                          "location": buoy}))
        assert status == 200 and body["accepted"] == 1, body
        wait_for(lambda: (snapshot(m).get(1) or {}).get("position"), 15, what="the buoy in the snapshot")
        seen = browse(node, tmp_path, {
            "url": m.http_url, "chromium": CHROMIUM, "artifacts": ARTIFACTS, "sensors": 1, "rows": 1,
            "mapOnly": "overview-offshore",
            "mapPlaces": [["the buoy", buoy["lat"], buoy["lon"]], ["the plain behind Argelès-sur-Mer", 42.58, 3.00]],
        })
    shown = seen["map"]
    assert shown["zoom"] >= 8, shown  # still near the buoy, not the whole gulf
    assert shown["land"] >= 0.05 and shown["water"] >= 0.2, shown
    assert shown["places"]["the plain behind Argelès-sur-Mer"] == "land", shown
    assert shown["places"]["the buoy"] in ("water", "line"), shown
    assert seen["errors"] == [], seen["errors"]


def test_forecast_with_its_interval_on_the_sensor_chart(tmp_path):
    """A month of simulated buoys (one reading per 100 s, ending now): the forecasts have their
    80 % intervals, and the day view's temperature chart draws the latest forecast and its band
    past now, as the API answers it."""
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh installs it)"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    sensor = 2
    with MareRun(tmp_path / "data") as m:
        mare("simulate", "--sensors", 3, "--rate", 0.01, "--count", 31 * 864, "--flat-out", "--batch", 5000,
             "--target", f"{m.http_url}/api/v1/ingest")
        newest = time.time() - 200
        expected = int(newest // 3600 * 3600 - 3600) * 1_000_000  # the issue of the hour before the newest
        wait_for(lambda: (lambda f: f if f and int(epoch(f["issued_at"]) * 1_000_000) >= expected
                          and f["hours"][0]["lower"] is not None else None)(get_forecast(m, sensor)),
                 60, what="a forecast with its interval")
        seen = browse(node, tmp_path, {"url": m.http_url, "chromium": CHROMIUM, "artifacts": ARTIFACTS,
                                       "sensor": sensor, "forecastOnly": "sensor-24h-forecast"})
        records = {r["key"]: r["value"] for r in log_records(m.data_dir, "forecasts")}
        with urllib.request.urlopen(f"{m.http_url}/api/v1/forecast/skill?sensor_id={sensor}", timeout=10) as r:
            skill = json.load(r)
    fc = seen["forecast"]
    record = records[f"{sensor}/temperature/{int(epoch(fc['issued']) * 1_000_000)}"]
    assert fc["values"] == [h["value"] for h in record["hours"]] and fc["hours"] == 24, (fc, record)
    assert fc["intervalHours"] == 24 == sum(h["lower"] is not None for h in record["hours"]), fc
    assert fc["xMax"] == epoch(record["hours"][-1]["target_hour"]) + 3600, fc
    assert fc["bandPixels"] > 1000, fc
    # The Stats view lists the sensor's forecast models as the API judges them: names, the MAE
    # and skill of each over the day-ahead forecasts of the last 30 days, and the one in use.
    shown = {row["model"]: row for row in seen["skill"]}
    assert list(shown) == [m["model"] for m in skill["models"]], (shown, skill)
    assert {"persistence", "last_value", "holt_winters", "ridge", "ensemble"} <= set(shown), shown
    assert [name for name, row in shown.items() if row["inUse"]] == ["ensemble"] == [skill["in_use"]], shown
    for m in skill["models"]:
        assert m["hours"] > 24 * 5, m  # a month of simulated readings: weeks of judged day-ahead hours
        assert m["mae"] > 0, m
        cells = shown[m["model"]]["cells"]
        assert abs(float(cells[1]) - m["mae"]) <= 0.0005 + 1e-9, (cells, m)  # shown to 3 decimals
        assert abs(float(cells[2]) - m["skill"]) <= 0.0005 + 1e-9, (cells, m)
    assert shown["persistence"]["cells"][2] == "0", shown["persistence"]
    assert "in use" in shown["ensemble"]["cells"], shown["ensemble"]
    assert f"Sensor {sensor} temperature" in seen["skillInfo"], seen["skillInfo"]
    assert seen["errors"] == [], seen["errors"]


def test_the_dashboard_asks_for_a_token_when_mare_has_tokens(tmp_path):
    """With [[http.tokens]], the page loads, asks for a token (a prompt over the view, no data),
    says when one is refused, and with a token of scope `query` draws the charts and goes live."""
    import hashlib
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh installs it)"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    web, buoys = "dashboard-token-7", "buoys-token-8"
    tokens = ", ".join(f'{{name = "{n}", scopes = ["{s}"], sha256 = "{hashlib.sha256(t.encode()).hexdigest()}"}}'
                       for n, s, t in [("web", "query", web), ("buoys", "ingest", buoys)])
    now = int(time.time())
    body = "\n".join(json.dumps({"timestamp": iso(now - 1800 + 60 * i), "sensor_id": 1, "temperature": 14 + i / 10,
                                 "location": {"lat": 42.5, "lon": 3.15}}) for i in range(30)).encode()
    with MareRun(tmp_path / "data", extra=[f"http.tokens=[{tokens}]"]) as m:
        req = urllib.request.Request(f"{m.http_url}/api/v1/ingest", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {buoys}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["accepted"] == 30

        def stored():
            req = urllib.request.Request(f"{m.http_url}/api/v1/query?" + urllib.parse.urlencode({"q": "SELECT count(*) FROM readings"}),
                                         headers={"Authorization": f"Bearer {web}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())["rows"][0][0] == 30
        wait_for(stored, 20, what="the readings in the store")
        seen = browse(node, tmp_path, {"url": m.http_url, "chromium": CHROMIUM, "artifacts": ARTIFACTS, "sensor": 1,
                                       "tokenOnly": "sensor-after-token", "token": web, "wrongToken": buoys})
    shown = seen["token"]
    assert all(p == 0 for p in shown["pointsBefore"]), shown  # nothing drawn before the token
    assert shown["refusedShown"] and shown["promptGone"] and shown["stored"] == web, shown
    assert shown["points"] == 30 and shown["live"] == "live", shown
    # The browser reports each refused request (401, and 403 for the ingest token) as a console error.
    assert [e for e in seen["errors"] if "401" not in e and "403" not in e] == [], seen["errors"]
