"""Phase 5 acceptance: tables and figures recomputed by independent routes
(spec/11_AVALANCHES_AND_SIGNATURES.md, spec/12_STATISTICS_AND_BOOTSTRAP.md, spec/08_TEST_PLAN.md):
b, chi and the null contrasts by direct numpy sums over the rasters, the studentized
CIs of b_tot, chi and delta_b_tot (paired with the permutation null; SEs from explicit
per-window influence values) by a direct loop over the (spike definition, target
rate)'s resampling plan, avalanches by a breadth-first flood fill, the CSV twins
against their Parquet tables, the paired identifiability flags by a direct loop over
the same plan."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from acceptance.checks import CheckContext, check
from acceptance.checks.phase3 import results, upstream
from canon import CANON
from critspec.analysis.bootstrap import bootstrap_indices
from critspec.store.writers import read_json
from critspec.validate import contracts
from critspec.validate.run import load_config

ART = CANON.OUTPUT.ARTIFACT
TABLES = CANON.OUTPUT.SUBDIR.TABLES
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
ADJ = CANON.ENUM.ADJACENCY
# Sums of the same integers in another order agree exactly; ratios of them to the ulp.
RTOL = 1e-12


def table(run_dir: Path, contract_id: str) -> pd.DataFrame:
    return pd.read_parquet(contracts.path_in(run_dir, contract_id))


def b_direct(X: np.ndarray) -> tuple[float, float]:
    """Pooled (b_time, b_depth) of X [N, L, T] by plain sums (spec/11_AVALANCHES_AND_SIGNATURES.md,
    spec/12_STATISTICS_AND_BOOTSTRAP.md)."""
    X = X.astype(np.int64)
    den = X.sum()
    if den == 0:
        return float("nan"), float("nan")
    time = (X[:, :, :-1] * X[:, :, 1:]).sum()
    depth = (X[:, :-1, :] * X[:, 1:, :]).sum()
    return time / den, depth / den


def chi_direct(A: np.ndarray, eps: float) -> float:
    Y = A.astype(np.float64).sum(axis=(1, 2))
    return float(Y.var() / (Y.mean() + eps))


def _close(found: float, want: float, what: str, scale: float = 0.0) -> None:
    """Equal up to RTOL of the value, or of `scale` for a quantity that is a difference of
    terms of that size (a CI bound near zero carries their rounding, not its own)."""
    atol = RTOL * scale
    assert (np.isnan(found) and np.isnan(want)) or np.isclose(found, want, rtol=RTOL, atol=atol), (
        f"{what}: table has {found!r}, recomputed {want!r}"
    )


@check("summary_recomputed_from_rasters")
def summary_recomputed_from_rasters(ctx: CheckContext) -> None:
    cfg = load_config(ctx.run_a)
    analysis = cfg["analysis"]
    rasters = results(upstream(ctx, "rasters"), ART.RASTERS)
    nulls = results(upstream(ctx, "null_rasters"), ART.NULL_RASTERS)
    null_conds = results(upstream(ctx, "null_conditions"), ART.NULL_CONDITIONS)
    summary = table(ctx.run_a, "summary")
    suffix = {
        getattr(CANON.ENUM.NULL_ID, k): getattr(CANON.OUTPUT.NULL_SUFFIX, k)
        for k in vars(CANON.ENUM.NULL_ID)
        if not k.startswith("_")
    }
    for row in summary.itertuples():
        where = f"{ctx.run_a}: {row.spike_def_id} r={row.target_rate} g={row.g}"
        X, A = rasters["X"][row.cond_id], rasters["A"][row.cond_id]
        # The small-sample levels of spec/12 section 3, from the formula by scipy.
        n = X.shape[0]
        lo, hi = (
            100.0
            * scipy_stats.norm.cdf(np.sqrt(n / (n - 1.0)) * scipy_stats.t.ppf(q / 100.0, n - 1))
            for q in analysis["ci_percentiles"]
        )
        b_time, b_depth = b_direct(X)
        _close(row.b_time, b_time, f"{where}: b_time")
        _close(row.b_depth, b_depth, f"{where}: b_depth")
        _close(row.b_tot, b_time + b_depth, f"{where}: b_tot")
        _close(row.chi, chi_direct(A, analysis["chi_eps"]), f"{where}: chi")
        assert row.n_events == int(A.sum()), where
        for null_id, s in suffix.items():
            k = null_conds[
                (null_conds["null_id"] == null_id) & (null_conds["cond_id"] == row.cond_id)
            ]
            nt, nd = b_direct(nulls["X"][k["null_cond_id"].item()])
            _close(getattr(row, f"{B_TOT}_{s}"), nt + nd, f"{where}: b_tot of {null_id}")
            _close(getattr(row, f"delta_{B_TOT}_{s}"), b_time + b_depth - nt - nd, where)
        # The CI by a direct loop over the condition's resampling plan.
        plan = bootstrap_indices(
            X.shape[0],
            analysis["bootstrap_reps"],
            (row.spike_def_id, row.target_rate),
            CANON.CONST.BOOTSTRAP_SEED,
        )
        perm = null_conds[
            (null_conds["null_id"] == CANON.ENUM.NULL_ID.TIME_PERM)
            & (null_conds["cond_id"] == row.cond_id)
        ]["null_cond_id"].item()
        X_perm = nulls["X"][perm]
        eps = analysis["chi_eps"]
        stats = {
            B_TOT: lambda ix, X=X: b_tot_and_se(X[ix]),
            "chi": lambda ix, A=A, eps=eps: chi_and_se(A[ix], eps),
            f"delta_{B_TOT}_{suffix[CANON.ENUM.NULL_ID.TIME_PERM]}": (
                lambda ix, X=X, Xp=X_perm: delta_and_se(X[ix], Xp[ix])
            ),
        }
        everything = np.arange(X.shape[0])
        for name, stat in stats.items():
            point, se = stat(everything)
            t = []
            for idx in plan:
                value, se_r = stat(idx)
                t.append((value - point) / se_r if se_r > 0 else np.nan)
            t = np.asarray(t)
            t = t[np.isfinite(t)]
            want = (
                (point - np.percentile(t, hi) * se, point - np.percentile(t, lo) * se)
                if t.size and np.isfinite(point)
                else (np.nan, np.nan)
            )
            for bound, value in zip(("low", "high"), want, strict=True):
                _close(
                    getattr(row, f"{name}_ci_{bound}"),
                    value,
                    f"{where}: {name}_ci_{bound}",
                    scale=max(1.0, abs(point)) if np.isfinite(point) else 0.0,
                )


def _ratio_terms(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window (pairs in t and l, occupied sites) of X [N, L, T] by plain sums."""
    X = X.astype(np.int64)
    pairs = (X[:, :, :-1] * X[:, :, 1:]).sum(axis=(1, 2)) + (X[:, :-1, :] * X[:, 1:, :]).sum(
        axis=(1, 2)
    )
    return pairs.astype(float), X.sum(axis=(1, 2)).astype(float)


def b_tot_and_se(X: np.ndarray) -> tuple[float, float]:
    """b_tot and its delta-method SE from explicit per-window residuals (spec/12 section 3)."""
    p, d = _ratio_terms(X)
    n = p.size
    r = p.sum() / d.sum()
    return r, float(np.sqrt(n / (n - 1) * ((p - r * d) ** 2).sum()) / d.sum())


def delta_and_se(X: np.ndarray, X_null: np.ndarray) -> tuple[float, float]:
    p, d = _ratio_terms(X)
    p2, d2 = _ratio_terms(X_null)
    n = p.size
    r, r2 = p.sum() / d.sum(), p2.sum() / d2.sum()
    u = (p - r * d) / d.sum() - (p2 - r2 * d2) / d2.sum()
    return r - r2, float(np.sqrt(n / (n - 1) * (u**2).sum()))


def chi_and_se(A: np.ndarray, eps: float) -> tuple[float, float]:
    y = A.sum(axis=(1, 2)).astype(float)
    n = y.size
    mu, var = y.mean(), y.var()
    m = mu + eps
    influence = ((y - mu) ** 2 - var) / m - var * (y - mu) / m**2
    return var / m, float(np.sqrt((influence**2).sum() / (n * (n - 1))))


def components_bfs(X: np.ndarray, diagonal: bool) -> list[tuple[int, int, int, int, list]]:
    """Components of one [L, T] lattice by flood fill: (l_min, t_min, height, duration, cells)."""
    L, T = X.shape
    steps = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    if diagonal:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    seen = np.zeros_like(X, dtype=bool)
    out = []
    for l0 in range(L):
        for t0 in range(T):
            if not X[l0, t0] or seen[l0, t0]:
                continue
            cells, queue = [], deque([(l0, t0)])
            seen[l0, t0] = True
            while queue:
                lay, t = queue.popleft()
                cells.append((lay, t))
                for dl, dt in steps:
                    m, u = lay + dl, t + dt
                    if 0 <= m < L and 0 <= u < T and X[m, u] and not seen[m, u]:
                        seen[m, u] = True
                        queue.append((m, u))
            ls, ts = [c[0] for c in cells], [c[1] for c in cells]
            out.append((min(ls), min(ts), max(ls) - min(ls) + 1, max(ts) - min(ts) + 1, cells))
    return out


@check("avalanches_recomputed_from_rasters")
def avalanches_recomputed_from_rasters(ctx: CheckContext) -> None:
    """The gstar conditions' avalanches, both adjacencies, equal a flood fill's."""
    rasters = results(upstream(ctx, "rasters"), ART.RASTERS)
    conds = results(upstream(ctx, "rasters"), ART.RASTER_CONDITIONS)
    av = table(ctx.run_a, "avalanches")
    cols = ["seq_id", "size", "duration", "height", "t_min", "l_min"]
    for cond_id in conds[conds["is_gstar"]]["cond_id"]:
        for adjacency, diagonal in ((ADJ.ADJ_4N, False), (ADJ.ADJ_8N, True)):
            want = []
            for n, seq in enumerate(rasters["seq_id"]):
                A = rasters["A"][cond_id, n]
                for l_min, t_min, height, duration, cells in components_bfs(A > 0, diagonal):
                    size = int(sum(A[lay, t] for lay, t in cells))
                    want.append((int(seq), size, duration, height, t_min, l_min))
            mine = av[(av["cond_id"] == cond_id) & (av["adjacency"] == adjacency)][cols]
            got = sorted(tuple(int(v) for v in r) for r in mine.itertuples(index=False))
            assert got == sorted(want), f"{ctx.run_a}: cond {cond_id} {adjacency} avalanches differ"


@check("csv_equals_parquet")
def csv_equals_parquet(ctx: CheckContext) -> None:
    for cid in ctx.phase.produces:
        twin = contracts.entry(cid)
        if twin["format"] != CANON.ENUM.ARTIFACT_FORMAT.CSV:
            continue
        parquet_id = twin["views"]["columns"].split(".")[0]
        want = table(ctx.run_a, parquet_id)
        got = pd.read_csv(contracts.path_in(ctx.run_a, cid), keep_default_na=False)
        assert list(got.columns) == list(want.columns), cid
        assert len(got) == len(want), cid
        for name in want.columns:
            w, g = want[name], got[name]
            if pd.api.types.is_float_dtype(w):
                g = pd.to_numeric(g.replace("", np.nan))
                assert np.array_equal(w.to_numpy(), g.to_numpy(dtype=np.float64), equal_nan=True), (
                    f"{cid}: column {name}"
                )
            elif pd.api.types.is_bool_dtype(w):
                assert (g.astype(str).str.lower() == w.map({True: "true", False: "false"})).all()
            else:
                text = w.astype(object).where(w.notna(), "").astype(str)
                assert (g.astype(str) == text).all(), f"{cid}: column {name}"


@check("identifiability_flags_consistent")
def identifiability_flags_consistent(ctx: CheckContext) -> None:
    """The paired rule of spec/12 section 4, by a direct loop over each plan."""
    summary = table(ctx.run_a, "summary")
    ident = table(ctx.run_a, "identifiability")
    rasters = results(upstream(ctx, "rasters"), ART.RASTERS)
    cfg = load_config(ctx.run_a)
    analysis = cfg["analysis"]
    lo, hi = analysis["ci_percentiles"]
    gstar = read_json(upstream(ctx, "gstar") / CANON.OUTPUT.SUBDIR.RESULTS / ART.GSTAR)
    chosen = {(c["spike_def_id"], c["target_rate"]): c["gstar"] for c in gstar["conditions"]}

    def ci(values: list[float]) -> tuple[float, float]:
        v = np.asarray(values)
        v = v[np.isfinite(v)]
        return (
            (float(np.percentile(v, lo)), float(np.percentile(v, hi)))
            if v.size
            else (
                float("nan"),
                float("nan"),
            )
        )

    for row in ident.itertuples():
        rows = summary[
            (summary["spike_def_id"] == row.spike_def_id)
            & (summary["target_rate"] == row.target_rate)
        ].sort_values("g")
        gains = rows["g"].tolist()
        where = f"{ctx.run_a}: {row.spike_def_id} r={row.target_rate}"
        assert row.gstar == chosen[(row.spike_def_id, row.target_rate)], where
        k = gains.index(row.gstar)
        k_base = int(np.flatnonzero(rows["is_baseline"].to_numpy())[0])
        assert row.gstar_at_edge == (k in (0, len(gains) - 1)), where
        plan = bootstrap_indices(
            rasters["X"].shape[1],
            analysis["bootstrap_reps"],
            (row.spike_def_id, row.target_rate),
            CANON.CONST.BOOTSTRAP_SEED,
        )
        X = [rasters["X"][c] for c in rows["cond_id"]]
        reps = np.array([[sum(b_direct(x[idx])) for x in X] for idx in plan])
        b = rows[B_TOT].to_numpy()
        star_row = rows.iloc[k]
        star_ci = (star_row[f"{B_TOT}_ci_low"], star_row[f"{B_TOT}_ci_high"])
        _close(row.b_tot_gstar_ci_low, star_ci[0], f"{where}: b_tot_gstar_ci_low")
        _close(row.b_tot_gstar_ci_high, star_ci[1], f"{where}: b_tot_gstar_ci_high")
        base_ci = ci(list(reps[:, k] - reps[:, k_base]))
        _close(row.delta_baseline, b[k] - b[k_base], f"{where}: delta_baseline")
        _close(row.delta_baseline_ci_low, base_ci[0], f"{where}: delta_baseline_ci_low")
        excludes = [base_ci[0] > 0 or base_ci[1] < 0]
        for j, name in ((k - 1, "lower"), (k + 1, "upper")):
            if 0 <= j < len(gains):
                nb_ci = ci(list(reps[:, k] - reps[:, j]))
                _close(getattr(row, f"delta_{name}_ci_high"), nb_ci[1], f"{where}: {name}")
                excludes.append(nb_ci[0] > 0 or nb_ci[1] < 0)
        assert row.differs_from_baseline == (k != k_base and excludes[0]), where
        assert row.differs_from_neighbours == (not row.gstar_at_edge and all(excludes[1:])), where
        dev_min = float(np.nanmin(np.abs(b - 1.0)))
        _close(row.abs_dev_one_min, dev_min, f"{where}: abs_dev_one_min")
        dist = max(star_ci[0] - 1.0, 1.0 - star_ci[1], 0.0)
        assert row.near_one == (dist <= dev_min), where
        assert row.ci_width_within_max == (star_ci[1] - star_ci[0] <= analysis["ci_width_max"]), (
            where
        )
        assert row.identifiable == (
            row.differs_from_baseline
            and row.differs_from_neighbours
            and row.near_one
            and row.ci_width_within_max
            and not row.gstar_at_edge
        ), where
        assert row.why.startswith("identifiable" if row.identifiable else "not identifiable")
