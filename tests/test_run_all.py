"""`critspec run-all`: every phase for every role, then reuse of identical runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from canon import CANON
from critspec.cli import main
from critspec.paths import project_root
from critspec.spec.load import project_spec

CONFIG = str(project_root() / CANON.PATH.CONFIG_PIPELINE)
GRID = CANON.CONST.GAIN_GRID_DEFAULT
BASELINE_AT = GRID.index(CANON.CONST.GAIN_BASELINE)
# A Phase 6 summary line: role, gstar, then five "delta [low, high]" cells of 3 words each.
PHASE6_WORDS = 2 + 5 * 3


def reduced_config(tmp_path: Path) -> str:
    """The shipped pipeline on three gains and few resamples (the reuse logic is the same)."""
    raw = yaml.safe_load(Path(CONFIG).read_text())
    raw["models_file"] = str(project_root() / CANON.PATH.CONFIG_MODELS)
    raw["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_DATASETS)
    raw["gain_grid"]["gains"] = list(GRID[BASELINE_AT - 1 : BASELINE_AT + 2])
    raw["analysis"]["bootstrap_reps"] = 20
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def test_run_all_then_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    config = reduced_config(tmp_path)
    argv = [CANON.CLI.SUBCOMMAND.RUN_ALL, "--config", config, "--runs-dir", str(store)]
    assert main(argv) == CANON.CLI.EXIT.OK
    first = capsys.readouterr().out
    n_runs = sum(len(p.roles) for p in project_spec().phases.phases)
    sealed = sorted(p.name for p in store.iterdir())
    assert len(sealed) == n_runs and all(n.startswith(CANON.PATH.RUN_DIR_PREFIX) for n in sealed)
    assert first.count("sealed ") == n_runs
    for role in (CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE):
        for sd in (CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS):
            assert any(line.split()[:2] == [role, sd] for line in first.splitlines())

    # The summary's numbers are the Phase 5 tables' (an independent read of the files).
    lines = [line.split() for line in first.splitlines()]
    analysis = {p.stage_tag for p in project_spec().phases.phases if "summary" in p.produces}
    for run_dir in (p for p in store.iterdir() if p.name.split("_")[1] in analysis):
        role = json.loads((run_dir / CANON.OUTPUT.RUN_RECORD).read_text())["model_role"]
        summary = pd.read_parquet(run_dir / CANON.OUTPUT.SUBDIR.TABLES / CANON.OUTPUT.TABLE.SUMMARY)
        for row in summary[summary["is_gstar"]].itertuples():
            base = summary[
                (summary.spike_def_id == row.spike_def_id)
                & (summary.target_rate == row.target_rate)
                & summary.is_baseline
            ].iloc[0]
            [line] = [w for w in lines if w[:3] == [role, row.spike_def_id, f"{row.target_rate:g}"]]
            assert line[3] == f"{row.g:g}"
            assert line[4] == f"{base[CANON.ENUM.SELECTION_INPUT.B_TOT]:.3f}"
            assert line[7] == f"{getattr(row, CANON.ENUM.SELECTION_INPUT.B_TOT):.3f}"

    # Phase 6: the paired gstar - baseline differences are the generalization table's.
    gen_tag = {p.stage_tag for p in project_spec().phases.phases if "generalization" in p.produces}
    phase6_lines = [w for w in lines if len(w) == PHASE6_WORDS]
    for run_dir in (p for p in store.iterdir() if p.name.split("_")[1] in gen_tag):
        role = json.loads((run_dir / CANON.OUTPUT.RUN_RECORD).read_text())["model_role"]
        gen = pd.read_parquet(
            run_dir / CANON.OUTPUT.SUBDIR.TABLES / CANON.OUTPUT.TABLE.GENERALIZATION
        )
        for g in sorted(set(gen.loc[gen["is_gstar"], "g"])):
            row = gen[gen["g"] == g].iloc[0]
            [line] = [w for w in phase6_lines if w[:2] == [role, f"{g:g}"]]
            assert line[2] == f"{row['nll_mean_vs_baseline']:+.4f}"

    assert main(argv) == CANON.CLI.EXIT.OK
    second = capsys.readouterr().out
    assert second.count("reused ") == n_runs and "sealed " not in second
    assert sorted(p.name for p in store.iterdir()) == sealed
