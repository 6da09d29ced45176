"""Coverage scaling laws: fit pass@k against k, check the fit on held-back samples, extrapolate.

Two forms, per model (and per difficulty level):

* ``power law`` (Brown et al. 2024, "Large Language Monkeys", sec. 2.1): -log coverage(k) ~= a * k^(-b),
  fitted by least squares on log(-log coverage) against log k, over the measured k = 1..m.
* ``beta`` (Schaeffer et al. 2025, "How Do Large Language Monkeys Get Their Power (Laws)?"): the
  per-problem success rates p follow Beta(alpha, beta), fitted by maximum likelihood of the Beta-binomial
  to each problem's correct count; then pass@k = 1 - E[(1-p)^k] = 1 - B(alpha, beta + k) / B(alpha, beta),
  closed form for any k.

Validation is honest: fit on each problem's first ``fit_samples`` samples, predict pass@``target`` and
compare with the unbiased estimate from all samples. Bands are 95% percentile bootstraps over problems.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma

from .. import metrics
from ..errors import EngineError

FORMS = ("power law", "beta")
EXTRAPOLATE = (1024, 10000)


def power_law(k, a: float, b: float) -> np.ndarray:
    return np.exp(-a * np.asarray(k, float) ** (-b))


def fit_power_law(ks, coverage, weights=None) -> tuple[float, float]:
    """(a, b) of -log coverage = a k^-b from points with 0 < coverage < 1; NaN when fewer than two. ``coverage``
    may be [B, K] (one fit per row)."""
    cov = np.atleast_2d(np.asarray(coverage, float))
    x = np.log(np.asarray(ks, float))
    ok = (cov > 0) & (cov < 1)
    y = np.log(-np.log(np.where(ok, cov, 0.5)))
    w = ok.astype(float)
    n = w.sum(1)
    mx, my = (w * x).sum(1) / np.maximum(n, 1), (w * y).sum(1) / np.maximum(n, 1)
    sxx = (w * (x - mx[:, None]) ** 2).sum(1)
    slope = np.where(sxx > 0, (w * (x - mx[:, None]) * (y - my[:, None])).sum(1) / np.where(sxx > 0, sxx, 1), np.nan)
    a, b = np.exp(my - slope * mx), -slope
    a, b = np.where(n >= 2, a, np.nan), np.where(n >= 2, b, np.nan)
    return (float(a[0]), float(b[0])) if np.ndim(coverage) == 1 else (a, b)


def beta_pass_at_k(k, alpha: float, beta: float) -> np.ndarray:
    k = np.asarray(k, float)
    return 1.0 - np.exp(betaln(alpha, beta + k) - betaln(alpha, beta))


def fit_beta(n, c, weights=None) -> tuple[float, float]:
    """Maximum-likelihood (alpha, beta) of a Beta-binomial from per-problem sample counts ``n`` and correct
    counts ``c`` (optionally weighted, as a bootstrap does)."""
    n, c = np.asarray(n, float), np.asarray(c, float)
    w = np.ones_like(n) if weights is None else np.asarray(weights, float)
    if w.sum() <= 0 or n.size == 0:
        return np.nan, np.nan

    def nll(t):
        a, b = np.exp(t)
        ll = w * (betaln(c + a, n - c + b) - betaln(a, b))
        common = digamma(a + b) - digamma(n + a + b)
        ga = (w * (digamma(c + a) - digamma(a) + common)).sum() * a
        gb = (w * (digamma(n - c + b) - digamma(b) + common)).sum() * b
        return -ll.sum(), -np.array([ga, gb])

    m = np.clip(np.average(c / np.maximum(n, 1), weights=w), 1e-3, 1 - 1e-3)  # moments-style start
    res = minimize(nll, np.log([m, 1 - m]), jac=True, method="L-BFGS-B", bounds=[(-12, 12), (-12, 12)])
    a, b = np.exp(res.x)
    return float(a), float(b)


def _counts(samples: pd.DataFrame, upto: int | None) -> pd.DataFrame:
    s = samples if upto is None else samples[samples["idx"] < upto]
    return s.groupby("problem_id", sort=False).agg(n=("correct", "size"), c=("correct", "sum"),
                                                   level=("difficulty", "first"))


class _Counts:
    """One group of problems' (n, c) counts, reduced to distinct pairs so a bootstrap refit is cheap."""

    def __init__(self, cnt: pd.DataFrame, ks):
        pairs = np.stack([cnt["n"].to_numpy(int), cnt["c"].to_numpy(int)], 1)
        self.pairs, self.inverse = np.unique(pairs, axis=0, return_inverse=True)
        self.inverse = self.inverse.reshape(-1)
        self.ks = np.asarray(ks)
        self.passk = metrics.pass_at_k_matrix(self.pairs[:, 0], self.pairs[:, 1], ks)

    def fit(self, weights: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
        w = np.ones(len(self.inverse)) if weights is None else weights
        wp = np.bincount(self.inverse, weights=w, minlength=len(self.pairs))
        cov = wp @ self.passk / wp.sum()
        return {"power law": fit_power_law(self.ks, cov), "beta": fit_beta(self.pairs[:, 0], self.pairs[:, 1], wp)}


def predict(form: str, params, k) -> np.ndarray:
    return power_law(k, *params) if form == "power law" else beta_pass_at_k(k, *params)


def fit(samples: pd.DataFrame, fit_samples: int = 16, target: int | None = None, boot: int = 100,
        seed: int = 0, plot_ks=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fits for one model's cached samples (``problem_id``, ``idx``, ``correct``, ``difficulty``), overall and
    per level. Returns (``table``: one row per level and form with the fitted parameters, pass@target
    predicted from ``fit_samples`` samples against the measured value (``residual``: measured minus
    predicted), its band, whether the fit is poor (``quality``: good, uncertain or poor), and extrapolations
    from all samples; ``curve``: the all-samples fit with its band over ``plot_ks``, and the measured coverage with each fit's residual, for plotting)."""
    full = _counts(samples, None)
    n_min = int(full["n"].min()) if len(full) else 0
    target = min(target or n_min, n_min)
    if n_min < 2 or fit_samples < 2 or fit_samples >= target:
        raise EngineError(f"fitting needs more samples per problem than it fits on: {n_min} cached, fitting on "
                          f"{fit_samples}, predicting pass@{target}")
    plot_ks = np.unique(np.round(np.geomspace(1, max(EXTRAPOLATE), 60)).astype(int)) if plot_ks is None else plot_ks
    rng = np.random.default_rng(seed)
    table, curve = [], []
    groups = [(None, np.ones(len(full), bool))] + [(int(l), (full["level"] == l).to_numpy())
                                                   for l in sorted(full["level"].dropna().unique())]
    early = _counts(samples, fit_samples).reindex(full.index)
    for level, sel in groups:
        f_cnt, e_cnt = full[sel], early[sel]
        p = len(f_cnt)
        if p < 2:
            continue
        w = rng.multinomial(p, np.full(p, 1 / p), size=boot).astype(float)
        measured = float(np.mean(metrics.pass_at_k_matrix(f_cnt["n"], f_cnt["c"], [target])))
        ks_all, ks_early = np.arange(1, n_min + 1), np.arange(1, fit_samples + 1)
        early_c, all_c = _Counts(e_cnt, ks_early), _Counts(f_cnt, ks_all)
        fits_early, fits_all = early_c.fit(), all_c.fit()
        boots_early = [early_c.fit(wi) for wi in w]
        boots_all = [all_c.fit(wi) for wi in w]
        cov_all = all_c.passk[all_c.inverse].mean(0)
        # measured points carry each all-samples fit's residual (measured - fitted) at the same k
        res = {f"residual {form}": cov_all - predict(form, fits_all[form], ks_all) for form in FORMS}
        curve += [dict(level=level, form="measured", k=int(k), coverage=float(v),
                       **{name: float(r[i]) for name, r in res.items()}) for i, (k, v) in enumerate(zip(ks_all, cov_all))]
        for form in FORMS:
            pred = float(predict(form, fits_early[form], target))
            bp = np.array([predict(form, b[form], target) for b in boots_early])
            lo, hi = np.nanpercentile(bp, [2.5, 97.5]) if np.isfinite(bp).any() else (np.nan, np.nan)
            bc = np.array([predict(form, b[form], plot_ks) for b in boots_all])
            fit_curve = predict(form, fits_all[form], plot_ks)
            band = np.nanpercentile(bc, [2.5, 97.5], axis=0)
            curve += [dict(level=level, form=form, k=int(k), coverage=float(v), lo=float(l), hi=float(h))
                      for k, v, l, h in zip(plot_ks, fit_curve, band[0], band[1])]
            miss = measured - pred  # the sign of the residuals: above the fit is positive
            row = dict(level=level, form=form, problems=p, fit_samples=fit_samples, target=target,
                       p1=fits_all[form][0], p2=fits_all[form][1], predicted=pred, lo=float(lo), hi=float(hi),
                       measured=measured, residual=miss,
                       poor=bool(not np.isfinite(pred) or (abs(miss) > 0.02 and not lo <= measured <= hi)))
            # off by more than 2 points, or with a band over 10 points wide, yet not poor: the band is too wide to
            # say the fit is good (an unticked "poor" box read as "good" beside a 12-point miss)
            row["quality"] = "poor" if row["poor"] else "uncertain" if abs(miss) > 0.02 or not hi - lo <= 0.1 \
                else "good"
            for k in EXTRAPOLATE:
                j = int(np.searchsorted(plot_ks, k))
                exact = float(predict(form, fits_all[form], k))
                row[f"pass@{k}"] = exact
                if j < len(plot_ks) and plot_ks[j] == k:
                    row[f"pass@{k}_lo"], row[f"pass@{k}_hi"] = float(band[0][j]), float(band[1][j])
            table.append(row)
    return pd.DataFrame(table), pd.DataFrame(curve)


def fits(blocks, fit_samples: int = 16, target: int | None = None, boot: int = 100, seed: int = 0):
    """``fit`` for every model among ``curves.blocks`` output (samples read once per model)."""
    tables, curves, seen = [], [], set()
    for b in blocks:
        if b.model in seen:
            continue
        seen.add(b.model)
        t, c = fit(b.samples, fit_samples, target, boot, seed)
        tables.append(t.assign(model=b.model, params=int(b.info["params"])))
        curves.append(c.assign(model=b.model))
    if not tables:
        raise EngineError("nothing cached to fit")
    return pd.concat(tables, ignore_index=True), pd.concat(curves, ignore_index=True)


def samples_for(table: pd.DataFrame, model: str, target: float, form: str = "beta",
                level: int | None = None) -> float:
    """The k at which the fitted coverage of ``model`` first reaches ``target`` (extrapolated; inf if never)."""
    row = table[(table.model == model) & (table.form == form) &
                (table.level.isna() if level is None else table.level == level)]
    if row.empty:
        raise EngineError(f"no {form} fit for {model}")
    r = row.iloc[0]
    ks = np.unique(np.round(np.geomspace(1, 1e7, 400)).astype(int))
    hit = np.flatnonzero(predict(form, (r.p1, r.p2), ks) >= target)
    return float(ks[hit[0]]) if hit.size else float("inf")


def summary(table: pd.DataFrame) -> list[str]:
    """Fit error per form over models (all levels pooled), and which fits are poor."""
    overall = table[table.level.isna()]
    out = []
    for form, g in overall.groupby("form", sort=False):
        worst = g.loc[g.residual.abs().idxmax()]
        out.append(f"{form}: predicting pass@{int(worst.target)} from {int(worst.fit_samples)} samples is off by "
                   f"{100 * g.residual.abs().mean():.1f} points on average (worst {worst.model}: {worst.predicted:.1%} predicted, "
                   f"{worst.measured:.1%} measured).")
    poor = table[table.poor]
    if not poor.empty:
        out.append("Poor fits (measured value outside the 95% band and off by more than 2 points): " + ", ".join(
            f"{r.model} {'all levels' if r.level != r.level else f'level {int(r.level)}'} ({r.form})"
            for r in poor.itertuples()) + ".")
    return out
