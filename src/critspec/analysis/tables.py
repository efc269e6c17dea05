"""Phase 5 tables from rasters (spec/13_TABLES_AND_FIGURES.md; columns per the Phase 3-5
interfaces).

`analyze` is the one entry point: pure (no I/O, no config), deterministic (every
random draw is a sequence-bootstrap index matrix seeded from the bootstrap seed and
the condition's (spike_def_id, target_rate): one resampling plan shared by every gain,
so differences between gains are paired), and shaped exactly as the summary,
identifiability, avalanches, crackling and tail_fits contracts list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.avalanches import ADJACENCIES, Avalanches, avalanches
from critspec.analysis.bootstrap import (
    bootstrap_indices,
    percentile_ci,
    resample_weights,
    studentized_ci,
)
from critspec.analysis.crackling import Crackling, CracklingParams, Estimate, crackling
from critspec.analysis.identifiability import identifiability
from critspec.analysis.lattice_stats import lattice_se, pooled, ratio_diff_se, sequence_stats
from critspec.analysis.multistep import FITFUNC as MULTISTEP_FITFUNC
from critspec.analysis.multistep import METHOD as MULTISTEP_METHOD
from critspec.analysis.multistep import branching_ratio_mr
from critspec.analysis.tail_fits import tail_fits
from critspec.errors import ContractError
from critspec.seeding import rng_for

NULL_ID = CANON.ENUM.NULL_ID
AVSET = CANON.ENUM.AVALANCHE_SET
# Boundary avalanches excluded first: the primary estimate (spec/11 section 1).
AVALANCHE_SETS = (AVSET.INTERIOR, AVSET.ALL)
# The nulls whose avalanches get the crackling and tail fits beside the real ones.
CRACKLING_NULLS = (NULL_ID.TIME_PERM, NULL_ID.CIRCULAR_SHIFT)
DELTA_STATS = ("tau_S", "alpha_D", "gamma_fit", "dcc")
NULL_SUFFIX = CANON.OUTPUT.NULL_SUFFIX
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
# (null_id, column suffix) in NULL_ID order, as the summary's columns are laid out.
CANON_NULL_SUFFIXES = (
    (NULL_ID.TIME_PERM, NULL_SUFFIX.TIME_PERM),
    (NULL_ID.CIRCULAR_SHIFT, NULL_SUFFIX.CIRCULAR_SHIFT),
    (NULL_ID.TOKEN_SHUFFLE, NULL_SUFFIX.TOKEN_SHUFFLE),
)
COND_KEYS = ["spike_def_id", "target_rate", "g"]
LOW, HIGH = "_ci_low", "_ci_high"


@dataclass(frozen=True)
class AnalysisParams:
    bootstrap_seed: int  # BOOTSTRAP_SEED
    bootstrap_reps: int  # BOOTSTRAP_REPS
    ci_percentiles: tuple[float, float]  # BOOTSTRAP_CI_PERCENTILES
    chi_eps: float  # CHI_EPS
    cc_max: int  # CC_MAX_COMPONENTS_PER_SEQ
    d_range_min: int  # CRACKLING_D_RANGE_MIN
    d_range_max: int  # CRACKLING_D_RANGE_MAX
    crackling_min_points: int  # CRACKLING_MIN_POINTS
    tail_min_samples: int  # TAIL_FIT_MIN_TAIL_SAMPLES
    ci_width_max: float  # BOOTSTRAP_CI_WIDTH_MAX
    gains: tuple[float, ...]  # the gain grid
    gstar: Mapping[tuple[str, float], float]  # (spike_def_id, target_rate) -> gstar
    null_suffixes: tuple[tuple[str, str], ...] = CANON_NULL_SUFFIXES
    gof_reps: int = CANON.CONST.POWERLAW_GOF_REPS
    xmax: float | None = None  # optional upper cutoff of the power-law fits
    crackling_nulls: tuple[str, ...] = CRACKLING_NULLS
    # False for rasters without a gain axis (analyze-rasters without a conditions table,
    # spec/12 section 6): no gstar to judge, so no identifiability table.
    identifiability: bool = True

    @classmethod
    def from_config(
        cls, an: Any, gains: tuple[float, ...], gstar: Mapping, **rest: Any
    ) -> AnalysisParams:
        """The parameters an `analysis` config section sets (Phase 5, analyze-rasters)."""
        return cls(
            bootstrap_seed=CANON.CONST.BOOTSTRAP_SEED,
            bootstrap_reps=an.bootstrap_reps,
            ci_percentiles=an.ci_percentiles,
            chi_eps=an.chi_eps,
            cc_max=an.cc_max_components_per_seq,
            d_range_min=an.crackling_d_range_min,
            d_range_max=an.crackling_d_range_max,
            crackling_min_points=an.crackling_min_points,
            tail_min_samples=an.tail_fit_min_tail_samples,
            ci_width_max=an.ci_width_max,
            gains=gains,
            gstar=gstar,
            **rest,
        )

    def crackling_params(self) -> CracklingParams:
        return CracklingParams(
            min_tail=self.tail_min_samples,
            d_min=self.d_range_min,
            d_max=self.d_range_max,
            min_points=self.crackling_min_points,
            percentiles=self.ci_percentiles,
            xmax=self.xmax,
        )


@dataclass(frozen=True)
class AnalysisTables:
    summary: pd.DataFrame
    identifiability: pd.DataFrame | None  # None when params.identifiability is False
    avalanches: pd.DataFrame
    crackling: pd.DataFrame
    tail_fits: pd.DataFrame


def _check_inputs(
    A: np.ndarray,
    X: np.ndarray,
    conditions: pd.DataFrame,
    null_A: np.ndarray,
    null_conditions: pd.DataFrame,
    raster_rates: pd.DataFrame | None,
    seq_ids: np.ndarray,
    params: AnalysisParams,
) -> dict[tuple[str, int], int]:
    """Shape and key checks; returns (null_id, cond_id) -> index into null_A."""
    if A.ndim != 4 or A.shape != X.shape:
        raise ContractError(f"rasters: A {A.shape} and X {X.shape} must be equal [C, N, L, T]")
    if not np.array_equal(X.astype(bool), A > 0):
        raise ContractError("rasters: X differs from A > 0; re-run Phase 3")
    n_cond, n_seq = A.shape[:2]
    if not np.array_equal(conditions["cond_id"].to_numpy(), np.arange(n_cond)):
        raise ContractError(f"raster conditions: cond_id must be 0..{n_cond - 1} in order")
    if len(seq_ids) != n_seq:
        raise ContractError(f"rasters: {len(seq_ids)} seq_id for {n_seq} sequences")
    if null_A.ndim != 4 or null_A.shape[1:] != A.shape[1:]:
        raise ContractError(f"null rasters {null_A.shape} must be [C_null, {A.shape[1:]}]")
    if not np.array_equal(null_conditions["null_cond_id"].to_numpy(), np.arange(len(null_A))):
        raise ContractError(f"null conditions: null_cond_id must be 0..{len(null_A) - 1}")
    index = {
        (str(nid), int(cid)): int(k)
        for nid, cid, k in null_conditions[["null_id", "cond_id", "null_cond_id"]].itertuples(
            index=False
        )
    }
    if len(index) != len(null_conditions):
        raise ContractError("null conditions: a (null_id, cond_id) pair appears twice")
    for nid, _ in params.null_suffixes:
        missing = [c for c in range(n_cond) if (nid, c) not in index]
        if missing:
            raise ContractError(f"null conditions: {nid} lacks cond_id {missing[:5]}")
    if raster_rates is not None:
        missing_rates = sorted(set(range(n_cond)) - set(raster_rates["cond_id"].astype(int)))
        if missing_rates:
            raise ContractError(f"raster rates: no rows for cond_id {missing_rates[:5]}")
    if not params.identifiability:
        return index
    for sd, r in (
        conditions[["spike_def_id", "target_rate"]].drop_duplicates().itertuples(index=False)
    ):
        if (sd, r) not in params.gstar:
            raise ContractError(f"gstar: none for (spike_def_id={sd}, target_rate={r})")
    return index


def _ci_columns(name: str, value: float, reps: np.ndarray, pct) -> dict[str, float]:
    low, high = percentile_ci(reps, pct) if np.isfinite(value) else (np.nan, np.nan)
    return {name: float(value), name + LOW: float(low), name + HIGH: float(high)}


def _t_columns(
    name: str, value: float, se: float, reps: np.ndarray, se_reps: np.ndarray, pct, n_seq: int
) -> dict[str, float]:
    low, high = studentized_ci(value, se, reps, se_reps, pct, n_seq)
    return {name: float(value), name + LOW: low, name + HIGH: high}


def _est_columns(name: str, est: Estimate) -> dict[str, float]:
    return {name: est.value, name + LOW: est.ci_low, name + HIGH: est.ci_high}


def _exponent_columns(name: str, est: Estimate, xmin: float) -> dict[str, float]:
    return {name: est.value, name + "_xmin": xmin, name + LOW: est.ci_low, name + HIGH: est.ci_high}


def _b_tot_terms(stats) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, occupied) per window: b_tot = sum(pairs) / sum(occupied)."""
    return (
        (stats.n_time_pairs + stats.n_depth_pairs).astype(np.float64),
        stats.n_occupied.astype(np.float64),
    )


def _avalanche_frame(cond_id: int, adjacency: str, av: Avalanches, seq_ids) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cond_id": np.full(av.size.size, cond_id, dtype=np.int64),
            "seq_id": np.asarray(seq_ids, dtype=np.int64)[av.seq_index],
            "adjacency": pd.array([adjacency] * av.size.size, dtype="string"),
            "size": av.size,
            "duration": av.duration,
            "height": av.height,
            "t_min": av.t_min,
            "l_min": av.l_min,
            "touches_boundary": av.boundary,
        }
    )


def _crackling_row(
    keys: dict,
    adjacency: str,
    null_id: str | None,
    aset: str,
    c: Crackling,
    real: Crackling | None,
    pct,
) -> dict:
    row = {
        **keys,
        "adjacency": adjacency,
        "null_id": null_id,
        "avalanche_set": aset,
        "n_avalanches": c.n_avalanches,
        **_exponent_columns("tau_S", c.tau_S, c.tau_S_xmin),
        "tau_S_at_range_edge": c.tau_S_at_range_edge,
        **_exponent_columns("alpha_D", c.alpha_D, c.alpha_D_xmin),
        "alpha_D_at_range_edge": c.alpha_D_at_range_edge,
        **_est_columns("gamma_fit", c.gamma_fit),
        "n_d_points": c.n_d_points,
        **_est_columns("gamma_pred", c.gamma_pred),
        **_est_columns("dcc", c.dcc),
    }
    # real - null, paired replicate by replicate (the same W); NaN on the real rows.
    for name in DELTA_STATS:
        if real is None:
            row |= {
                f"delta_{name}": np.nan,
                f"delta_{name}{LOW}": np.nan,
                f"delta_{name}{HIGH}": np.nan,
            }
        else:
            value = getattr(real, name).value - getattr(c, name).value
            reps = real.replicates[name] - c.replicates[name]
            row |= _ci_columns(f"delta_{name}", value, reps, pct)
    row["reason"] = c.reason
    return row


def _frame(rows: list[dict], sort_by: list[str], strings: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in strings:
        df[col] = df[col].astype("string")
    # na_position first: the real rows (null_id missing) lead their nulls.
    return df.sort_values(sort_by, kind="mergesort", na_position="first").reset_index(drop=True)


def primary(df: pd.DataFrame) -> pd.DataFrame:
    """The real-raster rows with boundary avalanches excluded (the primary estimates)."""
    keep = df["null_id"].isna() & (df["avalanche_set"] == AVSET.INTERIOR)
    return df[keep].reset_index(drop=True)


def analyze(
    A: np.ndarray,
    X: np.ndarray,
    conditions_df: pd.DataFrame,
    null_A: np.ndarray,
    null_conditions_df: pd.DataFrame,
    raster_rates_df: pd.DataFrame | None,
    seq_ids: np.ndarray,
    params: AnalysisParams,
) -> AnalysisTables:
    """All Phase 5 tables of one model role. Without raster rates (rasters made elsewhere)
    the out-of-sample rate columns are NaN."""
    null_index = _check_inputs(
        A, X, conditions_df, null_A, null_conditions_df, raster_rates_df, seq_ids, params
    )
    n_seq = A.shape[1]
    pct = params.ci_percentiles
    ones = np.ones((1, n_seq))
    if raster_rates_df is None:
        rate_mean = rate_err = pd.Series(np.nan, index=range(A.shape[0]))
    else:
        rates = raster_rates_df.groupby("cond_id")
        rate_mean = rates["achieved_rate"].mean()
        rate_err = rates["abs_err"].apply(lambda e: float(np.max(np.abs(e))))
    summary, av_frames, crack_rows, tail_rows = [], [], [], []
    plans: dict[tuple[str, float], np.ndarray] = {}
    b_tot_reps: dict[int, np.ndarray] = {}
    for cond in conditions_df.itertuples(index=False):
        cid = int(cond.cond_id)
        keys = {"spike_def_id": cond.spike_def_id, "target_rate": cond.target_rate, "g": cond.g}
        seed_keys = (str(cond.spike_def_id), float(cond.target_rate), float(cond.g))
        plan_key = (cond.spike_def_id, float(cond.target_rate))
        if plan_key not in plans:
            idx = bootstrap_indices(n_seq, params.bootstrap_reps, plan_key, params.bootstrap_seed)
            plans[plan_key] = resample_weights(idx, n_seq)
        w = plans[plan_key]
        real_stats = sequence_stats(A[cid])
        point, reps = (
            pooled(real_stats, ones, params.chi_eps),
            pooled(real_stats, w, params.chi_eps),
        )
        row = {
            **keys,
            "cond_id": cid,
            "is_baseline": bool(cond.is_baseline),
            "is_gstar": bool(cond.is_gstar),
            "n_sequences": n_seq,
            "n_events": int(A[cid].sum(dtype=np.int64)),
            "achieved_rate_oos_mean": float(rate_mean[cid]),
            "rate_err_oos_max_abs": float(rate_err[cid]),
        }
        se, se_reps = (
            lattice_se(real_stats, ones, params.chi_eps),
            lattice_se(real_stats, w, params.chi_eps),
        )
        for name in ("b_time", "b_depth", B_TOT):
            row |= _t_columns(
                name,
                getattr(point, name)[0],
                getattr(se, name)[0],
                getattr(reps, name),
                getattr(se_reps, name),
                pct,
                n_seq,
            )
        b_tot_reps[cid] = reps.b_tot
        for nid, suffix in params.null_suffixes:
            null_stats = sequence_stats(null_A[null_index[(nid, cid)]])
            n_point = pooled(null_stats, ones, params.chi_eps)
            n_reps = pooled(null_stats, w, params.chi_eps)
            row[f"{B_TOT}_{suffix}"] = float(n_point.b_tot[0])
            row[f"delta_b_time_{suffix}"] = float(point.b_time[0] - n_point.b_time[0])
            row[f"delta_b_depth_{suffix}"] = float(point.b_depth[0] - n_point.b_depth[0])
            num, den = _b_tot_terms(real_stats)
            num2, den2 = _b_tot_terms(null_stats)
            row |= _t_columns(
                f"delta_{B_TOT}_{suffix}",
                point.b_tot[0] - n_point.b_tot[0],
                ratio_diff_se(num, den, num2, den2, ones)[0],
                reps.b_tot - n_reps.b_tot,
                ratio_diff_se(num, den, num2, den2, w),
                pct,
                n_seq,
            )
        row |= _t_columns("chi", point.chi[0], se.chi[0], reps.chi, se_reps.chi, pct, n_seq)
        mr = branching_ratio_mr(A[cid], w, pct)
        row |= {
            "m_mr": mr.m,
            "m_mr_ci_low": mr.ci_low,
            "m_mr_ci_high": mr.ci_high,
            "m_mr_method": MULTISTEP_METHOD,
            "m_mr_fitfunc": MULTISTEP_FITFUNC,
            "m_mr_kmax": mr.kmax,
            "m_mr_reason": mr.reason,
        }
        summary.append(row)

        for adjacency in ADJACENCIES:
            av = avalanches(A[cid], adjacency, params.cc_max, cid, seq_ids)
            av_frames.append(_avalanche_frame(cid, adjacency, av, seq_ids))
            sources = [(None, av)] + [
                (
                    nid,
                    avalanches(
                        null_A[null_index[(nid, cid)]], adjacency, params.cc_max, cid, seq_ids
                    ),
                )
                for nid in params.crackling_nulls
            ]
            for aset in AVALANCHE_SETS:
                real = None
                for nid, source in sources:
                    if nid is not None and aset != AVSET.INTERIOR:
                        continue  # the nulls are compared on the primary set only
                    sub = source.subset(~source.boundary) if aset == AVSET.INTERIOR else source
                    c = crackling(sub, w, params.crackling_params())
                    real = c if nid is None else real
                    crack_rows.append(
                        _crackling_row(
                            {"cond_id": cid, **keys},
                            adjacency,
                            nid,
                            aset,
                            c,
                            None if nid is None else real,
                            pct,
                        )
                    )
                    reps = params.gof_reps if nid is None else 0
                    rng = rng_for(
                        "gof",
                        *seed_keys,
                        adjacency,
                        nid or "real",
                        aset,
                        base=params.bootstrap_seed,
                    )
                    fits = tail_fits(sub.size, c.size_fit, params.tail_min_samples, rng, reps)
                    for tf in fits:
                        tail_rows.append(
                            {
                                "cond_id": cid,
                                **keys,
                                "adjacency": adjacency,
                                "null_id": nid,
                                "avalanche_set": aset,
                                "alternative": tf.alternative,
                                "xmin": tf.xmin,
                                "n_tail": tf.n_tail,
                                "alpha": tf.alpha,
                                "loglik_ratio_normalized": tf.loglik_ratio_normalized,
                                "p_value": tf.p_value,
                                "gof_p_value": tf.gof_p_value,
                                "gof_reps": reps,
                                "reason": tf.reason,
                            }
                        )

    summary_df = _frame(
        summary, COND_KEYS, ["spike_def_id", "m_mr_method", "m_mr_fitfunc", "m_mr_reason"]
    )
    return AnalysisTables(
        summary=summary_df,
        identifiability=_identifiability_frame(summary_df, b_tot_reps, params)
        if params.identifiability
        else None,
        avalanches=pd.concat(av_frames, ignore_index=True)
        .sort_values(["cond_id", "adjacency", "seq_id", "l_min", "t_min"], kind="mergesort")
        .reset_index(drop=True),
        crackling=_frame(
            crack_rows,
            [*COND_KEYS, "adjacency", "null_id", "avalanche_set"],
            ["spike_def_id", "adjacency", "null_id", "avalanche_set", "reason"],
        ),
        tail_fits=_frame(
            tail_rows,
            [*COND_KEYS, "adjacency", "null_id", "avalanche_set", "alternative"],
            ["spike_def_id", "adjacency", "null_id", "avalanche_set", "alternative", "reason"],
        ),
    )


def _identifiability_frame(
    summary: pd.DataFrame, b_tot_reps: Mapping[int, np.ndarray], params: AnalysisParams
) -> pd.DataFrame:
    perm = f"{B_TOT}_{NULL_SUFFIX.TIME_PERM}"
    rows = []
    for (sd, r), group in summary.groupby(["spike_def_id", "target_rate"], sort=True):
        group = group.sort_values("g", kind="mergesort")
        baseline = group[group["is_baseline"]]
        if len(baseline) != 1:
            raise ContractError(
                f"raster conditions: ({sd}, {r}) needs exactly one baseline gain, "
                f"got {len(baseline)}"
            )
        flags = identifiability(
            group["g"].to_numpy(),
            group[B_TOT].to_numpy(),
            np.stack([b_tot_reps[int(c)] for c in group["cond_id"]], axis=1),
            group[perm].to_numpy(),
            params.gstar[(sd, r)],
            float(baseline["g"].iloc[0]),
            params.ci_percentiles,
            params.ci_width_max,
            (group[B_TOT + LOW].to_numpy(), group[B_TOT + HIGH].to_numpy()),
        )
        rows.append({"spike_def_id": sd, "target_rate": r, **asdict(flags)})
    return _frame(rows, ["spike_def_id", "target_rate"], ["spike_def_id", "why"])
