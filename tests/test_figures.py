"""Phase 5 figures plot exactly their input tables (spec/13_TABLES_AND_FIGURES.md, "Figures").

Each test reads the data back out of the returned Figure's artists (line x/y data,
fill_between polygon vertices, mesh array, rectangle) and compares it with the hand-built
table of tests/figure_tables.py, row by row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from canon import CANON
from critspec import figures
from critspec.errors import ContractError
from critspec.figures.render import NO_DATA, FigureHeading
from critspec.figures.summary import CALIBRATION_LABEL, HELD_OUT_LABEL
from tests import figure_tables as ft

B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
TOL = CANON.CONST.GSTAR_TIE_TOL_ABS


def _panel(fig, title: str):
    hits = [ax for ax in fig.axes if ax.get_title() == title]
    assert len(hits) == 1, f"expected one panel titled {title!r}, found {len(hits)}"
    return hits[0]


# Panel titles name spike definitions by their CANON display names (an independent map).
DISPLAY = {
    getattr(CANON.ENUM.SPIKE_DEF_ID, key): getattr(CANON.OUTPUT.DISPLAY.SPIKE_DEF, key)
    for key in ("ONE_SIDED_POS", "TWO_SIDED_ABS")
}


def _title(sd: str, r: float) -> str:
    return f"{DISPLAY[sd]}, r={r:g}"


def _line(ax, label: str) -> Line2D:
    hits = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(hits) == 1, f"expected one line {label!r}, found {[ln.get_label() for ln in hits]}"
    return hits[0]


def _lines(ax, label: str) -> list[Line2D]:
    return [ln for ln in ax.get_lines() if ln.get_label() == label]


def _texts(ax) -> list[str]:
    """Each text's first line without its colon: "no data" for "no data:\n<why>"."""
    return [t.get_text().split(":\n")[0] for t in ax.texts]


def _why(ax) -> str:
    """The reason under a panel's "no data"."""
    [text] = [t.get_text() for t in ax.texts if t.get_text().startswith(NO_DATA)]
    return text.split(":\n", 1)[1]


def _band_vertices(band: PolyCollection) -> tuple[int, set[tuple[float, float]]]:
    """Number of polygons and the set of their vertices, rounded for set comparison."""
    paths = band.get_paths()
    verts = {(round(x, 12), round(y, 12)) for p in paths for x, y in p.vertices}
    return len(paths), verts


def _expected_band(g, lo, hi) -> set[tuple[float, float]]:
    ok = np.isfinite(lo) & np.isfinite(hi)
    points = zip(g[ok], lo[ok], hi[ok], strict=True)
    return {(round(x, 12), round(y, 12)) for x, a, b in points for y in (a, b)}


def _runs(finite: np.ndarray) -> int:
    """Contiguous runs of True, counted by a direct loop."""
    n, prev = 0, False
    for f in finite:
        n += bool(f and not prev)
        prev = bool(f)
    return n


def _check_line_and_band(ax, label: str, band_index: int, g, y, lo, hi) -> None:
    line = _line(ax, label)
    np.testing.assert_array_equal(line.get_xdata(), g)
    np.testing.assert_array_equal(line.get_ydata(), y)  # NaN where the table has NaN
    band = [c for c in ax.collections if isinstance(c, PolyCollection)][band_index]
    n_polys, verts = _band_vertices(band)
    assert verts == _expected_band(g, lo, hi)
    assert n_polys == _runs(np.isfinite(lo) & np.isfinite(hi))


def _cols(group: pd.DataFrame, name: str):
    return tuple(
        group[c].to_numpy(dtype=np.float64) for c in (name, f"{name}_ci_low", f"{name}_ci_high")
    )


def test_b_curves_plot_the_summary_with_gaps_and_marks():
    nan_rows = [2, 3, 14]  # panel 0 rows 2-3 and panel 1 row 3 (11 gains per panel)
    summary = ft.summary_table(nan_at={B_TOT: nan_rows, f"{B_TOT}_ci_low": nan_rows})
    fig = figures.b_curves(summary)
    assert len([ax for ax in fig.axes if ax.get_visible() and ax.axison]) == 4
    for (sd, r), group in summary.groupby(["spike_def_id", "target_rate"]):
        ax = _panel(fig, _title(sd, r))
        g = group["g"].to_numpy()
        for k, name in enumerate(("b_time", "b_depth", B_TOT)):
            _check_line_and_band(ax, name, k, g, *_cols(group, name))
        base = _line(ax, "baseline").get_xdata()
        assert list(base) == [CANON.CONST.GAIN_BASELINE] * 2
        assert list(_line(ax, "gstar").get_xdata()) == [ft.GAINS[ft.GSTAR_INDEX]] * 2
        assert NO_DATA not in _texts(ax)
    first = _panel(fig, _title(ft.SPIKE_DEF_IDS[0], ft.RATES[0]))
    assert np.isnan(_line(first, B_TOT).get_ydata()[[2, 3]]).all()
    # a NaN in the middle of the grid splits the CI band into two polygons
    assert len([c for c in first.collections][2].get_paths()) == 2


def test_delta_b_nulls_one_line_per_null():
    summary = ft.summary_table()
    fig = figures.delta_b_nulls(summary, ft.SUFFIXES)
    for (sd, r), group in summary.groupby(["spike_def_id", "target_rate"]):
        ax = _panel(fig, _title(sd, r))
        g = group["g"].to_numpy()
        for k, s in enumerate(ft.SUFFIXES):
            _check_line_and_band(ax, s, k, g, *_cols(group, f"delta_{B_TOT}_{s}"))
        # hand value: delta_b_tot_<k-th null> at g index 0 of panel 0 is 0.1 (k + 1)
    ax0 = _panel(fig, _title(ft.SPIKE_DEF_IDS[0], ft.RATES[0]))
    assert [_line(ax0, s).get_ydata()[0] for s in ft.SUFFIXES] == pytest.approx([0.1, 0.2, 0.3])


def test_chi_over_g():
    summary = ft.summary_table(nan_at={"chi": [0, 1]})
    fig = figures.chi_over_g(summary)
    for (sd, r), group in summary.groupby(["spike_def_id", "target_rate"]):
        ax = _panel(fig, _title(sd, r))
        _check_line_and_band(ax, "chi", 0, group["g"].to_numpy(), *_cols(group, "chi"))


def test_gstar_selection_draws_the_calibration_data_gstar_was_chosen_on():
    """The selection's own data (b_tot_by_gain of the gstar artifact) is the labelled main
    curve; the held-out summary curve is drawn beside it under its own label; ties and
    the tie threshold belong to the calibration curve (issue 18, item 2)."""
    summary = ft.summary_table(nan_at={B_TOT: [0]})
    doc = ft.gstar_doc(summary, nan_at=[1])
    fig = figures.gstar_selection(summary, doc)
    by_key = {(c["spike_def_id"], c["target_rate"]): c for c in doc["conditions"]}
    for (sd, r), group in summary.groupby(["spike_def_id", "target_rate"]):
        ax = _panel(fig, _title(sd, r))
        cal = [abs(b - 1.0) if b is not None else np.nan for b in by_key[(sd, r)]["b_tot_by_gain"]]
        held = [abs(b - 1.0) for b in group[B_TOT]]  # direct, NaN stays NaN
        assert np.isnan(cal[1])  # the planted null draws as a gap
        line = _line(ax, CALIBRATION_LABEL)
        np.testing.assert_array_equal(line.get_xdata(), ft.GAINS)
        np.testing.assert_allclose(line.get_ydata(), cal, rtol=0, atol=1e-15)
        held_line = _line(ax, HELD_OUT_LABEL)
        np.testing.assert_array_equal(held_line.get_xdata(), group["g"].to_numpy())
        np.testing.assert_allclose(held_line.get_ydata(), held, rtol=0, atol=1e-15)
        assert not np.allclose(np.nan_to_num(cal), np.nan_to_num(held))
        gstar = ft.GAINS[ft.GSTAR_INDEX]
        assert list(_line(ax, "gstar").get_xdata()) == [gstar, gstar]
        tied = _line(ax, "tied")
        tied_gains = [gstar, ft.GAINS[ft.GSTAR_INDEX + 1]]
        assert list(tied.get_xdata()) == tied_gains
        expected_y = [cal[ft.GAINS.index(x)] for x in tied_gains]
        np.testing.assert_allclose(tied.get_ydata(), expected_y, rtol=0, atol=1e-15)
        threshold = _line(ax, "tie threshold (calibration)").get_ydata()
        assert list(threshold) == pytest.approx([np.nanmin(cal) + TOL] * 2, abs=1e-15)


def test_gstar_selection_needs_the_calibration_curve():
    summary = ft.summary_table()
    doc = ft.gstar_doc(summary)
    del doc["conditions"][0]["b_tot_by_gain"]
    with pytest.raises(ContractError, match="b_tot_by_gain"):
        figures.gstar_selection(summary, doc)


def test_gstar_line_at_the_grid_edge_is_inside_the_frame():
    summary = ft.summary_table()
    doc = ft.gstar_doc(summary)
    for cond in doc["conditions"]:
        cond["gstar"], cond["tied_gains"] = ft.GAINS[-1], [ft.GAINS[-1]]
    fig = figures.gstar_selection(summary, doc)
    span = ft.GAINS[-1] - ft.GAINS[0]
    for ax in (a for a in fig.axes if a.get_title()):
        lo, hi = ax.get_xlim()
        assert hi - ft.GAINS[-1] >= 0.05 * span and ft.GAINS[0] - lo >= 0.05 * span
    for build in (figures.b_curves, figures.chi_over_g):
        for ax in (a for a in build(summary).axes if a.get_title()):
            assert ax.get_xlim()[1] - ft.GAINS[-1] >= 0.05 * span


def test_gstar_selection_needs_a_gstar_row_per_panel():
    summary = ft.summary_table()
    doc = ft.gstar_doc(summary)
    doc["conditions"] = doc["conditions"][1:]
    with pytest.raises(ContractError, match="no gstar row"):
        figures.gstar_selection(summary, doc)


def test_crackling_gamma_per_adjacency():
    nan_rows = [0, 2]  # gamma_fit of the first two gains of ADJACENCIES[0], first panel
    crackling = ft.crackling_table(nan_at={"gamma_fit": nan_rows})
    fig = figures.crackling_gamma(crackling)
    n_panels = len(ft.SPIKE_DEF_IDS) * len(ft.RATES) * len(ft.ADJACENCIES)
    assert len([ax for ax in fig.axes if ax.get_title()]) == n_panels
    for (sd, r, adj), group in crackling.groupby(["spike_def_id", "target_rate", "adjacency"]):
        ax = _panel(fig, f"{_title(sd, r)}, {adj}")
        g = group["g"].to_numpy()
        for k, name in enumerate(("gamma_fit", "gamma_pred")):
            _check_line_and_band(ax, name, k, g, *_cols(group, name))
    # hand value: gamma_pred = 2.0 - 0.05 i + 0.2 a at i = 1, a = 1
    ax = _panel(fig, f"{_title(ft.SPIKE_DEF_IDS[0], ft.RATES[0])}, {ft.ADJACENCIES[1]}")
    assert _line(ax, "gamma_pred").get_ydata()[1] == pytest.approx(2.15)
    first = _panel(fig, f"{_title(ft.SPIKE_DEF_IDS[0], ft.RATES[0])}, {ft.ADJACENCIES[0]}")
    assert np.isnan(_line(first, "gamma_fit").get_ydata()[:2]).all()


def test_rate_match_points_per_layer_and_identity():
    rates, conditions = ft.rate_tables()
    fig = figures.rate_match(rates, conditions)
    sd_of = dict(zip(conditions["cond_id"], conditions["spike_def_id"], strict=True))
    for sd in ft.SPIKE_DEF_IDS:
        ax = _panel(fig, DISPLAY[sd])
        mine = rates[[sd_of[c] == sd for c in rates["cond_id"]]]
        for layer in range(ft.N_LAYERS):
            rows = mine[mine["layer"] == layer].sort_values("cond_id")
            line = _line(ax, f"layer {layer}")
            np.testing.assert_array_equal(line.get_xdata(), rows["r_star"])
            np.testing.assert_array_equal(line.get_ydata(), rows["achieved_rate"])
        identity = _line(ax, "identity")
        top = max(mine["r_star"].max(), mine["achieved_rate"].max())
        assert list(identity.get_xdata()) == [0.0, top] == list(identity.get_ydata())


def test_rate_match_refuses_unknown_condition():
    rates, conditions = ft.rate_tables()
    with pytest.raises(ContractError, match="cond_id 0 is not in the conditions"):
        figures.rate_match(rates, conditions[conditions["cond_id"] != 0])


def test_raster_example_mesh_and_box():
    A, box = ft.raster_seq()
    fig = figures.raster_example(A, box, "sequence 7")
    ax = _panel(fig, "sequence 7")
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(A.shape), A)
    coords = mesh.get_coordinates()  # cell corners [L + 1, T + 1, 2] as (t, l)
    assert coords[0, 0].tolist() == [-0.5, -0.5]
    assert coords[-1, -1].tolist() == [A.shape[1] - 0.5, A.shape[0] - 0.5]
    (rect,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    # box (l_min, l_max, t_min, t_max) = (1, 2, 5, 11): cells t 5..11, l 1..2 inclusive
    assert rect.get_xy() == (4.5, 0.5)
    assert (rect.get_width(), rect.get_height()) == (7, 2)
    assert NO_DATA not in _texts(ax)


def test_raster_example_without_events_and_bad_inputs():
    A = np.zeros((3, 10), dtype=np.uint16)
    fig = figures.raster_example(A, None, "empty")
    ax = _panel(fig, "empty")
    assert NO_DATA in _texts(ax)
    assert not [p for p in ax.patches if isinstance(p, Rectangle)]
    with pytest.raises(ContractError, match="not inside"):
        figures.raster_example(A, (0, 3, 0, 4), "x")
    with pytest.raises(ContractError, match="expected"):
        figures.raster_example(A[None], None, "x")


def _all_nan(df: pd.DataFrame, keep: tuple[str, ...]) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c not in keep and out[c].dtype == np.float64:
            out[c] = np.nan
    return out


def test_all_nan_panels_say_no_data_and_nothing_crashes():
    keys = ("target_rate", "g")
    summary = ft.summary_table()
    first = (summary["spike_def_id"] == ft.SPIKE_DEF_IDS[0]) & (
        summary["target_rate"] == ft.RATES[0]
    )
    summary.loc[first] = _all_nan(summary.loc[first], keys)
    crackling = _all_nan(ft.crackling_table(), keys)
    built = {
        "b": figures.b_curves(summary),
        "d": figures.delta_b_nulls(summary, ft.SUFFIXES),
        "c": figures.chi_over_g(summary),
        "s": figures.gstar_selection(summary, ft.gstar_doc(summary)),
        "k": figures.crackling_gamma(crackling),
    }
    title0 = _title(ft.SPIKE_DEF_IDS[0], ft.RATES[0])
    for name in ("b", "d", "c", "s"):
        assert NO_DATA in _texts(_panel(built[name], title0)), name
        assert NO_DATA not in _texts(_panel(built[name], _title(ft.SPIKE_DEF_IDS[0], ft.RATES[1])))
    for ax in built["k"].axes:
        if ax.get_title():
            assert NO_DATA in _texts(ax)
    rates, conditions = ft.rate_tables()
    rates["achieved_rate"] = np.nan
    built["r"] = figures.rate_match(rates, conditions)
    assert all(NO_DATA in _texts(ax) for ax in built["r"].axes if ax.get_title())
    for fig in built.values():
        fig.canvas.draw()  # rendering NaN gaps and empty panels must not raise either


def test_empty_tables_draw_no_data():
    summary = ft.summary_table().iloc[:0]
    fig = figures.b_curves(summary)
    assert [NO_DATA] == [t for ax in fig.axes for t in _texts(ax)]


def test_missing_column_is_a_contract_error():
    summary = ft.summary_table().drop(columns=["chi_ci_high"])
    with pytest.raises(ContractError, match="chi_over_g: table summary lacks column 'chi_ci_high'"):
        figures.chi_over_g(summary)
    with pytest.raises(ContractError, match="lacks column 'gamma_pred'"):
        figures.crackling_gamma(ft.crackling_table().drop(columns=["gamma_pred"]))


def test_every_figure_title_names_model_role_and_profile():
    role = CANON.ENUM.MODEL_ROLE.BASE
    heading = FigureHeading(model="my-model-7b", model_role=role, profile="my_profile")
    summary = ft.summary_table()
    rates, conditions = ft.rate_tables()
    A, box = ft.raster_seq()
    built = [
        figures.raster_example(A, box, "sequence 0", heading),
        figures.rate_match(rates, conditions, heading),
        figures.b_curves(summary, heading),
        figures.delta_b_nulls(summary, ft.SUFFIXES, heading),
        figures.gstar_selection(summary, ft.gstar_doc(summary), heading),
        figures.chi_over_g(summary, heading),
        figures.crackling_gamma(ft.crackling_table(), heading),
    ]
    for fig in built:
        title = fig.get_suptitle()
        assert all(word in title for word in ("my-model-7b", role, "my_profile")), title
    # No panel shows a spike definition's internal id.
    for fig in built:
        for ax in fig.axes:
            assert not any(sd in ax.get_title() for sd in DISPLAY), ax.get_title()


def test_raster_box_has_a_legend_and_the_colorbar_integer_ticks():
    A, box = ft.raster_seq()
    fig = figures.raster_example(A, box, "sequence 7")
    fig.canvas.draw()
    ax = _panel(fig, "sequence 7")
    [legend] = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "largest avalanche (layers 1-2, tokens 5-11)"
    ]
    [colorbar_ax] = [a for a in fig.axes if a is not ax]
    ticks = [t for t in colorbar_ax.get_yticks() if 0 <= t <= A.max()]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_crackling_panels_without_fits_say_why_in_words():
    crackling = ft.crackling_table()
    for name in ("gamma_fit", "gamma_pred"):
        crackling[name] = np.nan
    reasons = [CANON.ENUM.FIT_REASON.TOO_FEW_AVALANCHES, CANON.ENUM.FIT_REASON.DEGENERATE_SAMPLE]
    # Two thirds of the rows lack avalanches, the rest are degenerate: the commoner first.
    crackling["reason"] = [reasons[int(i % 3 == 2)] for i in range(len(crackling))]
    fig = figures.crackling_gamma(crackling)
    words = (
        CANON.OUTPUT.DISPLAY.FIT_REASON.TOO_FEW_AVALANCHES,
        CANON.OUTPUT.DISPLAY.FIT_REASON.DEGENERATE_SAMPLE,
    )
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert panels
    for ax in panels:
        why = _why(ax)
        assert why.startswith(words[0]) or why.startswith(words[1]), why
        assert not list(ax.get_yticks()), "an empty panel has no tick scale"
    assert any(_why(ax) == f"{words[0]}; {words[1]}" for ax in panels)
