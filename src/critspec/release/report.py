"""The release report (spec/16_RELEASE.md, "Report"): one self-contained HTML file.

Built from the released runs alone, generically: every Parquet artifact of every run is a
table (with more rows than the configured maximum it is listed, not rendered), every
figure artifact is an image (its PNG as a data: URI) with its contract's title and
description as caption, and each carries its provenance (run id, config sha256, code
version, artifact sha256). The gstar table reads every identifiability table and, when a
replication run is released, its verdict agreement. Jinja2 with StrictUndefined and
autoescape; no script, no external reference, a Content-Security-Policy meta tag.

Numbers are written in shortest round-trip form (Python's repr), so each cell parses back
to exactly the value of its sealed table; each data row names its source file and row
(`data-source`, `data-row`) and each data cell its column (`data-column`).
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pyarrow as pa
import pyarrow.parquet as pq

from canon import CANON
from critspec.errors import DependencyError
from critspec.spec.load import Spec
from critspec.store.run_store import SealedRun
from critspec.validate import contracts
from critspec.validate.run import inside

TEMPLATE = "release_report.j2"
CSP = CANON.CONST.REPORT_CSP
PNG_MIME = "image/png"
NULL_CELL = "null"
NAN_CELL = "NaN"
FMT = CANON.ENUM.ARTIFACT_FORMAT
IDENT_CONTRACT = "identifiability"
REPLICATION_CONTRACT = "replication"
PNG_SUFFIX = ".png"


@dataclass(frozen=True)
class Provenance:
    run_id: str
    phase_id: str
    model_role: str | None
    config_sha256: str
    code_version: str
    relative_path: str
    sha256: str

    @property
    def source(self) -> str:
        return f"{self.run_id}/{self.relative_path}"


@dataclass(frozen=True)
class Row:
    source: str
    index: int
    cells: tuple[tuple[str | None, str], ...]  # (column or None for prose, text)


@dataclass(frozen=True)
class Table:
    anchor: str
    title: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    provenance: tuple[Provenance, ...]
    n_rows: int
    rendered: bool = True


@dataclass(frozen=True)
class Figure:
    anchor: str
    title: str
    caption: str
    data_uri: str
    provenance: tuple[Provenance, ...]


@dataclass(frozen=True)
class RunLine:
    run_id: str
    phase_id: str
    model_role: str | None
    config_sha256: str
    code_version: str


@dataclass(frozen=True)
class ReportData:
    project: str
    spec_version: str
    profile: str
    code_versions: tuple[str, ...]
    models: tuple[dict[str, Any], ...]
    corpora: tuple[dict[str, Any], ...]
    runs: tuple[RunLine, ...]
    gstar: Table | None
    tables: tuple[Table, ...]
    figures: tuple[Figure, ...]
    max_rows: int
    archive_name: str
    verify_command: str
    csp: str = CSP


def cell_text(value: Any) -> str:
    """A table value as text that parses back to the same value."""
    if value is None:
        return NULL_CELL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return NAN_CELL if math.isnan(value) else repr(value)
    return str(value)


def _provenance(run: SealedRun, item: Mapping[str, Any]) -> Provenance:
    rec = run.record
    return Provenance(
        run_id=run.run_id,
        phase_id=rec["phase_id"],
        model_role=rec["model_role"],
        config_sha256=rec["config_sha256"],
        code_version=rec["code_version"],
        relative_path=item["relative_path"],
        sha256=item["sha256"],
    )


def _anchor(run: SealedRun, contract_id: str) -> str:
    return f"{run.run_id}-{contract_id}"


def _label(run: SealedRun) -> str:
    role = run.record["model_role"]
    return run.record["phase_id"] + (f" [{role}]" if role else "")


def verified_bytes(run: SealedRun, item: Mapping[str, Any]) -> bytes:
    """An artifact's bytes, which must hash to its run record's sha256 (exit 3 otherwise):
    the report shows nothing that differs from what was sealed."""
    path = inside(run.run_dir, item["relative_path"])
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != item["sha256"]:
        raise DependencyError(
            f"{path}: sha256 differs from run {run.run_id}'s record; the artifact was "
            "altered after it was sealed: re-run that phase"
        )
    return data


def _read_rows(run: SealedRun, item: Mapping[str, Any]) -> tuple[list[str], list[dict]]:
    table = pq.read_table(pa.BufferReader(verified_bytes(run, item)))
    return table.column_names, table.to_pylist()


def shown_artifacts(runs: Sequence[SealedRun]) -> list[tuple[SealedRun, str]]:
    """(run, contract id) of every table and figure the report shows, in run order."""
    out = []
    for run in runs:
        seen: set[str] = set()
        for item in run.record["artifact_index"]:
            cid = item["contract"]
            if cid not in seen and contracts.entry(cid)["format"] in (FMT.PARQUET, FMT.FIGURE):
                seen.add(cid)
                out.append((run, cid))
    return out


def _table(run: SealedRun, item: Mapping[str, Any], spec: Spec, max_rows: int) -> Table:
    cid = item["contract"]
    art = spec.artifacts.artifacts[cid]
    columns, rows = _read_rows(run, item)
    prov = _provenance(run, item)
    rendered = len(rows) <= max_rows
    body = tuple(
        Row(prov.source, i, tuple((c, cell_text(r[c])) for c in columns))
        for i, r in enumerate(rows if rendered else [])
    )
    return Table(
        anchor=_anchor(run, cid),
        title=f"{art.title} — {_label(run)}",
        caption=art.description,
        columns=tuple(columns),
        rows=body,
        provenance=(prov,),
        n_rows=len(rows),
        rendered=rendered,
    )


def _figure(run: SealedRun, items: Sequence[Mapping[str, Any]], spec: Spec) -> Figure:
    cid = items[0]["contract"]
    art = spec.artifacts.artifacts[cid]
    png = next(i for i in items if i["relative_path"].endswith(PNG_SUFFIX))
    data = verified_bytes(run, png)
    return Figure(
        anchor=_anchor(run, cid),
        title=f"{art.title} — {_label(run)}",
        caption=art.description,
        data_uri=f"data:{PNG_MIME};base64,{base64.b64encode(data).decode('ascii')}",
        provenance=tuple(_provenance(run, i) for i in items),
    )


# The identifiability columns the report shows (spec/12_STATISTICS_AND_BOOTSTRAP.md §4);
# the verdict in words is the row's own `why`, written by Phase 5 with its numbers.
GSTAR_COLUMNS = (
    "spike_def_id",
    "target_rate",
    "gstar",
    "b_tot_gstar",
    "b_tot_gstar_ci_low",
    "b_tot_gstar_ci_high",
)


def _gstar_table(ordered: Sequence[SealedRun]) -> Table | None:
    """One row per (role, spike definition, target rate) of every identifiability table,
    with the verdict in words, and the Phase 7 agreement when a replication run is released."""
    rows, prov = [], []
    agree: dict[tuple[str, float], bool] = {}
    for run in ordered:
        for item in run.record["artifact_index"]:
            if item["contract"] == REPLICATION_CONTRACT:
                _, reps = _read_rows(run, item)
                agree = {(r["spike_def_id"], r["target_rate"]): r["verdicts_agree"] for r in reps}
                prov.append(_provenance(run, item))
    for run in ordered:
        for item in run.record["artifact_index"]:
            if item["contract"] != IDENT_CONTRACT:
                continue
            p = _provenance(run, item)
            prov.append(p)
            _, flags = _read_rows(run, item)
            for i, f in enumerate(flags):
                key = (f["spike_def_id"], f["target_rate"])
                replicated = (
                    ""
                    if key not in agree
                    else ("both roles agree" if agree[key] else "the roles disagree")
                )
                rows.append(
                    Row(
                        p.source,
                        i,
                        (
                            (None, run.record["model_role"] or ""),
                            *((c, cell_text(f[c])) for c in GSTAR_COLUMNS),
                            ("why", cell_text(f["why"])),
                            (None, replicated),
                        ),
                    )
                )
    if not rows:
        return None
    columns = ("model_role", *GSTAR_COLUMNS, "is gstar identifiable?", "replication")
    return Table(
        anchor="gstar",
        title="gstar and its identifiability",
        caption=(
            "gstar is the gain of the grid whose b_tot is closest to one (Phase 2's rule); "
            "whether that choice means anything is decided on the held-out rasters (Phase 5)."
        ),
        columns=columns,
        rows=tuple(rows),
        provenance=tuple(prov),
        n_rows=len(rows),
    )


def _models_and_corpora(ordered: Sequence[SealedRun]) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    models: dict[tuple, dict] = {}
    corpora: dict[tuple, dict] = {}
    for run in ordered:
        m = run.record["model"]
        if m is not None:
            # local_dir is where this machine cached the weights: not part of a release.
            keep = {k: v for k, v in m.items() if k != "local_dir"}
            models.setdefault(
                (run.record["model_role"], m["revision"]),
                {"model_role": run.record["model_role"], **keep},
            )
        for s in run.record["dataset_slices"]:
            corpora.setdefault((s["dataset_role"], s["slice_name"], s["slice_sha256"]), dict(s))
    return tuple(models.values()), tuple(corpora[k] for k in sorted(corpora))


def order_runs(runs: Sequence[SealedRun], spec: Spec) -> list[SealedRun]:
    """Runs in pipeline order: by phase (spec/phases.yaml), then model role (CANON order)."""
    phase_rank = {p.id: i for i, p in enumerate(spec.phases.phases)}
    roles = [v for k, v in vars(CANON.ENUM.MODEL_ROLE).items() if not k.startswith("_")]
    return sorted(
        runs,
        key=lambda r: (
            phase_rank.get(r.record["phase_id"], len(phase_rank)),
            roles.index(r.record["model_role"]) if r.record["model_role"] in roles else -1,
            r.run_id,
        ),
    )


def report_data(
    runs: Sequence[SealedRun],
    spec: Spec,
    profile: str,
    max_rows: int,
    archive_name: str,
    verify_command: str,
) -> ReportData:
    ordered = order_runs(runs, spec)
    tables, figures = [], []
    for run in ordered:
        by_contract: dict[str, list[dict]] = {}
        for item in run.record["artifact_index"]:
            by_contract.setdefault(item["contract"], []).append(item)
        for cid, items in by_contract.items():
            fmt = contracts.entry(cid)["format"]
            if fmt == FMT.PARQUET:
                tables.append(_table(run, items[0], spec, max_rows))
            elif fmt == FMT.FIGURE:
                figures.append(_figure(run, items, spec))
    models, corpora = _models_and_corpora(ordered)
    return ReportData(
        project=CANON.PROJECT.NAME,
        spec_version=CANON.PROJECT.SPEC_VERSION,
        profile=profile,
        code_versions=tuple(sorted({r.record["code_version"] for r in ordered})),
        models=models,
        corpora=corpora,
        runs=tuple(
            RunLine(
                r.run_id,
                r.record["phase_id"],
                r.record["model_role"],
                r.record["config_sha256"],
                r.record["code_version"],
            )
            for r in ordered
        ),
        gstar=_gstar_table(ordered),
        tables=tuple(tables),
        figures=tuple(figures),
        max_rows=max_rows,
        archive_name=archive_name,
        verify_command=verify_command,
    )


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(data: ReportData) -> str:
    return environment().get_template(TEMPLATE).render(report=data)
