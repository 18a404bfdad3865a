#!/usr/bin/env python3
"""A numpy copy of the forecast ridge (src/processors/forecast/ridge.cc) on Beijing's five years
(../shared/data/beijing_airport_2010_2014.csv), refitted every STEP-th day (7) rather than at every
origin: to try the ridge's settings and features in seconds rather than a backtest's minutes.
It gives Beijing's ridge 0.7629x persistence where `mare forecast backtest` printed 0.761x (both
with lambda 2 and two years), so compare variants with each other, and confirm with the backtest.

Settings by environment: LAM (lambda), WIN (training days), SIG (season sigma, days), IT
(reweightings), STEP, POOL (also train on leads +-POOL, weighed PW), FEAT (a bitmask of extra
features: 1 the last value's 24 h change, 2 the 7-day mean minus the last value, 8 the 7-day
range, 16 the day before's mean minus the last value, 32 the last 24 h's range squared, 256 each covariate's 3 h tendency).
docs/forecast.md lists what they gave.   Usage: LAM=4 WIN=1460 bench/forecast_ridge_np.py"""
import calendar
import csv
import os
import warnings

import numpy as np
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ../shared/data beside the repository (or beside the folder of worktrees it is in), as forecast.py.
SHARED = [os.path.join(ROOT, *[".."] * up, "shared", "data") for up in (1, 2)]
DATA = os.environ.get("DATA", next((d for d in SHARED if os.path.isdir(d)), SHARED[0]))
rows = list(csv.DictReader(open(os.path.join(DATA, "beijing_airport_2010_2014.csv"))))
ts = np.array([calendar.timegm((int(r['year']), int(r['month']), int(r['day']), int(r['hour']), 0, 0)) - 8*3600 for r in rows]) // 3600
h0 = ts.min(); n = ts.max() - h0 + 1
def ser(key, f=float):
    a = np.full(n, np.nan); a[ts - h0] = [f(r[key]) for r in rows]; return a
y = ser('TEMP'); covs = [ser('DEWP'), ser('PRES'), ser('Iws')]
cats = []
for c in ['NE', 'NW', 'SE', 'cv']:
    a = np.full(n, np.nan); a[ts - h0] = [1.0 if r['cbwd'] == c else 0.0 for r in rows]; cats.append(a)
first_day = (h0 + 24*7 + 23)//24; end_day = (h0 + n + 23)//24
def Y(a, h):  # value at absolute hour h (array of hours)
    i = h - h0; out = np.full(np.shape(h), np.nan); ok = (i >= 0) & (i < n); out[ok] = a[i[ok]]; return out
def mean_over(a, o, lo, hi):  # mean of a[o+lo : o+hi) per origin
    m = np.stack([Y(a, o + k) for k in range(lo, hi)]); return np.nanmean(m, 0)
def range_over(a, o, lo, hi):
    m = np.stack([Y(a, o + k) for k in range(lo, hi)]); return np.nanmax(m, 0) - np.nanmin(m, 0)
FEAT = int(os.environ.get('FEAT', '0'))
days = np.arange(first_day - 740, end_day); O = days * 24
def features(L):
    t = O + L - 1; last = Y(y, O - 1)
    f = [last, Y(y, t - 24) - last, mean_over(y, O, -24, 0) - last,
         np.nanmean(np.stack([Y(y, t - 24*k) for k in range(1, 8)]), 0) - last,
         Y(y, O - 1) - Y(y, O - 4), range_over(y, O, -24, 0)]
    ang = 2*np.pi*t/(24*365.2425); f += [np.sin(ang), np.cos(ang)]
    if FEAT & 1: f.append(last - Y(y, O - 25))
    if FEAT & 2: f.append(mean_over(y, O, -168, 0) - last)
    if FEAT & 8: f.append(range_over(y, O, -168, 0))
    if FEAT & 16: f.append(mean_over(y, O, -48, -24) - last)
    if FEAT & 32: f.append(range_over(y, O, -24, 0)**2)
    for c in covs:
        c0 = Y(c, O - 1); f += [c0, mean_over(c, O, -24, 0), c0 - Y(c, O - 25), c0 - last]
        if FEAT & 0x100: f.append(c0 - Y(c, O - 4))
    for c in cats: f.append(mean_over(c, O, -6, 0))
    return np.stack(f, 1), Y(y, t) - last
np.seterr(all='ignore')
warnings.filterwarnings("ignore")
F = [features(L) for L in range(1, 25)]
LAM = float(os.environ.get('LAM', '2')); WIN = int(os.environ.get('WIN', '730')); SIG = float(os.environ.get('SIG', '60')); IT = int(os.environ.get('IT', '6'))
STEP = int(os.environ.get('STEP', '7'))
k = np.arange(1, WIN + 1); d = np.fmod(k, 365.2425); d = np.minimum(d, 365.2425 - d); season = np.exp(-0.5*(d/SIG)**2)
err = []; perr = []
d0 = np.searchsorted(days, first_day)
for di in range(d0, len(days), STEP):
    for L in range(1, 25):
        X, T = F[L-1]
        lo = max(0, di - WIN); idx = np.arange(di - 1, lo - 1, -1)  # k = 1..
        P = int(os.environ.get('POOL', '0')); Ls = [l for l in range(L-P, L+P+1) if 1 <= l <= 24]
        xs = np.vstack([F[l-1][0][idx] for l in Ls]); ts_ = np.concatenate([F[l-1][1][idx] for l in Ls]); pr = np.concatenate([season[:len(idx)]*(1.0 if l == L else float(os.environ.get('PW','0.5'))) for l in Ls])
        ok = ~np.isnan(ts_) & ~np.isnan(xs[:, 0]); xs, ts_, pr = xs[ok], ts_[ok], pr[ok]
        if len(ts_) < 14: continue
        mu = np.nanmean(xs, 0); sd = np.nanstd(xs, 0); sd[~(sd**2 > 1e-12)] = 0
        z = np.where(np.isnan(xs) | (sd == 0), 0, (xs - mu)/np.where(sd == 0, 1, sd))
        A = np.hstack([z, np.ones((len(z), 1))]); p = np.full(A.shape[1], LAM); p[-1] = 0; w = pr.copy()
        for it in range(IT + 1):
            G = (A.T * w) @ A; G[np.diag_indices_from(G)] += p * w.mean()
            beta = np.linalg.solve(G, A.T @ (w * ts_)); r = np.abs(ts_ - A @ beta)
            w = pr / np.maximum(r, max(0.1*r.mean(), 1e-9))
        for dj in range(di, min(di + STEP, len(days))):
            x = X[dj]; tt = T[dj]
            if np.isnan(tt) or np.isnan(x[0]): continue
            zz = np.where(np.isnan(x) | (sd == 0), 0, (x - mu)/np.where(sd == 0, 1, sd))
            err.append(abs(zz @ beta[:-1] + beta[-1] - tt))
            pv = Y(y, np.array([days[dj]*24 + L - 1 - 24]))[0]; act = tt + x[0]
            perr.append(abs(pv - act))
e = np.mean(err); p = np.nanmean(perr)
print(f"FEAT={FEAT} LAM={LAM} WIN={WIN} SIG={SIG} IT={IT}: ridge MAE {e:.4f} persistence {p:.4f} ratio {e/p:.4f} n={len(err)}")
