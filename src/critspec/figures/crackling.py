"""Crackling-noise figure: gamma_fit against gamma_pred = (alpha_D - 1)/(tau_S - 1) over g
(spec/13_TABLES_AND_FIGURES.md, "Crackling noise" and "Figures"; crackling table of the interfaces).

One panel per (spike_def_id, target_rate) and adjacency; failed fits are NaN and draw as
gaps; a panel without any fit says why, from the table's `reason` column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from critspec.figures.render import (
    PANEL_KEYS,
    FigureHeading,
    figure_legend,
    figure_style,
    gain_axis,
    line_with_band,
    no_data,
    panel_grid,
    panel_title,
    reason_words,
    require_columns,
    set_heading,
    values,
)

GAMMAS = ("gamma_fit", "gamma_pred")
CI_COLUMNS = tuple(c for n in GAMMAS for c in (n, f"{n}_ci_low", f"{n}_ci_high"))


def why_no_fit(rows: pd.DataFrame) -> str:
    """The panel's NaN reasons in words, most frequent first (ties by id)."""
    if "reason" not in rows.columns:
        return "no finite gamma at any gain"
    counts = rows["reason"].dropna().astype(str).value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [reason_words(reason) for reason, _ in ordered]
    return "; ".join(words) if words else "no finite gamma at any gain"


def crackling_gamma(crackling_df: pd.DataFrame, heading: FigureHeading | None = None) -> Figure:
    """gamma_fit and gamma_pred with CI bands over g, one panel per (sd, r, adjacency);
    adjacencies side by side in key order."""
    require_columns(
        crackling_df,
        (*PANEL_KEYS, "g", "adjacency", *CI_COLUMNS),
        crackling_gamma.__name__,
        "crackling",
    )
    adjacencies = sorted(crackling_df["adjacency"].astype(str).unique())
    with figure_style():
        fig, cells = panel_grid(crackling_df, ncols_per_panel=max(len(adjacencies), 1))
        for (sd, r), group, axes in cells:
            for ax, adjacency in zip(axes, adjacencies, strict=True):
                rows = group[group["adjacency"].astype(str) == adjacency]
                g = values(rows, "g")
                drawn = False
                for name in GAMMAS:
                    y, lo, hi = (
                        values(rows, c) for c in (name, f"{name}_ci_low", f"{name}_ci_high")
                    )
                    line_with_band(ax, g, y, lo, hi, name)
                    drawn |= bool(np.isfinite(y).any())
                if not drawn:
                    no_data(ax, why_no_fit(rows))
                ax.set_title(f"{panel_title(sd, r)}, {adjacency}")
                gain_axis(ax, g)
                ax.set_ylabel("gamma")
        figure_legend(fig)
        set_heading(fig, heading, "crackling noise: gamma fit and predicted, held-out rasters")
        return fig
