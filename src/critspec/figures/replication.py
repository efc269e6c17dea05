"""The Phase 7 overlay figure (spec/15_REPLICATION.md): per (spike_def_id, target_rate) one
panel with the b_tot(g) curve of each model role and its bootstrap CI band, each role's
gstar as a vertical line in the role's colour, and the gain of the largest gap between
the curves marked. Byte-stable like every Phase 5 figure (critspec.figures.render).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from critspec.errors import ContractError
from critspec.figures.render import (
    PANEL_KEYS,
    figure_legend,
    figure_style,
    line_with_band,
    no_data,
    panel_grid,
    panel_title,
    require_columns,
    values,
)
from critspec.select.gstar import B_TOT, CRITICAL_B_TOT

CURVE_COLUMNS = (*PANEL_KEYS, "model_role", "g", B_TOT, f"{B_TOT}_ci_low", f"{B_TOT}_ci_high")
ROLE_COLUMNS = (*PANEL_KEYS, "model_role", "gstar")
GAP_COLUMNS = (*PANEL_KEYS, "gap_g")
REFERENCE_STYLE = {"color": "0.4", "linewidth": 0.6}
GAP_STYLE = {"color": "0.2", "linestyle": ":", "linewidth": 1.0}


def replication_overlay(curves: pd.DataFrame, by_role: pd.DataFrame, pairs: pd.DataFrame) -> Figure:
    """b_tot(g) of every model role in `curves` overlaid per panel; gstar per role from
    `by_role`; the largest-gap gain from `pairs` (the replication table)."""
    name = replication_overlay.__name__
    require_columns(curves, CURVE_COLUMNS, name, "replication curves")
    require_columns(by_role, ROLE_COLUMNS, name, "replication_by_role")
    require_columns(pairs, GAP_COLUMNS, name, "replication")
    gstar = {
        (str(r.spike_def_id), float(r.target_rate), str(r.model_role)): float(r.gstar)
        for r in by_role.itertuples(index=False)
    }
    gap_g = {
        (str(r.spike_def_id), float(r.target_rate)): float(r.gap_g) for r in pairs.itertuples()
    }
    with figure_style():
        fig, cells = panel_grid(curves)
        for (sd, r), group, (ax,) in cells:
            drawn = False
            for role, rows in group.groupby("model_role", sort=True):
                rows = rows.sort_values("g", kind="stable")
                y = values(rows, B_TOT)
                line_with_band(
                    ax,
                    values(rows, "g"),
                    y,
                    values(rows, f"{B_TOT}_ci_low"),
                    values(rows, f"{B_TOT}_ci_high"),
                    f"{B_TOT} {role}",
                )
                color = ax.lines[-1].get_color()
                if (sd, r, str(role)) not in gstar:
                    raise ContractError(f"figure {name}: no gstar of {role} for ({sd}, {r})")
                ax.axvline(
                    gstar[(sd, r, str(role))],
                    color=color,
                    linestyle="--",
                    linewidth=1.0,
                    label=f"gstar {role}",
                )
                drawn |= bool(np.isfinite(y).any())
            if not drawn:
                no_data(ax)
            g = gap_g.get((sd, r), float("nan"))
            if np.isfinite(g):
                ax.axvline(g, label="largest gap", **GAP_STYLE)
            ax.axhline(CRITICAL_B_TOT, **REFERENCE_STYLE)
            ax.set_title(panel_title(sd, r))
            ax.set_xlabel("MLP gain g")
            ax.set_ylabel(B_TOT)
        figure_legend(fig)
    return fig
