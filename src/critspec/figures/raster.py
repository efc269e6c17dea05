"""Phase 3 products as figures: one raster with its largest avalanche boxed, and the
out-of-sample rate match (spec/13_TABLES_AND_FIGURES.md, "Figures")."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from critspec.errors import ContractError
from critspec.figures.render import (
    PANEL_H,
    PANEL_W,
    figure_legend,
    figure_style,
    new_figure,
    no_data,
    require_columns,
    values,
)

BOX_STYLE = {"fill": False, "edgecolor": "tab:red", "linewidth": 1.25}
RASTER_CMAP = "Greys"
RASTER_WIDTH_PANELS = 2
IDENTITY_STYLE = {"color": "0.4", "linestyle": "--", "linewidth": 0.75}


def _check_box(box: tuple[int, int, int, int], shape: tuple[int, int]) -> None:
    l_min, l_max, t_min, t_max = box
    n_layers, n_tokens = shape
    if not (0 <= l_min <= l_max < n_layers and 0 <= t_min <= t_max < n_tokens):
        raise ContractError(
            f"figure {raster_example.__name__}: box (l_min, l_max, t_min, t_max) = {tuple(box)} "
            f"is not inside the [L, T] = {list(shape)} raster; pass one of its avalanches' bounds"
        )


def raster_example(A_seq: np.ndarray, box: tuple[int, int, int, int] | None, title: str) -> Figure:
    """The event counts A[l, t] of one sequence, layer up and token right, with the
    avalanche occupying layers l_min..l_max and tokens t_min..t_max (inclusive) boxed.

    `box` is None when the sequence has no event. Each lattice site is one mesh cell
    centred on its integer (t, l), so the box edges lie at t_min - 0.5 .. t_max + 0.5.
    """
    A_seq = np.asarray(A_seq)
    if A_seq.ndim != 2:
        raise ContractError(
            f"figure {raster_example.__name__}: A_seq has shape {list(A_seq.shape)}, "
            "expected [L, T]; pass one sequence A[c, n] of the rasters"
        )
    if box is not None:
        _check_box(box, A_seq.shape)
    with figure_style():
        fig, axes = new_figure(1, 1, figsize=(RASTER_WIDTH_PANELS * PANEL_W, PANEL_H))
        ax = axes[0, 0]
        n_layers, n_tokens = A_seq.shape
        image = ax.pcolormesh(
            np.arange(n_tokens + 1) - 0.5,
            np.arange(n_layers + 1) - 0.5,
            A_seq,
            cmap=RASTER_CMAP,
            vmin=0,
        )
        fig.colorbar(image, ax=ax, label="events A[l, t]")
        if box is None:
            no_data(ax)
        else:
            l_min, l_max, t_min, t_max = (int(v) for v in box)
            ax.add_patch(
                Rectangle(
                    (t_min - 0.5, l_min - 0.5), t_max - t_min + 1, l_max - l_min + 1, **BOX_STYLE
                )
            )
        # Layers and tokens are lattice indices: no fractional ticks.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("token t")
        ax.set_ylabel("layer l")
        ax.set_title(title)
    return fig


def rate_match(raster_rates_df: pd.DataFrame, conditions_df: pd.DataFrame) -> Figure:
    """Out-of-sample achieved rate against the target r_star, one marker series per layer,
    one panel per spike_def_id, with the identity line (a perfect match)."""
    require_columns(
        raster_rates_df,
        ("cond_id", "layer", "r_star", "achieved_rate"),
        rate_match.__name__,
        "raster_rates",
    )
    require_columns(conditions_df, ("cond_id", "spike_def_id"), rate_match.__name__, "conditions")
    unknown = ~raster_rates_df["cond_id"].isin(conditions_df["cond_id"])
    if unknown.any():
        first = int(raster_rates_df["cond_id"][unknown].iloc[0])
        raise ContractError(
            f"figure {rate_match.__name__}: raster_rates cond_id {first} "
            "is not in the conditions table; pass the conditions of the same rasters run"
        )
    rates = raster_rates_df.merge(
        conditions_df[["cond_id", "spike_def_id"]], on="cond_id", how="left", validate="m:1"
    ).sort_values(["spike_def_id", "layer", "cond_id"], kind="stable")
    sds = sorted(rates["spike_def_id"].astype(str).unique())
    with figure_style():
        fig, axes = new_figure(1, max(len(sds), 1))
        if not sds:
            no_data(axes[0, 0])
        for ax, sd in zip(axes[0], sds, strict=True):
            panel = rates[rates["spike_def_id"].astype(str) == sd]
            r_star, achieved = values(panel, "r_star"), values(panel, "achieved_rate")
            finite = np.isfinite(r_star) & np.isfinite(achieved)
            if not finite.any():
                no_data(ax)
                continue
            top = float(max(r_star[finite].max(), achieved[finite].max()))
            ax.plot([0.0, top], [0.0, top], label="identity", **IDENTITY_STYLE)
            for layer, rows in panel.groupby("layer", sort=True):
                ax.plot(
                    values(rows, "r_star"),
                    values(rows, "achieved_rate"),
                    linestyle="none",
                    marker="o",
                    markersize=3,
                    label=f"layer {int(layer)}",
                )
            ax.set_xlabel("target rate r_star")
            ax.set_ylabel("achieved rate (out of sample)")
            ax.set_title(sd)
        figure_legend(fig)
    return fig
