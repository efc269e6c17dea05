"""Figures of the Phase 5 summary table over the gain grid, one panel per
(spike_def_id, target_rate): b curves, Δb per null, gstar selection and chi
(spec/13_TABLES_AND_FIGURES.md, "Figures"; columns per the Phase 3-5 interfaces).

Undefined statistics are NaN in the table and draw as gaps; a panel with nothing finite
says so.
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
    figure_legend,
    figure_style,
    line_with_band,
    mark_gains,
    no_data,
    panel_grid,
    panel_title,
    require_columns,
    values,
)
from critspec.select.gstar import B_TOT, CRITICAL_B_TOT, FLOAT_KEY_ATOL

GRID_COLUMNS = (*PANEL_KEYS, "g", "is_baseline", "is_gstar")
B_NAMES = ("b_time", "b_depth", B_TOT)
CHI = "chi"
TIE_STYLE = {"color": "0.4", "linestyle": "--", "linewidth": 0.75}
TIED_STYLE = {"linestyle": "none", "marker": "s", "markersize": 6, "fillstyle": "none"}
REFERENCE_STYLE = {"color": "0.4", "linewidth": 0.6}


def _ci(name: str) -> tuple[str, str, str]:
    return name, f"{name}_ci_low", f"{name}_ci_high"


def _bands(summary: pd.DataFrame, names: Sequence[str], labels: Sequence[str], figure: str):
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
            no_data(ax)
        mark_gains(ax, group)
        ax.set_title(panel_title(sd, r))
        ax.set_xlabel("MLP gain g")
    return fig, cells


def _at_gains(g: np.ndarray, y: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """y at each of `gains` (matched to the grid g as written to parquet); NaN if absent."""
    match = np.abs(gains[:, None] - g[None, :]) <= FLOAT_KEY_ATOL
    return np.where(match.any(axis=1), y[match.argmax(axis=1)], np.nan)


def b_curves(summary: pd.DataFrame) -> Figure:
    """b_time, b_depth and b_tot over g with their bootstrap CI bands."""
    with figure_style():
        fig, cells = _bands(summary, B_NAMES, B_NAMES, b_curves.__name__)
        for _, _, (ax,) in cells:
            ax.axhline(CRITICAL_B_TOT, **REFERENCE_STYLE)
            ax.set_ylabel("branching ratio b")
        figure_legend(fig)
    return fig


def delta_b_nulls(summary: pd.DataFrame, suffixes: Sequence[str]) -> Figure:
    """Δb_tot = b_tot - b_tot of each null (column delta_b_tot_<suffix>) over g with CI."""
    with figure_style():
        names = [f"delta_{B_TOT}_{s}" for s in suffixes]
        fig, cells = _bands(summary, names, list(suffixes), delta_b_nulls.__name__)
        for _, _, (ax,) in cells:
            ax.axhline(0.0, **REFERENCE_STYLE)
            ax.set_ylabel("delta b_tot (real - null)")
        figure_legend(fig)
    return fig


def chi_over_g(summary: pd.DataFrame) -> Figure:
    """Susceptibility chi over g with its bootstrap CI band."""
    with figure_style():
        fig, cells = _bands(summary, (CHI,), (CHI,), chi_over_g.__name__)
        for _, _, (ax,) in cells:
            ax.set_ylabel("chi = Var(Y) / Mean(Y)")
        figure_legend(fig)
    return fig


def gstar_selection(summary: pd.DataFrame, gstar_rows: pd.DataFrame, tie_tol_abs: float) -> Figure:
    """|b_tot - 1| over g, the selected gstar and its tied gains (gstar artifact
    conditions: spike_def_id, target_rate, gstar, tied_gains), and the tie threshold
    min |b_tot - 1| + tie_tol_abs."""
    require_columns(summary, (*PANEL_KEYS, "g", B_TOT), gstar_selection.__name__, "summary")
    require_columns(
        gstar_rows, (*PANEL_KEYS, "gstar", "tied_gains"), gstar_selection.__name__, "gstar"
    )
    chosen = {
        (str(row.spike_def_id), float(row.target_rate)): row
        for row in gstar_rows.itertuples(index=False)
    }
    with figure_style():
        fig, cells = panel_grid(summary)
        for (sd, r), group, (ax,) in cells:
            if (sd, r) not in chosen:
                raise ContractError(
                    f"figure {gstar_selection.__name__}: no gstar row for ({sd}, {r}); "
                    "pass the gstar conditions of the run the summary's gstar flags came from"
                )
            row = chosen[(sd, r)]
            g = values(group, "g")
            dev = np.abs(values(group, B_TOT) - CRITICAL_B_TOT)
            ax.plot(g, dev, marker="o", markersize=3, label=f"|{B_TOT} - 1|")
            tied = np.asarray(row.tied_gains, dtype=np.float64)
            ax.plot(tied, _at_gains(g, dev, tied), label="tied", **TIED_STYLE)
            ax.axvline(float(row.gstar), label="gstar", **GSTAR_STYLE)
            if np.isfinite(dev).any():
                ax.axhline(float(np.nanmin(dev)) + tie_tol_abs, label="tie threshold", **TIE_STYLE)
            else:
                no_data(ax)
            ax.set_title(panel_title(sd, r))
            ax.set_xlabel("MLP gain g")
            ax.set_ylabel(f"|{B_TOT} - 1|")
        figure_legend(fig)
    return fig
