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
    FigureHeading,
    figure_legend,
    figure_style,
    new_figure,
    no_data,
    require_columns,
    set_heading,
    spike_def_name,
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


def box_label(box: tuple[int, int, int, int]) -> str:
    """The legend entry of the boxed avalanche."""
    l_min, l_max, t_min, t_max = box
    return f"largest avalanche (layers {l_min}-{l_max}, tokens {t_min}-{t_max})"


def raster_example(
    A_seq: np.ndarray,
    box: tuple[int, int, int, int] | None,
    title: str,
    heading: FigureHeading | None = None,
) -> Figure:
    """The event counts A[l, t] of one sequence, layer up and token right, with the
    avalanche occupying layers l_min..l_max and tokens t_min..t_max (inclusive) boxed.

    `box` is None when the sequence has no event. Each lattice site is one mesh cell
    centred on its integer (t, l), so the box edges lie at t_min - 0.5 .. t_max + 0.5.
    The box has a legend entry; the colorbar's ticks are integers (counts of events).
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
        fig.colorbar(
            image, ax=ax, label="events A[l, t]", ticks=MaxNLocator(integer=True, min_n_ticks=1)
        )
        if box is None:
            no_data(ax, "no events in this window", clear_axes=False)
        else:
            l_min, l_max, t_min, t_max = (int(v) for v in box)
            ax.add_patch(
                Rectangle(
                    (t_min - 0.5, l_min - 0.5),
                    t_max - t_min + 1,
                    l_max - l_min + 1,
                    label=box_label((l_min, l_max, t_min, t_max)),
                    **BOX_STYLE,
                )
            )
            # Below the panel like every figure's legend: it never hides a lattice site.
            figure_legend(fig)
        # Layers and tokens are lattice indices: no fractional ticks.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("token t")
        ax.set_ylabel("layer l")
        ax.set_title(title)
        set_heading(fig, heading, "event raster at gstar")
    return fig


def rate_match(
    raster_rates_df: pd.DataFrame,
    conditions_df: pd.DataFrame,
    heading: FigureHeading | None = None,
) -> Figure:
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
            no_data(axes[0, 0], "the raster_rates table has no rows")
        for ax, sd in zip(axes[0], sds, strict=True):
            panel = rates[rates["spike_def_id"].astype(str) == sd]
            r_star, achieved = values(panel, "r_star"), values(panel, "achieved_rate")
            finite = np.isfinite(r_star) & np.isfinite(achieved)
            if not finite.any():
                no_data(ax, "no finite target or achieved rate")
                ax.set_title(spike_def_name(sd))
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
            ax.set_title(spike_def_name(sd))
        figure_legend(fig)
        set_heading(fig, heading, "out-of-sample rate match")
    return fig
