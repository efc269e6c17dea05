"""Rendering rules shared by every Phase 5 figure (spec/13_TABLES_AND_FIGURES.md,
spec/07_RUNS_RECORDS_LOGGING.md Determinism).

Figures are built as `matplotlib.figure.Figure` with an Agg canvas attached directly, so no
pyplot state or global backend is touched. Every build and every save runs inside
`figure_style()`: matplotlib's own defaults plus the overrides below, so a user's
matplotlibrc cannot change a pixel. Files carry no dates and no version strings, which makes
PNG and PDF byte-identical on rerun.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.style import context as style_context

from canon import CANON
from critspec.errors import ContractError

DPI = 100
# One panel is PANEL_W x PANEL_H inches; a figure of R x C panels is C*PANEL_W x R*PANEL_H.
PANEL_W = 3.6
PANEL_H = 2.7
# matplotlib's font list puts its bundled fonts before system ones and keeps the first of
# equal matches, so this name resolves to mpl-data/fonts/ttf/DejaVuSans.ttf everywhere.
FONT_FAMILY = "DejaVu Sans"
STYLE = {
    "font.family": ["sans-serif"],
    "font.sans-serif": [FONT_FAMILY],
    "font.size": 8.0,
    "axes.titlesize": 8.0,
    "legend.fontsize": 6.5,
    "mathtext.fontset": "dejavusans",
    "text.usetex": False,
    "axes.formatter.use_locale": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": None,
    "savefig.transparent": False,
    "pdf.fonttype": 42,
}
PNG_METADATA = {"Software": None}
PDF_METADATA = {
    "Creator": CANON.PROJECT.NAME,
    "Producer": CANON.PROJECT.NAME,
    "CreationDate": None,
    "ModDate": None,
}
NO_DATA = "no data"
# Gain axes reach this fraction of the grid's span beyond its ends, so a gstar (or
# baseline) line at the first or last gain is drawn inside the frame, not on it.
GAIN_MARGIN = 0.06
LEGEND_MAX_COLUMNS = 6
BAND_ALPHA = 0.25
BASELINE_STYLE = {"color": "0.4", "linestyle": ":", "linewidth": 1.0}
GSTAR_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.0}
PANEL_KEYS = ("spike_def_id", "target_rate")


@contextmanager
def figure_style() -> Iterator[None]:
    """matplotlib defaults (ignoring any matplotlibrc) plus STYLE; restored on exit."""
    with style_context(["default", STYLE]):
        yield


def new_figure(
    nrows: int, ncols: int, figsize: tuple[float, float] | None = None
) -> tuple[Figure, np.ndarray]:
    """A figure of nrows x ncols panels (PANEL_W x PANEL_H inches each unless `figsize`)
    with an Agg canvas; axes as a 2-D array."""
    size = figsize or (ncols * PANEL_W, nrows * PANEL_H)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    # Attaching the canvas selects Agg for this figure alone; pyplot's backend is untouched.
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, png_path: Path, pdf_path: Path) -> None:
    """Write `fig` as PNG and PDF with fixed DPI and metadata; byte-identical on rerun."""
    with figure_style():
        for path, fmt, metadata in (
            (Path(png_path), "png", PNG_METADATA),
            (Path(pdf_path), "pdf", PDF_METADATA),
        ):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
            path.write_bytes(buf.getvalue())


def require_columns(df: pd.DataFrame, columns: Sequence[str], figure: str, table: str) -> None:
    """ContractError naming the first column of `table` that figure `figure` needs and lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ContractError(
            f"figure {figure}: table {table} lacks column {missing[0]!r} "
            f"({len(missing)} missing); pass the {table} table of the interfaces"
        )


def panel_grid(
    df: pd.DataFrame, ncols_per_panel: int = 1
) -> tuple[Figure, list[tuple[tuple[str, float], pd.DataFrame, np.ndarray]]]:
    """One row of panels per spike_def_id, one column per target_rate (key order).

    Returns the figure and, per (spike_def_id, target_rate) present in `df`, its rows sorted
    by g and its `ncols_per_panel` axes; grid cells with no rows are hidden.
    """
    if df.empty:
        fig, axes = new_figure(1, 1)
        no_data(axes[0, 0], "the table has no rows")
        return fig, []
    sds = sorted(df["spike_def_id"].astype(str).unique())
    rates = sorted(float(r) for r in df["target_rate"].unique())
    fig, axes = new_figure(len(sds), len(rates) * ncols_per_panel)
    used = np.zeros(axes.shape, dtype=bool)
    out = []
    for (sd, r), group in df.groupby(list(PANEL_KEYS), sort=True):
        i, j = sds.index(str(sd)), rates.index(float(r)) * ncols_per_panel
        cells = axes[i, j : j + ncols_per_panel]
        used[i, j : j + ncols_per_panel] = True
        out.append(((str(sd), float(r)), group.sort_values("g", kind="stable"), cells))
    for ax in axes[~used]:
        ax.set_axis_off()
    return fig, out


def spike_def_name(spike_def_id: str) -> str:
    """The readable name of a spike definition (CANON.OUTPUT.DISPLAY.SPIKE_DEF); an id
    without one is shown as it is."""
    for key, value in vars(CANON.ENUM.SPIKE_DEF_ID).items():
        if value == spike_def_id and not key.startswith("_"):
            return str(getattr(CANON.OUTPUT.DISPLAY.SPIKE_DEF, key, spike_def_id))
    return spike_def_id


def reason_words(reason: str) -> str:
    """A fit's NaN reason id in words (CANON.OUTPUT.DISPLAY.FIT_REASON)."""
    for key, value in vars(CANON.ENUM.FIT_REASON).items():
        if value == reason and not key.startswith("_"):
            return str(getattr(CANON.OUTPUT.DISPLAY.FIT_REASON, key, reason))
    return reason


def panel_title(spike_def_id: str, target_rate: float) -> str:
    """The title of a (spike_def_id, target_rate) panel."""
    return f"{spike_def_name(spike_def_id)}, r={target_rate:g}"


@dataclass(frozen=True)
class FigureHeading:
    """What every figure's title names: the model, its role and the profile."""

    model: str
    model_role: str
    profile: str

    def text(self, what: str) -> str:
        return f"{what}: {self.model} ({self.model_role}), profile {self.profile}"


def set_heading(fig: Figure, heading: FigureHeading | None, what: str) -> None:
    """The figure's title: `what` it shows and, when known, model, role and profile."""
    fig.suptitle(heading.text(what) if heading is not None else what)


def gain_axis(ax: Axes, g: np.ndarray) -> None:
    """x limits GAIN_MARGIN of the span beyond the grid's ends (a line at an end stays
    visible), and the axis label."""
    finite = np.asarray(g, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        pad = GAIN_MARGIN * (hi - lo) if hi > lo else GAIN_MARGIN * max(abs(lo), 1.0)
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel("MLP gain g")


def values(df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64 with missing values as NaN (they draw as gaps)."""
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def line_with_band(
    ax: Axes, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, label: str
) -> None:
    """A line of y over x and its CI band [lo, hi]; NaN points split both into gaps."""
    (line,) = ax.plot(x, y, marker="o", markersize=3, label=label)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=BAND_ALPHA, linewidth=0)


def no_data(ax: Axes, why: str, clear_axes: bool = True) -> None:
    """Mark a panel with nothing finite to draw, saying why; empty axes get no ticks
    (a tick range around nothing would suggest a scale)."""
    ax.text(
        0.5,
        0.5,
        f"{NO_DATA}:\n{why}",
        transform=ax.transAxes,
        ha="center",
        va="center",
        wrap=True,
    )
    if clear_axes:
        ax.set_xticks([])
        ax.set_yticks([])


def mark_gains(ax: Axes, group: pd.DataFrame) -> None:
    """Vertical lines at the baseline gain and at gstar of one panel."""
    g = values(group, "g")
    for flag, style, label in (
        ("is_baseline", BASELINE_STYLE, "baseline"),
        ("is_gstar", GSTAR_STYLE, "gstar"),
    ):
        for x in g[group[flag].to_numpy(dtype=bool)]:
            ax.axvline(x, label=label, **style)


def figure_legend(fig: Figure, max_columns: int = LEGEND_MAX_COLUMNS) -> None:
    """One legend for the whole figure below its panels, each label once (first wins)."""
    entries: dict[str, object] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside lower center",
            ncols=min(len(entries), max_columns),
        )
