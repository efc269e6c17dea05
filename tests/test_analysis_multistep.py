"""Multistep-regression m via mrestimator: recovery, degenerate input, silence."""

from __future__ import annotations

import os

import numpy as np
import pytest

from canon import CANON
from critspec.analysis.multistep import branching_ratio_mr

REASON = CANON.ENUM.FIT_REASON


def branching_process(m: float, drive: float, n: int, T: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = np.zeros((n, 2, T), dtype=np.uint16)
    a = np.full(n, drive / (1 - m))
    for t in range(T):
        a = rng.poisson(m * a + drive)
        A[:, 0, t] = a
    return A


def test_recovers_the_branching_ratio_and_is_silent(tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.chdir(tmp_path)
    A = branching_process(0.88, 2.0, 40, 1000, seed=0)
    m, reason = branching_ratio_mr(A)
    assert reason is None and m == pytest.approx(0.88, abs=0.02)
    assert branching_ratio_mr(A) == (m, reason)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert os.listdir(tmp_path) == []


def test_constant_activity_is_nan_with_a_reason() -> None:
    m, reason = branching_ratio_mr(np.ones((4, 2, 64), dtype=np.uint16))
    assert np.isnan(m) and reason == REASON.DEGENERATE_SAMPLE
    m, reason = branching_ratio_mr(np.zeros((4, 2, 20), dtype=np.uint16))  # kmax = 2 < 3
    assert np.isnan(m) and reason == REASON.DEGENERATE_SAMPLE
