"""Differential test of mare's SQL against DuckDB.

The same generated readings go into mare (most by `mare import` into segments; the rest
through POST /api/v1/ingest, so that some end in segments flushed by the live path and some
stay in the memtable) and into a DuckDB table. A few hundred generated queries of mare's
dialect, each with its DuckDB translation, must then give the same answers: exactly for
keys, counts, timestamps, texts, min, max, first and last; within 1e-9 relative for sum, avg,
stddev and arithmetic (a stddev of values far from 0 relative to their spread also within a
few ulps of their magnitude, see Query). Everything is seeded, so a failure is reproducible.

The data stresses the store: several days with gaps, one sensor and one UTC hour per block,
irregular and sub-second timestamps, fields missing per sensor and per reading, a text field,
out-of-order readings, two-decimal values (decimal-encoded columns) and arbitrary doubles
(raw-encoded columns), enough rows for aggregations to split across threads. The queries
stress the executor: time bounds on and off hour boundaries and on readings, many bucket
widths, filters that block statistics decide whole or not, every aggregate, grouping by
bucket, sensor, text and expressions, LATEST ON, ORDER BY ... LIMIT over everything.

Where the dialects differ, the DuckDB side says what mare means: first(x)/last(x) are
arg_min/arg_max(x, ts) over non-NULL x; LATEST ON is QUALIFY row_number() ... = 1; x / 0 is
NULL (NULLIF); distance_km is the haversine written out (without least(), which skips NULLs)."""
import datetime
import http.client
import json
import math
import os
import random
import time
import urllib.parse

import duckdb  # the oracle; scripts/setup.sh installs it, and a missing one is a failure

from harness import MareRun, mare

# MARE_SQL_DIFF_SEED and MARE_SQL_DIFF_QUERIES explore further (a failure prints its seed).
SEED = int(os.environ.get("MARE_SQL_DIFF_SEED", "20240301"))
QUERIES = int(os.environ.get("MARE_SQL_DIFF_QUERIES", "320"))

START = 1_709_251_200_000_000  # 2024-03-01T00:00:00Z, a Friday: weeks start mid-range
HOUR = 3_600_000_000
DAY = 24 * HOUR
SECOND = 1_000_000
DAYS = 4

SENSORS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 70000, 3000000001]
LIVE_ONLY_SENSOR = 34
CSV_FIELDS = ["temperature", "humidity", "pressure", "signal", "drift", "energy", "status"]
LIVE_FIELDS = ["wind_speed"]  # only ever sent live: segments from import never have it
NUMBER_FIELDS = ["temperature", "humidity", "pressure", "signal", "drift", "energy", "wind_speed", "lat", "lon"]
STATUSES = ["ok", "ok", "ok", "degraded", "low battery", "maintenance, scheduled"]
OLD_SENSOR = 5  # also has a few readings from around 2000-01-03, time_bucket's origin


# ---- time ---------------------------------------------------------------------------------

EPOCH = datetime.datetime(1970, 1, 1)


def civil(us):
    return EPOCH + datetime.timedelta(microseconds=us)


def reading_time(us, style=0):
    """As readings and CSV files carry it."""
    d = civil(us)
    base = d.strftime("%Y-%m-%d %H:%M:%S")
    if style == 1:
        return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{d.microsecond:06d}" if d.microsecond else "") + "Z"
    if d.microsecond or style == 2:
        return f"{base}.{d.microsecond:06d}"
    return base


def duck_ts(us):
    return f"TIMESTAMP '{reading_time(us, 2)}'"


def mare_ts(us, rng):
    """A timestamp literal in one of the forms mare accepts (all UTC)."""
    d = civil(us)
    frac = f"{d.microsecond:06d}".rstrip("0")
    text = d.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "")
    if not frac and d.second == 0 and rng.random() < 0.5:
        text = d.strftime("%Y-%m-%d %H:%M") if (d.hour or d.minute) else d.strftime("%Y-%m-%d")
    form = rng.randrange(5)
    if form == 4:
        # The same instant written in another zone.
        minutes = rng.choice([120, -330, 60, -480])
        local = d + datetime.timedelta(minutes=minutes)
        sign = "+" if minutes >= 0 else "-"
        return ("'" + local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") +
                f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}'")
    if form == 0:
        return f"'{text}'"
    if form == 1:
        return f"TIMESTAMP '{text}'"
    if form == 2:
        return "'" + d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z'"
    return f"TIMESTAMP '{reading_time(us, 2)}'"


def micros_of_iso(text):
    """mare's JSON timestamps: 2024-01-01T00:00:00Z or ...00.250000Z."""
    assert text.endswith("Z"), text
    body = text[:-1]
    frac = 0
    if "." in body:
        body, f = body.split(".")
        frac = int(f.ljust(6, "0"))
    d = datetime.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    return (d - EPOCH) // datetime.timedelta(microseconds=1) + frac


# ---- data ---------------------------------------------------------------------------------

def generate(rng):
    """Readings as dicts: ts (µs), sensor_id, fields (absent = missing), lat/lon together."""
    readings = []
    taken = set()  # timestamps are unique over all sensors, so first/last are well defined
    for sid in SENSORS:
        step = rng.choice([0.25, 0.5, 1, 1, 2.5, 7, 30, 61, 300]) * SECOND
        aligned = rng.random() < 0.3  # whole seconds, some readings exactly on bucket edges
        has = {
            "temperature": rng.random() < 0.9,
            "humidity": rng.random() < 0.6,
            "pressure": rng.random() < 0.4,
            "signal": rng.random() < 0.5,
            "drift": rng.random() < 0.5,
            "status": rng.random() < 0.5,
            "wind_speed": rng.random() < 0.4,
            "energy": rng.random() < 0.4,
            "location": rng.random() < 0.85,
        }
        moving = rng.random() < 0.35
        lat, lon = 42.3 + rng.random() * 0.4, 3.0 + rng.random() * 0.3
        budget = rng.randint(16000, 36000)  # readings of this sensor
        spans = rng.randint(1, 4)
        pressure = 1013.0 + rng.uniform(-10, 10)
        energy = rng.uniform(1e8, 5e9)
        status = "ok"
        k = 0
        for _ in range(spans):
            n = budget // spans
            t = START + rng.randrange(0, DAYS * DAY - 2 * HOUR)
            if aligned:
                t -= t % (60 * SECOND)
            for _ in range(n):
                if t >= START + DAYS * DAY:
                    break
                ts = t if aligned else t + rng.randrange(0, 1000) * 1000 + rng.randrange(0, 1000)
                while ts in taken:
                    ts += 1
                taken.add(ts)
                k += 1
                r = {"ts": ts, "sensor_id": sid}
                hour_of_day = (ts % DAY) / HOUR
                if has["temperature"] and rng.random() < 0.95:
                    r["temperature"] = round(14 + 6 * math.sin(hour_of_day / 24 * 2 * math.pi) + rng.gauss(0, 1.5), 2)
                if has["humidity"] and rng.random() < 0.75:
                    r["humidity"] = round(rng.uniform(40, 95), 2)
                if has["pressure"]:
                    pressure += rng.gauss(0, 0.3)
                    r["pressure"] = round(pressure, 1)
                if has["signal"]:
                    r["signal"] = 10 + 3 * math.sin(k * 0.37 + sid) + rng.random() * 1e-3  # arbitrary doubles
                if has["drift"] and rng.random() < 0.9:
                    r["drift"] = round(rng.uniform(-5, 5), 2)
                if has["status"] and rng.random() < 0.8:
                    if rng.random() < 0.05:
                        status = rng.choice(STATUSES)
                    r["status"] = status
                if has["energy"]:
                    energy += rng.randrange(0, 50_000) / 1000  # a meter: big values, three decimals
                    r["energy"] = round(energy, 3)
                if has["wind_speed"] and rng.random() < 0.9:
                    r["wind_speed"] = round(abs(rng.gauss(6, 4)), 2)
                if has["location"]:
                    if moving:
                        lat += rng.gauss(0, 2e-4)
                        lon += rng.gauss(0, 2e-4)
                    r["lat"], r["lon"] = round(lat, 6), round(lon, 6)
                readings.append(r)
                if aligned:
                    t += int(step) if rng.random() < 0.9 else int(step) * rng.randint(2, 40)
                else:
                    t += int(step * rng.uniform(0.3, 1.7)) + (rng.randrange(HOUR) if rng.random() < 0.002 else 0)
    # An old archive around time_bucket's origin (2000-01-03T00:00:00Z): buckets before it.
    t = 946_857_600_000_000 - 3 * DAY
    for i in range(300):
        t += rng.randrange(1, 1800) * SECOND + rng.randrange(0, 3) * SECOND // 2
        r = {"ts": t, "sensor_id": OLD_SENSOR, "temperature": round(rng.uniform(-5, 10), 2)}
        if i % 3:
            r["status"] = rng.choice(STATUSES)
        readings.append(r)
        taken.add(t)
    return readings


def split_live(readings, rng):
    """Which readings go through the live path: one sensor entirely, the last hours, and a
    random part of the rest (so an hour's blocks and memtable rows overlap)."""
    last = START + DAYS * DAY - 6 * HOUR
    archive, live = [], []
    for r in readings:
        if r["sensor_id"] == LIVE_ONLY_SENSOR or r["ts"] >= last or rng.random() < 0.08:
            live.append(r)
        else:
            archive.append(dict((k, v) for k, v in r.items() if k != "wind_speed"))
    return archive, live


def csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str) and ("," in v or '"' in v):
        return '"' + v.replace('"', '""') + '"'
    return str(v)


def write_csv(path, readings, fields, rng, perturb):
    rows = sorted(readings, key=lambda r: r["ts"])
    if perturb:
        # A few neighbours swapped, a few readings arriving at the very end (late).
        for _ in range(len(rows) // 200):
            i = rng.randrange(len(rows) - 1)
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
        late = [rows.pop(rng.randrange(len(rows))) for _ in range(40)]
        rows += late
    with open(path, "w") as f:
        f.write(",".join(["ts", "sensor_id"] + fields + ["lat", "lon"]) + "\n")
        for r in rows:
            cells = [reading_time(r["ts"], 0 if perturb and rng.random() < 0.7 else 2), str(r["sensor_id"])]
            cells += [csv_cell(r.get(k)) for k in fields + ["lat", "lon"]]
            f.write(",".join(cells) + "\n")


def ndjson(r, rng):
    out = {"timestamp": reading_time(r["ts"], 1 if rng.random() < 0.3 else 0), "sensor_id": r["sensor_id"]}
    for k in CSV_FIELDS + LIVE_FIELDS:
        if k in r:
            out[k] = r[k]
    if "lat" in r:
        out["location"] = {"lat": r["lat"], "lon": r["lon"]}
    return json.dumps(out)


# ---- mare over HTTP -------------------------------------------------------------------------

class Client:
    """One persistent HTTP connection to mare run."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        for attempt in range(3):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                return r.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def query(self, sql):
        status, data = self.request("GET", "/api/v1/query?" + urllib.parse.urlencode({"q": sql, "format": "json"}))
        return status, json.loads(data)

    def post(self, lines):
        status, data = self.request("POST", "/api/v1/ingest", body="\n".join(lines).encode() + b"\n",
                                    headers={"Content-Type": "application/x-ndjson"})
        assert status == 200, f"ingest: HTTP {status}: {data[:500]!r}"
        return json.loads(data)


def mare_rows(answer):
    types = [c["type"] for c in answer["columns"]]
    out = []
    for row in answer["rows"]:
        out.append([micros_of_iso(v) if t == "timestamp" and v is not None else v for v, t in zip(row, types)])
    return out


def duck_rows(con, sql):
    out = []
    for row in con.execute(sql).fetchall():
        conv = []
        for v in row:
            if isinstance(v, datetime.datetime):
                v = (v - EPOCH) // datetime.timedelta(microseconds=1)
            elif v is not None and not isinstance(v, (int, float, str)):
                v = float(v)  # a DECIMAL
            conv.append(v)
        out.append(conv)
    return out


# ---- queries --------------------------------------------------------------------------------

class Query:
    def __init__(self, mare_sql, duck_sql, kinds, ordered, shape):
        self.mare = mare_sql
        self.duck = duck_sql
        # Per output column: "exact", "approx", or ("stddev", argument). A standard deviation
        # of values far from 0 relative to their spread is ill-conditioned: any algorithm's
        # result is off by some ulps of the values' magnitude (DuckDB's streaming one more than
        # mare's two-pass per block), so DuckDB also gives max(abs(x)) and count(x) to bound it.
        self.kinds = kinds
        extras = [f"max(abs({k[1]})), count({k[1]})" for k in kinds if isinstance(k, tuple)]
        if extras:
            self.duck = duck_sql.replace(" FROM readings", ", " + ", ".join(extras) + " FROM readings", 1)
        self.ordered = ordered  # the ORDER BY is total: compare row order too
        self.shape = shape


class Gen:
    """Random queries of mare's dialect with their DuckDB translations."""

    WIDTHS = [  # (as mare reads it, microseconds)
        ("'1s'", SECOND), ("'10 seconds'", 10 * SECOND), ("'45s'", 45 * SECOND), ("'1m'", 60 * SECOND),
        ("'7m'", 7 * 60 * SECOND), ("'13 minutes'", 13 * 60 * SECOND), ("'15m'", 15 * 60 * SECOND),
        ("INTERVAL '30 minutes'", 30 * 60 * SECOND), ("'1h'", HOUR), ("'90m'", 90 * 60 * SECOND),
        ("INTERVAL '1h30m'", 90 * 60 * SECOND), ("'5h'", 5 * HOUR), ("'6 hours'", 6 * HOUR), ("'1d'", DAY),
        ("'36h'", 36 * HOUR), ("'2d'", 2 * DAY), ("INTERVAL '7 days'", 7 * DAY), ("'1w'", 7 * DAY),
        ("'500ms'", SECOND // 2), ("INTERVAL '2' HOUR", 2 * HOUR),
    ]

    def __init__(self, rng, readings, star_columns):
        self.rng = rng
        self.times = sorted(r["ts"] for r in readings)
        self.values = {f: sorted({r[f] for r in readings if f in r}) for f in NUMBER_FIELDS}
        self.star = star_columns
        self.sensors = SENSORS + [4, 4294967295]  # two that never sent anything

    # -- pieces --
    def instant(self):
        rng = self.rng
        k = rng.randrange(6)
        if k == 0:
            return START + rng.randrange(-2, DAYS * 24 + 2) * HOUR  # on an hour
        if k == 1:
            return START + rng.randrange(0, DAYS + 1) * DAY  # on a day
        if k == 2:
            return rng.choice(self.times)  # exactly on a reading
        if k == 3:
            return rng.choice(self.times) + rng.choice([-1, 1])
        if k == 4:
            return START + rng.randrange(DAYS * DAY) // SECOND * SECOND  # a whole second
        return START + rng.randrange(DAYS * DAY)  # anywhere, to the microsecond

    def time_range(self):
        """(mare, duck) conditions on ts or None, and the span they leave (for bucket widths)."""
        rng = self.rng
        a = self.instant()
        length = rng.choice([rng.randrange(10 * SECOND, 20 * 60 * SECOND), rng.randrange(HOUR, 8 * HOUR),
                             rng.randrange(8 * HOUR, 3 * DAY), rng.randrange(HOUR // 2, 3 * HOUR)])
        b = a + length
        if rng.random() < 0.4:
            b = self.instant()
            if b < a:
                a, b = b, a
        k = rng.randrange(12)
        if k == 0:
            return None, DAYS * DAY + 4 * HOUR
        if k == 9:
            t = rng.choice(self.times)
            return (f"ts = {mare_ts(t, rng)}", f"ts = {duck_ts(t)}"), 0
        if k == 10:
            return (f"ts NOT BETWEEN {mare_ts(a, rng)} AND {mare_ts(b, rng)}", f"ts NOT BETWEEN {duck_ts(a)} AND {duck_ts(b)}"), DAYS * DAY
        if k == 11:
            t = rng.choice(self.times)
            return (f"ts <> {mare_ts(t, rng)} AND ts <= {mare_ts(b, rng)} AND ts >= {mare_ts(a, rng)}",
                    f"ts <> {duck_ts(t)} AND ts <= {duck_ts(b)} AND ts >= {duck_ts(a)}"), b - a
        if k == 1:
            return (f"ts >= {mare_ts(a, rng)} AND ts < {mare_ts(b, rng)}", f"ts >= {duck_ts(a)} AND ts < {duck_ts(b)}"), b - a
        if k == 2:
            return (f"ts BETWEEN {mare_ts(a, rng)} AND {mare_ts(b, rng)}", f"ts BETWEEN {duck_ts(a)} AND {duck_ts(b)}"), b - a
        if k == 3:
            return (f"ts > {mare_ts(a, rng)} AND ts <= {mare_ts(b, rng)}", f"ts > {duck_ts(a)} AND ts <= {duck_ts(b)}"), b - a
        if k == 4:
            return (f"ts > {mare_ts(a, rng)}", f"ts > {duck_ts(a)}"), START + DAYS * DAY - a
        if k == 5:
            return (f"ts < {mare_ts(b, rng)}", f"ts < {duck_ts(b)}"), b - START
        if k == 6:
            return (f"{mare_ts(a, rng)} <= ts AND {mare_ts(b, rng)} > ts", f"{duck_ts(a)} <= ts AND {duck_ts(b)} > ts"), b - a
        if k == 7:
            m = rng.choice([30, 90, 360])
            return (f"ts >= TIMESTAMP '{reading_time(a, 2)}' - INTERVAL '{m} minutes' AND ts < TIMESTAMP '{reading_time(a, 2)}'",
                    f"ts >= {duck_ts(a)} - INTERVAL '{m} minutes' AND ts < {duck_ts(a)}"), m * 60 * SECOND
        # An OR of an exact instant and a range: no bounds for the planner, a row filter.
        t = rng.choice(self.times)
        return (f"(ts = {mare_ts(t, rng)} OR ts >= {mare_ts(a, rng)} AND ts < {mare_ts(b, rng)})",
                f"(ts = {duck_ts(t)} OR ts >= {duck_ts(a)} AND ts < {duck_ts(b)})"), DAYS * DAY

    def value(self, field):
        vals = self.values[field]
        if not vals:
            return 0
        v = self.rng.choice(vals)  # a value that occurs: equality and edges
        if self.rng.random() < 0.3:
            v = round(v + self.rng.uniform(-1, 1), 2)
        return v

    def number(self, v):
        return repr(float(v)) if not float(v).is_integer() else str(int(v)) if self.rng.random() < 0.5 else repr(float(v))

    def field_filter(self):
        rng = self.rng
        f = rng.choice(["temperature", "temperature", "humidity", "pressure", "signal", "drift", "wind_speed", "energy"])
        k = rng.randrange(17)
        if k == 14:
            c = rng.choice(["lat IS NULL", "lon IS NOT NULL", "NOT (lat IS NULL)", "energy IS NOT NULL", "wind_speed IS NULL"])
        elif k == 15:
            vals = [self.number(self.value(f)) for _ in range(rng.randint(1, 3))]
            c = rng.choice([f"{f} IN ({', '.join(vals)})", f"{f} IN ({', '.join(vals)}, NULL)", f"{f} NOT IN ({', '.join(vals)})",
                            f"status IN ('ok', NULL)", f"status NOT IN ('degraded', NULL)"])
        elif k == 16:
            c = rng.choice(["TRUE", "1 = 1", "NULL IS NULL", "NOT FALSE", "2 > 1 OR sensor_id = 1", "FALSE", "NULL", "1 = 0"])
        elif k == 0:
            c = f"{f} > {self.number(self.value(f))}"
        elif k == 1:
            c = f"{f} <= {self.number(self.value(f))}"
        elif k == 2:
            c = f"{f} IS NULL"
        elif k == 3:
            c = f"{f} IS NOT NULL"
        elif k == 4:
            lo, hi = sorted([self.value(f), self.value(f)])
            c = f"{f} BETWEEN {self.number(lo)} AND {self.number(hi)}"
        elif k == 5:
            lo, hi = sorted([self.value(f), self.value(f)])
            c = f"{f} NOT BETWEEN {self.number(lo)} AND {self.number(hi)}"
        elif k == 6:
            c = f"NOT ({f} < {self.number(self.value(f))})"
        elif k == 7:
            g = rng.choice(["humidity", "drift", "temperature"])
            c = f"({f} > {self.number(self.value(f))} OR {g} < {self.number(self.value(g))})"
        elif k == 8:
            c = f"{f} = {self.number(self.value(f))}"
        elif k == 9:
            c = rng.choice(["status = 'ok'", "status <> 'ok'", "status IS NULL", "status IS NOT NULL",
                            "status IN ('degraded', 'low battery')", "status = 'maintenance, scheduled'",
                            "status > 'm'", "NOT (status = 'ok')"])
        elif k == 10:
            c = f"{f} > -1000"  # true wherever there is a value: whole blocks decided by statistics
        elif k == 11:
            s, n = sorted([42.3 + rng.random() * 0.4, 42.3 + rng.random() * 0.4])
            w, e = sorted([3.0 + rng.random() * 0.3, 3.0 + rng.random() * 0.3])
            if rng.random() < 0.5:
                return (f"within_box(lat, lon, {s!r}, {w!r}, {n!r}, {e!r})",
                        f"(lat BETWEEN {s!r} AND {n!r} AND lon BETWEEN {w!r} AND {e!r})")
            return (f"lat BETWEEN {s!r} AND {n!r} AND lon BETWEEN {w!r} AND {e!r}",) * 2
        elif k == 12:
            lat, lon, km = 42.5, 3.15, rng.choice([3, 8, 15, 25])
            return (f"distance_km(lat, lon, {lat}, {lon}) < {km}", f"{duck_distance('lat', 'lon', lat, lon)} < {km}")
        else:
            c = f"{f} * 2 - 1 >= {self.number(self.value(f) * 2 - 1)}"
        return c, c

    def sensor_filter(self):
        rng = self.rng
        k = rng.randrange(6)
        if rng.random() < 0.15:
            c = rng.choice([f"sensor_id > {rng.choice(self.sensors)}", f"sensor_id <= {rng.choice(self.sensors)}",
                            f"sensor_id IN ({rng.choice(self.sensors)}, NULL)", f"sensor_id NOT IN ({rng.choice(self.sensors)}, NULL)",
                            f"NOT (sensor_id = {rng.choice(self.sensors)})", f"sensor_id = {rng.choice(self.sensors)}.0"])
        elif k == 0:
            c = f"sensor_id = {rng.choice(self.sensors)}"
        elif k == 1:
            c = f"sensor_id IN ({', '.join(str(s) for s in rng.sample(self.sensors, rng.randint(1, 5)))})"
        elif k == 2:
            c = f"sensor_id NOT IN ({', '.join(str(s) for s in rng.sample(self.sensors, rng.randint(1, 4)))})"
        elif k == 3:
            c = f"sensor_id <> {rng.choice(self.sensors)}"
        elif k == 4:
            lo, hi = sorted(rng.sample(self.sensors, 2))
            c = f"sensor_id BETWEEN {lo} AND {hi}"
        else:
            c = f"(sensor_id = {rng.choice(self.sensors)} OR sensor_id > {rng.choice(self.sensors)})"
        return c, c

    def where(self, time_weight=0.85, allow_fields=True):
        """WHERE clause (mare, duck) and the time span it leaves."""
        rng = self.rng
        parts = []
        span = DAYS * DAY + 4 * HOUR
        if rng.random() < time_weight:
            cond, span = self.time_range()
            if cond:
                parts.append(cond)
        if rng.random() < 0.45:
            parts.append(self.sensor_filter())
        if allow_fields:
            for _ in range(rng.choice([0, 0, 1, 1, 2])):
                parts.append(self.field_filter())
        rng.shuffle(parts)
        if not parts:
            return "", "", span
        return " WHERE " + " AND ".join(p[0] for p in parts), " WHERE " + " AND ".join(p[1] for p in parts), span

    def aggregate(self):
        """(mare, duck, kind)"""
        rng = self.rng
        f = rng.choice(NUMBER_FIELDS)
        k = rng.randrange(16)
        if k == 0:
            return "count(*)", "count(*)", "exact"
        if k == 1:
            g = rng.choice(NUMBER_FIELDS + ["status", "ts", "sensor_id"])
            return f"count({g})", f"count({g})", "exact"
        if k == 2:
            return f"sum({f})", f"sum({f})", "approx"
        if k == 3:
            name = rng.choice(["avg", "mean"])
            return f"{name}({f})", f"avg({f})", "approx"
        if k in (4, 5):
            fn = "min" if k == 4 else "max"
            g = rng.choice([f, f, "ts", "sensor_id"])
            return f"{fn}({g})", f"{fn}({g})", "exact"
        if k in (6, 7):
            fn, dfn = ("first", "arg_min") if k == 6 else ("last", "arg_max")
            g = rng.choice([f, f, "status", "ts", "sensor_id"])
            return f"{fn}({g})", f"{dfn}({g}, ts) FILTER (WHERE {g} IS NOT NULL)", "exact"
        if k == 8:
            name = rng.choice(["stddev", "stddev_samp"])
            return f"{name}({f})", f"stddev_samp({f})", ("stddev", f)
        if k == 9:
            return f"stddev_pop({f})", f"stddev_pop({f})", ("stddev", f)
        if k == 10:
            e = rng.choice(["temperature * 2", "humidity - drift", "signal / 3", "-drift", "abs(drift)", "sensor_id % 7"])
            fn = rng.choice(["sum", "avg", "min", "max", "stddev"])
            kind = "exact" if fn in ("min", "max") else ("stddev", e) if fn == "stddev" else "approx"
            return f"{fn}({e})", f"{fn if fn != 'stddev' else 'stddev_samp'}({e})", kind
        if k == 11:
            e = rng.choice(["temperature + 1", "drift * 2", "abs(drift)"])
            fn, dfn = rng.choice([("first", "arg_min"), ("last", "arg_max")])
            return f"{fn}({e})", f"{dfn}({e}, ts) FILTER (WHERE ({e}) IS NOT NULL)", "exact"
        if k == 12:
            return "sum(sensor_id)", "sum(sensor_id)", "exact"
        if k == 13:
            return f"max({f}) - min({f})", f"max({f}) - min({f})", "approx"
        if k == 14:
            return f"count(*) * 2 + count({f})", f"count(*) * 2 + count({f})", "exact"
        return f"avg(sensor_id)", "avg(sensor_id)", "approx"

    def aggregates(self, lo=1, hi=6):
        aggs = [self.aggregate() for _ in range(self.rng.randint(lo, hi))]
        return aggs

    def having(self):
        rng = self.rng
        k = rng.randrange(4)
        if k == 0:
            c = f"count(*) > {rng.choice([1, 5, 20, 100])}"
            return c, c
        if k == 1:
            c = f"count(humidity) >= 1"
            return c, c
        if k == 2:
            v = self.number(self.value("temperature"))
            return f"max(temperature) > {v}", f"max(temperature) > {v}"
        return ("first(temperature) < last(temperature)",
                "arg_min(temperature, ts) FILTER (WHERE temperature IS NOT NULL) < arg_max(temperature, ts) FILTER (WHERE temperature IS NOT NULL)")

    def width(self, span):
        """A bucket width leaving at most a few thousand buckets over the span."""
        choices = [w for w in self.WIDTHS if span // w[1] <= 3000]
        return self.rng.choice(choices)

    def limit(self):
        rng = self.rng
        if rng.random() < 0.6:
            return ""
        n = rng.choice([1, 2, 3, 5, 10, 50])
        return f" LIMIT {n}" + (f" OFFSET {rng.choice([1, 2, 7])}" if rng.random() < 0.4 else "")

    # -- shapes --
    def q_global(self):
        aggs = self.aggregates(2, 8)
        wm, wd, _ = self.where()
        sel_m = ", ".join(a[0] for a in aggs)
        sel_d = ", ".join(a[1] for a in aggs)
        hm = hd = ""
        if self.rng.random() < 0.1:
            h = self.having()  # no GROUP BY: the one row, or none
            hm, hd = f" HAVING {h[0]}", f" HAVING {h[1]}"
        return Query(f"SELECT {sel_m} FROM readings{wm}{hm}", f"SELECT {sel_d} FROM readings{wd}{hd}", [a[2] for a in aggs], True, "global")

    def q_by_sensor(self):
        rng = self.rng
        aggs = self.aggregates()
        wm, wd, _ = self.where()
        hm = hd = ""
        if rng.random() < 0.25:
            h = self.having()
            hm, hd = f" HAVING {h[0]}", f" HAVING {h[1]}"
        desc = " DESC" if rng.random() < 0.3 else ""
        lim = self.limit()
        sel_m = ", ".join(["sensor_id"] + [a[0] for a in aggs])
        sel_d = ", ".join(["sensor_id"] + [a[1] for a in aggs])
        return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY sensor_id{hm} ORDER BY sensor_id{desc}{lim}",
                     f"SELECT {sel_d} FROM readings{wd} GROUP BY sensor_id{hd} ORDER BY sensor_id{desc}{lim}",
                     ["exact"] + [a[2] for a in aggs], True, "by_sensor")

    def q_by_bucket(self):
        rng = self.rng
        aggs = self.aggregates()
        wm, wd, span = self.where()
        wtext, wus = self.width(span)
        hm = hd = ""
        if rng.random() < 0.2:
            h = self.having()
            hm, hd = f" HAVING {h[0]}", f" HAVING {h[1]}"
        bm, bd = f"time_bucket({wtext}, ts)", f"time_bucket(to_microseconds({wus}), ts)"
        sel_m = ", ".join([f"{bm} AS b"] + [a[0] for a in aggs])
        sel_d = ", ".join([f"{bd} AS b"] + [a[1] for a in aggs])
        if rng.random() < 0.2:
            # Ordered by an exact aggregate first, the bucket breaking ties.
            which = next((i for i, a in enumerate(aggs) if a[2] == "exact"), None)
            if which is not None:
                d = rng.choice(["", " DESC"])
                lim = self.limit()
                return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY b{hm} ORDER BY {which + 2}{d}, b{lim}",
                             f"SELECT {sel_d} FROM readings{wd} GROUP BY b{hd} ORDER BY {which + 2}{d} NULLS LAST, b{lim}",
                             ["exact"] + [a[2] for a in aggs], True, "by_bucket")
        if rng.random() < 0.15:
            return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY b{hm}", f"SELECT {sel_d} FROM readings{wd} GROUP BY b{hd}",
                         ["exact"] + [a[2] for a in aggs], False, "by_bucket")
        desc = " DESC" if rng.random() < 0.3 else ""
        lim = self.limit()
        return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY b{hm} ORDER BY b{desc}{lim}",
                     f"SELECT {sel_d} FROM readings{wd} GROUP BY b{hd} ORDER BY b{desc}{lim}",
                     ["exact"] + [a[2] for a in aggs], True, "by_bucket")

    def q_by_bucket_sensor(self):
        rng = self.rng
        aggs = self.aggregates(1, 5)
        wm, wd, span = self.where()
        wtext, wus = self.width(span // 4 if span > DAY else span)
        bm, bd = f"time_bucket({wtext}, ts)", f"time_bucket(to_microseconds({wus}), ts)"
        first_sensor = rng.random() < 0.4
        km = ["sensor_id", f"{bm} AS b"] if first_sensor else [f"{bm} AS b", "sensor_id"]
        kd = ["sensor_id", f"{bd} AS b"] if first_sensor else [f"{bd} AS b", "sensor_id"]
        sel_m = ", ".join(km + [a[0] for a in aggs])
        sel_d = ", ".join(kd + [a[1] for a in aggs])
        group = "sensor_id, b" if first_sensor else "b, sensor_id"
        kinds = ["exact", "exact"] + [a[2] for a in aggs]
        if rng.random() < 0.3:
            return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY {group}", f"SELECT {sel_d} FROM readings{wd} GROUP BY {group}",
                         kinds, False, "by_bucket_sensor")
        order = rng.choice(["b, sensor_id", "sensor_id DESC, b", "b DESC, sensor_id DESC", "sensor_id, b DESC"])
        lim = self.limit()
        return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY {group} ORDER BY {order}{lim}",
                     f"SELECT {sel_d} FROM readings{wd} GROUP BY {group} ORDER BY {order}{lim}", kinds, True, "by_bucket_sensor")

    def q_by_other_key(self):
        """Text keys (NULL a group of its own), expression keys, positions in GROUP BY."""
        rng = self.rng
        aggs = self.aggregates(1, 5)
        wm, wd, span = self.where()
        k = rng.randrange(4)
        if k == 0:
            key_m = key_d = "status"
            group = "status"
        elif k == 1:
            key_m = key_d = "sensor_id % 3 AS g"
            group = "g"
        elif k == 2:
            key_m = key_d = "sensor_id * 10 + 1 AS g"
            group = "1"
        else:
            key_m = key_d = "lat > 42.5 AS g"
            group = "g"
        sel_m = ", ".join([key_m] + [a[0] for a in aggs])
        sel_d = ", ".join([key_d] + [a[1] for a in aggs])
        desc = rng.choice(["", " DESC"])
        return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY {group} ORDER BY 1{desc}",
                     f"SELECT {sel_d} FROM readings{wd} GROUP BY {group} ORDER BY 1{desc}",
                     ["exact"] + [a[2] for a in aggs], True, "by_other_key")

    def q_top(self):
        """ORDER BY an aggregate (not necessarily selected) with a tiebreaker, LIMIT."""
        rng = self.rng
        f = rng.choice(["temperature", "humidity", "drift", "signal", "ts"])
        fn = rng.choice(["max", "min", "count", "last", "first"])
        m = f"{fn}({f})"
        d = {"last": f"arg_max({f}, ts) FILTER (WHERE {f} IS NOT NULL)",
             "first": f"arg_min({f}, ts) FILTER (WHERE {f} IS NOT NULL)"}.get(fn, m)
        aggs = self.aggregates(1, 3)
        wm, wd, _ = self.where()
        desc = rng.choice(["", " DESC"])
        n = rng.choice([1, 3, 5])
        sel_m = ", ".join(["sensor_id"] + [a[0] for a in aggs])
        sel_d = ", ".join(["sensor_id"] + [a[1] for a in aggs])
        return Query(f"SELECT {sel_m} FROM readings{wm} GROUP BY sensor_id ORDER BY {m}{desc}, sensor_id LIMIT {n}",
                     f"SELECT {sel_d} FROM readings{wd} GROUP BY sensor_id ORDER BY {d}{desc} NULLS LAST, sensor_id LIMIT {n}",
                     ["exact"] + [a[2] for a in aggs], True, "top")

    ROW_COLUMNS = [  # (mare, duck, kind)
        ("ts", "ts", "exact"), ("sensor_id", "sensor_id", "exact"), ("temperature", "temperature", "exact"),
        ("humidity", "humidity", "exact"), ("status", "status", "exact"), ("signal", "signal", "exact"),
        ("drift", "drift", "exact"), ("lat", "lat", "exact"), ("lon", "lon", "exact"), ("wind_speed", "wind_speed", "exact"),
        ("pressure", "pressure", "exact"), ("energy", "energy", "exact"),
        ("temperature * 9 / 5 + 32", "temperature * 9 / 5 + 32", "approx"),
        ("epoch(ts)", "epoch_us(ts) / 1e6", "approx"),
        ("ts + INTERVAL '90 minutes'", "ts + INTERVAL '90 minutes'", "exact"),
        ("time_bucket('15m', ts)", f"time_bucket(to_microseconds({15 * 60 * SECOND}), ts)", "exact"),
        ("distance_km(lat, lon, 42.5, 3.15)", None, "approx"),
        ("abs(drift)", "abs(drift)", "exact"), ("sqrt(humidity)", "sqrt(humidity)", "approx"),
        ("floor(signal)", "floor(signal)", "exact"), ("ceil(drift)", "ceil(drift)", "exact"), ("-drift", "-drift", "exact"),
        ("sensor_id % 4", "sensor_id % 4", "exact"), ("signal - drift", "signal - drift", "approx"),
        ("round(humidity / 3, 2)", "round(humidity / 3, 2)", "approx"),
    ]

    def q_rows(self):
        rng = self.rng
        cols = [("ts", "ts", "exact"), ("sensor_id", "sensor_id", "exact")] + rng.sample(self.ROW_COLUMNS[2:], rng.randint(1, 5))
        cols = [(m, d if d is not None else duck_distance("lat", "lon", 42.5, 3.15), k) for m, d, k in cols]
        rng.shuffle(cols)
        sel_m = ", ".join(c[0] for c in cols)
        sel_d = ", ".join(c[1] for c in cols)
        kinds = [c[2] for c in cols]
        ordered = rng.random() < 0.7
        lim = rng.choice(["", f" LIMIT {rng.choice([1, 10, 100])}", f" LIMIT 20 OFFSET {rng.choice([0, 5, 50])}"]) if ordered else ""
        while True:
            wm, wd, span = self.where(time_weight=1.0)
            if span <= (3 * HOUR if lim else HOUR // 2):
                break
        if ordered:
            # ts is unique over all readings: a total order, also after another key.
            key = rng.choice(["ts", "ts DESC", "ts", "temperature DESC, ts", "status, ts DESC", "lat, ts"])
            return Query(f"SELECT {sel_m} FROM readings{wm} ORDER BY {key}{lim}", f"SELECT {sel_d} FROM readings{wd} ORDER BY {key}{lim}",
                         kinds, True, "rows")
        return Query(f"SELECT {sel_m} FROM readings{wm}", f"SELECT {sel_d} FROM readings{wd}", kinds, False, "rows")

    def q_top_rows(self):
        """ORDER BY a field over (nearly) everything, LIMIT: the top-k path with its NULLs."""
        rng = self.rng
        f = rng.choice(["temperature", "humidity", "drift", "signal", "energy", "status", "wind_speed"])
        cols = [("ts", "ts"), ("sensor_id", "sensor_id"), (f, f)]
        wm, wd, _ = self.where(time_weight=0.2, allow_fields=rng.random() < 0.3)
        desc = rng.choice(["", " DESC"])
        lim = f" LIMIT {rng.choice([1, 10, 100])}" + (f" OFFSET {rng.choice([3, 40])}" if rng.random() < 0.4 else "")
        sel_m = ", ".join(c[0] for c in cols)
        sel_d = ", ".join(c[1] for c in cols)
        return Query(f"SELECT {sel_m} FROM readings{wm} ORDER BY {f}{desc}, ts{lim}", f"SELECT {sel_d} FROM readings{wd} ORDER BY {f}{desc}, ts{lim}",
                     ["exact"] * 3, True, "top_rows")

    def q_keys_only(self):
        """GROUP BY without aggregates: the distinct keys."""
        rng = self.rng
        wm, wd, span = self.where()
        k = rng.randrange(3)
        if k == 0:
            return Query(f"SELECT sensor_id FROM readings{wm} GROUP BY sensor_id ORDER BY sensor_id",
                         f"SELECT sensor_id FROM readings{wd} GROUP BY sensor_id ORDER BY sensor_id", ["exact"], True, "keys_only")
        wtext, wus = self.width(span)
        if k == 1:
            return Query(f"SELECT time_bucket({wtext}, ts) AS b FROM readings{wm} GROUP BY b ORDER BY b DESC",
                         f"SELECT time_bucket(to_microseconds({wus}), ts) AS b FROM readings{wd} GROUP BY b ORDER BY b DESC",
                         ["exact"], True, "keys_only")
        return Query(f"SELECT status, time_bucket({wtext}, ts) AS b FROM readings{wm} GROUP BY status, b",
                     f"SELECT status, time_bucket(to_microseconds({wus}), ts) AS b FROM readings{wd} GROUP BY status, b",
                     ["exact", "exact"], False, "keys_only")

    def q_star(self):
        rng = self.rng
        wm, wd, span = self.where(time_weight=1.0)
        desc = rng.choice(["", " DESC"])
        n = rng.choice([1, 5, 30])
        return Query(f"SELECT * FROM readings{wm} ORDER BY ts{desc} LIMIT {n}",
                     f"SELECT {', '.join(self.star)} FROM readings{wd} ORDER BY ts{desc} LIMIT {n}",
                     ["exact"] * len(self.star), True, "star")

    def q_latest(self):
        rng = self.rng
        wm, wd, _ = self.where(time_weight=0.6)
        if rng.random() < 0.3:
            cols_m, cols_d = ["*"], self.star
            kinds = ["exact"] * len(self.star)
        else:
            picked = [("sensor_id", "sensor_id", "exact"), ("ts", "ts", "exact")] + rng.sample(self.ROW_COLUMNS[2:12], rng.randint(1, 4))
            cols_m = [c[0] for c in picked]
            cols_d = [c[1] for c in picked]
            kinds = [c[2] for c in picked]
        qualify = " QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY ts DESC) = 1"
        if rng.random() < 0.3 and cols_m != ["*"]:
            n = rng.choice([1, 2, 4])
            return Query(f"SELECT {', '.join(cols_m)} FROM readings{wm} LATEST ON ts PARTITION BY sensor_id ORDER BY ts DESC LIMIT {n}",
                         f"SELECT {', '.join(cols_d)} FROM readings{wd}{qualify} ORDER BY ts DESC LIMIT {n}", kinds, True, "latest")
        return Query(f"SELECT {', '.join(cols_m)} FROM readings{wm} LATEST ON ts PARTITION BY sensor_id",
                     f"SELECT {', '.join(cols_d)} FROM readings{wd}{qualify}", kinds, False, "latest")

    def q_misc(self):
        """Corners of the dialect: hidden ORDER BY expressions, constants in the SELECT list,
        timestamp arithmetic in WHERE, division by zero, two time buckets, empty BETWEEN."""
        rng = self.rng
        wm, wd, span = self.where(time_weight=1.0)
        t = rng.choice(self.times)
        v = self.number(self.value("temperature"))
        templates = [
            # (mare, duck, kinds, ordered); {w} is the WHERE clause
            ("SELECT ts, sensor_id FROM readings{w} ORDER BY temperature * 2 DESC, ts LIMIT 7",
             "SELECT ts, sensor_id FROM readings{w} ORDER BY temperature * 2 DESC NULLS LAST, ts LIMIT 7", ["exact"] * 2, True),
            ("SELECT 1 + 1 AS two, 'x' AS x, count(*), max(ts) FROM readings{w}",
             "SELECT 1 + 1 AS two, 'x' AS x, count(*), max(ts) FROM readings{w}", ["exact"] * 4, True),
            ("SELECT sensor_id, count(*) FROM readings{w} AND ts + INTERVAL '1 hour' > TIMESTAMP '%s' GROUP BY sensor_id ORDER BY 2 DESC, 1" % reading_time(t, 2),
             "SELECT sensor_id, count(*) FROM readings{w} AND ts + INTERVAL '1 hour' > TIMESTAMP '%s' GROUP BY sensor_id ORDER BY 2 DESC, 1" % reading_time(t, 2),
             ["exact"] * 2, True),
            # mare's x / 0 and x % 0 are NULL; DuckDB's an infinity or an error: NULLIF says it there.
            ("SELECT ts, sensor_id, temperature / (sensor_id % 3), sensor_id % (sensor_id % 2) FROM readings{w} ORDER BY ts DESC LIMIT 50",
             "SELECT ts, sensor_id, temperature / NULLIF(sensor_id % 3, 0), sensor_id % NULLIF(sensor_id % 2, 0) FROM readings{w} ORDER BY ts DESC LIMIT 50",
             ["exact", "exact", "approx", "exact"], True),
            ("SELECT time_bucket('1d', ts) AS d, time_bucket('6h', ts) AS q, count(*), sum(temperature) FROM readings{w} GROUP BY d, q ORDER BY q, d",
             "SELECT time_bucket(INTERVAL '1 day', ts) AS d, time_bucket(INTERVAL '6 hours', ts) AS q, count(*), sum(temperature) FROM readings{w} GROUP BY d, q ORDER BY q, d",
             ["exact", "exact", "exact", "approx"], True),
            ("SELECT count(*), count(temperature) FROM readings{w} AND temperature BETWEEN 20 AND 10",
             "SELECT count(*), count(temperature) FROM readings{w} AND temperature BETWEEN 20 AND 10", ["exact"] * 2, True),
            ("SELECT count(*) FROM readings{w} AND NOT (NOT (temperature > %s)) AND drift > -2.5" % v,
             "SELECT count(*) FROM readings{w} AND NOT (NOT (temperature > %s)) AND drift > -2.5" % v, ["exact"], True),
            ("SELECT sensor_id, epoch(max(ts)) - epoch(min(ts)) AS secs FROM readings{w} GROUP BY sensor_id HAVING count(*) > 1 ORDER BY secs DESC, sensor_id",
             "SELECT sensor_id, epoch_us(max(ts)) / 1e6 - epoch_us(min(ts)) / 1e6 AS secs FROM readings{w} GROUP BY sensor_id HAVING count(*) > 1 ORDER BY secs DESC, sensor_id",
             ["exact", "approx"], False),
            ("SELECT sensor_id, ts, temperature FROM readings{w} LATEST ON ts PARTITION BY sensor_id ORDER BY sensor_id DESC LIMIT 3 OFFSET 1",
             "SELECT sensor_id, ts, temperature FROM readings{w} QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY ts DESC) = 1 ORDER BY sensor_id DESC LIMIT 3 OFFSET 1",
             ["exact"] * 3, True),
            ("SELECT status, count(*), min(ts) FROM readings{w} GROUP BY status HAVING status IS NOT NULL ORDER BY status DESC",
             "SELECT status, count(*), min(ts) FROM readings{w} GROUP BY status HAVING status IS NOT NULL ORDER BY status DESC", ["exact"] * 3, True),
            # HAVING names a key by its text: mare has no output aliases there (DuckDB does).
            ("SELECT time_bucket('1h', ts) AS h, count(*) FROM readings{w} GROUP BY h HAVING time_bucket('1h', ts) >= TIMESTAMP '%s' ORDER BY h"
             % reading_time(t, 2),
             "SELECT time_bucket(INTERVAL '1 hour', ts) AS h, count(*) FROM readings{w} GROUP BY h HAVING h >= TIMESTAMP '%s' ORDER BY h" % reading_time(t, 2),
             ["exact"] * 2, True),
            ("SELECT ts, sensor_id, lat, lon FROM readings{w} AND lat IS NOT NULL ORDER BY distance_km(lat, lon, 42.5, 3.15), ts LIMIT 5",
             "SELECT ts, sensor_id, lat, lon FROM readings{w} AND lat IS NOT NULL ORDER BY %s, ts LIMIT 5" % duck_distance("lat", "lon", 42.5, 3.15),
             ["exact"] * 4, True),
        ]
        m, d, kinds, ordered = rng.choice(templates)
        if not wm:
            wm, wd = " WHERE TRUE", " WHERE TRUE"
        return Query(m.replace("{w}", wm), d.replace("{w}", wd), kinds, ordered, "misc")

    SHAPES = [("q_global", 50), ("q_by_sensor", 40), ("q_by_bucket", 70), ("q_by_bucket_sensor", 40), ("q_by_other_key", 25),
              ("q_top", 20), ("q_rows", 35), ("q_top_rows", 8), ("q_keys_only", 10), ("q_star", 8), ("q_latest", 22),
              ("q_misc", 25)]

    def queries(self, n):
        names = [name for name, w in self.SHAPES for _ in range(w)]
        return [getattr(self, self.rng.choice(names))() for _ in range(n)]


def duck_distance(lat1, lon1, lat2, lon2):
    """distance_km (haversine, R = 6371.0088 km) in DuckDB SQL, term for term as mare computes it.
    Not least(1.0, ...): DuckDB's least() skips NULLs, where mare's distance of a NULL is NULL."""
    rad = "(pi() / 180)"
    root = (f"sqrt(pow(sin(({lat2} - {lat1}) * {rad} / 2), 2) + "
            f"cos({lat1} * {rad}) * cos({lat2} * {rad}) * pow(sin(({lon2} - {lon1}) * {rad} / 2), 2))")
    return f"(2 * 6371.0088 * asin(CASE WHEN {root} > 1 THEN 1.0 ELSE {root} END))"


# ---- comparing ------------------------------------------------------------------------------

def same(a, b, kind, bound=None):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if kind == "exact":
        return a == b
    allowed = max(1e-9 * max(abs(a), abs(b)), 1e-12)
    if bound is not None and bound[0] is not None:
        # A few ulps of the largest value per sqrt(n) rounding steps (see Query).
        allowed = max(allowed, 4 * 2.0 ** -52 * bound[0] * math.sqrt(bound[1]))
    return abs(a - b) <= allowed


def split_bounds(row, kinds):
    """DuckDB's row without the extra columns, and the (max |x|, n) bound of each column."""
    n = len(kinds)
    bounds, extra = [], n
    for k in kinds:
        if isinstance(k, tuple):
            bounds.append((row[extra], row[extra + 1]))
            extra += 2
        else:
            bounds.append(None)
    return row[:n], bounds


def sort_key(row, kinds):
    # Exact columns first: they are equal on both sides, so both sides sort alike.
    order = [i for i, k in enumerate(kinds) if k == "exact"] + [i for i, k in enumerate(kinds) if k != "exact"]
    return [(1, 0) if row[i] is None else (0, row[i]) for i in order]


def compare(q, got, want):
    """A description of the differences, or None."""
    extras = 2 * sum(isinstance(k, tuple) for k in q.kinds)
    if len(got) > 0 and len(got[0]) != len(q.kinds) or len(want) > 0 and len(want[0]) != len(q.kinds) + extras:
        return f"column count: mare {len(got[0]) if got else '-'}, duckdb {len(want[0]) if want else '-'}, expected {len(q.kinds)}"
    if not q.ordered:
        got = sorted(got, key=lambda r: sort_key(r, q.kinds))
        want = sorted(want, key=lambda r: sort_key(r[:len(q.kinds)], q.kinds))
    want_bounds = [split_bounds(w, q.kinds) for w in want]
    want = [w for w, _ in want_bounds]
    diffs = []
    if len(got) != len(want):
        diffs.append(f"row count: mare {len(got)}, duckdb {len(want)}")
    for i, (g, (w, bounds)) in enumerate(zip(got, want_bounds)):
        if not all(same(a, b, k, bound) for a, b, k, bound in zip(g, w, q.kinds, bounds)):
            diffs.append(f"row {i}: mare {g}\n          duckdb {w}")
        if len(diffs) >= 6:
            break
    if len(got) != len(want) and len(diffs) < 6:
        gs = {json.dumps(r) for r in got}
        ws = {json.dumps(r) for r in want}
        for r in sorted(gs - ws)[:3]:
            diffs.append(f"only in mare: {r}")
        for r in sorted(ws - gs)[:3]:
            diffs.append(f"only in duckdb: {r}")
    return "\n    ".join(diffs) if diffs else None


# ---- the test -------------------------------------------------------------------------------

def test_sql_matches_duckdb(tmp_path):
    began = time.monotonic()
    rng = random.Random(SEED)
    readings = generate(rng)
    archive, live = split_live(readings, rng)
    readings = archive + live  # as mare gets them: wind_speed only ever arrives live
    assert len(archive) > 20_000 and len(live) > 3_000, (len(archive), len(live))

    # DuckDB: every reading, from one CSV with explicit types.
    all_csv = tmp_path / "all.csv"
    write_csv(all_csv, readings, CSV_FIELDS + LIVE_FIELDS, rng, perturb=False)
    con = duckdb.connect()
    types = {"ts": "TIMESTAMP", "sensor_id": "BIGINT", "status": "VARCHAR"}
    columns = {c: types.get(c, "DOUBLE") for c in ["ts", "sensor_id"] + CSV_FIELDS + LIVE_FIELDS + ["lat", "lon"]}
    con.execute(f"CREATE TABLE readings AS SELECT * FROM read_csv('{all_csv}', header = true, columns = {columns!r}, "
                "quote = '\"', escape = '\"')")
    assert con.execute("SELECT count(*) FROM readings").fetchone()[0] == len(readings)

    # mare: the archive imported into segments ...
    data = tmp_path / "data"
    archive_csv = tmp_path / "archive.csv"
    write_csv(archive_csv, archive, CSV_FIELDS, rng, perturb=True)
    mare("import", archive_csv, "--data-dir", data, "--quiet")

    # ... and the rest live: the first part past flush_rows (flushed to segments), the
    # second part short of it (left in the memtable; flush_interval keeps it there).
    live_sorted = sorted(live, key=lambda r: r["ts"])
    for _ in range(len(live_sorted) // 100):  # some out of order
        i, j = rng.randrange(len(live_sorted)), rng.randrange(len(live_sorted))
        live_sorted[i], live_sorted[j] = live_sorted[j], live_sorted[i]
    part_b = live_sorted[: len(live_sorted) * 35 // 100]
    part_a = live_sorted[len(part_b):]
    flush_rows = (len(part_a) + len(part_b)) // 2 + 1
    run = MareRun(data, extra=["sources.udp.enabled=false", "sources.tcp.enabled=false", "rollup.enabled=false",
                               f"store.flush_rows={flush_rows}", 'store.flush_interval="1h"'])
    with run:
        client = Client(run.http_port)

        def wait_for(count):
            deadline = time.monotonic() + 30
            while True:
                status, answer = client.query("SELECT count(*) FROM readings")
                assert status == 200, answer
                if answer["rows"][0][0] == count:
                    return answer
                assert time.monotonic() < deadline, f"the store has {answer['rows'][0][0]} readings, expected {count}"
                time.sleep(0.05)

        wait_for(len(archive))
        for part, done, most in ((part_a, len(archive) + len(part_a), 2000), (part_b, len(readings), 60)):
            # Part B in many small requests, as stations send them: the store reads many small
            # batches, each parsed into the buffer the one before used.
            lines = [ndjson(r, rng) for r in part]
            i = 0
            while i < len(lines):
                n = rng.randint(1, most)
                client.post(lines[i:i + n])
                i += n
            answer = wait_for(done)
        stats = answer["stats"]
        assert stats["memtable_rows"] > 0 and stats["blocks_from_stats"] > 0, stats

        # The columns of SELECT *, in mare's order, for DuckDB's side.
        status, answer = client.query("SELECT * FROM readings LIMIT 1")
        assert status == 200, answer
        star = [c["name"] for c in answer["columns"]]
        assert sorted(star) == sorted(columns), star

        gen = Gen(rng, readings, star)
        queries = gen.queries(QUERIES)
        mismatches, errors = [], []
        shapes = {}
        paths = {"blocks_skipped": 0, "blocks_from_stats": 0, "blocks_decoded": 0, "memtable_rows": 0}
        for n, q in enumerate(queries):
            shapes[q.shape] = shapes.get(q.shape, 0) + 1
            status, answer = client.query(q.mare)
            try:
                want = duck_rows(con, q.duck)
            except duckdb.Error as e:
                errors.append(f"query {n} ({q.shape}): DuckDB refused its side: {e}\n  mare:   {q.mare}\n  duckdb: {q.duck}")
                continue
            if status != 200:
                errors.append(f"query {n} ({q.shape}): mare answered HTTP {status}: {answer.get('error')}\n  mare:   {q.mare}")
                continue
            for k in paths:
                paths[k] += answer["stats"][k]
            diff = compare(q, mare_rows(answer), want)
            if diff:
                mismatches.append(f"query {n} ({q.shape}):\n  mare:   {q.mare}\n  duckdb: {q.duck}\n    {diff}")
        elapsed = time.monotonic() - began
        print(f"seed {SEED}: {len(queries)} queries ({', '.join(f'{k} {v}' for k, v in sorted(shapes.items()))}) over {len(readings)} readings "
              f"({len(live)} live) in {elapsed:.1f} s: {len(mismatches)} mismatches, {len(errors)} errors; {paths}")
        problems = errors + mismatches
        client.conn.close()  # or the server waits out its keep-alive when mare stops
        # Every way of reading must have been taken: blocks skipped, answered from their
        # statistics, decoded, and memtable rows.
        assert all(v > 0 for v in paths.values()), paths
        assert not problems, f"seed {SEED}: {len(errors)} errors, {len(mismatches)} mismatches of {len(queries)} queries:\n\n" + "\n\n".join(problems[:15])
