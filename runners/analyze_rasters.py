"""analyze-rasters: Phase 5's analysis of rasters made elsewhere as a sealed run
(spec/12_STATISTICS_AND_BOOTSTRAP.md §6); no model, no upstream run:

1. check the raster file against the `rasters` contract and the optional conditions table
   against `raster_conditions` and the rasters (exit 2, before any run directory exists);
2. the time-permutation and circular-shift nulls from A with Phase 4's builders and seeds;
   the token-shuffle null is not applicable (it re-runs the model on shuffled tokens);
3. Phase 5's `analyze` with the config's analysis section, identifiability only when the
   conditions table gives a gain axis;
4. seal a run whose id hashes the inputs' sha256 and the analysis config; it holds Phase
   5's tables (avalanches, summary, crackling, tail fits, identifiability when judged).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.external_rasters import ExternalRasters, gstar_of, load_external
from critspec.config.canonical import canonical_bytes
from critspec.config.overrides import parse_override
from critspec.config.resolve import ResolvedConfig, load_config, scoped_document
from critspec.errors import ConfigError, DependencyError, InputError, RunExistsError
from critspec.spec.load import project_spec
from critspec.store.run_store import make_run_id, open_run
from critspec.validate import contracts

if TYPE_CHECKING:
    from critspec.analysis.tables import AnalysisParams

# The analysis modules (statistics, fits, figures' helpers) are imported once the inputs
# have passed: a refusal stays quick.

KEY = "ANALYZE_RASTERS"
NULL = CANON.ENUM.NULL_ID
# The nulls built from A alone, in NULL_ID order (spec/10_NULLS.md).
NULLS_FROM_A = (NULL.TIME_PERM, NULL.CIRCULAR_SHIFT)
NOT_APPLICABLE = {
    NULL.TOKEN_SHUFFLE: "needs the model and the input tokens of the windows (it re-runs "
    "the model on token-shuffled input with the same thresholds); rasters alone carry neither"
}
NO_GAIN_AXIS = (
    "no conditions table, so no gain axis, baseline or gstar: the identifiability table "
    "is not written"
)
MODE = CANON.ENUM.RUN_ID_MODE.CONTENT_HASH


def config_document(config: ResolvedConfig, inputs: ExternalRasters) -> dict[str, Any]:
    """What the run depends on: the profile, the analysis section, the inputs' sha256, and
    the conditions' keys and nulls under the paths the contracts bind (spec/12 §6)."""
    invocation = {
        "phase_id": CANON.CLI.SUBCOMMAND.ANALYZE_RASTERS,
        "model_role": None,
        "external_inputs": {
            "rasters_sha256": inputs.rasters_sha256,
            "raster_conditions_sha256": inputs.conditions_sha256,
        },
    }
    doc = scoped_document(config, ("analysis",), invocation)
    keys = inputs.bindings()
    doc["calibration"] = {
        "spike_def_ids": keys["spike_def_ids"],
        "target_rates": keys["target_rates"],
    }
    doc["gain_grid"] = {"gains": keys["gains"]}
    doc["nulls"] = {"null_ids": list(NULLS_FROM_A)}
    return doc


def null_rasters(inputs: ExternalRasters) -> tuple[np.ndarray, pd.DataFrame]:
    """Phase 4's within-layer nulls of A, seeded from (null, condition keys, seq_id, layer)
    as Phase 4 seeds them, stacked in NULLS_FROM_A order, and their condition rows."""
    from critspec.events.null import (
        circular_shift_rasters,
        null_condition_table,
        time_permute_rasters,
    )

    rows = list(inputs.conditions.itertuples(index=False))
    keys = [(str(c.spike_def_id), float(c.target_rate), float(c.g)) for c in rows]
    builders = {NULL.TIME_PERM: time_permute_rasters, NULL.CIRCULAR_SHIFT: circular_shift_rasters}
    null_A = np.concatenate([builders[n](inputs.A, keys, inputs.seq_id) for n in NULLS_FROM_A])
    return null_A, null_condition_table(list(NULLS_FROM_A), rows)


def analysis_params(config: ResolvedConfig, inputs: ExternalRasters) -> AnalysisParams:
    from critspec.analysis.tables import CANON_NULL_SUFFIXES, AnalysisParams

    an = config.pipeline.analysis
    return AnalysisParams.from_config(
        an,
        tuple(inputs.bindings()["gains"]),  # type: ignore[arg-type]
        gstar_of(inputs.conditions),
        null_suffixes=tuple((n, s) for n, s in CANON_NULL_SUFFIXES if n in NULLS_FROM_A),
        identifiability=inputs.has_gain_axis,
    )


def with_contract_columns(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary in its contract's column order; a null not built (the token shuffle)
    has its columns NaN."""
    names = [c["name"] for c in contracts.view("summary", "columns")["columns"]]
    return summary.reindex(columns=names)


def analyze_rasters(
    rasters: Path,
    conditions: Path | None,
    runs_dir: Path,
    config_path: Path,
    overrides: tuple[str, ...] = (),
) -> Path:
    """Check, analyze and seal; returns the sealed run directory. Nothing is created in
    `runs_dir` unless the inputs pass and the run id is new."""
    stage = project_spec().phases.standalone_by_key(KEY)
    for text in overrides:  # only the analysis section enters the run: refuse, never ignore
        if parse_override(text, config_path).path[0] not in stage.config_sections:
            raise ConfigError(
                f"--set {text}: {CANON.CLI.SUBCOMMAND.ANALYZE_RASTERS} uses only the "
                f"{', '.join(stage.config_sections)} section of the config; drop it"
            )
    config = load_config(config_path, overrides)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise InputError(f"{runs_dir}: the runs directory is a file, not a directory")
    inputs = load_external(rasters, conditions)
    doc = config_document(config, inputs)
    run_id = make_run_id(stage.stage_tag, canonical_bytes(doc), [], MODE)
    if os.path.lexists(runs_dir / run_id):
        raise RunExistsError(
            f"{runs_dir / run_id}: these rasters were already analyzed with this config; "
            "nothing was changed. Use the existing run or change the config"
        )
    from critspec.analysis.tables import AnalysisTables, analyze
    from runners.phase5_analyze import run_summary, write_tables

    null_A, null_conditions = null_rasters(inputs)
    tables = analyze(
        inputs.A,
        inputs.X,
        inputs.conditions,
        null_A,
        null_conditions,
        None,
        inputs.seq_id,
        analysis_params(config, inputs),
    )
    tables = AnalysisTables(
        summary=with_contract_columns(tables.summary),
        identifiability=tables.identifiability,
        avalanches=tables.avalanches,
        crackling=tables.crackling,
        tail_fits=tables.tail_fits,
    )
    phase = stage
    if not inputs.has_gain_axis:
        skipped = {"identifiability", "identifiability_csv"}
        phase = stage.model_copy(
            update={"produces": tuple(p for p in stage.produces if p not in skipped)}
        )
    with open_run(
        phase=phase,
        runs_dir=runs_dir,
        config_doc=doc,
        model_role=None,
        upstream_ids=[],
        run_id_mode=MODE,
        allow_resume=False,
    ) as run:
        run.summary["n_conditions"] = int(inputs.A.shape[0])
        bindings = inputs.bindings()
        pinned = [(rasters, "rasters", inputs.rasters_sha256)]
        if conditions is not None:
            pinned.append((conditions, "raster_conditions", inputs.conditions_sha256))
        for path, contract_id, sha in pinned:
            run.consume_external(path, contract_id, bindings)
            if run.dependencies[-1]["artifacts"][-1]["sha256"] != sha:
                raise DependencyError(f"{path}: changed while it was being analyzed; run again")
        for null_id, reason in NOT_APPLICABLE.items():
            run.log.event(
                CANON.ENUM.LOG_EVENT.CHECK,
                {
                    "check_id": CANON.ENUM.CHECK_ID.NULL_NOT_APPLICABLE,
                    "null_id": null_id,
                    "reason": reason,
                },
            )
        write_tables(run, tables, config.pipeline.analysis.cc_max_components_per_seq)
        run.summary.update(run_summary(tables))
        run.summary["nulls"] = list(NULLS_FROM_A)
        run.summary["nulls_not_applicable"] = dict(NOT_APPLICABLE)
        if not inputs.has_gain_axis:
            run.summary["identifiability_skipped"] = NO_GAIN_AXIS
    return run.final_dir
