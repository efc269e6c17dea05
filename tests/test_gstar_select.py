"""gstar selection, completeness and refusal on crafted metrics tables."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from canon import CANON
from critspec.errors import CheckFailed
from critspec.select.gstar import check_complete, refuse_method, select_gstar

POS = CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS
ABS = CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS
GRID = tuple(CANON.CONST.GAIN_GRID_DEFAULT)
BASE = CANON.CONST.GAIN_BASELINE
TOL = CANON.CONST.GSTAR_TIE_TOL_ABS
DECIDED = CANON.ENUM.GSTAR_DECIDED_BY
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
RATE = 0.002


def _table(b_tot_by_gain: dict[float, float], sd: str = POS, rate: float = RATE) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "spike_def_id": sd,
            "target_rate": rate,
            "g": list(b_tot_by_gain),
            B_TOT: list(b_tot_by_gain.values()),
            # A forbidden column with a misleading optimum: selection must ignore it.
            CANON.ENUM.FORBIDDEN_SELECTION_INPUT.ACCURACY: [
                float(g == GRID[0]) for g in b_tot_by_gain
            ],
        }
    )


def _far(gains=GRID) -> dict[float, float]:
    return {g: 0.5 + 0.01 * i for i, g in enumerate(gains)}  # all far below 1


def _select(df: pd.DataFrame):
    return select_gstar(df, tie_tol_abs=TOL, gain_baseline=BASE)


def test_unique_minimum() -> None:
    b = _far() | {GRID[3]: 1.02, GRID[7]: 0.97}
    (choice,) = _select(_table(b))
    assert choice.gstar == GRID[3]
    assert choice.decided_by == DECIDED.UNIQUE_MIN
    assert choice.tied_gains == (GRID[3],)
    assert choice.abs_dev == pytest.approx(0.02)
    assert choice.b_tot_at_gstar == 1.02 and choice.n_nan_excluded == 0


def test_tie_goes_to_gain_closest_to_baseline() -> None:
    near = min((g for g in GRID if g != BASE), key=lambda g: abs(g - BASE))
    b = _far() | {GRID[0]: 1.125, near: 0.875, GRID[-1]: 1.125 + TOL / 2}
    (choice,) = _select(_table(b))
    assert choice.gstar == near
    assert choice.decided_by == DECIDED.CLOSEST_TO_BASELINE
    assert choice.tied_gains == tuple(sorted((GRID[0], near, GRID[-1])))


def test_symmetric_tie_goes_to_smaller_gain() -> None:
    pairs = [
        (lo, hi) for lo in GRID for hi in GRID if lo < BASE < hi and abs(lo + hi - 2 * BASE) < TOL
    ]
    assert pairs, "the gain grid has a pair symmetric around the baseline"
    for lo, hi in pairs:
        (choice,) = _select(_table(_far() | {lo: 1.25, hi: 0.75}))
        assert choice.gstar == lo, (lo, hi)
        assert choice.decided_by == DECIDED.SMALLER_GAIN
        assert choice.tied_gains == (lo, hi)


def test_nan_rows_are_excluded() -> None:
    b = _far() | {BASE: math.nan, GRID[2]: 1.01}
    (choice,) = _select(_table(b))
    assert choice.gstar == GRID[2] and choice.n_nan_excluded == 1
    with pytest.raises(CheckFailed, match="NaN at every gain"):
        _select(_table({g: math.nan for g in GRID}))


def test_one_choice_per_condition_sorted() -> None:
    df = pd.concat(
        [
            _table(_far() | {GRID[1]: 1.0}, sd=ABS, rate=0.008),
            _table(_far() | {GRID[4]: 1.0}, sd=POS, rate=0.008),
            _table(_far() | {GRID[5]: 1.0}, sd=POS, rate=RATE),
        ]
    )
    choices = _select(df)
    assert [(c.spike_def_id, c.target_rate, c.gstar) for c in choices] == [
        (POS, RATE, GRID[5]),
        (POS, 0.008, GRID[4]),
        (ABS, 0.008, GRID[1]),
    ]
    doc = json.loads(json.dumps(choices[2].to_json()))
    assert set(doc) == {
        "spike_def_id",
        "target_rate",
        "gstar",
        "b_tot_at_gstar",
        "abs_dev",
        "tied_gains",
        "decided_by",
        "n_nan_excluded",
    }
    assert doc["tied_gains"] == [GRID[1]]


def test_check_complete() -> None:
    full = pd.concat([_table(_far(), sd=sd) for sd in (POS, ABS)], ignore_index=True)
    check_complete(full, [POS, ABS], [RATE], GRID)
    missing = full.drop(index=full.index[(full.spike_def_id == ABS) & (full.g == GRID[4])])
    with pytest.raises(CheckFailed, match=rf"1 .* missing, first \({ABS}, {RATE}, {GRID[4]}\)"):
        check_complete(missing, [POS, ABS], [RATE], GRID)
    with pytest.raises(CheckFailed, match="2 rows for"):
        check_complete(pd.concat([full, full.iloc[:1]]), [POS, ABS], [RATE], GRID)
    with pytest.raises(CheckFailed, match="outside the configured grid"):
        check_complete(full, [POS, ABS], [RATE], GRID[:-1])


def test_only_btot_near_one_on_btot_is_allowed() -> None:
    refuse_method(CANON.ENUM.GSTAR_METHOD.BTOT_NEAR_ONE, [B_TOT])
    with pytest.raises(CheckFailed, match="not allowed") as err:
        refuse_method("argmax_" + CANON.ENUM.FORBIDDEN_SELECTION_INPUT.ACCURACY, [B_TOT])
    assert err.value.exit_code == CANON.CLI.EXIT.CONTRACT
    for forbidden in (
        CANON.ENUM.FORBIDDEN_SELECTION_INPUT.ACCURACY,
        CANON.ENUM.FORBIDDEN_SELECTION_INPUT.LOSS,
        CANON.ENUM.FORBIDDEN_SELECTION_INPUT.PERPLEXITY,
        CANON.ENUM.FORBIDDEN_SELECTION_INPUT.NLL,
    ):
        with pytest.raises(CheckFailed, match="never from task performance"):
            refuse_method(CANON.ENUM.GSTAR_METHOD.BTOT_NEAR_ONE, [B_TOT, "mc_" + forbidden.upper()])
