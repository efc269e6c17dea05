"""Power law against its alternatives on the size tail (spec/11_AVALANCHES_AND_SIGNATURES.md, "Tail
fits").

On the sizes >= the xmin of tau_S, powerlaw's distribution_compare(power_law, alt,
normalized_ratio=True) gives Vuong's normalized log-likelihood ratio (positive
favours the power law) and its p-value. A tail with fewer than min_tail values, or
no tau_S fit at all, gives NaN and the fit's reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from canon import CANON
from critspec.analysis.powerlaw_fit import POWER_LAW, PowerLawFit, quiet

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
    reason: str | None


def tail_fits(size_fit: PowerLawFit, min_tail: int) -> list[TailFit]:
    """One TailFit per alternative, in ALTERNATIVES order."""
    out = []
    for alt in ALTERNATIVES:
        ratio = p_value = math.nan
        reason = size_fit.reason
        if reason is None and size_fit.n_tail < min_tail:
            reason = REASON.TOO_FEW_TAIL_SAMPLES
        if reason is None and size_fit.fit is not None:
            with quiet():
                try:
                    ratio, p_value = size_fit.fit.distribution_compare(
                        POWER_LAW, alt, normalized_ratio=True
                    )
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
                reason=reason,
            )
        )
    return out
