#!/usr/bin/env python3
"""Issue 14's forecast targets, one run, one table: on the four real hourly series of
../shared/data/ (three NDBC buoys, five years of Beijing's airport), mare's day-ahead MAE
(`mare forecast backtest --format json`, what it selects per series: its ensemble or the local ridge) against persistence, the last value and
the best naive baseline, and against statsforecast (AutoETS, AutoARIMA, MSTL, SeasonalNaive,
season 24) over the very same rolling origins and judged hours; the fit + forecast time per
series of each; the 80 % intervals' coverage; and the throughput of forecast_refresh_bench.

Origins and scoring are mare's backtest's (docs/forecast.md): one origin per UTC day at 00:00
from the 8th day on, 24 hours forecast from the hours before it only, every observed hour of
the day judged. The script rebuilds each hourly series itself (the mean of the readings of each
UTC hour) and recomputes persistence and the last value from it: their MAE and hour count must
equal the backtest's, which checks that both sides judge the same hours.

statsforecast refits each model's parameters once a week (every 7th origin) on the 28 days
before the origin, and at every origin applies them (`forward`) to the 28 days before it
(AutoARIMA: every 14th origin, on 14 days, with approximation=True; its exact search takes 7 to
70 s per fit, too slow for 2,900 origins):
statsforecast's models need no missing hours, so gaps are filled by linear interpolation
(mare's models read the gaps as missing). mare refits every model at every origin.
Times are wall seconds on one thread (NUMBA/OpenMP/BLAS threads 1), printed with the load average.

Usage: bench/forecast.py [--build DIR] [--data DIR] [--refit-days N] [--window-days N]
                         [--series NAME,...] [--refresh-series N] [--skip-refresh]"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import warnings  # noqa: E402

from peer_python import run_under_peer_venv  # noqa: E402

# statsforecast 2.1.1 lives in a venv of its own (scripts/setup-bench.sh): the whole run goes there.
run_under_peer_venv("statsforecast", ["statsforecast"])

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", message="possible convergence problem")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name, file, field for mare, numpy loader column, UTC offset (hours), land?
SERIES = [
    ("44005", "ndbc_44005_2012.txt", "temperature", "ATMP", 0, False),
    ("44014", "ndbc_44014_2018.txt", "temperature", "ATMP", 0, False),
    ("42040", "ndbc_42040_2015.txt", "temperature", "ATMP", 0, False),
    ("beijing", "beijing_airport_2010_2014.csv", "temp", "TEMP", 8, True),
]
HORIZON = 24
FITTED = ("AutoETS", "AutoARIMA", "MSTL")  # the statsforecast models with parameters to fit
MIN_HISTORY_DAYS = 7


# ---------------------------------------------------------------- the hourly series

def hourly_means(times, values):
    """(first_hour, array of hourly means with NaN for empty hours) from epoch seconds."""
    hours = np.floor_divide(np.asarray(times, dtype=np.int64), 3600)
    first = int(hours.min())
    n = int(hours.max()) - first + 1
    sums = np.zeros(n)
    counts = np.zeros(n)
    np.add.at(sums, hours - first, values)
    np.add.at(counts, hours - first, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return first, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def load_ndbc(path, column):
    import calendar
    times, values = [], []
    col = None
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].isdigit():
                if col is None and parts[0].lstrip("#") == "YY":
                    col = parts.index(column)
                continue
            v = float(parts[col])
            if v >= 99:  # NDBC writes missing values as runs of 9s (999.0 for ATMP)
                continue
            y, mo, d, h, mi = (int(p) for p in parts[:5])
            times.append(calendar.timegm((y, mo, d, h, mi, 0)))
            values.append(v)
    return hourly_means(times, np.array(values))


def load_beijing(path, column, utc_offset_hours):
    import calendar
    import csv
    times, values = [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row[column] == "":
                continue
            t = calendar.timegm((int(row["year"]), int(row["month"]), int(row["day"]), int(row["hour"]), 0, 0))
            times.append(t - utc_offset_hours * 3600)
            values.append(float(row[column]))
    return hourly_means(times, np.array(values))


def origins_of(first_hour, n):
    """mare's backtest's origins (hours since the epoch): 00:00 UTC of every day with 7 days before it."""
    end_hour = first_hour + n
    first_day = -(-(first_hour + 24 * MIN_HISTORY_DAYS) // 24)
    end_day = -(-end_hour // 24)
    return [day * 24 for day in range(first_day, end_day)]


# ---------------------------------------------------------------- naive baselines, recomputed

def last_value(y, first, origin, max_age=168):
    for h in range(origin - 1, max(origin - max_age, first) - 1, -1):
        v = y[h - first]
        if not math.isnan(v):
            return v
    return math.nan


def at(y, first, hour):
    i = hour - first
    return y[i] if 0 <= i < len(y) else math.nan


def naive_forecasts(y, first, origin):
    last = last_value(y, first, origin)
    pers = []
    for i in range(HORIZON):
        v = at(y, first, origin + i - 24 * (i // 24 + 1))
        pers.append(last if math.isnan(v) else v)
    return np.array(pers), np.full(HORIZON, last)


# ---------------------------------------------------------------- statsforecast

def filled(window):
    """Linear interpolation over missing hours, the ends held: statsforecast needs no gaps."""
    w = window.copy()
    ok = ~np.isnan(w)
    if ok.sum() == 0:
        return None
    idx = np.arange(len(w))
    w[~ok] = np.interp(idx[~ok], idx[ok], w[ok])
    return w


def peer_models(args):
    """name -> (make, days of history it is fitted and applied on, refit every N origins)."""
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, SeasonalNaive
    # AutoARIMA with a season of 24 takes 7 to 70 s per fit on 14 days (statsforecast's exact
    # search): the approximation (CSS while searching, as R's auto.arima does by default on long
    # series) brings it to 1-3 s, on 14 days, refitted every 14 origins.
    return {
        "AutoETS": (lambda: AutoETS(season_length=24), args.window_days, args.refit_days),
        "AutoARIMA": (lambda: AutoARIMA(season_length=24, approximation=True), args.arima_window_days, args.arima_refit_days),
        "MSTL": (lambda: MSTL(season_length=24), args.window_days, args.refit_days),
        "SeasonalNaive": (lambda: SeasonalNaive(season_length=24), args.window_days, args.refit_days),
    }


def warm_up(makers):
    """Numba compiles statsforecast's kernels on first use: not part of any series' time."""
    t = np.arange(24 * 14)
    y = 10 + np.sin(t * 2 * np.pi / 24) + 0.1 * np.cos(t * 0.37)
    for make, _, _ in makers.values():
        m = make()
        m.fit(y)
        m.forward(y=y, h=HORIZON, level=[80])
        m.predict(h=HORIZON, level=[80])


def run_peer(y, first, origins, judged, makers, progress):
    """Per peer model: forecasts (n_origins x 24), lo/hi 80 %, fit + forecast seconds, fits done."""
    out = {}
    for name, (make, window_days, refit_days) in makers.items():
        window = 24 * window_days
        mean = np.full((len(origins), HORIZON), np.nan)
        lo = np.full_like(mean, np.nan)
        hi = np.full_like(mean, np.nan)
        seconds = fit_seconds = 0.0
        fits = 0
        model = None
        for k, origin in enumerate(origins):
            start = max(origin - window, first)
            w = filled(y[start - first:origin - first])
            if w is None or len(w) < 48 or not judged[k].any():
                continue
            t0 = time.perf_counter()
            try:
                if model is None or k % refit_days == 0:
                    model = make()
                    model.fit(w)
                    fits += 1
                    f = model.predict(h=HORIZON, level=[80])
                    fit_seconds += time.perf_counter() - t0
                else:
                    f = model.forward(y=w, h=HORIZON, level=[80])
            except Exception as e:  # a failed fit leaves the origin to the next refit
                print(f"forecast.py: {name} at origin {origin}: {e}", file=sys.stderr)
                model = None
                seconds += time.perf_counter() - t0
                continue
            seconds += time.perf_counter() - t0
            mean[k] = f["mean"]
            lo[k] = f["lo-80"]
            hi[k] = f["hi-80"]
            if progress and k % 100 == 0:
                print(f"forecast.py:   {name} origin {k + 1} of {len(origins)}", file=sys.stderr)
        out[name] = dict(mean=mean, lo=lo, hi=hi, seconds=seconds, fits=fits, fit_seconds=fit_seconds)
    return out


# ---------------------------------------------------------------- the run

def loadavg():
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def mare_backtest(mare, path, field, utc_offset):
    cmd = [mare, "forecast", "backtest", path, "--field", field, "--format", "json", "--quiet"]
    if utc_offset:
        cmd += ["--utc-offset", f"+{utc_offset:02d}:00"]
    load = loadavg()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    series = json.loads(out.stdout)["series"]
    assert len(series) == 1, f"{path}: expected one sensor, got {len(series)}"
    return series[0], load


def refresh_bench(build, n_series):
    binary = os.path.join(build, "bin", "forecast_refresh_bench")
    if not os.path.exists(binary):
        binary = os.path.join(build, "bench", "forecast_refresh_bench")
    load = loadavg()
    out = subprocess.run(["taskset", "-c", "0", binary, str(n_series)], capture_output=True, text=True, check=True)
    return out.stdout, load


def mark(ok):
    return "met" if ok else "MISSED"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    # ../shared/data beside the repository (or beside the folder of worktrees it is in).
    shared = [os.path.join(ROOT, *[".."] * up, "shared", "data") for up in (1, 2)]
    ap.add_argument("--data", default=next((d for d in shared if os.path.isdir(d)), shared[0]))
    ap.add_argument("--refit-days", type=int, default=7, help="statsforecast refits every N origins (default 7)")
    ap.add_argument("--window-days", type=int, default=28, help="days of history statsforecast fits and forwards on")
    ap.add_argument("--arima-refit-days", type=int, default=14, help="AutoARIMA refits every N origins (default 14)")
    ap.add_argument("--arima-window-days", type=int, default=14, help="days of history AutoARIMA fits and forwards on")
    ap.add_argument("--series", default=",".join(s[0] for s in SERIES))
    ap.add_argument("--refresh-series", type=int, default=1000, help="series forecast_refresh_bench runs (projected to 10,000)")
    ap.add_argument("--skip-refresh", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    mare = os.path.join(args.build, "bin", "mare")
    data = os.path.abspath(args.data)
    if not os.path.isdir(data):
        sys.exit(f"forecast.py: no data directory {data} (the shared real series; --data DIR)")
    wanted = set(args.series.split(","))
    makers = peer_models(args)
    warm_up(makers)

    rows = []
    for name, fname, field, column, offset, land in SERIES:
        if name not in wanted:
            continue
        path = os.path.join(data, fname)
        if not args.quiet:
            print(f"forecast.py: {name}: mare forecast backtest", file=sys.stderr)
        report, mare_load = mare_backtest(mare, path, field, offset)
        if fname.endswith(".csv"):
            first, y = load_beijing(path, column, offset)
        else:
            first, y = load_ndbc(path, column)
        origins = origins_of(first, len(y))
        # Judged hours: observed, with a forecast (the backtest's rule). Persistence and the
        # last value are recomputed here and must match the backtest's to the last digit.
        actual = np.full((len(origins), HORIZON), np.nan)
        pers = np.full_like(actual, np.nan)
        last = np.full_like(actual, np.nan)
        for k, origin in enumerate(origins):
            actual[k] = [at(y, first, origin + i) for i in range(HORIZON)]
            pers[k], last[k] = naive_forecasts(y, first, origin)
        judged = ~np.isnan(actual) & ~np.isnan(pers)
        models = {m["model"]: m for m in report["models"]}
        n_judged = int(judged.sum())
        own = {"persistence": np.abs(pers - actual)[judged].mean(), "last_value": np.abs(last - actual)[judged].mean()}
        for m in ("persistence", "last_value"):
            if models[m]["hours"] != n_judged or abs(models[m]["mae"] - own[m]) > 1e-9:
                sys.exit(f"forecast.py: {name}: {m} differs from the backtest's: {own[m]:.12f} over {n_judged} hours "
                         f"against {models[m]['mae']:.12f} over {models[m]['hours']}: origins or scoring do not match")
        if not args.quiet:
            print(f"forecast.py: {name}: statsforecast on {len(origins)} origins", file=sys.stderr)
        peer_load = loadavg()
        peers = run_peer(y, first, origins, judged, makers, not args.quiet)
        peer_scores = {}
        for pname, p in peers.items():
            ok = judged & ~np.isnan(p["mean"])
            # An origin a peer model could not forecast is judged on persistence's forecast.
            mean = np.where(np.isnan(p["mean"]), pers, p["mean"])
            cover = ((actual >= p["lo"]) & (actual <= p["hi"]))[ok]
            peer_scores[pname] = dict(mae=np.abs(mean - actual)[judged].mean(), coverage=cover.mean() if cover.size else math.nan,
                                      seconds=p["seconds"], fits=p["fits"], per_fit=p["fit_seconds"] / max(p["fits"], 1), missing=int((judged & np.isnan(p["mean"])).sum()))
        rows.append(dict(name=name, land=land, report=report, models=models, peers=peer_scores, days=len(origins),
                         hours=n_judged, mare_load=mare_load, peer_load=peer_load))

    refresh = None
    if not args.skip_refresh:
        if not args.quiet:
            print(f"forecast.py: forecast_refresh_bench {args.refresh_series}", file=sys.stderr)
        refresh = refresh_bench(args.build, args.refresh_series)

    print_table(rows, refresh, args)


def issued(models):
    """What mare issues: the per-series selection (the ensemble or the local ridge), "selected"
    in the backtest's JSON; the ensemble in a build from before it."""
    return "selected" if "selected" in models else "ensemble"


def print_table(rows, refresh, args):
    print(f"Day-ahead hourly temperature forecasts (issued 00:00 UTC for the next 24 h, one origin per day from the "
          f"8th, each from the hours before it only; judged on every observed hour). mare: what "
          f"`mare forecast backtest` selects per series and origin (the ensemble or the local ridge), every model refitted at every origin. statsforecast "
          f"{__import__('statsforecast').__version__}: AutoETS, AutoARIMA, MSTL, SeasonalNaive (season 24), "
          f"refitted every {args.refit_days} origins on the {args.window_days} days before, applied (forward) at every "
          f"origin to the {args.window_days} days before it (AutoARIMA: approximation=True, every {args.arima_refit_days} "
          f"origins, {args.arima_window_days} days), gaps interpolated. Same origins, same judged hours (checked: "
          f"persistence and last value recomputed here equal the backtest's). Seconds: wall, one thread, "
          f"fit + forecast of all origins; per origin = one series' fit + forecast. MAE in degrees C.")
    print()
    hdr = (f"{'series':<8} {'days':>5} {'hours':>6} {'persist':>7} {'last':>6} {'naive*':>14} {'mare':>6} "
           f"{'mare/pers':>9} {'mare/naive':>10} {'ETS':>6} {'ARIMA':>6} {'MSTL':>6} {'SNaive':>6} {'best sf':>10} "
           f"{'mare/sf':>7} {'cover mare':>10} {'cover sf*':>9}")
    print(hdr)
    for r in rows:
        m = r["models"]
        best_naive = r["report"]["best_naive"]
        ens = m[issued(m)]["mae"]
        p = r["peers"]
        best_sf = min(p, key=lambda k: p[k]["mae"])
        print(f"{r['name']:<8} {r['days']:>5} {r['hours']:>6} {m['persistence']['mae']:>7.3f} {m['last_value']['mae']:>6.3f} "
              f"{best_naive + ' ' + format(m[best_naive]['mae'], '.3f'):>14} {ens:>6.3f} "
              f"{ens / m['persistence']['mae']:>9.3f} {ens / m[best_naive]['mae']:>10.3f} "
              f"{p['AutoETS']['mae']:>6.3f} {p['AutoARIMA']['mae']:>6.3f} {p['MSTL']['mae']:>6.3f} {p['SeasonalNaive']['mae']:>6.3f} "
              f"{best_sf:>10} {ens / p[best_sf]['mae']:>7.3f} {m[issued(m)]['coverage']:>10.3f} {p[best_sf]['coverage']:>9.3f}")
    print("naive* = the best of mare's naive baselines (persistence, last value, 7-day climatology); cover sf* = the best "
          "statsforecast model's own 80 % interval")
    for r in rows:
        m = r["models"]
        if "selected" in m:
            rep = r["report"]
            weights = ", ".join(f"{w}: {d}" for w, d in rep.get("selected_weight_days", {}).items())
            print(f"  {r['name']}: the local ridge's weight in what is issued (days): {weights}; "
                  f"MAE / persistence: ensemble {m['ensemble']['mae'] / m['persistence']['mae']:.4f}, "
                  f"ridge {m['ridge']['mae'] / m['persistence']['mae']:.4f}, local ridge "
                  f"{m['local_ridge']['mae'] / m['persistence']['mae']:.4f}, selected {m['selected']['mae'] / m['persistence']['mae']:.4f}")
    for r in rows:
        missing = {k: v["missing"] for k, v in r["peers"].items() if v["missing"]}
        if missing:
            print(f"  {r['name']}: hours judged on persistence because a statsforecast model had no forecast: {missing}")
    print()
    print(f"{'series':<8} {'mare s':>7} {'per origin':>10} {'load':>15}   "
          + " ".join(f"{k + ' s (fits)':>18}" for k in ("AutoETS", "AutoARIMA", "MSTL", "SeasonalNaive"))
          + f" {'best fitted sf':>14} {'per fit':>9} {'per fit/mare':>12} {'load':>15}")
    for r in rows:
        ms = sum(x["seconds"] for x in r["report"]["models"])
        p = r["peers"]
        best_sf = min(FITTED, key=lambda k: p[k]["mae"])
        per_origin = ms / r["days"]
        print(f"{r['name']:<8} {ms:>7.2f} {per_origin * 1e3:>7.2f} ms {r['mare_load']:>15}   "
              + " ".join(f"{p[k]['seconds']:>11.1f} ({p[k]['fits']:>4})" for k in ("AutoETS", "AutoARIMA", "MSTL", "SeasonalNaive"))
              + f" {best_sf:>14} {p[best_sf]['per_fit'] * 1e3:>6.0f} ms {p[best_sf]['per_fit'] / per_origin:>11.0f}x {r['peer_load']:>15}")
    print("mare s: the backtest's fit + forecast seconds, all origins, all its models and the ensemble (reading the "
          "archive left out); per origin: one series' fit + forecast (every model refitted). statsforecast: seconds "
          "over all origins (fits + forwards) and the number of fits; per fit: the mean fit + 24 h forecast of one "
          "series by the most accurate statsforecast model that fits (AutoETS, AutoARIMA or MSTL); load: the 1, 5, 15-minute load average when each started (2 cores, shared)")
    print()
    print("Targets (issue 14)")
    for r in rows:
        m = r["models"]
        ens = m[issued(m)]["mae"]
        best_naive = m[r["report"]["best_naive"]]["mae"]
        pers = m["persistence"]["mae"]
        if r["land"]:
            print(f"  {r['name']:<8} MAE <= 0.75 x persistence: {ens:.3f} / {pers:.3f} = {ens / pers:.3f}  {mark(ens <= 0.75 * pers)}")
        else:
            print(f"  {r['name']:<8} MAE <= 0.95 x best naive ({r['report']['best_naive']}): {ens:.3f} / {best_naive:.3f} = "
                  f"{ens / best_naive:.3f}  {mark(ens <= 0.95 * best_naive)}")
        print(f"  {r['name']:<8} never worse than the best naive: {ens:.3f} vs {best_naive:.3f}  {mark(ens <= best_naive)}")
        p = r["peers"]
        best_sf = min(p, key=lambda k: p[k]["mae"])
        sf = p[best_sf]["mae"]
        print(f"  {r['name']:<8} MAE <= 1.02 x statsforecast's best ({best_sf}): {ens:.3f} / {sf:.3f} = {ens / sf:.3f}  "
              f"{mark(ens <= 1.02 * sf)}")
        ms = sum(x["seconds"] for x in r["report"]["models"])
        # SeasonalNaive has nothing to fit: the speed is judged against the best model that fits.
        fitted = min(FITTED, key=lambda k: p[k]["mae"])
        ratio = p[fitted]["per_fit"] / (ms / r["days"])
        print(f"  {r['name']:<8} fit + forecast of one series >= 100x faster than {fitted}'s (the most accurate "
              f"statsforecast model that fits): {ratio:.0f}x  {mark(ratio >= 100)}"
              f"  (load {r['peer_load']})")
        cov = m[issued(m)]["coverage"]
        print(f"  {r['name']:<8} 80 % interval covers 75-85 %: {cov:.1%} of {m[issued(m)]['interval_hours']} hours  "
              f"{mark(0.75 <= cov <= 0.85)}")
    if refresh is not None:
        text, load = refresh
        line = [ln for ln in text.splitlines() if ln.strip()]
        print(f"  throughput (forecast_refresh_bench {args.refresh_series}, taskset one core, load {load}):")
        for ln in line:
            print(f"    {ln}")
        worst = next((ln for ln in line if ln.startswith("worst hour")), "")
        seconds = float(worst.split(":")[1].split()[0]) if worst else math.inf
        print(f"  throughput: the hourly refresh of 10,000 series in under 10 s on one core: {seconds:.2f} s (the "
              f"slowest hour, projected from {args.refresh_series:,} series)  {mark(seconds < 10)}  (load {load})")
        print("  (a forecast in the topic within 1 s of its hour closing: not measured by this script)")


if __name__ == "__main__":
    main()
