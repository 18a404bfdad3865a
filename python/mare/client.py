"""A connection to a running `mare run` over its HTTP API (docs/api/openapi.yaml): SQL answers
come as Apache Arrow IPC streams (docs/formats/arrow.md) and become pyarrow Tables and pandas
DataFrames; readings go in as NDJSON. Only the standard library speaks HTTP, over connections
kept alive between calls (connections.py).

    m = mare.connect("http://127.0.0.1:8080")
    df = m.query("SELECT ts, temperature FROM readings WHERE sensor_id = 1")
"""
from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
import uuid
from typing import Any, Dict, Iterator, List, Optional, Union

import pandas as pd
import pyarrow as pa

from .connections import Connections
from .errors import IngestError, MareError, QueryError
from .frames import to_frame
from .readings import ndjson_chunks

ARROW_STREAM = "application/vnd.apache.arrow.stream"

# An answer the server sends whole (with its Content-Length: it fit the server's queue of a few
# MiB) up to this size is read in one piece and read by pyarrow from memory, not through a
# Python file object call by call; a larger or chunked one is read as it streams.
WHOLE_BODY_BYTES = 64 << 20


def connect(url: str = "http://127.0.0.1:8080", token: Optional[str] = None, timeout: float = 300.0) -> "Client":
    """A client of the mare at url (its `http.listen`). token, when given, is sent as a bearer
    token with every request (for a server that asks for one). timeout: seconds a request may
    wait for the server at any one time."""
    return Client(url, token=token, timeout=timeout)


class Client:
    """A mare server's SQL, sensors and ingest API. Each call is one HTTP request, on a
    connection kept alive for the next (threads may share a Client; close() or a `with` block
    closes the idle connections)."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 300.0) -> None:
        """As connect(url, token, timeout)."""
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._connections = Connections(self.url, timeout)

    def close(self) -> None:
        """Closes the connections kept alive; the client still works (it opens new ones)."""
        self._connections.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        """mare.Client('http://…'): the server it talks to."""
        return f"mare.Client({self.url!r})"

    # ---- HTTP ----

    def _request(self, path: str, data: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
                 method: Optional[str] = None) -> Any:
        """The response of one request, whatever its status, with its headers read."""
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return self._connections.request(method or ("POST" if data is not None else "GET"), path, data, headers)
        except OSError as e:
            raise MareError(f"cannot reach mare at {self.url}: {e}") from None

    def _open(self, path: str, data: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
              method: Optional[str] = None) -> Any:
        """The open response of one request; an error status raises its JSON error."""
        r = self._request(path, data, headers, method)
        if r.status >= 400:
            with r:
                body = r.read().decode(errors="replace")
            raise self._error(r.status, body)
        return r

    @staticmethod
    def _error(status: int, body: str) -> QueryError:
        try:
            doc = json.loads(body)
        except ValueError:
            return QueryError(body.strip() or f"HTTP {status}", status)
        if not isinstance(doc, dict) or "error" not in doc:
            return QueryError(body.strip(), status)
        return QueryError(str(doc["error"]), status, int(doc.get("line", 0) or 0), int(doc.get("column", 0) or 0))

    def _arrow_response(self, sql: str) -> Any:
        body = json.dumps({"q": sql, "format": "arrow"}).encode()
        return self._open("/api/v1/query", data=body, method="POST",
                          headers={"Content-Type": "application/json", "Accept": ARROW_STREAM})

    # ---- SQL ----

    def query_arrow(self, sql: str) -> pa.Table:
        """The answer to one SQL statement (docs/sql.md) as a pyarrow Table: timestamp columns
        as timestamp[us, tz=UTC], integers as int64, doubles as float64, text as string,
        booleans as bool, intervals as duration[us]; NULLs as nulls. Raises QueryError with
        the server's message (and line and column) for a statement it refuses."""
        with self._arrow_response(sql) as r:
            length = r.response.length  # None when chunked
            if length is not None and length <= WHOLE_BODY_BYTES:
                return pa.ipc.open_stream(r.read()).read_all()
            return pa.ipc.open_stream(r).read_all()

    def query(self, sql: str) -> pd.DataFrame:
        """The answer to one SQL statement as a pandas DataFrame. Timestamps are timezone-aware
        UTC; NULLs stay missing: NaN in a double column, None in a text column, and pd.NA in an
        integer or boolean column that has NULLs (which then has pandas' nullable Int64 or
        boolean dtype, so that its values stay exact). The frame's columns are its own to
        modify."""
        return to_frame(self.query_arrow(sql))

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        """The answer's record batches as they arrive (up to 65,536 rows each), for answers too
        large to hold at once."""
        with self._arrow_response(sql) as r:
            yield from pa.ipc.open_stream(r)

    def export(self, sql: str, path: Union[str, os.PathLike]) -> int:
        """Writes the answer to path, as Parquet (.parquet, .pq) or CSV (.csv, with a header;
        timestamps in ISO 8601), batch by batch as it arrives; returns the rows written. The
        file appears whole or not at all."""
        path = os.fspath(path)
        kind = os.path.splitext(path)[1].lower()
        if kind not in (".parquet", ".pq", ".csv"):
            raise ValueError(f"export writes .parquet or .csv files, not {kind or 'a file without extension'!r}")
        directory = os.path.dirname(os.path.abspath(path))
        fd, partial = tempfile.mkstemp(prefix=".mare-export-", dir=directory)
        os.close(fd)
        rows = 0
        try:
            with self._arrow_response(sql) as r:
                reader = pa.ipc.open_stream(r)
                if kind == ".csv":
                    import pyarrow.csv as pacsv
                    writer: Any = pacsv.CSVWriter(partial, reader.schema)
                else:
                    import pyarrow.parquet as pq
                    writer = pq.ParquetWriter(partial, reader.schema)
                with writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return rows

    # ---- sensors ----

    def sensors(self) -> pd.DataFrame:
        """Every sensor the store has readings of, one row each: sensor_id, readings,
        first_seen and last_seen (UTC), fields (the names of its fields), and its last position
        (lat, lon, position_ts; missing for a sensor without one)."""
        with self._open("/api/v1/sensors") as r:
            doc = json.loads(r.read())
        rows = []
        for s in doc.get("sensors", []):
            position = s.get("position") or {}
            rows.append({"sensor_id": s["sensor_id"], "readings": s.get("readings"), "first_seen": s.get("first_seen"),
                         "last_seen": s.get("last_seen"), "fields": s.get("fields", []), "lat": position.get("lat"),
                         "lon": position.get("lon"), "position_ts": position.get("ts")})
        df = pd.DataFrame(rows, columns=["sensor_id", "readings", "first_seen", "last_seen", "fields", "lat", "lon",
                                         "position_ts"])
        for c in ("first_seen", "last_seen", "position_ts"):
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
        df["lat"] = df["lat"].astype("float64")
        df["lon"] = df["lon"].astype("float64")
        return df

    # ---- forecasts ----

    def _forecast_record(self, sensor_id: int, field: str, day_ahead: bool) -> Optional[Dict[str, Any]]:
        """One record of GET /api/v1/forecast (docs/formats/forecasts.md), or None while the
        series has none (`"forecast": null`; a 404 from servers before it)."""
        query = urllib.parse.urlencode({"sensor_id": int(sensor_id), "field": field,
                                        **({"day_ahead": "true"} if day_ahead else {})})
        try:
            with self._open(f"/api/v1/forecast?{query}") as r:
                record = json.loads(r.read())
                return record if "hours" in record else None
        except QueryError as e:
            if e.status == 404:
                return None
            raise

    @staticmethod
    def _forecast_hours(record: Optional[Dict[str, Any]], prefix: str) -> pd.DataFrame:
        """A record's hours as rows: hour, then {prefix}mean, {prefix}lo80, {prefix}hi80."""
        columns = ["hour", prefix + "mean", prefix + "lo80", prefix + "hi80"]
        hours = (record or {}).get("hours") or []
        df = pd.DataFrame([(h["target_hour"], h.get("value"), h.get("lower"), h.get("upper")) for h in hours],
                          columns=columns)
        df["hour"] = pd.to_datetime(df["hour"], utc=True, format="ISO8601")
        for c in columns[1:]:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        return df

    def forecast(self, sensor_id: int, field: str = "temperature") -> pd.DataFrame:
        """The latest forecast of one sensor's field (a field of the server's `forecast.fields`),
        one row per hour, ordered: `hour` (UTC, the start of the target hour), `mean`, and the
        80 % prediction interval `lo80`, `hi80` (NaN until the series has enough history for
        one). Beside them the day-ahead forecast frozen at 00:00 UTC, the one the website shows
        and that is judged: `day_ahead_mean`, `day_ahead_lo80`, `day_ahead_hi80`. The rows are
        the hours of either (so today's earlier hours, which only the day-ahead forecast still
        covers, are there with `mean` NaN); a column is NaN where its forecast has no such hour.

        `df.attrs` holds `issued_at` and `day_ahead_issued_at` (UTC Timestamps, None when there
        is none), `model`, `sensor_id` and `field`. Raises QueryError with status 404 when the
        series has no forecast yet, and 400 for an unknown sensor_id."""
        latest = self._forecast_record(sensor_id, field, day_ahead=False)
        if latest is None:
            raise QueryError(f"no forecast of sensor {sensor_id}'s {field} yet (is {field!r} in forecast.fields, "
                             f"and has one of its hours closed?)", 404)
        frozen = self._forecast_record(sensor_id, field, day_ahead=True)
        df = self._forecast_hours(latest, "").merge(self._forecast_hours(frozen, "day_ahead_"), on="hour", how="outer")
        df = df.sort_values("hour", ignore_index=True)
        df.attrs.update({
            "sensor_id": int(sensor_id), "field": field, "model": latest.get("model"),
            "issued_at": pd.Timestamp(latest["issued_at"]).tz_convert("UTC"),
            "day_ahead_issued_at": pd.Timestamp(frozen["issued_at"]).tz_convert("UTC") if frozen else None,
        })
        return df

    # ---- readings in ----

    def ingest(self, df: pd.DataFrame, rows_per_request: int = 50_000) -> Dict[str, int]:
        """Sends a DataFrame of readings (docs/formats/reading.md): a `timestamp` (or `ts`)
        column, `sensor_id`, optional `lat` and `lon` (the location), and any other column as a
        field; a missing value leaves that field out of its reading. mare validates each reading
        as it does any other. Returns {"accepted": n} when it took every row; otherwise raises
        IngestError with the server's reasons, after the valid rows are stored."""
        accepted = rejected = 0
        reasons: Dict[str, int] = {}
        errors: List[Dict[str, Any]] = []
        batch = f"mare-python/{uuid.uuid4().hex}"
        for start, count, body in ndjson_chunks(df, rows_per_request):
            row_at = lambda line: df.index[start + int(line) - 1]  # noqa: E731: a line of this body, as df's index
            # A key naming this body: were the connection lost before the answer, sending the
            # body again gets the first answer back instead of appending it twice.
            headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": f"{batch}/{start}"}
            try:
                r = self._request("/api/v1/ingest", body, headers, "POST")
            except MareError as e:
                raise IngestError(f"{e}; rows from {start} on were not sent",
                                  None, accepted, rejected, reasons, errors, list(df.index[start:])) from None
            with r:
                status, text = r.status, r.read().decode(errors="replace")
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            if not isinstance(answer, dict) or (status != 200 and "accepted" not in answer):
                raise IngestError(f"mare refused the readings from row {start} on (HTTP {status}): {text.strip()}",
                                  status, accepted, rejected + count, reasons, errors,
                                  list(df.index[start:])) from None
            accepted += int(answer.get("accepted", 0))
            rejected += int(answer.get("rejected", 0))
            for reason, n in (answer.get("reasons") or {}).items():
                reasons[reason] = reasons.get(reason, 0) + int(n)
            for e in answer.get("errors") or []:
                errors.append({"row": row_at(e["line"]), "reason": e.get("reason"), "detail": e.get("detail")})
            if status != 200:  # the log could not store some valid readings: stop here
                lost = [row_at(line) for line in answer.get("unacknowledged_lines", [])]
                raise IngestError(f"mare could not store every reading: {answer.get('error', f'HTTP {status}')}; "
                                  f"send again only unacknowledged_rows", status, accepted, rejected, reasons, errors,
                                  lost + list(df.index[start + count:]))
        if rejected:
            listed = "; ".join(f"row {e['row']}: {e['reason']} ({e['detail']})" for e in errors[:5])
            raise IngestError(f"mare rejected {rejected} of {accepted + rejected} readings "
                              f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}): {listed}",
                              200, accepted, rejected, reasons, errors)
        return {"accepted": accepted}
