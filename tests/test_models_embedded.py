"""Embedded model materialization (spec/06_MODELS_AND_HOOKS.md "Embedded default profile")."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

import critspec.models.embedded as embedded
from canon import CANON
from critspec.data.synthetic import embedded_vocabulary
from critspec.data.tokenizer import SPECIAL_TOKENS
from critspec.errors import ConfigError
from critspec.models.adapters import recompute_u
from critspec.models.embedded import EmbeddedModelDef, materialize, weights_sha256
from critspec.models.hooks import capture_mlp_inputs, capture_u
from critspec.models.loading import load_model

CPU = torch.device(CANON.ENUM.DEVICE.CPU)
WEIGHTS_FILE = "model.safetensors"
# A smaller definition than the CANON one keeps these tests fast.
SMALL = EmbeddedModelDef(n_layers=2, hidden=32, d_ff=48, n_heads=4, max_positions=32, seed=7)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(model_dir: Path):
    return load_model(
        source=CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        device=CPU,
        dtype=torch.float32,
        local_dir=model_dir,
    )


def test_from_canon_reads_the_entry():
    defn = EmbeddedModelDef.from_canon(vars(CANON.MODEL.EMBEDDED_INSTRUCT))
    entry = CANON.MODEL.EMBEDDED_INSTRUCT
    assert defn == EmbeddedModelDef(
        n_layers=entry.N_LAYERS,
        hidden=entry.HIDDEN,
        d_ff=entry.D_FF,
        n_heads=entry.N_HEADS,
        max_positions=entry.MAX_POSITIONS,
        seed=entry.SEED,
    )
    # A config model dump carries ARCH=None when the entry leaves it out: SwiGLU is implied.
    assert EmbeddedModelDef.from_canon({**vars(entry), "ARCH": None}) == defn
    other = dict(vars(CANON.MODEL.EMBEDDED_INSTRUCT), ARCH=CANON.ENUM.GPT2_MODEL_TYPES[0])
    with pytest.raises(ConfigError, match="not a SwiGLU model type"):
        EmbeddedModelDef.from_canon(other)
    with pytest.raises(ConfigError, match="lacks D_FF"):
        EmbeddedModelDef.from_canon({k: v for k, v in other.items() if k not in ("D_FF", "ARCH")})


def test_materialization_is_byte_identical_across_cache_roots(tmp_path: Path):
    rng_before = torch.get_rng_state()
    first = materialize(SMALL, tmp_path / "a")
    second = materialize(SMALL, tmp_path / "b")
    assert torch.equal(rng_before, torch.get_rng_state())  # caller's RNG untouched
    assert first.name == second.name
    assert _sha(first / WEIGHTS_FILE) == _sha(second / WEIGHTS_FILE)
    assert weights_sha256(first) == _sha(first / WEIGHTS_FILE)
    names = {p.name for p in first.iterdir()}
    assert {"config.json", WEIGHTS_FILE, "tokenizer.json", "tokenizer_config.json"} <= names
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_seed_changes_weights_and_directory(tmp_path: Path):
    a = materialize(SMALL, tmp_path)
    b = materialize(EmbeddedModelDef(**{**SMALL.__dict__, "seed": SMALL.seed + 1}), tmp_path)
    assert a != b
    assert weights_sha256(a) != weights_sha256(b)


def test_existing_directory_is_reused(tmp_path: Path):
    path = materialize(SMALL, tmp_path)
    stamp = (path / WEIGHTS_FILE).stat().st_mtime_ns
    assert materialize(SMALL, tmp_path) == path
    assert (path / WEIGHTS_FILE).stat().st_mtime_ns == stamp


def test_losing_the_rename_race_uses_the_winners_directory(tmp_path: Path, monkeypatch):
    """Another process finishes first: our rename fails, theirs is used, our temp is removed."""
    final = tmp_path / embedded.cache_key(SMALL, embedded_vocabulary())
    real_build = embedded._build

    def build_and_lose(defn: EmbeddedModelDef, out_dir: Path) -> None:
        real_build(defn, out_dir)
        final.mkdir()
        (final / "winner").write_text("")

    monkeypatch.setattr(embedded, "_build", build_and_lose)
    assert materialize(SMALL, tmp_path) == final
    assert sorted(os.listdir(tmp_path)) == [final.name]
    assert (final / "winner").exists()


def test_loads_with_the_definition_shape_and_live_activations(tmp_path: Path):
    lm = _load(materialize(SMALL, tmp_path))
    assert (lm.info.n_layers, lm.info.d_ff) == (SMALL.n_layers, SMALL.d_ff)
    assert lm.info.model_type in CANON.ENUM.SWIGLU_MODEL_TYPES
    assert lm.info.weights_sha256 == weights_sha256(Path(str(lm.info.local_dir)))
    assert len(lm.tokenizer) == len(embedded_vocabulary()) + len(SPECIAL_TOKENS)
    model = lm.model
    assert model.config.vocab_size == len(lm.tokenizer)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor(
        [lm.tokenizer(" ".join(embedded_vocabulary()[:20]), add_special_tokens=False)["input_ids"]]
    )
    us, hs = {}, {}
    with (
        torch.no_grad(),
        capture_u(lm.sites, us.__setitem__),
        capture_mlp_inputs(lm.sites, hs.__setitem__),
    ):
        model(ids)
    for layer in range(SMALL.n_layers):
        # Init N(0, 1/fan_in) on unit-RMS inputs: gate and up pre-activations are ~N(0, 1),
        # so u = silu(a) * b has a std of order 0.5, far from a degenerate zero.
        assert 0.1 < us[layer].std().item() < 3
        diff = (us[layer] - recompute_u(lm.sites, layer, hs[layer])).abs().max().item()
        assert diff <= CANON.CONST.U_HOOK_MATCH_TOL_ABS


def test_canon_definition_materializes_and_loads(tmp_path: Path):
    defn = EmbeddedModelDef.from_canon(vars(CANON.MODEL.EMBEDDED_BASE))
    lm = _load(materialize(defn, tmp_path))
    assert (lm.info.n_layers, lm.info.d_ff) == (defn.n_layers, defn.d_ff)
    assert lm.model.config.max_position_embeddings == defn.max_positions


def test_missing_model_directory_fails(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        _load(tmp_path / "never_materialized")
    with pytest.raises(ConfigError, match="no .safetensors"):
        weights_sha256(tmp_path)


def test_materializer_version_is_pinned_by_the_config() -> None:
    entry = vars(CANON.MODEL.EMBEDDED_INSTRUCT)
    entry = {k: v for k, v in entry.items() if not k.startswith("_")}
    assert EmbeddedModelDef.from_canon(entry).seed == CANON.MODEL.EMBEDDED_INSTRUCT.SEED
    with pytest.raises(ConfigError, match="MATERIALIZER"):
        EmbeddedModelDef.from_canon({**entry, "MATERIALIZER": entry["MATERIALIZER"] + 1})
