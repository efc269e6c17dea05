"""Phase 1 on models chosen only through models.yaml: another architecture from a local
directory, a model with non-finite activations, a missing directory (issue: Phase 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from canon import CANON
from critspec.cli import main
from critspec.data.synthetic import embedded_vocabulary
from critspec.data.tokenizer import build_word_level_tokenizer
from critspec.paths import project_root
from critspec.store.writers import read_npz

SUB = CANON.CLI.SUBCOMMAND
ROLE = CANON.ENUM.MODEL_ROLE.INSTRUCT
N_LAYER, N_EMBD, N_HEAD = 3, 32, 4


def save_with_tokenizer(model: torch.nn.Module, out: Path) -> Path:
    tokenizer = build_word_level_tokenizer(embedded_vocabulary())
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def vocab_size() -> int:
    return len(build_word_level_tokenizer(embedded_vocabulary()))


def configs_for(tmp_path: Path, model_dir: Path) -> Path:
    """The shipped pipeline with only models.yaml replaced by a local-directory entry."""
    models = tmp_path / CANON.PATH.CONFIG_MODELS_INCLUDE
    entry = {"SOURCE": "CANON.ENUM.MODEL_SOURCE.LOCAL_DIR", "PATH": str(model_dir)}
    models.write_text(
        yaml.safe_dump({"models": [{"role": "CANON.ENUM.MODEL_ROLE.INSTRUCT", "entry": entry}]})
    )
    pipeline = yaml.safe_load((project_root() / CANON.PATH.CONFIG_PIPELINE).read_text())
    pipeline["models_file"] = str(models)
    pipeline["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_DATASETS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    return path


def calibrate(config: Path, runs: Path) -> int:
    return main(
        [
            SUB.PHASE1_CALIBRATE,
            "--config",
            str(config),
            "--runs-dir",
            str(runs),
            "--model-role",
            ROLE,
        ]
    )


def test_gpt2_local_directory_runs_phase1(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=N_LAYER,
        n_embd=N_EMBD,
        n_head=N_HEAD,
        vocab_size=vocab_size(),
        n_positions=CANON.PROFILE.EMBEDDED_DEFAULT.SEQ_LEN_TOKENS,
    )
    model_dir = save_with_tokenizer(GPT2LMHeadModel(config).eval(), tmp_path / "small_gpt")
    runs = tmp_path / "store"
    assert calibrate(configs_for(tmp_path, model_dir), runs) == CANON.CLI.EXIT.OK
    [run_dir] = list(runs.iterdir())
    stats = read_npz(
        run_dir / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS
    )
    assert stats["mu"].shape == (N_LAYER, 4 * N_EMBD)
    assert np.isfinite(stats["sigma"]).all() and (stats["sigma"] > 0).all()


def test_non_finite_activations_fail_naming_the_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        num_hidden_layers=N_LAYER,
        hidden_size=N_EMBD,
        intermediate_size=64,
        num_attention_heads=N_HEAD,
        num_key_value_heads=N_HEAD,
        vocab_size=vocab_size(),
        max_position_embeddings=CANON.PROFILE.EMBEDDED_DEFAULT.SEQ_LEN_TOKENS,
    )
    model = LlamaForCausalLM(config).eval()
    bad_layer = 1
    with torch.no_grad():
        model.model.layers[bad_layer].mlp.up_proj.weight[0, 0] = float("nan")
    model_dir = save_with_tokenizer(model, tmp_path / "nan_llama")
    runs = tmp_path / "store"
    assert calibrate(configs_for(tmp_path, model_dir), runs) == CANON.CLI.EXIT.CONTRACT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"layer {bad_layer}" in err[0], err
    assert not [p for p in runs.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]


def test_missing_model_directory_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_such_model"
    assert calibrate(configs_for(tmp_path, missing), tmp_path / "store") == CANON.CLI.EXIT.CONTRACT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0], err


def test_directory_without_tokenizer_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = GPT2Config(n_layer=1, n_embd=N_EMBD, n_head=N_HEAD, vocab_size=vocab_size())
    model_dir = tmp_path / "no_tokenizer"
    GPT2LMHeadModel(config).save_pretrained(model_dir, safe_serialization=True)
    assert (
        calibrate(configs_for(tmp_path, model_dir), tmp_path / "store") == CANON.CLI.EXIT.CONTRACT
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tokenizer" in err[0].lower(), err


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "store"
    code = main(
        [
            SUB.PHASE2_GAIN_GRID,
            "--runs-dir",
            str(runs),
            "--model-role",
            ROLE,
            "--dry-run",
            "--config",
            str(project_root() / CANON.PATH.CONFIG_PIPELINE),
        ]
    )
    assert code == CANON.CLI.EXIT.OK
    out = capsys.readouterr().out
    assert CANON.OUTPUT.STAGE_TAG.PHASE2_GAIN_GRID in out
    assert not runs.exists()


def test_changed_weights_after_calibration_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = GPT2Config(
        n_layer=N_LAYER,
        n_embd=N_EMBD,
        n_head=N_HEAD,
        vocab_size=vocab_size(),
        n_positions=CANON.PROFILE.EMBEDDED_DEFAULT.SEQ_LEN_TOKENS,
    )
    torch.manual_seed(0)
    model_dir = save_with_tokenizer(GPT2LMHeadModel(config).eval(), tmp_path / "small_gpt")
    pipeline, runs = configs_for(tmp_path, model_dir), tmp_path / "store"
    assert calibrate(pipeline, runs) == CANON.CLI.EXIT.OK
    torch.manual_seed(1)
    GPT2LMHeadModel(config).save_pretrained(model_dir, safe_serialization=True)
    capsys.readouterr()  # the test's own save_pretrained may draw a progress bar
    argv = [
        SUB.PHASE2_GAIN_GRID,
        "--config",
        str(pipeline),
        "--runs-dir",
        str(runs),
        "--model-role",
        ROLE,
    ]
    capsys.readouterr()  # only main's output counts (save_pretrained may draw a progress bar)
    assert main(argv) == CANON.CLI.EXIT.DEPENDENCY
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "re-run Phase 1" in err[0], err
