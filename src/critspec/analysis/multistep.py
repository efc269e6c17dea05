"""Multistep-regression branching ratio m via mrestimator (spec/11_AVALANCHES_AND_SIGNATURES.md).

Activity Y[n, t] = sum_l A[n, l, t], trials = sequences. Choices (the design is
silent on them):
- coefficients r_k with the trial-separated method over k = 1..kmax with
  mrestimator's own default kmax = T // 10 (its guidance: kmax well below T/2, where
  short-trial bias dominates); no mrestimator bootstrap (numboot=0), which would
  also reseed numpy's global generator;
- fit function f_exponential, r_k = b * m^k (Wilting & Priesemann 2018): the
  offset variant adds a parameter the few lags of a 64-token trial cannot pin;
- a trial whose activity is constant over its first T - kmax tokens has no defined
  r_k (zero variance), so it is left out; none left, or fewer than 3 lags, gives
  NaN with DEGENERATE_SAMPLE; a fit that does not converge gives NaN with FIT_FAILED.
mrestimator logs through the "mrestimator" logger (no file handler in this version);
it is silenced for the call and restored, and the progress bar fit() draws on
stderr is captured, so nothing is printed or written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections.abc import Iterator

import mrestimator as mre
import numpy as np

from canon import CANON

REASON = CANON.ENUM.FIT_REASON
KMAX_DIVISOR = 10  # mrestimator's default: kmax = int(T / 10)
MIN_LAGS = 3  # two parameters plus one degree of freedom
TRIAL_SEPARATED = "trialseparated"


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    logger = logging.getLogger(mre.__name__)
    disabled = logger.disabled
    logger.disabled = True
    try:
        # fit() draws a tqdm bar on stderr (its own disable flag overrides the global one).
        with (
            warnings.catch_warnings(),
            np.errstate(all="ignore"),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = disabled


def branching_ratio_mr(A: np.ndarray) -> tuple[float, str | None]:
    """(m, reason): mrestimator's branching ratio of A [N, L, T]; reason None when m is finite."""
    activity = A.sum(axis=1, dtype=np.int64).astype(np.float64)
    seq_len = activity.shape[1]
    kmax = seq_len // KMAX_DIVISOR
    if kmax < MIN_LAGS:
        return math.nan, REASON.DEGENERATE_SAMPLE
    head = activity[:, : seq_len - kmax]
    usable = activity[head.max(axis=1) > head.min(axis=1)]
    if usable.shape[0] == 0:
        return math.nan, REASON.DEGENERATE_SAMPLE
    with _silenced():
        try:
            data = mre.input_handler(usable)
            rk = mre.coefficients(data, method=TRIAL_SEPARATED, steps=(1, kmax), numboot=0)
            fit = mre.fit(rk, fitfunc=mre.f_exponential, numboot=0)
            m = float(fit.mre)
        except (ValueError, RuntimeError, FloatingPointError, ZeroDivisionError):
            return math.nan, REASON.FIT_FAILED
    if not math.isfinite(m):
        return math.nan, REASON.FIT_FAILED
    return m, None
