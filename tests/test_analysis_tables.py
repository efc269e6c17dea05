"""analyze(): the Phase 5 tables' columns, order, values and determinism."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from canon import CANON
from critspec.analysis.identifiability import identifiability
from critspec.analysis.tables import CANON_NULL_SUFFIXES, AnalysisParams, analyze
from critspec.events.branching import branching
from critspec.paths import project_root

C = CANON.CONST
SD = CANON.ENUM.SPIKE_DEF_ID
GAINS = (0.75, 1.0, 1.25)
SUFFIXES = [s for _, s in CANON_NULL_SUFFIXES]
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
CI = ("_ci_low", "_ci_high")
SUMMARY_COLUMNS = (
    "spike_def_id target_rate g cond_id is_baseline is_gstar n_sequences n_events "
    "achieved_rate_oos_mean rate_err_oos_max_abs b_time b_time_ci_low b_time_ci_high "
    "b_depth b_depth_ci_low b_depth_ci_high".split()
    + [B_TOT, B_TOT + CI[0], B_TOT + CI[1]]
    + [
        c
        for s in SUFFIXES
        for c in (
            f"{B_TOT}_{s}",
            f"delta_b_time_{s}",
            f"delta_b_depth_{s}",
            f"delta_{B_TOT}_{s}",
            f"delta_{B_TOT}_{s}{CI[0]}",
            f"delta_{B_TOT}_{s}{CI[1]}",
        )
    ]
    + (
        "chi chi_ci_low chi_ci_high m_mr m_mr_ci_low m_mr_ci_high m_mr_method m_mr_fitfunc "
        "m_mr_kmax m_mr_reason"
    ).split()
)
CRACKLING_COLUMNS = (
    "cond_id spike_def_id target_rate g adjacency null_id avalanche_set n_avalanches tau_S "
    "tau_S_xmin tau_S_ci_low tau_S_ci_high tau_S_at_range_edge alpha_D alpha_D_xmin "
    "alpha_D_ci_low alpha_D_ci_high alpha_D_at_range_edge gamma_fit "
    "gamma_fit_ci_low gamma_fit_ci_high n_d_points gamma_pred gamma_pred_ci_low "
    "gamma_pred_ci_high dcc dcc_ci_low dcc_ci_high".split()
    + [f"delta_{n}{b}" for n in ("tau_S", "alpha_D", "gamma_fit", "dcc") for b in ("", *CI)]
    + ["reason"]
)
TAIL_COLUMNS = (
    "cond_id spike_def_id target_rate g adjacency null_id avalanche_set alternative xmin "
    "n_tail alpha loglik_ratio_normalized p_value gof_p_value gof_reps reason"
).split()
AVALANCHE_COLUMNS = (
    "cond_id seq_id adjacency size duration height t_min l_min touches_boundary".split()
)
N_SOURCES = 2 + 2  # real x (interior, all) + (perm, shift) x interior
IDENT_COLUMNS = (
    "spike_def_id target_rate gstar gstar_at_edge b_tot_min b_tot_max b_tot_range "
    "b_tot_ci_width_max b_tot_gstar b_tot_gstar_ci_low b_tot_gstar_ci_high delta_baseline "
    "delta_baseline_ci_low delta_baseline_ci_high delta_lower delta_lower_ci_low "
    "delta_lower_ci_high delta_upper delta_upper_ci_low delta_upper_ci_high "
    "differs_from_baseline differs_from_neighbours abs_dev_one_min g_closest_to_one near_one "
    "ci_width_within_max dm_peak_g dm_peak dm_peak_at_edge identifiable why"
).split()


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    conds = [
        (sd, r, g) for sd in (SD.TWO_SIDED_ABS, SD.ONE_SIDED_POS) for r in (0.3,) for g in GAINS
    ]
    n_cond, shape = len(conds), (6, 3, 40)
    A = rng.poisson([[[[0.3 * g]]] for _, _, g in conds], size=(n_cond, *shape)).astype(np.uint16)
    null_A = np.concatenate([rng.permuted(A, axis=3) for _ in SUFFIXES])
    conditions = pd.DataFrame(
        {
            "cond_id": np.arange(n_cond),
            "spike_def_id": [c[0] for c in conds],
            "target_rate": [c[1] for c in conds],
            "g": [c[2] for c in conds],
            "is_baseline": [c[2] == 1.0 for c in conds],
            "is_gstar": [c[2] == GAINS[-1] for c in conds],
        }
    )
    null_conditions = pd.DataFrame(
        {
            "null_cond_id": np.arange(len(null_A)),
            "null_id": [nid for nid, _ in CANON_NULL_SUFFIXES for _ in conds],
            "cond_id": [c for _ in SUFFIXES for c in range(n_cond)],
        }
    )
    rates = pd.DataFrame(
        {
            "cond_id": np.repeat(np.arange(n_cond), 3),
            "layer": np.tile(np.arange(3), n_cond),
            "r_star": 0.3,
            "achieved_rate": rng.uniform(0.2, 0.4, 3 * n_cond),
            "abs_err": rng.uniform(-0.1, 0.1, 3 * n_cond),
        }
    )
    params = AnalysisParams(
        bootstrap_seed=C.BOOTSTRAP_SEED,
        bootstrap_reps=40,
        ci_percentiles=tuple(C.BOOTSTRAP_CI_PERCENTILES),
        chi_eps=C.CHI_EPS,
        cc_max=C.CC_MAX_COMPONENTS_PER_SEQ,
        d_range_min=C.CRACKLING_D_RANGE_MIN,
        d_range_max=C.CRACKLING_D_RANGE_MAX,
        crackling_min_points=4,
        tail_min_samples=20,
        ci_width_max=C.BOOTSTRAP_CI_WIDTH_MAX,
        gains=GAINS,
        gstar={(sd, 0.3): GAINS[-1] for sd, _, _ in conds},
    )
    seq_ids = np.array([11, 3, 8, 20, 5, 14])
    return A, A > 0, conditions, null_A, null_conditions, rates, seq_ids, params


def digest(tables) -> str:
    h = hashlib.sha256()
    for name in ("summary", "identifiability", "avalanches", "crackling", "tail_fits"):
        h.update(getattr(tables, name).to_csv(index=False).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def result():
    args = inputs()
    return args, analyze(*args)


def test_columns_types_and_sort(result) -> None:
    (A, *_), t = result
    assert list(t.summary.columns) == SUMMARY_COLUMNS
    assert list(t.crackling.columns) == CRACKLING_COLUMNS
    assert list(t.tail_fits.columns) == TAIL_COLUMNS
    assert list(t.avalanches.columns) == AVALANCHE_COLUMNS
    assert list(t.identifiability.columns) == IDENT_COLUMNS
    for df, keys in (
        (t.summary, ["spike_def_id", "target_rate", "g"]),
        (t.summary, ["spike_def_id", "target_rate", "g"]),
        (t.avalanches, ["cond_id", "adjacency", "seq_id", "l_min", "t_min"]),
    ):
        assert df[keys].equals(df[keys].sort_values(keys).reset_index(drop=True))
    assert len(t.summary) == A.shape[0] and len(t.crackling) == 2 * N_SOURCES * A.shape[0]
    assert len(t.tail_fits) == 4 * N_SOURCES * A.shape[0] and len(t.identifiability) == 2
    # Real rows lead their nulls; a null's deltas are real minus null.
    for _, grp in t.crackling.groupby(["cond_id", "adjacency"]):
        assert grp["null_id"].iloc[:2].isna().all() and grp["null_id"].iloc[2:].notna().all()
        assert (grp["avalanche_set"].iloc[2:] == CANON.ENUM.AVALANCHE_SET.INTERIOR).all()
        real = grp[grp["null_id"].isna()].set_index("avalanche_set")
        for row in grp[grp["null_id"].notna()].itertuples():
            want = real.loc[row.avalanche_set, "tau_S"] - row.tau_S
            assert row.delta_tau_S == pytest.approx(want, nan_ok=True)
    assert t.summary["cond_id"].dtype == np.int64 and t.summary["is_gstar"].dtype == bool
    assert t.avalanches[["size", "duration", "seq_id"]].dtypes.eq(np.int64).all()
    av = t.avalanches
    L, T = A.shape[2], A.shape[3]
    edge = (
        (av.t_min == 0)
        | (av.t_min + av.duration == T)
        | (av.l_min == 0)
        | (av.l_min + av.height == L)
    )
    assert (av.touches_boundary == edge).all()
    for df, col in ((t.summary, "m_mr_reason"), (t.crackling, "reason"), (t.tail_fits, "reason")):
        assert isinstance(df[col].dtype, pd.StringDtype)


def test_summary_values_by_an_independent_route(result) -> None:
    (A, X, conditions, null_A, null_conditions, rates, seq_ids, params), t = result
    for row in t.summary.itertuples(index=False):
        c = row.cond_id
        ref = branching(X[c])
        assert row.b_time == pytest.approx(ref.b_time) and row.b_tot == pytest.approx(ref.b_tot)
        assert row.b_tot_ci_low <= row.b_tot <= row.b_tot_ci_high
        y = A[c].sum(axis=(1, 2)).astype(float)
        assert row.chi == pytest.approx(np.var(y) / (np.mean(y) + C.CHI_EPS))
        assert row.n_events == A[c].sum()
        mine = rates[rates.cond_id == c]
        assert row.achieved_rate_oos_mean == pytest.approx(mine.achieved_rate.mean())
        assert row.rate_err_oos_max_abs == pytest.approx(mine.abs_err.abs().max())
        for k, s in enumerate(SUFFIXES):
            null = branching(null_A[k * len(conditions) + c] > 0)
            assert getattr(row, f"delta_b_time_{s}") == pytest.approx(ref.b_time - null.b_time)
            assert getattr(row, f"{B_TOT}_{s}") == pytest.approx(null.b_tot)
    av = t.avalanches
    for c in range(A.shape[0]):
        per_seq = av[av.cond_id == c].groupby(["adjacency", "seq_id"])["size"].sum()
        for adj in av.adjacency.unique():
            assert per_seq[adj].reindex(seq_ids).tolist() == A[c].sum(axis=(1, 2)).tolist()


GRID = tuple(C.GAIN_GRID_DEFAULT)
G_LOW, G_V, G_UP = GRID[0], GRID[3], GRID[7]  # the grid's first gain, 0.9, 1.1
FLAT = 1.0 + 0.3
PCT = tuple(C.BOOTSTRAP_CI_PERCENTILES)


def replicates(b: np.ndarray, shared: float, own: float, reps: int = 2048) -> np.ndarray:
    """[reps, G] replicates around b: a shift common to every gain (one resampling plan
    draws the same windows at every gain) plus independent noise per gain."""
    rng = np.random.default_rng(7)
    return b + shared * rng.standard_normal((reps, 1)) + own * rng.standard_normal((reps, b.size))


def test_flat_interior_with_one_edge_outlier_is_not_identifiable() -> None:
    """The issue's case: b = 1.3 everywhere, 2.0 at the grid's top; the old range-vs-width
    rule called gstar = 1.0 identifiable."""
    b = np.full(len(GRID), FLAT)
    b[-1] = 2.0
    f = identifiability(GRID, b, replicates(b, 0.0, 0.01), b - 0.1, 1.0, 1.0, PCT, 0.5)
    assert f.b_tot_range == pytest.approx(2.0 - FLAT) and not f.gstar_at_edge
    assert not f.differs_from_neighbours and not f.differs_from_baseline
    assert not f.identifiable
    assert "baseline" in f.why and "neighbour" in f.why and f.why.startswith("not identifiable")


def test_v_deeper_than_its_paired_ci_is_identifiable() -> None:
    """A V of depth 0.085 at gstar = G_V, neighbours' paired CI about [0.06, 0.11], while
    each gain's own CI is five times wider (a shared shift): pairing identifies it."""
    g = np.asarray(GRID)
    k = GRID.index(G_V)
    b = 1.0 + 0.085 * np.abs(np.arange(g.size) - k)
    own = 0.025 / 1.96 / np.sqrt(2.0)  # paired difference: sd 0.0128, CI half-width 0.025
    reps = replicates(b, 0.06, own)
    f = identifiability(GRID, b, reps, b - 0.2, G_V, 1.0, PCT, 0.5)
    assert f.delta_lower == pytest.approx(-0.085) and f.delta_upper == pytest.approx(-0.085)
    assert -0.11 - 0.01 < f.delta_lower_ci_low < -0.11 + 0.01
    assert -0.06 - 0.01 < f.delta_lower_ci_high < -0.06 + 0.01
    assert f.b_tot_gstar_ci_high - f.b_tot_gstar_ci_low > 0.2  # unpaired CIs overlap
    assert f.differs_from_neighbours and f.differs_from_baseline and f.near_one
    assert f.identifiable and f.why.startswith("identifiable")
    # Without pairing (independent noise of the same total size) the same V is not.
    unpaired = replicates(b, 0.0, np.hypot(0.06, own))
    assert not identifiability(GRID, b, unpaired, b - 0.2, G_V, 1.0, PCT, 0.5).identifiable


def test_identifiability_near_one_edge_baseline_and_density_matched_peak() -> None:
    g = np.asarray(GRID)
    k = GRID.index(G_V)
    v = 0.085 * np.abs(np.arange(g.size) - k)
    reps_of = lambda b: replicates(b, 0.0, 0.005)  # noqa: E731
    # The V's floor at 1.3: gstar differs from its neighbours but is far from 1 while
    # another gain is at 1.0 -> not near one.
    far = FLAT + v
    far[-1] = 1.0
    f = identifiability(GRID, far, reps_of(far), far, G_V, 1.0, PCT, 0.5)
    assert f.differs_from_neighbours and not f.near_one and not f.identifiable
    assert f.g_closest_to_one == GRID[-1] and f.abs_dev_one_min == pytest.approx(0.0)
    # gstar at the edge, gstar the baseline.
    b = 1.0 + v
    assert identifiability(GRID, b, reps_of(b), b, GRID[0], 1.0, PCT, 0.5).gstar_at_edge
    assert "baseline gain" in identifiability(GRID, b, reps_of(b), b, G_V, G_V, PCT, 0.5).why
    # A wide CI at gstar fails the width cap.
    wide = identifiability(GRID, b, replicates(b, 0.3, 0.005), b, G_V, 1.0, PCT, 0.5)
    assert wide.differs_from_neighbours and not wide.ci_width_within_max
    # The density-matched curve b - b_perm peaks where the excess over the null is largest.
    perm = b - np.where(g == G_UP, 0.3, 0.1)
    dm = identifiability(GRID, b, reps_of(b), perm, G_V, 1.0, PCT, 0.5)
    assert (dm.dm_peak_g, dm.dm_peak, dm.dm_peak_at_edge) == (G_UP, pytest.approx(0.3), False)
    nan = np.full(g.size, np.nan)
    none = identifiability(GRID, nan, np.full((10, g.size), np.nan), nan, G_V, 1.0, PCT, 0.5)
    assert np.isnan(none.b_tot_range) and not none.identifiable and not none.near_one


def test_one_resampling_plan_per_spike_definition_and_rate(result) -> None:
    """Every gain of an (sd, r) shares one plan: the b_tot CI of a gain is reproduced by
    the (sd, r)-keyed plan, and the paired delta at gstar by the difference of replicates."""
    (A, X, conditions, *_rest, params), t = result
    from critspec.analysis.bootstrap import bootstrap_indices, percentile_ci

    for row in t.identifiability.itertuples():
        plan = bootstrap_indices(
            A.shape[1], params.bootstrap_reps, (row.spike_def_id, row.target_rate), C.BOOTSTRAP_SEED
        )
        mine = conditions[conditions.spike_def_id == row.spike_def_id].sort_values("g")
        reps = np.array([[branching(X[c][idx]).b_tot for c in mine.cond_id] for idx in plan])
        k, base = GAINS.index(row.gstar), GAINS.index(1.0)
        low, high = percentile_ci(reps[:, k] - reps[:, base], PCT)
        assert (row.delta_baseline_ci_low, row.delta_baseline_ci_high) == pytest.approx((low, high))


def test_identical_inputs_give_identical_tables_under_any_hash_seed(result) -> None:
    args, t = result
    assert digest(analyze(*args)) == digest(t)
    code = (
        "from tests.test_analysis_tables import analyze, digest, inputs;"
        "print(digest(analyze(*inputs())))"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345" if os.environ.get("PYTHONHASHSEED") != "12345" else "7",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=project_root(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == digest(t)


def test_resamples_change_with_the_condition_keys_only_not_labels(result) -> None:
    args, t = result
    conditions = args[2].copy()
    conditions["target_rate"] = 0.31  # a different condition key: different index matrices
    params = args[7]
    moved = AnalysisParams(
        **{**vars(params), "gstar": {k[:1] + (0.31,): v for k, v in params.gstar.items()}}
    )
    other = analyze(args[0], args[1], conditions, *args[3:7], moved)
    assert not np.allclose(other.summary.b_tot_ci_low, t.summary.b_tot_ci_low)
    assert np.array_equal(other.summary.b_tot, t.summary.b_tot)
    # seq_id is a label, not a seed key: relabelling the sequences moves no resample.
    relabelled = analyze(*args[:6], args[6] + 1000, params)
    assert relabelled.summary.equals(t.summary) and relabelled.crackling.equals(t.crackling)
