"""`critspec runs`, `critspec show RUN_ID` and `critspec validate-run RUNS_DIR`: the runs
directory read as a table, one run read in words, every run checked
(spec/07_RUNS_RECORDS_LOGGING.md).

Listing reads each record and resolved config as they are (fast; it hashes nothing), so a
damaged run is listed with what is wrong with it; `show` and `validate-run` check the run
in full first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from canon import CANON
from critspec.errors import ContractError, CritspecError, InputError
from critspec.store.run_store import leftovers
from critspec.store.writers import read_json, read_yaml
from critspec.validate.run import RUN_ID, validate_run

SEALED = "sealed"
LEFTOVER = "leftover"
BUILDING = "building"
DAMAGED = "damaged"
HASH_SHOWN = 12
COLUMNS = (
    "run_id",
    "phase",
    "role",
    "profile",
    "config",
    "code_version",
    "created_utc",
    "state",
)


@dataclass(frozen=True)
class RunRow:
    """One line of `critspec runs`."""

    run_id: str
    phase: str
    role: str
    profile: str
    config: str
    code_version: str
    created_utc: str
    state: str


def _runs_dir(runs_dir: Path) -> Path:
    if not runs_dir.exists():
        raise InputError(f"{runs_dir}: no such runs directory; pass --runs-dir DIR")
    if not runs_dir.is_dir():
        raise InputError(f"{runs_dir}: is a file, not a runs directory")
    return runs_dir


def _row(run_dir: Path) -> RunRow:
    """A sealed-looking run's line, read without hashing; a damaged run says why."""
    try:
        record = read_json(run_dir / CANON.OUTPUT.RUN_RECORD)
        config = read_yaml(run_dir / CANON.OUTPUT.CONFIG_RESOLVED)
        return RunRow(
            run_id=run_dir.name,
            phase=str(record["phase_id"]),
            role=str(record["model_role"] or "-"),
            profile=str(config["profile"]),
            config=str(record["config_sha256"])[:HASH_SHOWN],
            code_version=str(record["code_version"]),
            created_utc=str(record["created_utc"]),
            state=SEALED
            if record["stage_status"] == CANON.ENUM.STAGE_STATUS.COMPLETE
            else str(record["stage_status"]),
        )
    except (CritspecError, OSError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return RunRow(run_dir.name, "-", "-", "-", "-", "-", "-", f"{DAMAGED}: {reason}")


def list_runs(runs_dir: Path) -> list[RunRow]:
    """Every run and leftover directly in runs_dir: sealed runs in creation order, then
    unfinished ones (see `critspec gc`)."""
    runs_dir = _runs_dir(runs_dir)
    rows = [
        _row(path)
        for path in sorted(runs_dir.iterdir())
        if path.is_dir() and not path.is_symlink() and RUN_ID.match(path.name)
    ]
    rows.sort(key=lambda row: (row.created_utc, row.run_id))
    for item in leftovers(runs_dir):
        state = BUILDING if item.building else LEFTOVER
        rows.append(RunRow(item.path.name, "-", "-", "-", "-", "-", "-", state))
    return rows


def runs_table(rows: list[RunRow]) -> str:
    """Aligned text, one line per run, with a header."""
    cells = [COLUMNS, *(tuple(getattr(row, c) for c in COLUMNS) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def runs_json(rows: list[RunRow]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2)


def find_run(run: str, runs_dir: Path) -> Path:
    """A run named by id (looked up in runs_dir) or by its directory path."""
    path = Path(run)
    if path.is_dir():
        return path
    if RUN_ID.match(run):
        candidate = _runs_dir(runs_dir) / run
        if candidate.is_dir():
            return candidate
        raise InputError(f"{run}: no such run in {runs_dir}; list them with `critspec runs`")
    raise InputError(f"{run}: neither a run id in {runs_dir} nor a run directory")


def _model_words(model: dict[str, Any] | None) -> str:
    if not model:
        return "none (this phase loads no model)"
    return (
        f"{model['model_id']} ({model['source']}, {model['model_type']}, "
        f"{model['n_layers']} layers, d_ff {model['d_ff']}, {model['dtype']} on "
        f"{model['device']}, revision {str(model['revision'])[:HASH_SHOWN]})"
    )


def _slice_words(item: dict[str, Any]) -> str:
    return (
        f"{item['slice_name']}: {item['n_windows']} windows x {item['seq_len_tokens']} tokens "
        f"of {item['dataset_role']} ({item['source']}), slice sha256 "
        f"{item['slice_sha256'][:HASH_SHOWN]}"
    )


def describe_run(run_dir: Path) -> str:
    """A sealed run (checked in full first) in words: what, from what, into what."""
    record = validate_run(run_dir)
    config = read_yaml(run_dir / CANON.OUTPUT.CONFIG_RESOLVED)
    role = f" for model role {record['model_role']}" if record["model_role"] else ""
    lines = [
        f"{record['run_id']}: {record['phase_id']}{role}, profile {config['profile']}",
        f"  sealed {record['created_utc']} by code version {record['code_version']}; "
        f"config sha256 {record['config_sha256'][:HASH_SHOWN]} "
        f"({CANON.OUTPUT.CONFIG_RESOLVED}); intact (validate-run passed)",
        f"  model: {_model_words(record['model'])}",
    ]
    slices = record["dataset_slices"]
    lines.append("  data: " + ("none" if not slices else _slice_words(slices[0])))
    lines += [f"        {_slice_words(item)}" for item in slices[1:]]
    lines.append("  consumed:" + ("" if record["dependencies"] else " nothing"))
    for dep in record["dependencies"]:
        source = f"run {dep['run_id']} ({dep['phase_id']})" if dep["run_id"] else "an external file"
        for art in dep["artifacts"]:
            lines.append(
                f"    {art['contract']}: {art['relative_path']} "
                f"(sha256 {art['sha256'][:HASH_SHOWN]}) from {source}"
            )
    lines.append(f"  produced ({len(record['artifact_index'])} files):")
    for item in sorted(record["artifact_index"], key=lambda i: i["relative_path"]):
        lines.append(f"    {item['relative_path']}: {item['contract']}, {item['bytes']} bytes")
    lines.append("  summary:" + ("" if record["summary"] else " none"))
    for key, value in record["summary"].items():
        lines.append(f"    {key}: {json.dumps(value, sort_keys=True)}")
    return "\n".join(lines)


def validate_many(path: Path) -> tuple[list[str], int]:
    """validate-run on a run directory or on every sealed run of a runs directory: one line
    per run, and the exit code of the first failure (0 when all are intact)."""
    if not path.is_dir():
        raise InputError(f"{path}: no such run or runs directory")
    if RUN_ID.match(path.resolve().name) or (path / CANON.OUTPUT.RUN_RECORD).exists():
        record = validate_run(path)
        n = len(record["artifact_index"])
        return [f"{path}: sealed run {record['run_id']} is intact ({n} artifacts)"], 0
    runs = [p for p in sorted(path.iterdir()) if p.is_dir() and RUN_ID.match(p.name)]
    if not runs:
        raise ContractError(f"{path}: holds no sealed run ({CANON.PATH.RUN_DIR_PREFIX}…)")
    lines, code = [], CANON.CLI.EXIT.OK
    for run_dir in runs:
        try:
            record = validate_run(run_dir)
            lines.append(f"{run_dir.name}: intact ({len(record['artifact_index'])} artifacts)")
        except CritspecError as exc:
            lines.append(f"{run_dir.name}: FAILED: {exc}")
            code = code or exc.exit_code
    bad = sum(" FAILED: " in line for line in lines)
    lines.append(f"{path}: {len(runs) - bad} of {len(runs)} runs intact")
    return lines, code
