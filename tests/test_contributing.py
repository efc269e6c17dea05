"""CONTRIBUTING.md's recipes, followed verbatim in a scratch checkout (issue 18, item 6):
every `# recipe:` block is applied to a copy of spec/ (and runners/), the checkout is
generated, and each recipe's result is checked: the new contract validates a file and
rejects a bad one, the new phase loads with its runner, the new pack finds a violation."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from canon import CANON
from critspec.errors import ContractError
from critspec.generate import plan
from critspec.paths import project_root
from critspec.spec.load import load_spec
from critspec.validate import contracts, json_validator
from critspec.validate.pack import validate_pack

ROOT = project_root()
BLOCK = re.compile(
    r"```(?:yaml|python)\n"
    r"(# recipe: (\w+); (new file|merge into|append to) (\S+)(?: (\w+))?\n.*?)```",
    re.S,
)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def recipes() -> list[tuple[str, str, str, str | None, str]]:
    """(recipe, action, path, list key, text) of every recipe block, in file order."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    return [(m[1], m[2], m[3], m[4], m[0]) for m in BLOCK.findall(text)]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contrib")
    shutil.copytree(ROOT / "spec", root / "spec")
    (root / "runners").mkdir()
    for _recipe, action, rel, key, body in recipes():
        target = root / rel
        if action == "new file":
            target.write_text(body, encoding="utf-8")
            continue
        doc = yaml.safe_load(target.read_text(encoding="utf-8"))
        snippet = yaml.safe_load(body)
        if action == "merge into":
            _merge(doc, snippet)
        else:
            doc[key] = [*doc[key], *snippet]
        target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    plan.write(root)
    return root


def test_every_recipe_has_blocks() -> None:
    assert {name for name, *_ in recipes()} == {"contract", "phase", "pack"}


def test_the_new_contract_validates_a_file_and_refuses_a_bad_one(checkout: Path, tmp_path: Path):
    cdir = checkout / CANON.PATH.CONTRACTS_DIR
    entry = contracts.entry("layer_notes", cdir)
    assert (cdir / entry["views"]["doc"]).is_file()
    schema = contracts.view("layer_notes", "schema", cdir)
    good = {"model_id": "m", "notes": [{"layer": i, "text": "x"} for i in range(4)]}
    path = tmp_path / entry["basenames"][0]
    path.write_text(json.dumps(good))
    json_validator.validate(path, schema, entry["format"], {"L": 4}, "layer_notes")
    path.write_text(json.dumps({**good, "notes": good["notes"][:3]}))
    with pytest.raises(ContractError, match="length 3"):
        json_validator.validate(path, schema, entry["format"], {"L": 4}, "layer_notes")


def test_the_new_phase_loads_with_its_runner(checkout: Path):
    spec = load_spec(checkout / "spec")
    phase = spec.phases.by_key("PHASE9_LAYER_NOTES")
    assert phase.id == "phase9-layer-notes" and phase.produces == ("layer_notes",)
    assert phase.command(CANON.ENUM.MODEL_ROLE.INSTRUCT).startswith("critspec phase9-layer-notes ")
    module = checkout / (phase.runner.replace(".", "/") + ".py")
    loaded = importlib.util.spec_from_file_location(phase.runner, module)
    runner = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(runner)
    assert callable(runner.run)
    canon_py = (checkout / CANON.PATH.CANON_DIR / "__init__.py").read_text()
    assert "P9NOTES" in canon_py and "layer_notes.json" in canon_py


def test_the_new_pack_finds_its_violations(checkout: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"model": "m", "splits": ["val", "test"]}))
    (out / "scores.json").write_text(json.dumps({"per_split": {"val": 0.5}}))
    cdir = checkout / CANON.PATH.CONTRACTS_DIR
    report = validate_pack("eval_report", out, ["min_splits=3"], cdir)
    assert sorted(v.rule for v in report.violations) == ["enough_splits", "every_split_scored"]
    (out / "scores.json").write_text(json.dumps({"per_split": {"val": 0.5, "test": 0.75}}))
    assert validate_pack("eval_report", out, ["min_splits=2"], cdir).ok
