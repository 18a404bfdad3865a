"""Replaying the real NDBC archive yields one reading per row, with missing values absent."""
import os
import time

from harness import TEST_DATA, MareRun, log_records, mare

NDBC = os.path.join(TEST_DATA, "ndbc_44005_2012.txt")


def rows():
    with open(NDBC) as f:
        lines = [l.split() for l in f.read().splitlines() if l.strip()]
    header, body = lines[0], lines[1:]
    return [dict(zip(header, r)) for r in body]


def test_replay_real_ndbc_file(tmp_path):
    expected = rows()
    assert len(expected) == 8347
    run = MareRun(tmp_path / "data")
    with run:
        p = mare("replay", NDBC, "--target", f"tcp://127.0.0.1:{run.tcp_port}")
        assert "sent 8347 readings" in p.stderr
        for _ in range(200):
            if run.metric('mare_source_readings_accepted_total{source="tcp"}') == 8347:
                break
            time.sleep(0.05)
        assert run.metric('mare_source_readings_accepted_total{source="tcp"}') == 8347
    values = [r["value"] for r in log_records(run.data_dir)]
    assert len(values) == 8347
    assert all(r["sensor_id"] == 44005 for r in values)
    # Never-measured columns are absent everywhere, never 99/999 numbers.
    for field in ("mean_wave_direction", "visibility", "tide"):
        assert not any(field in v for v in values)
    # Each partly-missing column: absent exactly where the file holds its missing code.
    for column, field, code in [("PRES", "pressure", "9999.0"), ("WVHT", "wave_height", "99.00"),
                                ("WSPD", "wind_speed", "99.0"), ("DEWP", "dew_point", "999.0"), ("ATMP", "temperature", "999.0")]:
        missing_in_file = sum(1 for r in expected if r[column] == code)
        absent = sum(1 for v in values if field not in v)
        assert absent == missing_in_file, f"{field}: {absent} readings without it, {missing_in_file} rows with {code}"
        assert all(v[field] < float(code) for v in values if field in v)
    # The file itself (its README says 22 rows miss pressure; the file has 3 such rows).
    assert sum(1 for r in expected if r["PRES"] == "9999.0") == 3
    assert sum(1 for r in expected if r["DEWP"] == "999.0") == 4
    first = min(values, key=lambda v: v["timestamp"])
    assert first["timestamp"].startswith("2011-12-31 23:50:00")
    assert first["pressure"] == 1008.1 and first["temperature"] == 6.8 and first["water_temperature"] == 8.1
