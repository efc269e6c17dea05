"""Phase 4 acceptance: null rasters (spec/10_NULLS.md, spec/08_TEST_PLAN.md).

Marginals are checked by a separate route: each permuted row sorted equals the real
row sorted, each shifted row equals np.roll of the real row by some s in 1..T-1, and
the token-shuffle rates equal the counts of its rasters.
"""

from __future__ import annotations

import numpy as np

from acceptance.checks import CheckContext, check
from acceptance.checks.phase3 import results, upstream
from canon import CANON
from critspec.validate.run import load_config

ART = CANON.OUTPUT.ARTIFACT
NULL = CANON.ENUM.NULL_ID


@check("null_marginals_exact")
def null_marginals_exact(ctx: CheckContext) -> None:
    real = results(upstream(ctx, "rasters"), ART.RASTERS)["A"]
    nulls = results(ctx.run_a, ART.NULL_RASTERS)
    conds = results(ctx.run_a, ART.NULL_CONDITIONS).sort_values("null_cond_id")
    A_null = nulls["A"]
    assert np.array_equal(nulls["X"], (A_null > 0).astype(np.uint8))
    T = real.shape[-1]
    for null_id, rows in conds.groupby("null_id"):
        block = A_null[rows["null_cond_id"].to_numpy()]
        source = real[rows["cond_id"].to_numpy()]
        if null_id == NULL.TIME_PERM:
            assert np.array_equal(np.sort(block, -1), np.sort(source, -1)), "perm changed a row"
            assert not np.array_equal(block, source), "the permutation changed nothing"
        elif null_id == NULL.CIRCULAR_SHIFT:
            rotations = np.stack([np.roll(source, s, axis=-1) for s in range(1, T)])
            is_rotation = (rotations == block[None]).all(axis=-1).any(axis=0)
            assert is_rotation.all(), f"{int((~is_rotation).sum())} rows are no rotation by 1..T-1"
        else:
            rates = results(ctx.run_a, ART.NULL_RATES)
            n, t, d_ff = A_null.shape[1], A_null.shape[3], ctx.record()["model"]["d_ff"]
            achieved = A_null.sum(axis=(1, 3)) / (n * t * d_ff)
            got = achieved[rates["null_cond_id"], rates["layer"]]
            assert np.array_equal(got, rates["achieved_rate"].to_numpy())
            assert set(rates["null_cond_id"]) == set(rows["null_cond_id"])
            assert not np.array_equal(block, source), "shuffled input gave the same rasters"


@check("null_conditions_cover_every_real_condition")
def null_conditions_cover_every_real_condition(ctx: CheckContext) -> None:
    keys = ["cond_id", "spike_def_id", "target_rate", "g"]
    real = results(upstream(ctx, "rasters"), ART.RASTER_CONDITIONS)[keys]
    conds = results(ctx.run_a, ART.NULL_CONDITIONS)
    configured = load_config(ctx.run_a)["nulls"]["null_ids"]
    assert sorted(set(conds["null_id"])) == sorted(configured)
    for null_id in configured:
        mine = conds[conds["null_id"] == null_id][keys].sort_values("cond_id")
        assert mine.reset_index(drop=True).equals(
            real.sort_values("cond_id").reset_index(drop=True)
        )
    assert np.array_equal(conds["null_cond_id"], np.arange(len(conds)))
