"""README "Bring your own model": its three config files, copied verbatim, load and
validate; its model entry (a hub id pinned to a revision, read from the local cache
only) loads offline in bf16 through the very same entry, from a Hugging Face cache laid
out at that id and revision (holding the embedded test model's files: no weights are
downloaded); the declared N_LAYERS / D_FF are checked against what loads (issue 18, item 5).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from canon import CANON
from critspec.config.resolve import load_config
from critspec.models.embedded import EmbeddedModelDef, materialize
from critspec.paths import cache_dir, project_root

ROOT = project_root()
SECTION = "## Bring your own model"
FILE_BLOCK = re.compile(r"```yaml\n# (configs/\S+\.yaml)\n(.*?)```", re.S)
# Loads the README's model entry (with optional --set style overrides) on the CPU in bf16
# and prints what was loaded; run in a child so the hub cache location is its own.
LOAD = """\
import sys
from pathlib import Path
import torch
from critspec.config.resolve import load_config
from critspec.models.from_config import load_entry
from critspec.errors import CritspecError
cfg = load_config(Path(sys.argv[1]), tuple(sys.argv[2:]))
try:
    loaded = load_entry(cfg.model_entry("INSTRUCT"), torch.device("cpu"), torch.bfloat16)
except CritspecError as exc:
    print("refused:", exc)
else:
    i = loaded.info
    print("loaded:", i.model_id, i.revision, i.dtype, i.n_layers, i.d_ff)
"""


def readme_files() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return dict(FILE_BLOCK.findall(section))


@pytest.fixture()
def configs(tmp_path: Path) -> Path:
    files = readme_files()
    assert len(files) == 3
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body, encoding="utf-8")
    [pipeline] = [tmp_path / rel for rel in files if rel.endswith("/pipeline.yaml")]
    return pipeline


def test_the_readme_config_is_complete_and_valid(configs: Path) -> None:
    cfg = load_config(configs)
    assert cfg.pipeline.runtime.device == CANON.ENUM.DEVICE.CUDA
    assert cfg.pipeline.runtime.dtype == CANON.ENUM.DTYPE.BF16
    [binding] = cfg.models.models
    entry = binding.entry
    assert entry.SOURCE == CANON.ENUM.MODEL_SOURCE.HUB and not entry.ALLOW_HUB
    assert re.fullmatch(r"[0-9a-f]{40}", str(entry.REVISION))
    assert {b.entry.SOURCE for b in cfg.datasets.datasets} == {CANON.ENUM.DATASET_SOURCE.HF_DATASET}
    assert not any(b.entry.ALLOW_HUB for b in cfg.datasets.datasets)
    # The study's sizes: the paper-scale profile's constants.
    paper = load_config(ROOT / CANON.PATH.CONFIG_PAPER_PIPELINE)
    for section in ("calibration", "gain_grid", "select_gstar", "rasters", "nulls", "analysis"):
        assert getattr(cfg.pipeline, section) == getattr(paper.pipeline, section), section


def _fake_hub_cache(hub: Path, hf_id: str, revision: str) -> None:
    """A Hugging Face hub cache holding the embedded model's files as hf_id@revision."""
    entry = {k: v for k, v in vars(CANON.MODEL.EMBEDDED_INSTRUCT).items() if k[0] != "_"}
    model_dir = materialize(EmbeddedModelDef.from_canon(entry), cache_dir())
    repo = hub / ("models--" + hf_id.replace("/", "--"))
    shutil.copytree(model_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


def test_the_readme_model_entry_loads_offline_from_the_cache_in_bf16(
    configs: Path, tmp_path: Path
) -> None:
    entry = load_config(configs).model_entry(CANON.ENUM.MODEL_ROLE.INSTRUCT)
    _fake_hub_cache(tmp_path / "hf_hub", str(entry.HF_ID), str(entry.REVISION))
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hf_hub"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))),
    }

    def load(*overrides: str, environ: dict[str, str] = env) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", LOAD, str(configs), *overrides],
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return proc.stdout.strip().splitlines()[-1]

    # Verbatim: the cached files are the small test model, so the declared shape refuses.
    assert load().startswith(f"refused: model {entry.HF_ID}: the models file declares N_LAYERS")
    shape = CANON.MODEL.EMBEDDED_INSTRUCT
    fitting = (f"models.0.entry.N_LAYERS={shape.N_LAYERS}", f"models.0.entry.D_FF={shape.D_FF}")
    out = load(*fitting)
    # With ALLOW_HUB and the hub unreachable, the cached model still loads (from the cache).
    unreachable = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"}
    unreachable["HF_ENDPOINT"] = "http://127.0.0.1:9"
    assert load(*fitting, "models.0.entry.ALLOW_HUB=true", environ=unreachable) == out
    assert out.split() == [
        "loaded:",
        str(entry.HF_ID),
        str(entry.REVISION),
        CANON.ENUM.DTYPE.BF16,
        str(shape.N_LAYERS),
        str(shape.D_FF),
    ]


def test_init_pins_a_cached_hub_model_to_its_snapshot(configs: Path, tmp_path: Path) -> None:
    """`critspec init --model HF_ID` reads config.json from the local cache only and pins
    REVISION to the cached snapshot's commit, with the model's L and d_ff."""
    entry = load_config(configs).model_entry(CANON.ENUM.MODEL_ROLE.INSTRUCT)
    _fake_hub_cache(tmp_path / "hf_hub", str(entry.HF_ID), str(entry.REVISION))
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hf_hub"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))),
    }
    out = tmp_path / "mine"
    argv = [sys.executable, "-m", CANON.CLI.ENTRYPOINT, CANON.CLI.SUBCOMMAND.INIT, "--model"]
    subprocess.run(
        [*argv, str(entry.HF_ID), str(out)], env=env, check=True, capture_output=True, timeout=120
    )
    [binding] = load_config(out / "pipeline.yaml").models.models
    shape = CANON.MODEL.EMBEDDED_INSTRUCT
    assert binding.entry.SOURCE == CANON.ENUM.MODEL_SOURCE.HUB
    assert (binding.entry.HF_ID, binding.entry.REVISION) == (entry.HF_ID, entry.REVISION)
    assert (binding.entry.N_LAYERS, binding.entry.D_FF) == (shape.N_LAYERS, shape.D_FF)
    proc = subprocess.run(
        [*argv, "nobody-here/absent", str(tmp_path / "other")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == CANON.CLI.EXIT.CONTRACT
    assert len(proc.stderr.strip().splitlines()) == 1 and "local Hugging Face cache" in proc.stderr
