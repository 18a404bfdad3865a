"""A DataFrame of readings as the NDJSON mare ingests (docs/formats/reading.md): one reading per
line, its timestamp (column `timestamp` or `ts`, as a query answers it) in ISO 8601 UTC,
`sensor_id`, `lat` and `lon` as its location, every other column a field. A missing value
(NaN, None, NA, NaT) leaves the field out of that reading, as mare's own answers have it."""
from __future__ import annotations

import json
from typing import Any, Iterator, List, Tuple

import pandas as pd

TIMESTAMP_COLUMNS = ("timestamp", "ts")


def _timestamps(series: pd.Series) -> List[Any]:
    """The timestamp column as mare reads it: datetimes as ISO 8601 UTC with microseconds (a
    naive one taken as UTC), strings and epoch numbers as they are."""
    if pd.api.types.is_datetime64_any_dtype(series):
        utc = series.dt.tz_convert("UTC") if series.dt.tz is not None else series.dt.tz_localize("UTC")
        text = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return text.astype(object).where(series.notna(), None).tolist()
    out = []
    for v in series.astype(object).where(series.notna(), None).tolist():
        if isinstance(v, pd.Timestamp) or hasattr(v, "isoformat"):
            t = pd.Timestamp(v)
            t = t.tz_convert("UTC") if t.tzinfo is not None else t.tz_localize("UTC")
            v = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(v)
    return out


def _values(series: pd.Series) -> List[Any]:
    """A field column as JSON values: numbers and strings as they are, missing as None; other
    datetimes as ISO 8601 text."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return _timestamps(series)
    return series.astype(object).where(series.notna(), None).tolist()


def ndjson_chunks(df: pd.DataFrame, rows_per_request: int) -> Iterator[Tuple[int, int, bytes]]:
    """(first row, rows, NDJSON body) for each run of rows_per_request rows of df, in order."""
    ts_name = next((c for c in TIMESTAMP_COLUMNS if c in df.columns), None)
    if ts_name is None:
        raise ValueError("a DataFrame of readings needs a 'timestamp' (or 'ts') column")
    if "sensor_id" not in df.columns:
        raise ValueError("a DataFrame of readings needs a 'sensor_id' column")
    located = "lat" in df.columns and "lon" in df.columns
    fields = [c for c in df.columns if c not in (ts_name, "sensor_id") and not (located and c in ("lat", "lon"))]
    for start in range(0, len(df), rows_per_request):
        part = df.iloc[start:start + rows_per_request]
        ts = _timestamps(part[ts_name])
        sensors = _values(part["sensor_id"])
        lat = _values(part["lat"]) if located else None
        lon = _values(part["lon"]) if located else None
        columns = [(str(name), _values(part[name])) for name in fields]
        lines = []
        for r in range(len(part)):
            sensor = sensors[r]
            if isinstance(sensor, float) and sensor.is_integer():
                sensor = int(sensor)
            reading = {"timestamp": ts[r], "sensor_id": sensor}
            if located and lat[r] is not None and lon[r] is not None:
                reading["location"] = {"lat": lat[r], "lon": lon[r]}
            for name, values in columns:
                if values[r] is not None:
                    reading[name] = values[r]
            lines.append(json.dumps(reading, separators=(",", ":"), ensure_ascii=False, default=str))
        yield start, len(part), ("\n".join(lines) + "\n").encode()
