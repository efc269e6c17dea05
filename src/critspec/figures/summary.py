"""Figures of the Phase 5 summary table over the gain grid, one panel per
(spike_def_id, target_rate): b curves, Δb per null, gstar selection and chi
(spec/13_TABLES_AND_FIGURES.md, "Figures"; columns per the Phase 3-5 interfaces).

Undefined statistics are NaN in the table and draw as gaps; a panel with nothing finite
says so and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from critspec.errors import ContractError
from critspec.figures.render import (
    GSTAR_STYLE,
    PANEL_KEYS,
    FigureHeading,
    figure_legend,
    figure_style,
    gain_axis,
    line_with_band,
    mark_gains,
    no_data,
    panel_grid,
    panel_title,
    require_columns,
    set_heading,
    values,
)
from critspec.select.gstar import B_TOT, CRITICAL_B_TOT, FLOAT_KEY_ATOL

GRID_COLUMNS = (*PANEL_KEYS, "g", "is_baseline", "is_gstar")
B_NAMES = ("b_time", "b_depth", B_TOT)
CHI = "chi"
TIE_STYLE = {"color": "0.4", "linestyle": "--", "linewidth": 0.75}
TIED_STYLE = {"linestyle": "none", "marker": "s", "markersize": 6, "fillstyle": "none"}
REFERENCE_STYLE = {"color": "0.4", "linewidth": 0.6}
HELD_OUT_STYLE = {"color": "0.55", "linestyle": "-.", "marker": "x", "markersize": 3}
CALIBRATION_LABEL = "calibration slice (Phase 2; gstar chosen on this)"
HELD_OUT_LABEL = "held-out windows (Phase 3 rasters)"
NO_EVENTS = "no events at any gain, so b is undefined"


def _ci(name: str) -> tuple[str, str, str]:
    return name, f"{name}_ci_low", f"{name}_ci_high"


def _bands(
    summary: pd.DataFrame,
    names: Sequence[str],
    labels: Sequence[str],
    figure: str,
    why_empty: str,
):
    """One panel per (sd, r), one line with CI band per statistic in `names`."""
    require_columns(
        summary, [*GRID_COLUMNS, *(c for n in names for c in _ci(n))], figure, "summary"
    )
    fig, cells = panel_grid(summary)
    for (sd, r), group, (ax,) in cells:
        g = values(group, "g")
        drawn = False
        for name, label in zip(names, labels, strict=True):
            y, lo, hi = (values(group, c) for c in _ci(name))
            line_with_band(ax, g, y, lo, hi, label)
            drawn |= bool(np.isfinite(y).any())
        if not drawn:
            no_data(ax, why_empty)
        mark_gains(ax, group)
        ax.set_title(panel_title(sd, r))
        gain_axis(ax, g)
    return fig, cells


def _at_gains(g: np.ndarray, y: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """y at each of `gains` (matched to the grid g as written to parquet); NaN if absent."""
    match = np.abs(gains[:, None] - g[None, :]) <= FLOAT_KEY_ATOL
    return np.where(match.any(axis=1), y[match.argmax(axis=1)], np.nan)


def b_curves(summary: pd.DataFrame, heading: FigureHeading | None = None) -> Figure:
    """b_time, b_depth and b_tot over g with their bootstrap CI bands."""
    with figure_style():
        fig, cells = _bands(summary, B_NAMES, B_NAMES, b_curves.__name__, NO_EVENTS)
        for _, _, (ax,) in cells:
            ax.axhline(CRITICAL_B_TOT, **REFERENCE_STYLE)
            ax.set_ylabel("branching ratio b")
        figure_legend(fig)
        set_heading(fig, heading, "branching ratios over the gain, held-out rasters")
    return fig


def delta_b_nulls(
    summary: pd.DataFrame, suffixes: Sequence[str], heading: FigureHeading | None = None
) -> Figure:
    """Δb_tot = b_tot - b_tot of each null (column delta_b_tot_<suffix>) over g with CI."""
    with figure_style():
        names = [f"delta_{B_TOT}_{s}" for s in suffixes]
        why = "b_tot of the rasters or of every null is undefined at every gain"
        fig, cells = _bands(summary, names, list(suffixes), delta_b_nulls.__name__, why)
        for _, _, (ax,) in cells:
            ax.axhline(0.0, **REFERENCE_STYLE)
            ax.set_ylabel("delta b_tot (real - null)")
        figure_legend(fig)
        set_heading(fig, heading, "b_tot against each null, held-out rasters")
    return fig


def chi_over_g(summary: pd.DataFrame, heading: FigureHeading | None = None) -> Figure:
    """Susceptibility chi over g with its bootstrap CI band."""
    with figure_style():
        why = "the mean activity is below chi_eps at every gain, so chi is undefined"
        fig, cells = _bands(summary, (CHI,), (CHI,), chi_over_g.__name__, why)
        for _, _, (ax,) in cells:
            ax.set_ylabel("chi = Var(Y) / Mean(Y)")
        figure_legend(fig)
        set_heading(fig, heading, "susceptibility over the gain, held-out rasters")
    return fig


def _calibration_curves(gstar_doc: dict) -> dict[tuple[str, float], tuple[np.ndarray, dict]]:
    """(sd, r) -> (b_tot at every gain of the gstar artifact, its condition entry)."""
    gains = np.asarray(gstar_doc.get("gains", []), dtype=np.float64)
    out = {}
    for cond in gstar_doc.get("conditions", []):
        if "b_tot_by_gain" not in cond or len(cond["b_tot_by_gain"]) != gains.size:
            raise ContractError(
                f"figure {gstar_selection.__name__}: the gstar artifact's condition "
                f"({cond.get('spike_def_id')}, {cond.get('target_rate')}) has no b_tot_by_gain "
                f"over its {gains.size} gains; re-run phase2-select-gstar"
            )
        b = np.array([np.nan if v is None else v for v in cond["b_tot_by_gain"]], dtype=float)
        out[(str(cond["spike_def_id"]), float(cond["target_rate"]))] = (b, cond)
    return out


def gstar_selection(
    summary: pd.DataFrame, gstar_doc: dict, heading: FigureHeading | None = None
) -> Figure:
    """|b_tot - 1| over g on the calibration slice, the data gstar was chosen on
    (b_tot_by_gain of the gstar artifact), with the selected gstar, its tied gains and the
    tie threshold min |b_tot - 1| + tie_tol_abs; beside it, labelled, |b_tot - 1| of the
    held-out rasters (summary), which the choice did not see."""
    require_columns(summary, (*PANEL_KEYS, "g", B_TOT), gstar_selection.__name__, "summary")
    curves = _calibration_curves(gstar_doc)
    grid = np.asarray(gstar_doc.get("gains", []), dtype=np.float64)
    tol = float(gstar_doc["tie_tol_abs"])
    with figure_style():
        fig, cells = panel_grid(summary)
        for (sd, r), group, (ax,) in cells:
            key = next((k for k in curves if k[0] == sd and abs(k[1] - r) <= FLOAT_KEY_ATOL), None)
            if key is None:
                raise ContractError(
                    f"figure {gstar_selection.__name__}: no gstar row for ({sd}, {r}); "
                    "pass the gstar artifact the summary's gstar flags came from"
                )
            b_cal, cond = curves[key]
            dev = np.abs(b_cal - CRITICAL_B_TOT)
            ax.plot(grid, dev, marker="o", markersize=3, label=CALIBRATION_LABEL)
            g = values(group, "g")
            held = np.abs(values(group, B_TOT) - CRITICAL_B_TOT)
            ax.plot(g, held, label=HELD_OUT_LABEL, **HELD_OUT_STYLE)
            tied = np.asarray(cond["tied_gains"], dtype=np.float64)
            ax.plot(tied, _at_gains(grid, dev, tied), label="tied", **TIED_STYLE)
            ax.axvline(float(cond["gstar"]), label="gstar", zorder=3, **GSTAR_STYLE)
            if np.isfinite(dev).any():
                threshold = float(np.nanmin(dev)) + tol
                ax.axhline(threshold, label="tie threshold (calibration)", **TIE_STYLE)
            else:
                no_data(ax, "b_tot is undefined at every gain of the calibration slice")
            ax.set_title(panel_title(sd, r))
            gain_axis(ax, np.concatenate([grid, g]))
            ax.set_ylabel(f"|{B_TOT} - 1|")
        # Long labels (which data each curve is): three to a row, so none is cut off.
        figure_legend(fig, max_columns=3)
        set_heading(fig, heading, "gstar selection")
    return fig
