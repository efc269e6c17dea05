"""Phase 7, replication across model roles (spec/15_REPLICATION.md); no model is loaded:

1. consume, for both model roles, Phase 5's summary and identifiability and Phase 3's
   rasters and conditions (each re-hashed; exit 3 on a change). A profile that declares
   one role never gets here: the run graph refuses it with exit 2 naming the missing role;
2. per (spike definition, target rate): gstar, b_tot, delta b_tot and chi at gstar with
   their CIs per role, whether the identifiability verdicts agree, and the largest gap
   between the two held-out b_tot(g) curves with its CI;
3. write the two tables (Parquet and CSV) and the overlay figure.
"""

from __future__ import annotations

import pandas as pd

from canon import CANON
from critspec.analysis.replication import ReplicationParams, RoleInputs, replicate
from critspec.figures import save_figure
from critspec.figures.replication import replication_overlay
from critspec.orchestrate import PhaseContext
from critspec.store.writers import read_npz, read_parquet

ROLES = (CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE)


def role_inputs(ctx: PhaseContext, role: str) -> RoleInputs:
    rasters = read_npz(ctx.consume("rasters", role))
    return RoleInputs(
        summary=read_parquet(ctx.consume("summary", role)).to_pandas(),
        identifiability=read_parquet(ctx.consume("identifiability", role)).to_pandas(),
        A=rasters["A"],
        conditions=read_parquet(ctx.consume("raster_conditions", role)).to_pandas(),
        seq_id=rasters["seq_id"],
    )


def run(ctx: PhaseContext) -> None:
    an = ctx.config.pipeline.analysis
    inputs = {role: role_inputs(ctx, role) for role in ROLES}
    for role in ROLES:
        up = ctx.upstream_of("rasters", role)
        ctx.run.dataset_slices.extend(
            s for s in up.record["dataset_slices"] if s not in ctx.run.dataset_slices
        )
    tables = replicate(
        inputs,
        ReplicationParams(
            bootstrap_seed=CANON.CONST.BOOTSTRAP_SEED,
            bootstrap_reps=an.bootstrap_reps,
            ci_percentiles=an.ci_percentiles,
            chi_eps=an.chi_eps,
        ),
    )
    ctx.run.write_table("replication_by_role", "replication_by_role_csv", tables.by_role)
    ctx.run.write_table("replication", "replication_csv", tables.replication)
    ctx.run.write_figure(
        "fig_replication_overlay",
        replication_overlay(tables.curves, tables.by_role, tables.replication),
        save_figure,
    )
    ctx.run.summary.update(_summary(tables.replication))


def _summary(rep: pd.DataFrame) -> dict:
    return {
        "n_pairs": int(len(rep)),
        "n_gstar_equal": int(rep["gstar_equal"].sum()),
        "n_verdicts_agree": int(rep["verdicts_agree"].sum()),
    }
