"""Hand-built Phase 5 tables with the interface columns, for the figure tests.

Values follow simple formulas of the row index so a test can recompute every plotted
number; `nan_at` plants NaN (a failed fit) at chosen rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from canon import CANON
from critspec import figures

SPIKE_DEF_IDS = sorted(
    [CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS]
)
RATES = sorted(CANON.PROFILE.EMBEDDED_DEFAULT.TARGET_LAYER_RATES)
GAINS = sorted(CANON.CONST.GAIN_GRID_DEFAULT)
SUFFIXES = [
    CANON.OUTPUT.NULL_SUFFIX.TIME_PERM,
    CANON.OUTPUT.NULL_SUFFIX.CIRCULAR_SHIFT,
    CANON.OUTPUT.NULL_SUFFIX.TOKEN_SHUFFLE,
]
ADJACENCIES = sorted([CANON.ENUM.ADJACENCY.ADJ_4N, CANON.ENUM.ADJACENCY.ADJ_8N])
GSTAR_INDEX = 3
N_LAYERS = 4
HALF_WIDTH = 0.05
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT


def _ci(d: dict, name: str, value: float) -> None:
    d[name] = value
    d[f"{name}_ci_low"] = value - HALF_WIDTH
    d[f"{name}_ci_high"] = value + 2 * HALF_WIDTH


def summary_table(
    nan_at: dict[str, list[int]] | None = None,
    spike_def_ids: list[str] = SPIKE_DEF_IDS,
    rates: list[float] = RATES,
) -> pd.DataFrame:
    """One row per (sd, r, g) in key order; statistic s at row i of a panel is
    k + 0.1 * i + 0.01 * panel (k differs per statistic). nan_at[column] -> row numbers."""
    rows = []
    panel = 0
    for sd in spike_def_ids:
        for r in rates:
            for i, g in enumerate(GAINS):
                d = {
                    "spike_def_id": sd,
                    "target_rate": r,
                    "g": g,
                    "cond_id": len(rows),
                    "is_baseline": g == CANON.CONST.GAIN_BASELINE,
                    "is_gstar": i == GSTAR_INDEX,
                    "n_sequences": 16,
                    "n_events": 100 + i,
                    "achieved_rate_oos_mean": r,
                    "rate_err_oos_max_abs": 0.0,
                }
                base = 0.1 * i + 0.01 * panel
                _ci(d, "b_time", 0.2 + base)
                _ci(d, "b_depth", 0.3 + base)
                _ci(d, B_TOT, 0.5 + 2 * base)
                for k, s in enumerate(SUFFIXES):
                    d[f"b_tot_{s}"] = 0.4 + base
                    d[f"delta_b_time_{s}"] = 0.05 * k
                    d[f"delta_b_depth_{s}"] = 0.05 * k
                    _ci(d, f"delta_b_tot_{s}", 0.1 * (k + 1) + base)
                _ci(d, "chi", 2.0 + 3 * base)
                _ci(d, "m_mr", 0.6 + base)
                d["m_mr_method"] = CANON.CONST.MULTISTEP_METHOD
                d["m_mr_fitfunc"] = CANON.CONST.MULTISTEP_FITFUNC
                d["m_mr_kmax"] = 12
                d["m_mr_reason"] = None
                rows.append(d)
            panel += 1
    df = pd.DataFrame(rows)
    for column, at in (nan_at or {}).items():
        df.loc[at, column] = np.nan
    return df


def gstar_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """gstar artifact conditions: gstar where is_gstar, tied with its right neighbour."""
    out = []
    for (sd, r), group in summary.groupby(["spike_def_id", "target_rate"], sort=True):
        g = group["g"].to_numpy()
        out.append(
            {
                "spike_def_id": sd,
                "target_rate": r,
                "gstar": g[GSTAR_INDEX],
                "tied_gains": [g[GSTAR_INDEX], g[GSTAR_INDEX + 1]],
            }
        )
    return pd.DataFrame(out)


CAL_SHIFT = -0.35


def gstar_doc(summary: pd.DataFrame, nan_at: list[int] | None = None) -> dict:
    """A gstar artifact for the summary's panels: gstar and ties as gstar_rows, and a
    calibration-slice b_tot of held-out b_tot + CAL_SHIFT (so the two curves differ), with
    None (JSON null) at the rows `nan_at`."""
    conditions = []
    for row in gstar_rows(summary).to_dict("records"):
        group = summary[
            (summary["spike_def_id"] == row["spike_def_id"])
            & (summary["target_rate"] == row["target_rate"])
        ].sort_values("g")
        b = [float(v) + CAL_SHIFT for v in group[B_TOT]]
        b = [None if (i in (nan_at or []) or np.isnan(v)) else v for i, v in enumerate(b)]
        conditions.append({**row, "b_tot_by_gain": b})
    return {
        "tie_tol_abs": CANON.CONST.GSTAR_TIE_TOL_ABS,
        "gains": list(GAINS),
        "conditions": conditions,
    }


def crackling_table(
    nan_at: dict[str, list[int]] | None = None,
    spike_def_ids: list[str] = SPIKE_DEF_IDS,
    rates: list[float] = RATES,
) -> pd.DataFrame:
    """One row per (sd, r, g, adjacency) in key order, interface column order;
    gamma_fit = 1.5 + 0.05 i + 0.2 a, gamma_pred = 2.0 - 0.05 i + 0.2 a (i the gain index,
    a the adjacency index)."""
    rows = []
    cond_id = 0
    for sd in spike_def_ids:
        for r in rates:
            for i, g in enumerate(GAINS):
                for a, adjacency in enumerate(ADJACENCIES):
                    d = {
                        "cond_id": cond_id,
                        "spike_def_id": sd,
                        "target_rate": r,
                        "g": g,
                        "adjacency": adjacency,
                        "n_avalanches": 200,
                    }
                    for name in ("tau_S", "alpha_D"):
                        d[name] = 2.0 + 0.1 * i
                        d[f"{name}_xmin"] = 1.0
                        d[f"{name}_ci_low"] = d[name] - HALF_WIDTH
                        d[f"{name}_ci_high"] = d[name] + HALF_WIDTH
                    _ci(d, "gamma_fit", 1.5 + 0.05 * i + 0.2 * a)
                    d["n_d_points"] = 10
                    _ci(d, "gamma_pred", 2.0 - 0.05 * i + 0.2 * a)
                    _ci(d, "dcc", abs(d["gamma_fit"] - d["gamma_pred"]))
                    d["reason"] = None
                    rows.append(d)
                cond_id += 1
    df = pd.DataFrame(rows)
    for column, at in (nan_at or {}).items():
        df.loc[at, column] = np.nan
    return df


def rate_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raster_rates, conditions): per condition and layer, r_star = target_rate and
    achieved_rate = r_star * (1 + 0.01 * (layer - cond_id % 3))."""
    conditions = summary_table()[
        ["cond_id", "spike_def_id", "target_rate", "g", "is_baseline", "is_gstar"]
    ]
    rates = [
        {
            "cond_id": int(c.cond_id),
            "layer": layer,
            "r_star": float(c.target_rate),
            "achieved_rate": float(c.target_rate) * (1 + 0.01 * (layer - c.cond_id % 3)),
        }
        for c in conditions.itertuples(index=False)
        for layer in range(N_LAYERS)
    ]
    return pd.DataFrame(rates), conditions


def raster_seq() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A [L, T] = [4, 24] count raster with one avalanche on layers 1..2, tokens 5..11."""
    A = np.zeros((N_LAYERS, 24), dtype=np.uint16)
    A[1, 5:12] = 1
    A[2, 7:10] = 3
    A[0, 20] = 2
    return A, (1, 2, 5, 11)


def all_figures(
    spike_def_ids: list[str] = SPIKE_DEF_IDS, rates: list[float] = RATES
) -> dict[str, object]:
    """Every Phase 5 figure of the hand tables, by its CANON.OUTPUT.FIGURE key."""
    summary = summary_table(nan_at={B_TOT: [2]}, spike_def_ids=spike_def_ids, rates=rates)
    raster_rates, conditions = rate_tables()
    A, box = raster_seq()
    return {
        "RASTER_EXAMPLE": figures.raster_example(A, box, "sequence 0"),
        "RATE_MATCH": figures.rate_match(raster_rates, conditions),
        "B_CURVES": figures.b_curves(summary),
        "DELTA_B_NULLS": figures.delta_b_nulls(summary, SUFFIXES),
        "GSTAR_SELECTION": figures.gstar_selection(summary, gstar_doc(summary)),
        "CHI_OVER_G": figures.chi_over_g(summary),
        "CRACKLING_GAMMA": figures.crackling_gamma(
            crackling_table(nan_at={"gamma_fit": [4]}, spike_def_ids=spike_def_ids, rates=rates)
        ),
    }


def write_all(
    out_dir: Path, spike_def_ids: list[str] = SPIKE_DEF_IDS, rates: list[float] = RATES
) -> None:
    """Save every figure under out_dir with its CANON basenames."""
    for key, fig in all_figures(spike_def_ids, rates).items():
        png, pdf = getattr(CANON.OUTPUT.FIGURE, key)
        figures.save_figure(fig, out_dir / png, out_dir / pdf)
