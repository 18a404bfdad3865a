"""notebooks/buoys.ipynb runs top to bottom, as a scientist would run it, against a real `mare
run` fed a month of 10 simulated buoys (`mare simulate --flat-out`) with its forecasts made:
nbclient executes every cell in a fresh ipykernel and any cell error fails the test. Then what
the notebook showed is checked against the server and the Parquet file it wrote: the day's table
has its 24 hours, their min/mean/max are those of the exported readings, every plot was drawn,
and the export has every reading of the month. The committed notebook has no outputs."""
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

import nbformat
import pandas as pd
import pyarrow.parquet as pq
from nbclient import NotebookClient

from harness import MARE, MareRun

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
NOTEBOOK = os.path.join(ROOT, "notebooks", "buoys.ipynb")
SENSORS, EVERY_S, DAYS = 10, 100, 31

# Appended to the executed copy only: what the notebook computed, for the checks below.
REPORT = """
import json
print(json.dumps({
    "sensor": sensor, "day": str(day), "start": str(start), "path": os.path.abspath(path), "rows": rows,
    "sensors": len(sensors), "tracked": int(tracks["sensor_id"].nunique()),
    "hourly": hourly.assign(hour=hourly["hour"].astype(str)).to_dict("list"),
    "month": len(month), "forecast_hours": int(forecast["mean"].notna().sum()),
    "day_ahead_hours": int(forecast["day_ahead_mean"].notna().sum()),
}))
"""


def sql(url, statement):
    q = urllib.parse.urlencode({"q": statement})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=30) as r:
        return json.loads(r.read())["rows"]


def forecast_origin(url, sensor):
    try:
        with urllib.request.urlopen(f"{url}/api/v1/forecast?sensor_id={sensor}", timeout=5) as r:
            issued_at = json.loads(r.read()).get("issued_at")  # none while "forecast" is null
            return pd.Timestamp(issued_at) if issued_at else None
    except urllib.error.HTTPError:
        return None


def test_the_notebook_runs_top_to_bottom_and_shows_the_servers_data(tmp_path, monkeypatch):
    with MareRun(tmp_path / "data") as run:
        count = DAYS * 86400 // EVERY_S
        p = subprocess.run([MARE, "simulate", "--target", f"{run.http_url}/api/v1/ingest", "--sensors", str(SENSORS),
                            "--rate", str(1 / EVERY_S), "--count", str(count), "--flat-out", "--batch", "5000"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        total = SENSORS * count
        deadline = time.time() + 120
        while sql(run.http_url, "SELECT count(*) FROM readings")[0][0] < total:
            assert time.time() < deadline, "the store did not get the month"
            time.sleep(0.2)
        # Every sensor's forecast is made once its last closed hour's rollup is final.
        newest = pd.Timestamp(sql(run.http_url, "SELECT max(ts) FROM readings")[0][0])
        while any((forecast_origin(run.http_url, s) or pd.Timestamp(0, tz="UTC")) < newest.floor("h") - pd.Timedelta(hours=1)
                  for s in range(1, SENSORS + 1)):
            assert time.time() < deadline, "the forecasts did not catch up with the month"
            time.sleep(0.2)

        nb = nbformat.read(NOTEBOOK, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), \
            "the committed notebook keeps no outputs"
        nb.cells.append(nbformat.v4.new_code_cell(REPORT))
        # The kernel imports this checkout's client and reads the server from MARE_URL.
        monkeypatch.setenv("MARE_URL", run.http_url)
        monkeypatch.setenv("PYTHONPATH", os.path.join(ROOT, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        work = tmp_path / "work"
        work.mkdir()
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()

        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
        report = json.loads("".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream"))
        sensor, start = report["sensor"], pd.Timestamp(report["start"])
        expected_month = sql(run.http_url, f"SELECT count(*) FROM readings WHERE sensor_id = {sensor} "
                                           f"AND ts >= '{start:%Y-%m-%d %H:%M:%S}'")[0][0]

    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 4, "the day, the map, the month and the forecast are drawn"
    assert report["sensors"] == SENSORS and report["tracked"] == SENSORS

    # The day's table: 24 hours, each hour's min/mean/max those of the readings exported.
    hourly = pd.DataFrame(report["hourly"])
    day = pd.Timestamp(report["day"])
    assert list(pd.to_datetime(hourly["hour"])) == [day + pd.Timedelta(hours=h) for h in range(24)]
    back = pq.read_table(report["path"]).to_pandas()
    in_day = back[(back["ts"] >= day) & (back["ts"] < day + pd.Timedelta(days=1))].dropna(subset=["temperature"])
    by_hour = in_day.groupby(in_day["ts"].dt.floor("h"))["temperature"].agg(["min", "mean", "max", "count"])
    assert hourly["t_min"].tolist() == by_hour["min"].tolist()
    assert hourly["t_max"].tolist() == by_hour["max"].tolist()
    assert all(abs(a - b) < 1e-9 for a, b in zip(hourly["t_mean"], by_hour["mean"]))
    assert hourly["readings"].tolist() == by_hour["count"].tolist() and sum(hourly["readings"]) >= 24 * 3600 // EVERY_S * 0.9

    # The Parquet export: every reading of the month of that sensor, in order.
    assert report["rows"] == report["month"] == len(back) == expected_month
    assert expected_month >= 30 * 86400 // EVERY_S
    assert back["ts"].is_monotonic_increasing and str(back["ts"].dt.tz) == "UTC"
    assert list(back.columns) == ["ts", "temperature", "water_temperature", "pressure", "wave_height"]

    assert report["forecast_hours"] == 24 and report["day_ahead_hours"] == 24
