"""Select gstar from a gain grid's metrics (spec/04_GAIN_AND_GSTAR.md, "select gstar").

gstar(sd, r) = argmin over gains of |b_tot - 1|, NaN rows excluded. Gains within
the tie tolerance of the minimum are tied; a tie goes to the gain closest to the
baseline gain, and a remaining tie (e.g. 0.9 vs 1.1 around 1.0) to the smaller
gain. Only b_tot is read; any other method or a performance-based input is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from canon import CANON
from critspec.errors import CheckFailed

B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
KEY_COLUMNS = ("spike_def_id", "target_rate", "g")
# The branching ratio of a critical process; the selection target, not a tunable.
CRITICAL_B_TOT = 1.0
# Gains and rates are read back from parquet as the floats that were written; this only
# absorbs decimal round-off such as |0.9 - 1.0| != |1.1 - 1.0| in binary floating point.
FLOAT_KEY_ATOL = 1e-10


@dataclass(frozen=True)
class GstarChoice:
    """The selected gain of one (spike_def_id, target_rate) and how it was decided."""

    spike_def_id: str
    target_rate: float
    gstar: float
    b_tot_at_gstar: float
    abs_dev: float
    tied_gains: tuple[float, ...]
    decided_by: str
    n_nan_excluded: int

    def to_json(self) -> dict:
        """A JSON-ready dict with the gstar artifact's condition fields."""
        return {
            "spike_def_id": self.spike_def_id,
            "target_rate": self.target_rate,
            "gstar": self.gstar,
            "b_tot_at_gstar": self.b_tot_at_gstar,
            "abs_dev": self.abs_dev,
            "tied_gains": list(self.tied_gains),
            "decided_by": self.decided_by,
            "n_nan_excluded": self.n_nan_excluded,
        }


def refuse_method(method: str, inputs: Sequence[str]) -> None:
    """Only btot_near_one on b_tot is allowed; performance-based selection is refused."""
    allowed = CANON.ENUM.GSTAR_METHOD.BTOT_NEAR_ONE
    if method != allowed:
        raise CheckFailed(
            f"gstar method {method!r} is not allowed: the only method is {allowed!r}; "
            "fix the selection method in the config"
        )
    forbidden = [
        v for k, v in vars(CANON.ENUM.FORBIDDEN_SELECTION_INPUT).items() if not k.startswith("_")
    ]
    for name in inputs:
        hits = [f for f in forbidden if f in str(name).lower()]
        if hits:
            raise CheckFailed(
                f"gstar selection input {name!r} uses {hits[0]!r}: gstar must be chosen from "
                f"{B_TOT} only, never from task performance; remove it from the selection inputs"
            )


def _has(values: np.ndarray, x: float) -> np.ndarray:
    return np.abs(values - x) <= FLOAT_KEY_ATOL


def check_complete(
    df: pd.DataFrame,
    spike_def_ids: Sequence[str],
    target_rates: Sequence[float],
    gains: Sequence[float],
) -> None:
    """Exactly one row per configured (sd, r, g) and no other rows; CheckFailed otherwise."""
    sd_col = df["spike_def_id"].astype(str).to_numpy()
    r_col = df["target_rate"].to_numpy(dtype=np.float64)
    g_col = df["g"].to_numpy(dtype=np.float64)
    missing, duplicated = [], []
    matched = np.zeros(len(df), dtype=bool)
    for sd in spike_def_ids:
        for r in target_rates:
            in_cond = (sd_col == sd) & _has(r_col, float(r))
            for g in gains:
                hit = in_cond & _has(g_col, float(g))
                count = int(hit.sum())
                matched |= hit
                if count == 0:
                    missing.append((sd, float(r), float(g)))
                elif count > 1:
                    duplicated.append((sd, float(r), float(g), count))
    if missing:
        sd, r, g = missing[0]
        raise CheckFailed(
            f"gain grid metrics incomplete: {len(missing)} (spike_def_id, target_rate, g) rows "
            f"missing, first ({sd}, {r}, {g}); rerun phase2-gain-grid with the configured grid"
        )
    if duplicated:
        sd, r, g, count = duplicated[0]
        raise CheckFailed(
            f"gain grid metrics have {count} rows for ({sd}, {r}, {g}) "
            f"({len(duplicated)} duplicated keys): the metrics artifact is corrupt; rerun the grid"
        )
    if not matched.all():
        i = int(np.argmin(matched))
        raise CheckFailed(
            f"gain grid metrics have {int((~matched).sum())} rows outside the configured grid, "
            f"first ({sd_col[i]}, {r_col[i]}, {g_col[i]}): select from a run of this config"
        )


def _choose(gains: np.ndarray, b_tot: np.ndarray, tie_tol_abs: float, gain_baseline: float):
    dev = np.abs(b_tot - CRITICAL_B_TOT)
    tied = np.sort(gains[dev <= dev.min() + tie_tol_abs])
    if len(tied) == 1:
        return float(tied[0]), tied, CANON.ENUM.GSTAR_DECIDED_BY.UNIQUE_MIN
    dist = np.abs(tied - gain_baseline)
    closest = tied[dist <= dist.min() + FLOAT_KEY_ATOL]
    if len(closest) == 1:
        return float(closest[0]), tied, CANON.ENUM.GSTAR_DECIDED_BY.CLOSEST_TO_BASELINE
    return float(closest.min()), tied, CANON.ENUM.GSTAR_DECIDED_BY.SMALLER_GAIN


def select_gstar(
    df: pd.DataFrame, *, tie_tol_abs: float, gain_baseline: float
) -> list[GstarChoice]:
    """gstar per (spike_def_id, target_rate), sorted by those keys; reads only b_tot and keys."""
    table = df.loc[:, [*KEY_COLUMNS, B_TOT]]
    out = []
    for (sd, r), group in table.groupby(["spike_def_id", "target_rate"], sort=True):
        gains = group["g"].to_numpy(dtype=np.float64)
        b_tot = group[B_TOT].to_numpy(dtype=np.float64)
        if len(np.unique(gains)) != len(gains):
            raise CheckFailed(
                f"metrics have duplicate gains for ({sd}, {r}): run check_complete first"
            )
        nan = np.isnan(b_tot)
        if nan.all():
            raise CheckFailed(
                f"b_tot is NaN at every gain for ({sd}, {r}): no events at any gain; "
                "raise the target rate or use more windows"
            )
        gstar, tied, decided_by = _choose(gains[~nan], b_tot[~nan], tie_tol_abs, gain_baseline)
        b_at = float(b_tot[gains == gstar][0])
        out.append(
            GstarChoice(
                spike_def_id=str(sd),
                target_rate=float(r),
                gstar=gstar,
                b_tot_at_gstar=b_at,
                abs_dev=abs(b_at - CRITICAL_B_TOT),
                tied_gains=tuple(float(x) for x in tied),
                decided_by=decided_by,
                n_nan_excluded=int(nan.sum()),
            )
        )
    return out


def gstar_table(doc: dict) -> dict[tuple[str, float], float]:
    """(spike_def_id, target_rate) -> gstar from a gstar.json document."""
    return {(c["spike_def_id"], c["target_rate"]): c["gstar"] for c in doc["conditions"]}
