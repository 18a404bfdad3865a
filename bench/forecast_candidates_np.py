#!/usr/bin/env python3
"""Candidates for Beijing's day-ahead target (0.75x persistence) on a numpy copy of the ridge
(as bench/forecast_ridge_np.py: the same features, weights and IRLS, refitted every 7th day), each
judged on the same origins and hours as the ridge: analogs (the median change of the K training days
most alike at the origin), a tree model (Debian's python3-xgboost 1.7.4, one thread, seed 0), a
blend fitted on the last W days' errors (stacking), and the ridge weighted by the origin's likeness
(refitted at every judged origin).
docs/forecast.md lists what they gave. Usage: CAND=analog|xgb|stack|local bench/forecast_candidates_np.py
Settings by environment: K (analogs, 40), NT/DEP/ETA/XSTEP (trees: 200, 5, 0.1, refit every 56th
day), W/SH (stacking: 56 days, shrinkage 1), H/EV (local: bandwidth 0.7, every EV-th day judged: 2);
LAG (the likeness of the origins as of LAG hours before them, 0);
the ridge's WIN (training days, 730) and LAM (lambda, 2)."""
import calendar
import csv
import os
import warnings

import numpy as np
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = [os.path.join(ROOT, *[".."] * up, "shared", "data") for up in (1, 2)]
DATA = os.environ.get("DATA", next((d for d in SHARED if os.path.isdir(d)), SHARED[0]))
rows = list(csv.DictReader(open(os.path.join(DATA, "beijing_airport_2010_2014.csv"))))
ts = np.array([calendar.timegm((int(r['year']), int(r['month']), int(r['day']), int(r['hour']), 0, 0)) - 8*3600 for r in rows]) // 3600
h0 = ts.min(); n = ts.max() - h0 + 1
np.seterr(all='ignore')
warnings.filterwarnings("ignore")


def ser(key):
    a = np.full(n, np.nan); a[ts - h0] = [float(r[key]) if r[key] != '' else np.nan for r in rows]; return a


y = ser('TEMP'); covs = [ser('DEWP'), ser('PRES'), ser('Iws')]
cats = []
for c in ['NE', 'NW', 'SE', 'cv']:
    a = np.full(n, np.nan); a[ts - h0] = [1.0 if r['cbwd'] == c else 0.0 for r in rows]; cats.append(a)
first_day = (h0 + 24*7 + 23)//24; end_day = (h0 + n + 23)//24
days = np.arange(first_day - 1470, end_day); O = days * 24


def Y(a, h):
    i = h - h0; out = np.full(np.shape(h), np.nan); ok = (i >= 0) & (i < n); out[ok] = a[i[ok]]; return out


def mean_over(a, o, lo, hi):
    return np.nanmean(np.stack([Y(a, o + k) for k in range(lo, hi)]), 0)


def range_over(a, o, lo, hi):
    m = np.stack([Y(a, o + k) for k in range(lo, hi)]); return np.nanmax(m, 0) - np.nanmin(m, 0)


def features(L, O=O):  # the ridge's features (ridge.cc) for lead L at every origin, and the change to forecast
    t = O + L - 1; last = Y(y, O - 1)
    f = [last, Y(y, t - 24) - last, mean_over(y, O, -24, 0) - last,
         np.nanmean(np.stack([Y(y, t - 24*k) for k in range(1, 8)]), 0) - last,
         Y(y, O - 1) - Y(y, O - 4), range_over(y, O, -24, 0)]
    ang = 2*np.pi*t/(24*365.2425); f += [np.sin(ang), np.cos(ang)]
    for c in covs:
        c0 = Y(c, O - 1); f += [c0, mean_over(c, O, -24, 0), c0 - Y(c, O - 25), c0 - last]
    for c in cats: f.append(mean_over(c, O, -6, 0))
    return np.stack(f, 1), Y(y, t) - last


F = [features(L) for L in range(1, 25)]
X = np.stack([f[0] for f in F], 1)  # origin, lead, feature
T = np.stack([f[1] for f in F], 1)  # origin, lead: the change from the last value
PERS = np.stack([Y(y, O + L - 1 - 24) for L in range(1, 25)], 1) - X[:, :, 0]  # persistence, as a change
d0 = np.searchsorted(days, first_day)
WIN, SIG, LAM, IT = int(os.environ.get('WIN', '730')), 60.0, float(os.environ.get('LAM', '2')), 6
kk = np.arange(1, WIN + 1); dd = np.fmod(kk, 365.2425); dd = np.minimum(dd, 365.2425 - dd)
SEASON = np.exp(-0.5*(dd/SIG)**2)
# The origin's features the analogs and the local weights compare (the lead-independent ones but
# the last value: the 24 h mean and range, the 3 h tendency, the season, the dew point's 24 h
# change and depression, the pressure's 24 h change, the cumulated wind speed minus the
# temperature, the wind classes' shares).
LIKE = [2, 4, 5, 6, 7, 10, 11, 14, 19, 20, 21, 22, 23]
# As of LAG hours before the origin (1: the hours before 23:00, which the processor has once
# 22:00 has closed, so that it could fit ahead as it does leads 1-23).
LAG = int(os.environ.get("LAG", "0"))
ZLIKE = features(1, O - LAG)[0][:, LIKE]


def fit(xs, t, prior):
    """The ridge's IRLS fit: (mean, scale, beta)."""
    mu = np.nanmean(xs, 0); sd = np.nanstd(xs, 0); sd[~(sd**2 > 1e-12)] = 0
    z = np.where(np.isnan(xs) | (sd == 0), 0, (xs - mu)/np.where(sd == 0, 1, sd))
    A = np.hstack([z, np.ones((len(z), 1))]); p = np.full(A.shape[1], LAM); p[-1] = 0; w = prior.copy()
    for _ in range(IT + 1):
        G = (A.T * w) @ A; G[np.diag_indices_from(G)] += p * w.mean()
        beta = np.linalg.solve(G, A.T @ (w * t)); r = np.abs(t - A @ beta)
        w = prior / np.maximum(r, max(0.1*r.mean(), 1e-9))
    return mu, sd, beta


def apply(model, x):
    mu, sd, beta = model
    z = np.where(np.isnan(x) | (sd == 0), 0, (x - mu)/np.where(sd == 0, 1, sd))
    return z @ beta[:-1] + beta[-1]


def training(di, L, extra=None):
    idx = np.arange(di - 1, max(0, di - WIN) - 1, -1)  # k = 1, 2, ... days back
    xs, t, pr = X[idx, L-1], T[idx, L-1], SEASON[:len(idx)].copy()
    if extra is not None: pr *= extra
    ok = ~np.isnan(t) & ~np.isnan(xs[:, 0])
    return xs[ok], t[ok], pr[ok], idx


def ridge(step=7):
    pred = np.full(T.shape, np.nan)
    for di in range(d0, len(days), step):
        for L in range(1, 25):
            xs, t, pr, _ = training(di, L)
            if len(t) < 14: continue
            pred[di:di + step, L-1] = apply(fit(xs, t, pr), X[di:di + step, L-1])
    return pred


def likeness(di, idx):
    z = ZLIKE; tr = z[idx]; mu = np.nanmean(tr, 0); sd = np.nanstd(tr, 0); sd[sd < 1e-9] = 1
    return (np.nan_to_num((tr - z[di]) / sd)**2).mean(1)


def analogs(k):
    out = np.full(T.shape, np.nan)
    for di in range(d0, len(days)):
        idx = np.arange(di - 2, max(0, di - WIN) - 1, -1)  # every lead of day di - 2 is before di's origin
        dist = likeness(di, idx); dist[np.isnan(T[idx]).all(1) | np.isnan(X[idx, 0, 0])] = np.inf
        out[di] = np.nanmedian(T[idx[np.argsort(dist, kind='stable')[:k]]], 0)
    return out


def trees(nt, depth, eta, step):
    import xgboost
    xx = np.concatenate([X, np.broadcast_to(np.arange(1.0, 25)[None, :, None], (len(days), 24, 1))], 2)
    params = dict(objective='reg:squarederror', max_depth=depth, eta=eta, min_child_weight=5,
                  tree_method='hist', nthread=1, seed=0)
    out = np.full(T.shape, np.nan)
    for di in range(d0, len(days), step):  # one model for the 24 leads, the lead a feature
        xs = xx[max(0, di - WIN):di].reshape(-1, xx.shape[2]); t = T[max(0, di - WIN):di].reshape(-1)
        ok = ~np.isnan(t) & ~np.isnan(xs[:, 0])
        b = xgboost.train(params, xgboost.DMatrix(xs[ok], label=t[ok]), nt)
        out[di:di + step] = b.predict(xgboost.DMatrix(xx[di:di + step].reshape(-1, xx.shape[2]))).reshape(-1, 24)
    return out


def report(ok, named):
    p = np.mean(np.abs(PERS - T)[ok])
    print("persistence MAE %.4f, hours %d; MAE / persistence: " % (p, ok.sum())
          + ", ".join("%s %.4f" % (name, np.mean(np.abs(f - T)[ok]) / p) for name, f in named))


cand = os.environ.get("CAND", "analog")
R = ridge()
base = ~np.isnan(R) & ~np.isnan(T) & ~np.isnan(PERS)
if cand == "analog":
    A = analogs(int(os.environ.get("K", "40"))); ok = base & ~np.isnan(A)
    report(ok, [("ridge", R), ("analogs", A)] + [("ridge + %.0f %% analogs" % (100*a), (1-a)*R + a*A) for a in (0.1, 0.2, 0.3)])
elif cand == "xgb":
    G = trees(int(os.environ.get("NT", "200")), int(os.environ.get("DEP", "5")), float(os.environ.get("ETA", "0.1")), int(os.environ.get("XSTEP", "56")))
    A = analogs(int(os.environ.get("K", "40"))); ok = base & ~np.isnan(G) & ~np.isnan(A)
    report(ok, [("ridge", R), ("trees", G)] + [("ridge + %.0f %% trees" % (100*a), (1-a)*R + a*G) for a in (0.2, 0.3)]
           + [("ridge 65 %, trees 20 %, analogs 15 %", 0.65*R + 0.2*G + 0.15*A)])
elif cand == "stack":  # a blend on the simplex, fitted on the last W days (leads +-2), shrunk to the ridge alone
    A = analogs(int(os.environ.get("K", "40"))); W = int(os.environ.get("W", "56")); SH = float(os.environ.get("SH", "1"))
    M = np.stack([R, A, PERS, np.zeros_like(R), X[:, :, 3]], 2)  # ridge, analogs, persistence, last value, 7-day same hour
    S = np.full(T.shape, np.nan)
    for di in range(np.argmax(~np.isnan(A).all(1)) + W, len(days)):
        for L in range(1, 25):
            ls = [l - 1 for l in range(L-2, L+3) if 1 <= l <= 24]
            xs = M[di-W:di][:, ls].reshape(-1, M.shape[2]); t = T[di-W:di][:, ls].reshape(-1)
            g = ~np.isnan(t) & ~np.isnan(xs).any(1)
            if g.sum() < 50 or np.isnan(M[di, L-1]).any(): continue
            d = xs[g, 1:] - xs[g, :1]
            b = np.linalg.solve(d.T @ d + SH * g.sum() * np.mean(d**2) * np.eye(d.shape[1]), d.T @ (t[g] - xs[g, 0]))
            S[di, L-1] = M[di, L-1, 0] + (M[di, L-1, 1:] - M[di, L-1, 0]) @ b
    ok = base & ~np.isnan(S) & ~np.isnan(A)
    report(ok, [("ridge", R), ("ridge + 20 % analogs", 0.8*R + 0.2*A), ("stacking", S)])
elif cand == "local":  # refitted at every judged origin, each training origin also weighted by its likeness
    H = float(os.environ.get("H", "0.7")); EV = int(os.environ.get("EV", "2"))
    A = analogs(int(os.environ.get("K", "40")))
    plain = np.full(T.shape, np.nan); local = np.full(T.shape, np.nan)
    for di in range(d0, len(days), EV):
        like = np.exp(-0.5 * likeness(di, np.arange(di - 1, max(0, di - WIN) - 1, -1)) / H**2)
        for L in range(1, 25):
            xs, t, pr, _ = training(di, L)
            if len(t) < 14: continue
            plain[di, L-1] = apply(fit(xs, t, pr), X[di, L-1])
            xs, t, pr, _ = training(di, L, like)
            local[di, L-1] = apply(fit(xs, t, pr), X[di, L-1])
    ok = ~np.isnan(plain) & ~np.isnan(local) & ~np.isnan(T) & ~np.isnan(PERS) & ~np.isnan(A)
    report(ok, [("ridge refitted daily", plain), ("local ridge", local), ("local ridge + 20 % analogs", 0.8*local + 0.2*A), ("+ 30 % analogs", 0.7*local + 0.3*A)])
