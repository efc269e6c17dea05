"""Phase 6 acceptance (spec/14_GENERALIZATION_MC_ABLATIONS.md): every number of the
generalization, multiple-choice and ablation tables recomputed by a direct loop over the
stored per-window and per-item values, the resampling plan rebuilt from its semantic
keys; Dataset A's tau applied to B unchanged; the ablations' rate matching within
tolerance; each item's predictions from its stored option scores."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from acceptance.checks import CheckContext, check
from acceptance.checks.phase3 import upstream
from acceptance.checks.phase5 import table
from canon import CANON
from critspec.analysis.bootstrap import bootstrap_indices
from critspec.validate import contracts
from critspec.validate.run import load_config

RTOL = 1e-12
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
PERPLEXITY = CANON.ENUM.FORBIDDEN_SELECTION_INPUT.PERPLEXITY
ABL = CANON.ENUM.ABLATION_ID


def _close(found: float, want: float, what: str) -> None:
    ok = (np.isnan(found) and np.isnan(want)) or math.isclose(
        found, want, rel_tol=RTOL, abs_tol=1e-15
    )
    assert ok, f"{what}: table has {found!r}, recomputed {want!r}"


def _pct(values: list[float], q: float) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.percentile(finite, q)) if finite else float("nan")


def _metric_loop(rows: pd.DataFrame, chi_eps: float) -> Callable[[Sequence[int]], dict[str, float]]:
    """stat(pick): every metric of the windows `pick` (repeats counted) by plain sums."""
    cols = {c: rows[c].to_numpy() for c in rows.columns}

    def stat(pick: Sequence[int]) -> dict[str, float]:
        occ = sum(int(cols["n_occupied"][i]) for i in pick)
        tp = sum(int(cols["n_time_pairs"][i]) for i in pick)
        dp = sum(int(cols["n_depth_pairs"][i]) for i in pick)
        tpp = sum(int(cols["n_time_pairs_perm"][i]) for i in pick)
        dpp = sum(int(cols["n_depth_pairs_perm"][i]) for i in pick)
        y = [float(cols["y"][i]) for i in pick]
        b_time = tp / occ if occ else float("nan")
        b_depth = dp / occ if occ else float("nan")
        b_tot_perm = (tpp + dpp) / occ if occ else float("nan")
        mean = sum(y) / len(y)
        var = sum((v - mean) ** 2 for v in y) / len(y)
        out = {
            "b_time": b_time,
            "b_depth": b_depth,
            B_TOT: b_time + b_depth,
            "delta_b_tot_perm": b_time + b_depth - b_tot_perm,
            "chi": var / (mean + chi_eps),
        }
        if "nll_sum" in cols:
            nll = sum(float(cols["nll_sum"][i]) for i in pick)
            tok = sum(int(cols["n_tokens"][i]) for i in pick)
            out["nll_mean"] = nll / tok
            out[PERPLEXITY] = math.exp(nll / tok)
        return out

    return stat


def _check_paired_rows(
    summary: pd.DataFrame,
    keys: list[str],
    per_window: pd.DataFrame,
    reference: Callable[[tuple], tuple],
    suffix: str,
    metrics: Sequence[str],
    idx: np.ndarray,
    cfg: dict,
    where: str,
) -> None:
    lo, hi = cfg["analysis"]["ci_percentiles"]
    chi_eps = cfg["analysis"]["chi_eps"]
    groups = {k: g.sort_values("seq_id") for k, g in per_window.groupby(keys, sort=True)}
    stats = {k: _metric_loop(g.reset_index(drop=True), chi_eps) for k, g in groups.items()}
    n = len(next(iter(groups.values())))
    cache: dict[tuple, tuple[dict, list[dict]]] = {}

    def evaluate(key: tuple) -> tuple[dict, list[dict]]:
        if key not in cache:
            stat = stats[key]
            cache[key] = (stat(range(n)), [stat(list(r)) for r in idx])
        return cache[key]

    for row in summary.itertuples(index=False):
        key = tuple(getattr(row, k) for k in keys)
        point, reps = evaluate(key)
        ref_point, ref_reps = evaluate(reference(key))
        for m in metrics:
            what = f"{where} {key} {m}"
            _close(getattr(row, m), point[m], what)
            _close(getattr(row, f"{m}_ci_low"), _pct([r[m] for r in reps], lo), what + " ci_low")
            _close(getattr(row, f"{m}_ci_high"), _pct([r[m] for r in reps], hi), what + " ci_high")
            diffs = [a[m] - b[m] for a, b in zip(reps, ref_reps, strict=True)]
            _close(getattr(row, f"{m}_{suffix}"), point[m] - ref_point[m], what + " paired")
            _close(getattr(row, f"{m}_{suffix}_ci_low"), _pct(diffs, lo), what + " paired low")
            _close(getattr(row, f"{m}_{suffix}_ci_high"), _pct(diffs, hi), what + " paired high")


@check("b_tau_applied_unchanged")
def b_tau_applied_unchanged(ctx: CheckContext) -> None:
    rates = pd.read_parquet(contracts.path_in(ctx.run_a, "b_rates"))
    phase2 = pd.read_parquet(
        contracts.path_in(upstream(ctx, "tau_rate_matched"), "tau_rate_matched")
    )
    keys = ["spike_def_id", "target_rate", "g", "layer"]
    joined = rates.merge(phase2[[*keys, "tau", "r_star"]], on=keys, suffixes=("", "_p2"))
    assert len(joined) == len(rates), f"{ctx.run_a}: b_rates rows without a Phase 2 tau"
    assert (joined["tau"] == joined["tau_p2"]).all(), f"{ctx.run_a}: tau differs from Phase 2"
    assert (joined["r_star"] == joined["r_star_p2"]).all()


@check("generalization_recomputed_from_windows")
def generalization_recomputed_from_windows(ctx: CheckContext) -> None:
    cfg = load_config(ctx.run_a)
    summary = table(ctx.run_a, "generalization")
    windows = pd.read_parquet(contracts.path_in(ctx.run_a, "b_windows"))
    n = windows.groupby(["spike_def_id", "target_rate", "g"]).size().iloc[0]
    keys = (cfg["generalization"]["dataset_role"], CANON.ENUM.SLICE_NAME.B_EVAL)
    idx = bootstrap_indices(n, cfg["analysis"]["bootstrap_reps"], keys, CANON.CONST.BOOTSTRAP_SEED)
    baseline = cfg["calibration"]["gain_baseline"]
    metrics = ["b_time", "b_depth", B_TOT, "delta_b_tot_perm", "chi", "nll_mean", PERPLEXITY]
    rates = pd.read_parquet(contracts.path_in(ctx.run_a, "b_rates"))
    for row in summary.itertuples(index=False):
        mine = rates[
            (rates.spike_def_id == row.spike_def_id)
            & (rates.target_rate == row.target_rate)
            & (rates.g == row.g)
        ]
        _close(row.achieved_rate_mean, float(mine["achieved_rate"].mean()), "rate mean")
        _close(row.rate_err_max_abs, float(mine["abs_err"].max()), "rate error")
        assert row.is_baseline == (row.g == baseline) and row.is_gstar == (row.g == row.gstar)
    _check_paired_rows(
        summary,
        ["spike_def_id", "target_rate", "g"],
        windows,
        lambda k: (k[0], k[1], baseline),
        "vs_baseline",
        metrics,
        idx,
        cfg,
        str(ctx.run_a),
    )


@check("mc_items_follow_option_scores")
def mc_items_follow_option_scores(ctx: CheckContext) -> None:
    scores = pd.read_parquet(contracts.path_in(ctx.run_a, "mc_scores"))
    items = pd.read_parquet(contracts.path_in(ctx.run_a, "mc_items"))
    by_item = {
        k: g.sort_values("option_index")
        for k, g in scores.groupby(["mc_regime", "g", "item_index"])
    }
    for row in items.itertuples(index=False):
        opts = by_item[(row.mc_regime, row.g, row.item_index)]
        ll = opts["loglik"].tolist()
        norm = [v / c for v, c in zip(ll, opts["n_chars"].tolist(), strict=True)]
        best = max(range(len(ll)), key=lambda k: (ll[k], -k))
        best_norm = max(range(len(norm)), key=lambda k: (norm[k], -k))
        gold = [k for k, flag in enumerate(opts["is_gold"].tolist()) if flag]
        where = f"{ctx.run_a} {row.mc_regime} g={row.g} item {row.item_index}"
        assert gold == [row.gold], f"{where}: gold {gold} vs {row.gold}"
        assert (row.pred, row.pred_norm) == (best, best_norm), f"{where}: predictions"
        assert row.correct == (best == row.gold) and row.correct_norm == (best_norm == row.gold)


@check("mc_summary_recomputed_from_items")
def mc_summary_recomputed_from_items(ctx: CheckContext) -> None:
    cfg = load_config(ctx.run_a)
    lo, hi = cfg["analysis"]["ci_percentiles"]
    summary = table(ctx.run_a, "mc_summary")
    items = pd.read_parquet(contracts.path_in(ctx.run_a, "mc_items"))
    n = int(summary["n_items"].iloc[0])
    keys = (cfg["multiple_choice"]["dataset_role"],)
    idx = bootstrap_indices(n, cfg["analysis"]["bootstrap_reps"], keys, CANON.CONST.BOOTSTRAP_SEED)
    baseline = cfg["calibration"]["gain_baseline"]
    col = {"acc": "correct", "acc_norm": "correct_norm"}
    flags = {
        k: {m: g.sort_values("item_index")[c].astype(int).tolist() for m, c in col.items()}
        for k, g in items.groupby(["mc_regime", "g"])
    }
    for row in summary.itertuples(index=False):
        mine, ref = flags[(row.mc_regime, row.g)], flags[(row.mc_regime, baseline)]
        for m in col:
            where = f"{ctx.run_a} {row.mc_regime} g={row.g} {m}"
            reps = [sum(mine[m][i] for i in r) / n for r in idx]
            diffs = [sum(mine[m][i] - ref[m][i] for i in r) / n for r in idx]
            _close(getattr(row, m), sum(mine[m]) / n, where)
            _close(getattr(row, f"{m}_ci_low"), _pct(reps, lo), where + " ci_low")
            _close(getattr(row, f"{m}_ci_high"), _pct(reps, hi), where + " ci_high")
            _close(getattr(row, f"{m}_vs_baseline"), (sum(mine[m]) - sum(ref[m])) / n, where)
            _close(getattr(row, f"{m}_vs_baseline_ci_low"), _pct(diffs, lo), where + " low")
            _close(getattr(row, f"{m}_vs_baseline_ci_high"), _pct(diffs, hi), where + " high")


@check("ablation_rate_error_within_tolerance")
def ablation_rate_error_within_tolerance(ctx: CheckContext) -> None:
    cfg = load_config(ctx.run_a)
    taus = pd.read_parquet(contracts.path_in(ctx.run_a, "ablation_tau"))
    err = (taus["achieved_rate"] - taus["r_star"]).abs()
    assert (err <= cfg["gain_grid"]["rate_match_tol_abs"]).all(), f"{ctx.run_a}: rate error"
    assert set(taus["ablation_id"]) == set(cfg["ablations"]["ablation_ids"])


@check("ablation_summary_recomputed_from_windows")
def ablation_summary_recomputed_from_windows(ctx: CheckContext) -> None:
    cfg = load_config(ctx.run_a)
    summary = table(ctx.run_a, "ablation_summary")
    windows = pd.read_parquet(contracts.path_in(ctx.run_a, "ablation_windows"))
    keys = ["ablation_id", "spike_def_id", "target_rate", "g"]
    n = windows.groupby(keys).size().iloc[0]
    plan_keys = (cfg["rasters"]["dataset_role"], CANON.ENUM.SLICE_NAME.RASTERS)
    idx = bootstrap_indices(
        n, cfg["analysis"]["bootstrap_reps"], plan_keys, CANON.CONST.BOOTSTRAP_SEED
    )
    _check_paired_rows(
        summary,
        keys,
        windows,
        lambda k: (ABL.MLP_ALL, *k[1:]),
        "vs_mlp_all",
        [B_TOT, "delta_b_tot_perm", "chi"],
        idx,
        cfg,
        str(ctx.run_a),
    )
