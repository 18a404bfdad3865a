"""`mare import mysql://...` against a real MariaDB: a legacy table (fields as columns, a DATETIME,
a station name, a JSON column) streamed into the store, killed halfway and resumed, with one
copy of every reading at the end; other column names mapped by flags."""
import os
import signal
import subprocess
import time

import pytest

from harness import MARE, mare
from mariadb_server import MariaDB

STATIONS = 5
MINUTES = 100_000  # readings per station: 500,000 rows


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    with MariaDB(tmp_path_factory.mktemp("mysql-import")) as server:
        server.query("CREATE DATABASE observatory", database="mysql")
        server.query("""CREATE TABLE legacy (
            id INT AUTO_INCREMENT PRIMARY KEY, station VARCHAR(32) NOT NULL, sensor_id INT NOT NULL,
            recorded_at DATETIME(6), temperature DECIMAL(5,2), humidity DOUBLE NULL, latitude DOUBLE, longitude DOUBLE,
            extra JSON, KEY (recorded_at))""", database="observatory")
        server.query(f"""INSERT INTO legacy (station, sensor_id, recorded_at, temperature, humidity, latitude, longitude, extra)
            SELECT CONCAT('station-', s.seq), s.seq, TIMESTAMP '2023-01-01 00:00:00' + INTERVAL m.seq MINUTE,
                   10 + (m.seq % 100) / 10, IF(m.seq % 7 = 0, NULL, 50 + s.seq), 42.5 + s.seq / 100, 3.1,
                   JSON_OBJECT('wind_speed', m.seq % 13)
            FROM seq_1_to_{STATIONS} s, seq_0_to_{MINUTES - 1} m""", database="observatory")
        yield server


def query(data, sql):
    p = mare("query", "--offline", "--data-dir", data, "--format", "csv", sql)
    return [line.split(",") for line in p.stdout.splitlines()[1:]]


def expected_totals():
    temperature = sum(10 + (m % 100) / 10 for m in range(MINUTES)) * STATIONS
    humidity_count = sum(1 for m in range(MINUTES) if m % 7) * STATIONS
    wind = sum(m % 13 for m in range(MINUTES)) * STATIONS
    return temperature, humidity_count, wind


def test_a_legacy_table_interrupted_and_resumed_is_stored_once(db, tmp_path):
    data = tmp_path / "data"
    url = f"mysql://root@127.0.0.1:{db.port}/observatory/legacy"
    position = data / "import" / f"127.0.0.1_{db.port}_observatory_legacy.position"
    p = subprocess.Popen([MARE, "import", url, "--ts-column", "recorded_at", "--json-column", "extra", "--data-dir", str(data), "--flush-rows", "5000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not position.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    out, err = p.communicate()
    assert p.returncode == -signal.SIGKILL, f"the import ended before it could be interrupted:\n{err}"
    stored_through = [l for l in position.read_text().splitlines() if l.startswith("stored_through = ")][0].split(" = ")[1]
    assert stored_through.startswith("2023-"), position.read_text()

    p = mare("import", url, "--ts-column", "recorded_at", "--json-column", "extra", "--data-dir", data, "--flush-rows", "50000")
    assert f"resuming {url} from {stored_through}" in p.stderr, p.stderr
    resumed = int(p.stderr.split(" readings from ")[0].split()[-1])
    assert 0 < resumed < STATIONS * MINUTES, p.stderr

    temperature, humidity_count, wind = expected_totals()
    rows = query(data, "SELECT count(*), sum(temperature), count(humidity), sum(wind_speed), count(station), count(lat) FROM readings")
    count, t, h, w, s, lat = rows[0]
    assert int(count) == STATIONS * MINUTES, "one copy of every row, the rows read twice included"
    assert abs(float(t) - temperature) < 1e-6 * temperature
    assert (int(h), float(w), int(s), int(lat)) == (humidity_count, wind, STATIONS * MINUTES, STATIONS * MINUTES)
    rows = query(data, "SELECT station, min(ts), max(ts), max(lat) FROM readings WHERE sensor_id = 3 GROUP BY station")
    assert rows == [["station-3", "2023-01-01T00:00:00Z", "2023-03-11T10:39:00Z", "42.53"]], rows

    # Run again: only rows from the position on are read, and nothing is counted twice.
    p = mare("import", url, "--ts-column", "recorded_at", "--json-column", "extra", "--data-dir", data)
    assert "resuming" in p.stderr and f"{STATIONS} readings from {url}" in p.stderr, p.stderr
    assert query(data, "SELECT count(*) FROM readings") == [[str(STATIONS * MINUTES)]]


def test_columns_named_otherwise_are_mapped_by_flags_and_bad_rows_skipped(db, tmp_path):
    db.query("""CREATE TABLE station_log (obs_time DATETIME, lat_deg DOUBLE, lon_deg DOUBLE, `Air Temp (C)` FLOAT, remark TEXT)""",
             database="observatory")
    db.query("""INSERT INTO station_log VALUES ('2024-05-01 08:00:00', 42.48, 3.18, 18.5, 'calm'),
                ('2024-05-01 09:00:00', 42.48, 3.18, 19.25, NULL), (NULL, 42.48, 3.18, 20, 'no time'),
                ('1900-01-01 01:00:00', 42.48, 3.18, 21, 'before 1900 in UTC')""", database="observatory")
    data = tmp_path / "data"
    url = f"mysql://root@127.0.0.1:{db.port}/observatory/station_log"
    p = mare("import", url, "--data-dir", data, "--ts-column", "obs_time", "--sensor-id", "77", "--lat", "lat_deg",
             "--lon", "lon_deg", "--utc-offset", "+02:00", check=False)
    assert p.returncode == 1, "a skipped row makes the exit code 1"
    assert "row 1: no obs_time" in p.stderr, p.stderr  # NULL sorts first
    # The years are checked on the UTC time, --utc-offset applied, as for a CSV file.
    assert "row 2: obs_time: '1900-01-01 01:00:00' is 1899-12-31 23:00:00 UTC, outside the years 1900 to 9999" in p.stderr, p.stderr
    rows = query(data, "SELECT sensor_id, ts, air_temp_c, remark, lat FROM readings ORDER BY ts")
    assert rows == [["77", "2024-05-01T06:00:00Z", "18.5", "calm", "42.48"], ["77", "2024-05-01T07:00:00Z", "19.25", "", "42.48"]], rows

    p = mare("import", f"mysql://root:secret@127.0.0.1:{db.port}/observatory/legacy", "--data-dir", data, check=False)
    assert p.returncode == 2 and "MARE_MYSQL_PASSWORD" in p.stderr, p.stderr
    p = mare("import", url, "--data-dir", data, "--ts-column", "nope", check=False)
    assert p.returncode == 1 and "records a position in column obs_time, not nope: use --from-start" in p.stderr, p.stderr
    p = mare("import", url, "--data-dir", data, "--ts-column", "nope", "--from-start", check=False)
    assert p.returncode == 1 and "no column 'nope' for the time" in p.stderr, p.stderr
