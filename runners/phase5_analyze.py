"""Phase 5, analyze (spec/11_AVALANCHES_AND_SIGNATURES.md, spec/12_STATISTICS_AND_BOOTSTRAP.md),
per model role; no model is loaded:

1. consume Phase 3's rasters, conditions and out-of-sample rates, Phase 4's null
   rasters and conditions, and gstar (each re-hashed; exit 3 on a change);
2. per condition: pooled b, delta b against every null, chi, the multistep-regression
   branching ratio, sequence-bootstrap CIs (one index matrix per condition, shared by
   real and null statistics); avalanches for each adjacency; crackling exponents and
   tail fits; the identifiability of gstar per (spike definition, target rate);
3. write the avalanches table (results/), the summary, identifiability, crackling and
   tail-fit tables as Parquet and CSV (tables/) and the figures as PNG and PDF (figs/).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.tables import AnalysisParams, AnalysisTables, analyze, primary
from critspec.errors import DependencyError
from critspec.figures import (
    b_curves,
    chi_over_g,
    crackling_gamma,
    delta_b_nulls,
    gstar_selection,
    raster_example,
    rate_match,
    save_figure,
)
from critspec.figures.render import FigureHeading, spike_def_name
from critspec.orchestrate import PhaseContext
from critspec.select.gstar import gstar_table
from critspec.store.run_store import RunBuilder
from critspec.store.writers import read_json, read_npz, read_parquet

EVENT = CANON.ENUM.LOG_EVENT


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    rasters_run = ctx.upstream_of("rasters")
    rasters = read_npz(ctx.consume("rasters"))
    conditions = read_parquet(ctx.consume("raster_conditions")).to_pandas()
    rates = read_parquet(ctx.consume("raster_rates")).to_pandas()
    nulls = read_npz(ctx.consume("null_rasters"))
    null_conditions = read_parquet(ctx.consume("null_conditions")).to_pandas()
    gstar_doc = read_json(ctx.consume("gstar"))
    ctx.run.model = rasters_run.record["model"]
    ctx.run.dataset_slices.extend(rasters_run.record["dataset_slices"])
    if not np.array_equal(rasters["seq_id"], nulls["seq_id"]):
        raise DependencyError(
            f"the null rasters of run {ctx.upstream_of('null_rasters').run_id} are not of the "
            f"windows of Phase 3 run {rasters_run.run_id}; re-run Phase 4"
        )

    an = cfg.analysis
    params = AnalysisParams.from_config(an, tuple(cfg.gain_grid.gains), gstar_table(gstar_doc))
    tables = analyze(
        rasters["A"],
        rasters["X"],
        conditions,
        nulls["A"],
        null_conditions,
        rates,
        rasters["seq_id"],
        params,
    )
    heading = FigureHeading(
        model=str(ctx.run.model["model_id"]),
        model_role=str(ctx.model_role),
        profile=str(cfg.profile),
    )
    write_outputs(
        ctx.run,
        tables,
        rasters,
        conditions,
        rates,
        gstar_doc,
        an.cc_max_components_per_seq,
        heading,
    )


def write_outputs(
    run: RunBuilder,
    tables: AnalysisTables,
    rasters: dict[str, np.ndarray],
    conditions: pd.DataFrame,
    rates: pd.DataFrame,
    gstar_doc: dict,
    cc_max: int,
    heading: FigureHeading | None = None,
) -> None:
    """Everything Phase 5 writes after `analyze` (also timed by bench/phase3_phase5.py):
    the fit and component logs, the avalanches and the tables (Parquet and CSV), the
    figures, the summary."""
    write_tables(run, tables, cc_max)
    figures = build_figures(tables, rasters, conditions, rates, gstar_doc, heading)
    for contract_id, figure in figures.items():
        run.write_figure(contract_id, figure, save_figure)
    run.summary.update(run_summary(tables))


def write_tables(run: RunBuilder, tables: AnalysisTables, cc_max: int) -> None:
    """The fit and component logs, the avalanches and the tables (Parquet and CSV); the
    identifiability table only when there is one (analyze-rasters shares this)."""
    log_fits(run, tables)
    per_seq = tables.avalanches.groupby(["cond_id", "adjacency", "seq_id"]).size()
    run.log.event(
        EVENT.CHECK,
        {
            "check_id": CANON.ENUM.CHECK_ID.COMPONENT_LIMIT,
            "passed": True,
            "max_components_per_seq": int(per_seq.max()) if len(per_seq) else 0,
            "limit": cc_max,
        },
    )
    run.write_parquet("avalanches", {c: tables.avalanches[c].to_numpy() for c in tables.avalanches})
    run.write_table("summary", "summary_csv", tables.summary)
    if tables.identifiability is not None:
        run.write_table("identifiability", "identifiability_csv", tables.identifiability)
    run.write_table("crackling", "crackling_csv", tables.crackling)
    run.write_table("tail_fits", "tail_fits_csv", tables.tail_fits)


def log_fits(run: RunBuilder, tables: AnalysisTables) -> None:
    """How many fits lacked data, by reason: NaN with a reason, never a crash."""
    reasons = pd.concat(
        [tables.crackling["reason"], tables.tail_fits["reason"], tables.summary["m_mr_reason"]]
    )
    run.log.event(
        EVENT.CHECK,
        {
            "check_id": CANON.ENUM.CHECK_ID.FIT_NAN,
            "n_fits": int(len(reasons)),
            "n_nan_by_reason": {str(k): int(v) for k, v in reasons.value_counts().items()},
        },
    )


def largest_avalanche(tables: AnalysisTables, cond_id: int) -> pd.Series | None:
    """The largest first-adjacency avalanche of one condition (ties: first in table order)."""
    av = tables.avalanches
    first = CANON.ENUM.ADJACENCY.ADJ_4N
    rows = av[(av["cond_id"] == cond_id) & (av["adjacency"] == first)]
    if rows.empty:
        return None
    return rows.loc[rows["size"].idxmax()]


def build_figures(
    tables: AnalysisTables,
    rasters: dict[str, np.ndarray],
    conditions: pd.DataFrame,
    rates: pd.DataFrame,
    gstar_doc: dict,
    heading: FigureHeading | None,
) -> dict:
    """Every Phase 5 figure by contract id, each titled with `heading` (model, role,
    profile); the gstar figure draws the calibration-slice b_tot recorded in gstar_doc."""
    summary = tables.summary
    # The raster example: the first condition at its gstar, the window holding its
    # largest avalanche.
    at_gstar = conditions[conditions["is_gstar"]].sort_values("cond_id")
    cond = at_gstar.iloc[0]
    cid = int(cond["cond_id"])
    big = largest_avalanche(tables, cid)
    seq_ids = rasters["seq_id"]
    if big is None:
        n, box = 0, None
    else:
        n = int(np.flatnonzero(seq_ids == big["seq_id"])[0])
        box = (
            int(big["l_min"]),
            int(big["l_min"] + big["height"] - 1),
            int(big["t_min"]),
            int(big["t_min"] + big["duration"] - 1),
        )
    title = (
        f"{spike_def_name(cond['spike_def_id'])}, r={cond['target_rate']:g}, g={cond['g']:g} "
        f"(gstar), window {int(seq_ids[n])}"
    )
    suffixes = [getattr(CANON.OUTPUT.NULL_SUFFIX, k) for k in _null_keys()]
    return {
        "fig_raster_example": raster_example(rasters["A"][cid, n], box, title, heading),
        "fig_rate_match": rate_match(
            rates[["cond_id", "layer", "r_star", "achieved_rate"]], conditions, heading
        ),
        "fig_b_curves": b_curves(summary, heading),
        "fig_delta_b_nulls": delta_b_nulls(summary, suffixes, heading),
        "fig_gstar_selection": gstar_selection(summary, gstar_doc, heading),
        "fig_chi_over_g": chi_over_g(summary, heading),
        "fig_crackling_gamma": crackling_gamma(primary(tables.crackling), heading),
    }


def _null_keys() -> list[str]:
    return [k for k in vars(CANON.ENUM.NULL_ID) if not k.startswith("_")]


def run_summary(tables: AnalysisTables) -> dict:
    """The run record's summary: counts, and the identifiability verdicts when judged."""
    out = {
        "n_conditions": int(len(tables.summary)),
        "n_avalanches": int(len(tables.avalanches)),
    }
    ident = tables.identifiability
    if ident is not None:
        out["n_identifiable"] = int(ident["identifiable"].sum())
        out["n_gstar_at_edge"] = int(ident["gstar_at_edge"].sum())
    return out
