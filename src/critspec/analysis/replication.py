"""Phase 7, replication across model roles (spec/15_REPLICATION.md).

Pure: no I/O, no config. Per (spike_def_id, target_rate) it compares two roles' Phase 5
results on their held-out rasters:

- per role, at that role's gstar: b_tot, Δb_tot against every null and chi with their
  CIs, read from the role's Phase 5 summary (the sealed numbers, not recomputed), and the
  identifiability verdict from its identifiability table;
- the b_tot(g) curves of the two roles, recomputed from the rasters with the same
  sequence-bootstrap plan Phase 5 drew for the (spike_def_id, target_rate) and shared by
  its gains, and Phase 5's studentized interval, so each role's curve and CI equal its
  Phase 5 summary (the point is checked); the gap Δ(g) = b_tot[role 0](g) − b_tot[role
  1](g) at every gain, and the gain where |Δ| is largest with the percentile CI of Δ at
  that gain. When both roles ran on the same windows (equal seq_id) the resamples are
  paired by window; otherwise the two roles' resamples are independent draws, and
  `gap_paired` says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.bootstrap import (
    bootstrap_indices,
    percentile_ci,
    resample_weights,
    studentized_ci,
)
from critspec.analysis.lattice_stats import lattice_se, pooled, sequence_stats
from critspec.analysis.tables import CANON_NULL_SUFFIXES, HIGH, LOW
from critspec.errors import ContractError

B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
PAIR_KEYS = ["spike_def_id", "target_rate"]
# Summary statistics carried per role at gstar, each with its CI columns.
AT_GSTAR = (B_TOT, *(f"delta_{B_TOT}_{suffix}" for _, suffix in CANON_NULL_SUFFIXES), "chi")


@dataclass(frozen=True)
class RoleInputs:
    """One model role's sealed Phase 3 and Phase 5 outputs."""

    summary: pd.DataFrame  # Phase 5 summary
    identifiability: pd.DataFrame  # Phase 5 identifiability
    A: np.ndarray  # Phase 3 rasters A [C, N, L, T]
    conditions: pd.DataFrame  # Phase 3 raster_conditions (cond_id indexes A)
    seq_id: np.ndarray  # Phase 3 rasters seq_id [N]


@dataclass(frozen=True)
class ReplicationParams:
    bootstrap_seed: int  # BOOTSTRAP_SEED
    bootstrap_reps: int  # BOOTSTRAP_REPS (as Phase 5 ran)
    ci_percentiles: tuple[float, float]  # BOOTSTRAP_CI_PERCENTILES
    chi_eps: float  # CHI_EPS


@dataclass(frozen=True)
class ReplicationTables:
    by_role: pd.DataFrame  # one row per (spike_def_id, target_rate, model_role)
    replication: pd.DataFrame  # one row per (spike_def_id, target_rate)
    curves: pd.DataFrame  # b_tot(g) with CI per (spike_def_id, target_rate, model_role, g)


def role_suffix(role: str) -> str:
    """The column suffix of a model role in the replication table (`gstar_<suffix>`)."""
    return role.lower()


def _one(df: pd.DataFrame, mask: pd.Series, what: str) -> pd.Series:
    rows = df[mask]
    if len(rows) != 1:
        raise ContractError(f"{what}: expected one row, found {len(rows)}")
    return rows.iloc[0]


def _pairs(roles: Mapping[str, RoleInputs]) -> list[tuple[str, float]]:
    keys = None
    for role, inputs in roles.items():
        mine = sorted(
            (str(sd), float(r))
            for sd, r in inputs.identifiability[PAIR_KEYS].itertuples(index=False)
        )
        if keys is None:
            keys = mine
        elif mine != keys:
            raise ContractError(
                f"model role {role} has (spike_def_id, target_rate) {mine}, another role "
                f"{keys}: both roles must run with the same calibration config"
            )
    return keys or []


def _gains(inputs: RoleInputs, sd: str, r: float) -> np.ndarray:
    c = inputs.conditions
    mine = c[(c["spike_def_id"] == sd) & (c["target_rate"] == r)]
    return np.sort(mine["g"].to_numpy(dtype=np.float64))


def _curve(
    inputs: RoleInputs, role: str, sd: str, r: float, gains: np.ndarray, p: ReplicationParams
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """b_tot point [G] and resamples [R, G] of one role over `gains`, and its curve rows."""
    n_seq = inputs.A.shape[1]
    ones = np.ones((1, n_seq))
    point = np.empty(len(gains))
    reps = np.empty((p.bootstrap_reps, len(gains)))
    rows = []
    c, s = inputs.conditions, inputs.summary
    # Phase 5's plan: one index matrix per (spike_def_id, target_rate), shared by its gains.
    idx = bootstrap_indices(n_seq, p.bootstrap_reps, (sd, float(r)), p.bootstrap_seed)
    w = resample_weights(idx, n_seq)
    for j, g in enumerate(gains):
        at = (c["spike_def_id"] == sd) & (c["target_rate"] == r) & (c["g"] == g)
        cid = int(_one(c, at, f"{role} raster_conditions ({sd}, {r:g}, g={g:g})")["cond_id"])
        stats = sequence_stats(inputs.A[cid])
        point[j] = pooled(stats, ones, p.chi_eps).b_tot[0]
        reps[:, j] = pooled(stats, w, p.chi_eps).b_tot
        sealed = _one(
            s,
            (s["spike_def_id"] == sd) & (s["target_rate"] == r) & (s["g"] == g),
            f"{role} summary ({sd}, {r:g}, g={g:g})",
        )[B_TOT]
        # Phase 5 computed b_tot from the same rasters by the same function: any
        # difference, even in the last bit, means the summary is not of these rasters.
        if not ((np.isnan(sealed) and np.isnan(point[j])) or float(sealed) == point[j]):
            raise ContractError(
                f"{role} summary b_tot at ({sd}, {r:g}, g={g:g}) is {sealed!r}, its rasters give "
                f"{point[j]!r}: the Phase 5 run is not of these rasters; re-run Phase 5"
            )
        low, high = studentized_ci(
            point[j],
            lattice_se(stats, ones, p.chi_eps).b_tot[0],
            reps[:, j],
            lattice_se(stats, w, p.chi_eps).b_tot,
            p.ci_percentiles,
            n_seq,
        )
        rows.append(
            {
                "spike_def_id": sd,
                "target_rate": r,
                "model_role": role,
                "g": float(g),
                B_TOT: float(point[j]),
                B_TOT + LOW: float(low),
                B_TOT + HIGH: float(high),
            }
        )
    return point, reps, rows


def _largest_gap(
    gains: np.ndarray, gap: np.ndarray, gap_reps: np.ndarray, pct: Sequence[float]
) -> dict:
    """The gain of the largest |gap| (first in grid order among equals; NaN gains skipped)
    and the percentile CI of the gap at that gain."""
    finite = np.isfinite(gap)
    if not finite.any():
        return {"gap_g": float("nan"), "b_tot_gap": float("nan")} | {
            "b_tot_gap" + LOW: float("nan"),
            "b_tot_gap" + HIGH: float("nan"),
        }
    j = int(np.argmax(np.where(finite, np.abs(gap), -np.inf)))
    low, high = percentile_ci(gap_reps[:, j], pct)
    return {
        "gap_g": float(gains[j]),
        "b_tot_gap": float(gap[j]),
        "b_tot_gap" + LOW: float(low),
        "b_tot_gap" + HIGH: float(high),
    }


def replicate(roles: Mapping[str, RoleInputs], params: ReplicationParams) -> ReplicationTables:
    """The Phase 7 tables of exactly two model roles (the first is the gap's minuend)."""
    if len(roles) != 2:
        raise ContractError(f"replication compares two model roles, got {sorted(roles)}")
    (role0, in0), (role1, in1) = roles.items()
    paired = bool(np.array_equal(in0.seq_id, in1.seq_id))
    by_role, rep_rows, curve_rows = [], [], []
    for sd, r in _pairs(roles):
        gains = _gains(in0, sd, r)
        if not np.array_equal(gains, _gains(in1, sd, r)):
            raise ContractError(
                f"({sd}, {r:g}): gain grids differ between {role0} and {role1}; "
                "both roles must run with the same gain_grid config"
            )
        row: dict = {"spike_def_id": sd, "target_rate": r}
        verdicts = {}
        for role, inputs in roles.items():
            ident = inputs.identifiability
            flags = _one(
                ident,
                (ident["spike_def_id"] == sd) & (ident["target_rate"] == r),
                f"{role} identifiability ({sd}, {r:g})",
            )
            s = inputs.summary
            star = _one(
                s,
                (s["spike_def_id"] == sd) & (s["target_rate"] == r) & s["is_gstar"],
                f"{role} summary at gstar ({sd}, {r:g})",
            )
            if float(star["g"]) != float(flags["gstar"]):
                raise ContractError(
                    f"{role} ({sd}, {r:g}): summary marks g={star['g']:g} as gstar, "
                    f"identifiability says {flags['gstar']:g}; re-run Phase 5"
                )
            by_role.append(
                {
                    "spike_def_id": sd,
                    "target_rate": r,
                    "model_role": role,
                    "gstar": float(flags["gstar"]),
                    "gstar_at_edge": bool(flags["gstar_at_edge"]),
                    "identifiable": bool(flags["identifiable"]),
                    **{
                        c: float(star[c])
                        for name in AT_GSTAR
                        for c in (name, name + LOW, name + HIGH)
                    },
                }
            )
            suffix = role_suffix(role)
            row[f"gstar_{suffix}"] = float(flags["gstar"])
            row[f"identifiable_{suffix}"] = bool(flags["identifiable"])
            verdicts[role] = bool(flags["identifiable"])
        row["gstar_equal"] = (
            row[f"gstar_{role_suffix(role0)}"] == row[f"gstar_{role_suffix(role1)}"]
        )
        row["verdicts_agree"] = verdicts[role0] == verdicts[role1]
        p0, reps0, rows0 = _curve(in0, role0, sd, r, gains, params)
        p1, reps1, rows1 = _curve(in1, role1, sd, r, gains, params)
        curve_rows += rows0 + rows1
        row |= _largest_gap(gains, p0 - p1, reps0 - reps1, params.ci_percentiles)
        row["gap_paired"] = paired
        row["n_gains"] = int(len(gains))
        rep_rows.append(row)
    return ReplicationTables(
        by_role=_sorted(
            pd.DataFrame(by_role), [*PAIR_KEYS, "model_role"], ["spike_def_id", "model_role"]
        ),
        replication=_sorted(pd.DataFrame(rep_rows), PAIR_KEYS, ["spike_def_id"]),
        curves=_sorted(
            pd.DataFrame(curve_rows),
            [*PAIR_KEYS, "model_role", "g"],
            ["spike_def_id", "model_role"],
        ),
    )


def _sorted(df: pd.DataFrame, by: list[str], strings: list[str]) -> pd.DataFrame:
    for col in strings:
        df[col] = df[col].astype("string")
    return df.sort_values(by, kind="mergesort").reset_index(drop=True)
