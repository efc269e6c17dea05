"""Phase 7 replication tables (spec/15_REPLICATION.md): values against Phase 5's own tables
and a direct per-window loop, pairing, refusals, and the overlay figure's byte stability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from canon import CANON
from critspec.analysis.bootstrap import bootstrap_indices
from critspec.analysis.replication import (
    AT_GSTAR,
    ReplicationParams,
    RoleInputs,
    replicate,
    role_suffix,
)
from critspec.analysis.tables import analyze
from critspec.errors import ContractError
from critspec.figures import save_figure
from critspec.figures.replication import replication_overlay
from tests.test_analysis_tables import inputs

ROLE = CANON.ENUM.MODEL_ROLE
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
PCT = tuple(CANON.CONST.BOOTSTRAP_CI_PERCENTILES)


def role_inputs(seed: int) -> RoleInputs:
    A, X, conditions, null_A, null_conditions, rates, seq, params = inputs(seed)
    tables = analyze(A, X, conditions, null_A, null_conditions, rates, seq, params)
    return RoleInputs(tables.summary, tables.identifiability, A, conditions, seq)


def params() -> ReplicationParams:
    _, _, _, _, _, _, _, p = inputs(0)
    return ReplicationParams(p.bootstrap_seed, p.bootstrap_reps, p.ci_percentiles, p.chi_eps)


@pytest.fixture(scope="module")
def roles() -> dict[str, RoleInputs]:
    return {ROLE.INSTRUCT: role_inputs(0), ROLE.BASE: role_inputs(1)}


@pytest.fixture(scope="module")
def result(roles):
    return replicate(roles, params())


def naive_b_tot(A: np.ndarray) -> float:
    """b_tot of A [N, L, T] by looping over every occupied site (spec/03_BRANCHING_AND_NULLS.md)."""
    X = A > 0
    occupied = pairs = 0
    n_seq, n_layers, n_tokens = X.shape
    for n in range(n_seq):
        for layer in range(n_layers):
            for t in range(n_tokens):
                if X[n, layer, t]:
                    occupied += 1
                    pairs += t + 1 < n_tokens and X[n, layer, t + 1]
                    pairs += layer + 1 < n_layers and X[n, layer + 1, t]
    return pairs / occupied


def cond_A(inputs: RoleInputs, sd: str, r: float, g: float) -> np.ndarray:
    c = inputs.conditions
    cid = c[(c["spike_def_id"] == sd) & (c["target_rate"] == r) & (c["g"] == g)]["cond_id"]
    return inputs.A[int(cid.iloc[0])]


def test_by_role_copies_the_sealed_phase5_values_at_gstar(roles, result) -> None:
    for row in result.by_role.itertuples(index=False):
        s = roles[row.model_role].summary
        star = s[(s["spike_def_id"] == row.spike_def_id) & (s["target_rate"] == row.target_rate)]
        star = star[star["is_gstar"]].iloc[0]
        assert row.gstar == star["g"]
        for name in AT_GSTAR:
            for col in (name, name + "_ci_low", name + "_ci_high"):
                got, want = getattr(row, col), star[col]
                assert got == want or (np.isnan(got) and np.isnan(want)), col


def test_curves_equal_each_roles_phase5_b_tot_and_ci(roles, result) -> None:
    for (sd, r, role, g), row in result.curves.set_index(
        ["spike_def_id", "target_rate", "model_role", "g"]
    ).iterrows():
        s = roles[role].summary
        want = s[(s["spike_def_id"] == sd) & (s["target_rate"] == r) & (s["g"] == g)].iloc[0]
        for col in (B_TOT, B_TOT + "_ci_low", B_TOT + "_ci_high"):
            assert row[col] == pytest.approx(want[col], abs=1e-12), (role, sd, g, col)


def test_largest_gap_and_its_ci_by_a_direct_loop(roles, result) -> None:
    p = params()
    inst, base = roles[ROLE.INSTRUCT], roles[ROLE.BASE]
    for row in result.replication.itertuples(index=False):
        sd, r = row.spike_def_id, row.target_rate
        gains = sorted(set(inst.conditions["g"]))
        gaps = [
            naive_b_tot(cond_A(inst, sd, r, g)) - naive_b_tot(cond_A(base, sd, r, g)) for g in gains
        ]
        j = max(range(len(gains)), key=lambda k: (abs(gaps[k]), -k))
        assert row.gap_g == gains[j]
        assert row.b_tot_gap == pytest.approx(gaps[j], abs=1e-12)
        # The CI: each resample draws the same windows (same index row) for both roles.
        idx = bootstrap_indices(inst.A.shape[1], p.bootstrap_reps, (sd, r), p.bootstrap_seed)
        a_i, a_b = cond_A(inst, sd, r, gains[j]), cond_A(base, sd, r, gains[j])
        reps = [naive_b_tot(a_i[rows]) - naive_b_tot(a_b[rows]) for rows in idx]
        low, high = np.percentile(reps, PCT)
        assert (row.b_tot_gap_ci_low, row.b_tot_gap_ci_high) == pytest.approx((low, high))
        assert row.gap_paired


def test_verdicts_and_gstar_columns(roles, result) -> None:
    for row in result.replication.to_dict("records"):
        verdicts = {}
        for role, inp in roles.items():
            ident = inp.identifiability
            flags = ident[
                (ident["spike_def_id"] == row["spike_def_id"])
                & (ident["target_rate"] == row["target_rate"])
            ].iloc[0]
            assert row[f"gstar_{role_suffix(role)}"] == flags["gstar"]
            verdicts[role] = bool(flags["identifiable"])
            assert row[f"identifiable_{role_suffix(role)}"] == verdicts[role]
        assert row["verdicts_agree"] == (len(set(verdicts.values())) == 1)


def test_different_windows_are_not_paired(roles, result) -> None:
    other = dataclasses.replace(roles[ROLE.BASE], seq_id=roles[ROLE.BASE].seq_id + 1000)
    out = replicate({ROLE.INSTRUCT: roles[ROLE.INSTRUCT], ROLE.BASE: other}, params())
    assert not out.replication["gap_paired"].any()
    assert result.replication["gap_paired"].all()


def test_refusals(roles) -> None:
    with pytest.raises(ContractError, match="two model roles"):
        replicate({ROLE.INSTRUCT: roles[ROLE.INSTRUCT]}, params())
    base = roles[ROLE.BASE]
    summary = base.summary.copy()
    summary.loc[0, B_TOT] += 0.01
    altered = dataclasses.replace(base, summary=summary)
    with pytest.raises(ContractError, match="not of these rasters"):
        replicate({ROLE.INSTRUCT: roles[ROLE.INSTRUCT], ROLE.BASE: altered}, params())
    fewer = dataclasses.replace(base, identifiability=base.identifiability.iloc[1:])
    with pytest.raises(ContractError, match="same calibration config"):
        replicate({ROLE.INSTRUCT: roles[ROLE.INSTRUCT], ROLE.BASE: fewer}, params())


def test_overlay_figure_is_byte_stable(result, tmp_path) -> None:
    out = []
    for k in range(2):
        fig = replication_overlay(result.curves, result.by_role, result.replication)
        png, pdf = tmp_path / f"o{k}.png", tmp_path / f"o{k}.pdf"
        save_figure(fig, png, pdf)
        out.append((png.read_bytes(), pdf.read_bytes()))
    assert out[0] == out[1]
    assert out[0][0].startswith(b"\x89PNG")
    with pytest.raises(ContractError, match="lacks column"):
        replication_overlay(result.curves.drop(columns=[B_TOT]), result.by_role, result.replication)
