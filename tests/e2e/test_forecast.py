"""`mare forecast backtest` on slices of real series from tests/data, checked against the
same rolling-origin evaluation computed here independently with numpy: the naive baselines'
MAE, RMSE, bias and skills, and their 80 % intervals' coverage from out-of-sample residuals."""
import calendar
import csv
import io
import json
import math
import os
import subprocess
import time

import numpy as np

from harness import MARE, TEST_DATA

HOUR = 3600


def ndbc_rows(path, days):
    """(UTC epoch seconds, ATMP) of the first `days` days of an NDBC file; 999.0 is missing."""
    rows, first = [], None
    with open(path) as f:
        for line in f:
            if line.startswith(("#", "YY")):
                continue
            t = line.split()
            ts = calendar.timegm(tuple(int(x) for x in t[:5]) + (0,))
            first = first if first is not None else ts
            if ts >= first + days * 86400:
                break
            rows.append((ts, None if float(t[13]) >= 999 else float(t[13])))
    return rows


def beijing_rows(path, days, offset_hours):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            t = line.strip().split(",")
            ts = calendar.timegm((int(t[1]), int(t[2]), int(t[3]), int(t[4]), 0, 0)) - offset_hours * HOUR
            rows.append((ts, float(t[7])))
            if len(rows) >= days * 24:
                break
    return rows


def hourly(rows):
    """Mean per UTC hour: (first hour since the epoch, values with NaN for missing hours)."""
    hours = np.array([ts // HOUR for ts, v in rows if v is not None])
    values = np.array([v for ts, v in rows if v is not None])
    first = hours.min()
    sums = np.zeros(hours.max() - first + 1)
    counts = np.zeros_like(sums)
    np.add.at(sums, hours - first, values)
    np.add.at(counts, hours - first, 1)
    y = np.full_like(sums, np.nan)
    y[counts > 0] = sums[counts > 0] / counts[counts > 0]
    return int(first), y


def naive_backtest(first, y, min_days=7, window=56, pool=2, min_errors=20):
    """The three baselines, issued 00:00 UTC for the next 24 h, each day from the hours before it."""
    at = lambda h: y[h - first] if first <= h < first + len(y) else np.nan  # noqa: E731
    first_day = -(-(first + 24 * min_days) // 24)
    end_day = -(-(first + len(y)) // 24)
    models = ["persistence", "last_value", "climatology_7d"]
    errors = {m: [] for m in models}        # judged: forecast - actual
    covered = {m: [0, 0] for m in models}   # inside, with an interval
    book = {m: [] for m in models}          # (origin, lead, actual - forecast)
    days = 0
    for day in range(first_day, end_day):
        o = day * 24
        past = [at(h) for h in range(o - 168, o)]
        present = [v for v in past if not np.isnan(v)]
        last = present[-1] if present else np.nan
        forecasts = {m: [] for m in models}
        for lead in range(1, 25):
            t = o + lead - 1
            p = at(t - 24)
            forecasts["persistence"].append(last if np.isnan(p) else p)
            forecasts["last_value"].append(last)
            same = [at(t - 24 * k) for k in range(1, 8)]
            same = [v for v in same if not np.isnan(v)]
            forecasts["climatology_7d"].append(np.mean(same) if same else last)
        judged = False
        for lead in range(1, 25):
            actual = at(o + lead - 1)
            if np.isnan(actual) or np.isnan(last):
                continue
            judged = True
            for m in models:
                f = forecasts[m][lead - 1]
                errors[m].append(f - actual)
                past_errors = [e for (oo, ll, e) in book[m] if o - 24 * window <= oo < o and abs(ll - lead) <= pool]
                if len(past_errors) >= min_errors:
                    lo, hi = np.quantile(past_errors, [0.1, 0.9])
                    covered[m][1] += 1
                    covered[m][0] += f + lo <= actual <= f + hi
        for lead in range(1, 25):
            actual = at(o + lead - 1)
            if not np.isnan(actual):
                for m in models:
                    book[m].append((o, lead, actual - forecasts[m][lead - 1]))
        days += judged
    out = {}
    for m in models:
        e = np.array(errors[m])
        out[m] = {"hours": len(e), "mae": np.mean(np.abs(e)), "rmse": math.sqrt(np.mean(e * e)), "bias": np.mean(e),
                  "coverage": covered[m][0] / covered[m][1], "interval_hours": covered[m][1]}
    best = min(models, key=lambda m: out[m]["mae"])
    for m in models:
        out[m]["skill_persistence"] = 1 - out[m]["mae"] / out["persistence"]["mae"]
        out[m]["skill_best_naive"] = 1 - out[m]["mae"] / out[best]["mae"]
    return first_day * 24, days, best, out


def backtest(path, *args):
    run = subprocess.run([MARE, "forecast", "backtest", path, "--format", "json", *args], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr


def write_slice(tmp_path, name, source, keep):
    path = os.path.join(tmp_path, name)
    with open(source) as f, open(path, "w") as out:
        out.writelines(line for i, line in enumerate(f) if keep(i, line))
    return path


def check_against_numpy(series, first_origin, days, best, expected):
    assert series["first_origin"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(first_origin * HOUR))
    assert series["days"] == days
    assert series["best_naive"] == best
    models = {m["model"]: m for m in series["models"]}
    assert list(models) == ["persistence", "last_value", "climatology_7d", "holt_winters", "ridge", "ensemble"]
    for name, want in expected.items():
        got = models[name]
        for key in ("hours", "interval_hours"):
            assert got[key] == want[key], (name, key)
        for key in ("mae", "rmse", "bias", "skill_persistence", "skill_best_naive", "coverage"):
            assert math.isclose(got[key], want[key], rel_tol=1e-9, abs_tol=1e-12), (name, key, got[key], want[key])
    for m in series["models"]:  # every model is judged on the same hours
        assert m["hours"] == expected["persistence"]["hours"]
        assert 0 < m["mae"] < 10


def test_buoy_slice_matches_numpy(tmp_path):
    # The first 75 days of 44005 in 2012: gaps, missing values, the winter's fronts.
    rows = ndbc_rows(os.path.join(TEST_DATA, "ndbc_44005_2012.txt"), 75)
    path = write_slice(str(tmp_path), "ndbc_44005_2012.txt", os.path.join(TEST_DATA, "ndbc_44005_2012.txt"),
                       lambda i, line: i < len(rows) + 1)
    out, stderr = backtest(path)
    assert "day " in stderr  # progress
    [series] = out["series"]
    assert series["sensor_id"] == 44005 and series["field"] == "temperature"
    assert series["covariates"] == ["dew_point", "water_temperature", "pressure"]
    first, y = hourly(rows)
    check_against_numpy(series, *naive_backtest(first, y))


def test_land_station_in_local_time(tmp_path):
    # 40 days of Beijing, whose times are local (UTC+8): 00:00 UTC is 08:00 there.
    source = os.path.join(TEST_DATA, "beijing_airport_2010_2014.csv")
    path = write_slice(str(tmp_path), "beijing.csv", source, lambda i, line: i <= 40 * 24)
    out, _ = backtest(path, "--field", "temp", "--utc-offset", "+08:00")
    [series] = out["series"]
    # The wind's direction class (cbwd, text) comes as one share per class, in byte order.
    assert series["covariates"] == ["dewp", "pres", "iws", "cbwd=NE", "cbwd=NW", "cbwd=SE", "cbwd=cv"]
    first, y = hourly(beijing_rows(source, 40, 8))
    check_against_numpy(series, *naive_backtest(first, y))
    # Read as UTC, the same file gives other days and other answers: the offset is applied.
    naive_utc, _ = backtest(path, "--field", "temp")
    assert naive_utc["series"][0]["models"][1]["mae"] != series["models"][1]["mae"]
    first, y = hourly(beijing_rows(source, 40, 0))
    check_against_numpy(naive_utc["series"][0], *naive_backtest(first, y))


def test_csv_and_table_agree_with_json(tmp_path):
    path = write_slice(str(tmp_path), "ndbc_42040_2015.txt", os.path.join(TEST_DATA, "ndbc_42040_2015.txt"),
                       lambda i, line: i < 2 + 24 * 30)
    out, _ = backtest(path, "--quiet", "--covariates", "none")
    series = out["series"][0]
    assert series["covariates"] == []
    run = subprocess.run([MARE, "forecast", "backtest", path, "--format", "csv", "--quiet", "--covariates", "none"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == ""
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [r["model"] for r in rows] == [m["model"] for m in series["models"]]
    for r, m in zip(rows, series["models"]):
        assert r["sensor_id"] == "42040" and int(r["hours"]) == m["hours"]
        for key in ("mae", "rmse", "bias", "coverage"):
            assert math.isclose(float(r[key]), m[key], rel_tol=1e-12)
    table = subprocess.run([MARE, "forecast", "backtest", path, "--quiet", "--covariates", "none"], capture_output=True,
                           text=True, timeout=300)
    assert table.returncode == 0
    assert "best naive: " + series["best_naive"] in table.stdout
    assert f"{series['models'][-1]['mae']:.3f}" in table.stdout


def test_a_missing_field_is_an_error_naming_the_fields():
    run = subprocess.run([MARE, "forecast", "backtest", os.path.join(TEST_DATA, "ndbc_44005_2012.txt"), "--field",
                          "salinity"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "no field 'salinity'" in run.stderr and "water_temperature" in run.stderr
