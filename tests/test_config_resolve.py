"""Config resolution: CANON references, includes, unknown keys, wrong types (spec/00_OVERVIEW.md,
spec/07_RUNS_RECORDS_LOGGING.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from canon import CANON
from critspec.config.canon_refs import canon_value
from critspec.config.canonical import canonical_bytes, config_sha256
from critspec.config.resolve import load_config, scoped_document
from critspec.errors import ConfigError
from critspec.paths import project_root

PIPELINE = project_root() / CANON.PATH.CONFIG_PIPELINE


def copy_configs(tmp_path: Path, edit: dict[str, object] | None = None) -> Path:
    """The shipped configs in tmp_path, with the pipeline's includes made absolute."""
    raw = yaml.safe_load(PIPELINE.read_text())
    raw["models_file"] = str(project_root() / CANON.PATH.CONFIG_MODELS)
    raw["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_DATASETS)
    for dotted, value in (edit or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_shipped_config_resolves_without_references() -> None:
    config = load_config(PIPELINE)
    text = canonical_bytes(config.document).decode()
    assert "CANON." not in text
    assert config.pipeline.gain_grid.gains == CANON.CONST.GAIN_GRID_DEFAULT
    assert config.pipeline.calibration.eps == CANON.CONST.EPS
    roles = [m.role for m in config.models.models]
    assert roles == [CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE]
    instruct = config.model_entry(CANON.ENUM.MODEL_ROLE.INSTRUCT)
    assert instruct.D_FF == CANON.MODEL.EMBEDDED_INSTRUCT.D_FF


def test_group_reference_becomes_a_mapping() -> None:
    assert canon_value("CANON.MODEL.EMBEDDED_BASE")["SEED"] == CANON.MODEL.EMBEDDED_BASE.SEED
    assert canon_value("CANON.CONST.GAIN_GRID_DEFAULT") == list(CANON.CONST.GAIN_GRID_DEFAULT)


def test_unresolved_reference_names_file_and_key(tmp_path: Path) -> None:
    path = copy_configs(tmp_path, {"calibration.tau0": "CANON.CONST.NO_SUCH_THING"})
    with pytest.raises(ConfigError, match=r"pipeline\.yaml: calibration\.tau0: unresolved"):
        load_config(path)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = copy_configs(tmp_path, {"gain_grid.gain_typo": 3})
    with pytest.raises(ConfigError, match=r"pipeline\.yaml: gain_grid\.gain_typo: unknown key"):
        load_config(path)


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    path = copy_configs(tmp_path, {"runtime.batch_size": "eight"})
    with pytest.raises(ConfigError, match=r"runtime\.batch_size"):
        load_config(path)


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    models = tmp_path / CANON.PATH.CONFIG_MODELS_INCLUDE
    models.write_text(
        yaml.safe_dump({"models": [{"role": "CANON.ENUM.MODEL_ROLE.BASE", "entry": {"SOURCE": 3}}]})
    )
    path = copy_configs(tmp_path, {"models_file": str(models)})
    with pytest.raises(ConfigError, match=r"models\.yaml: models\.0\.entry\.SOURCE"):
        load_config(path)


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("runtime: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_invalid_rates_and_gains_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target_rates"):
        load_config(copy_configs(tmp_path, {"calibration.target_rates": [0.5, 1.5]}))
    with pytest.raises(ConfigError, match="gains"):
        load_config(copy_configs(tmp_path, {"gain_grid.gains": [0.5, 0.5]}))


def test_scoped_document_hash_tracks_its_sections_only(tmp_path: Path) -> None:
    base = load_config(PIPELINE)
    changed = load_config(copy_configs(tmp_path, {"select_gstar.tie_tol_abs": 0.125}))
    invocation = {"phase_id": CANON.CLI.SUBCOMMAND.PHASE1_CALIBRATE}
    sections = ("runtime", "calibration")
    assert config_sha256(scoped_document(base, sections, invocation)) == config_sha256(
        scoped_document(changed, sections, invocation)
    )
    sections = ("select_gstar",)
    assert config_sha256(scoped_document(base, sections, invocation)) != config_sha256(
        scoped_document(changed, sections, invocation)
    )


def test_paper_scale_config_resolves_and_plans_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from critspec.cli import main

    path = project_root() / CANON.PATH.CONFIG_PAPER_PIPELINE
    config = load_config(path)
    assert config.pipeline.calibration.target_rates == CANON.CONST.TARGET_LAYER_RATES
    assert config.pipeline.calibration.n_windows == CANON.CONST.N_WINDOWS_A_CALIBRATION
    instruct = config.model_entry(CANON.ENUM.MODEL_ROLE.INSTRUCT)
    assert instruct.HF_ID == CANON.MODEL.PAPER_INSTRUCT.HF_ID and not instruct.ALLOW_HUB
    argv = [
        CANON.CLI.SUBCOMMAND.PHASE2_SELECT_GSTAR,
        "--config",
        str(path),
        "--dry-run",
        "--runs-dir",
        str(tmp_path),
        "--model-role",
        CANON.ENUM.MODEL_ROLE.BASE,
    ]
    assert main(argv) == CANON.CLI.EXIT.OK
    assert CANON.OUTPUT.STAGE_TAG.PHASE2_SELECT_GSTAR in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "pipeline",
    [
        CANON.PATH.CONFIG_PIPELINE,
        CANON.PATH.CONFIG_PAPER_PIPELINE,
        CANON.PATH.CONFIG_SMOLLM2_PIPELINE,
    ],
)
@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_shipped_configs_load_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: str, form: str
) -> None:
    """Includes resolve beside the including file; a stray ./configs/ cannot override them."""
    stray = tmp_path / CANON.PATH.CONFIG_MODELS
    stray.parent.mkdir(parents=True)
    stray.write_text("models: [this is not a models file]\n")
    (tmp_path / CANON.PATH.CONFIG_DATASETS).write_text("datasets: 3\n")
    (tmp_path / CANON.PATH.CONFIG_PAPER_MODELS).parent.mkdir(parents=True)
    (tmp_path / CANON.PATH.CONFIG_PAPER_MODELS).write_text("models: 3\n")
    monkeypatch.chdir(tmp_path)
    target = project_root() / pipeline
    path = target if form == "absolute" else Path(os.path.relpath(target, tmp_path))
    config = load_config(path)
    expected = yaml.safe_load((target.parent / CANON.PATH.CONFIG_MODELS_INCLUDE).read_text())
    assert len(config.models.models) == len(expected["models"])
    assert {m.role for m in config.models.models} == {
        canon_value(m["role"]) for m in expected["models"]
    }


def test_phase3_to_5_sections_refuse_what_phase5_cannot_honour(tmp_path: Path) -> None:
    """Phase 5 writes a column per null and rows per adjacency and alternative; the raster
    slice is held out from the calibration slice's own dataset."""
    one_null = [CANON.ENUM.NULL_ID.TIME_PERM]
    with pytest.raises(ConfigError, match="null_ids must list every one"):
        load_config(copy_configs(tmp_path, {"nulls.null_ids": one_null}))
    with pytest.raises(ConfigError, match="adjacencies must list every one"):
        load_config(copy_configs(tmp_path, {"analysis.adjacencies": [CANON.ENUM.ADJACENCY.ADJ_4N]}))
    with pytest.raises(ConfigError, match="rasters.dataset_role must equal"):
        load_config(copy_configs(tmp_path, {"rasters.dataset_role": CANON.ENUM.DATASET_ROLE.B}))
    with pytest.raises(ConfigError, match="ci_percentiles"):
        load_config(
            copy_configs(
                tmp_path,
                {"analysis.ci_percentiles": list(reversed(CANON.CONST.BOOTSTRAP_CI_PERCENTILES))},
            )
        )
