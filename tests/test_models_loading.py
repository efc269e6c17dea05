"""load_model and device/dtype resolution (spec/06_MODELS_AND_HOOKS.md): local, fake-hub,
failures."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from canon import CANON
from critspec.data.tokenizer import build_word_level_tokenizer
from critspec.errors import ConfigError
from critspec.models.device import resolve_device, resolve_dtype
from critspec.models.loading import load_model, off_device_tensors

WORDS = tuple(f"w{i}" for i in range(30))
HIDDEN, LAYERS, N_INNER = 16, 3, 40
CPU = torch.device(CANON.ENUM.DEVICE.CPU)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_ID = "someorg/tiny-gpt2"


def _save_gpt2(path: Path) -> GPT2LMHeadModel:
    tokenizer = build_word_level_tokenizer(WORDS)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=HIDDEN,
        n_layer=LAYERS,
        n_head=2,
        n_inner=N_INNER,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model


@pytest.fixture
def gpt2_dir(tmp_path: Path) -> tuple[Path, GPT2LMHeadModel]:
    path = tmp_path / "tiny_model"
    return path, _save_gpt2(path)


def test_local_dir_loads_with_its_shape_and_weights_hash(gpt2_dir):
    path, original = gpt2_dir
    lm = load_model(
        source=CANON.ENUM.MODEL_SOURCE.LOCAL_DIR, device=CPU, dtype=torch.float32, local_dir=path
    )
    info = lm.info
    assert info.model_type == CANON.ENUM.GPT2_MODEL_TYPES[0]
    assert info.arch_family == CANON.ENUM.ARCH_FAMILY.GPT2
    assert (info.n_layers, info.d_ff) == (LAYERS, N_INNER)
    assert (info.dtype, info.device) == (CANON.ENUM.DTYPE.FP32, CANON.ENUM.DEVICE.CPU)
    file_sha = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    assert info.weights_sha256 == info.revision == file_sha
    assert info.model_id == path.name and info.local_dir == str(path)
    assert info.to_record()["d_ff"] == N_INNER
    assert not lm.model.training
    ids = torch.tensor([lm.tokenizer("w1 w2 w3 w4", add_special_tokens=False)["input_ids"]])
    assert ids.tolist() == [[5, 6, 7, 8]]  # 4 specials first, then w0.. in order
    with torch.no_grad():  # same weights; the original runs SDPA, the loaded one eager attention
        torch.testing.assert_close(lm.model(ids).logits, original(ids).logits)


def test_bf16_load_casts_every_parameter(gpt2_dir):
    path, _ = gpt2_dir
    lm = load_model(
        source=CANON.ENUM.MODEL_SOURCE.LOCAL_DIR,
        device=CPU,
        dtype=torch.bfloat16,
        local_dir=path,
        model_id="tiny",
    )
    assert lm.info.dtype == CANON.ENUM.DTYPE.BF16 and lm.info.model_id == "tiny"
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}


def test_missing_inputs_fail_with_the_path(tmp_path: Path, gpt2_dir):
    path, _ = gpt2_dir
    kwargs = dict(source=CANON.ENUM.MODEL_SOURCE.LOCAL_DIR, device=CPU, dtype=torch.float32)
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="nowhere.*does not exist"):
        load_model(local_dir=missing, **kwargs)
    no_weights = tmp_path / "no_weights"
    shutil.copytree(path, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="no_weights has no .safetensors"):
        load_model(local_dir=no_weights, **kwargs)
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(path, no_tokenizer)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / name).unlink()
    with pytest.raises(ConfigError, match="no_tokenizer.*tokenizer"):
        load_model(local_dir=no_tokenizer, **kwargs)
    with pytest.raises(ConfigError, match="needs a local directory"):
        load_model(**kwargs)
    with pytest.raises(ConfigError, match="unknown model source"):
        load_model(source="ftp", device=CPU, dtype=torch.float32, local_dir=path)


def _fake_hub_cache(root: Path, model_dir: Path) -> None:
    """The Hugging Face cache layout: refs/main names a commit, snapshots/<commit> holds files."""
    repo = root / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(model_dir, repo / "snapshots" / COMMIT)


def test_hub_id_loads_offline_from_the_cache_and_pins_the_commit(tmp_path, gpt2_dir, monkeypatch):
    path, _ = gpt2_dir
    cache = tmp_path / "hf_cache"
    _fake_hub_cache(cache, path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    lm = load_model(
        source=CANON.ENUM.MODEL_SOURCE.HUB, device=CPU, dtype=torch.float32, hf_id=HUB_ID
    )
    assert (lm.info.model_id, lm.info.revision) == (HUB_ID, COMMIT)
    assert lm.info.weights_sha256 is None and lm.info.local_dir is None
    with pytest.raises(ConfigError, match="not-cached.*ALLOW_HUB"):
        load_model(
            source=CANON.ENUM.MODEL_SOURCE.HUB,
            device=CPU,
            dtype=torch.float32,
            hf_id="someorg/not-cached",
        )


def test_resolve_device_and_dtype():
    assert resolve_device(CANON.ENUM.DEVICE.CPU) == CPU
    cuda = torch.cuda.is_available()
    expected_auto = CANON.ENUM.DEVICE.CUDA if cuda else CANON.ENUM.DEVICE.CPU
    assert resolve_device(CANON.ENUM.DEVICE.AUTO).type == expected_auto
    if not cuda:
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device(CANON.ENUM.DEVICE.CUDA)
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    gpu = torch.device(CANON.ENUM.DEVICE.CUDA)
    assert resolve_dtype(CANON.ENUM.DTYPE.AUTO, CPU) == torch.float32
    assert resolve_dtype(CANON.ENUM.DTYPE.AUTO, gpu) == torch.bfloat16
    assert resolve_dtype(CANON.ENUM.DTYPE.FP16, CPU) == torch.float16
    assert resolve_dtype(CANON.ENUM.DTYPE.BF16, CPU) == torch.bfloat16
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("int8", CPU)


def test_off_device_tensors_names_meta_and_foreign_tensors():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2, device="meta"))
    model.register_buffer("stat", torch.zeros(1, device="meta"))
    assert off_device_tensors(model, CPU) == ["1.weight", "1.bias", "stat"]
    assert off_device_tensors(model[0], CPU) == []
    assert len(off_device_tensors(model[0], torch.device(CANON.ENUM.DEVICE.CUDA))) == 2


def test_remote_code_model_is_refused_in_one_line_of_ours(gpt2_dir):
    """A checkpoint whose architecture lives in the repository's own code (issue 7)."""
    path, _ = gpt2_dir
    config_path = path / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = "critspec_custom_arch"
    config["auto_map"] = {
        "AutoConfig": "modeling_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.CustomModel",
    }
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as exc:
        load_model(
            source=CANON.ENUM.MODEL_SOURCE.LOCAL_DIR,
            device=CPU,
            dtype=torch.float32,
            local_dir=path,
        )
    message = str(exc.value)
    assert "remote code" in message and "never runs" in message
    assert "=True" not in message and len(message.splitlines()) == 1
