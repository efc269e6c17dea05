"""Power law against its alternatives on the size tail (spec/11_AVALANCHES_AND_SIGNATURES.md, "Tail
fits").

On the sizes >= the xmin of tau_S (and <= its xmax), powerlaw's
distribution_compare(power_law, alt, normalized_ratio=True) gives Vuong's normalized
log-likelihood ratio (positive favours the power law) and its p-value; beside them,
Clauset's semi-parametric goodness-of-fit p-value of the power law itself
(powerlaw_fit.gof_p_value, POWERLAW_GOF_REPS synthetic sets, the same on every
alternative's row). A tail with fewer than min_tail values, or no tau_S fit at all,
gives NaN and the fit's reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from canon import CANON
from critspec.analysis.powerlaw_fit import POWER_LAW, PowerLawFit, gof_p_value, powerlaw_at, quiet

REASON = CANON.ENUM.FIT_REASON
TAIL = CANON.ENUM.TAIL_ALTERNATIVE
# The enum values are powerlaw's own distribution names; sorted as the table is.
ALTERNATIVES = tuple(sorted((TAIL.LOGNORMAL, TAIL.EXPONENTIAL)))


@dataclass(frozen=True)
class TailFit:
    alternative: str
    xmin: float
    n_tail: int
    alpha: float
    loglik_ratio_normalized: float
    p_value: float
    gof_p_value: float
    reason: str | None


def tail_fits(
    sizes: np.ndarray,
    size_fit: PowerLawFit,
    min_tail: int,
    rng: np.random.Generator,
    gof_reps: int,
) -> list[TailFit]:
    """One TailFit per alternative, in ALTERNATIVES order (sizes: the sample size_fit fitted)."""
    out = []
    fit = gof = None
    if size_fit.reason is None and size_fit.n_tail >= min_tail:
        fit = powerlaw_at(sizes, size_fit)
        gof = gof_p_value(sizes, size_fit, min_tail, rng, gof_reps)
    for alt in ALTERNATIVES:
        ratio = p_value = math.nan
        reason = size_fit.reason
        if reason is None and size_fit.n_tail < min_tail:
            reason = REASON.TOO_FEW_TAIL_SAMPLES
        if reason is None and fit is not None:
            with quiet():
                try:
                    ratio, p_value = fit.distribution_compare(POWER_LAW, alt, normalized_ratio=True)
                except (ValueError, FloatingPointError, ZeroDivisionError):
                    ratio = p_value = math.nan
            ratio, p_value = float(ratio), float(p_value)
            if not (math.isfinite(ratio) and math.isfinite(p_value)):
                ratio = p_value = math.nan
                reason = REASON.FIT_FAILED
        out.append(
            TailFit(
                alternative=alt,
                xmin=size_fit.xmin,
                n_tail=size_fit.n_tail,
                alpha=size_fit.alpha,
                loglik_ratio_normalized=ratio,
                p_value=p_value,
                gof_p_value=math.nan if gof is None or reason is not None else gof,
                reason=reason,
            )
        )
    return out
