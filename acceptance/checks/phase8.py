"""Phase 8 acceptance (spec/16_RELEASE.md, spec/08_TEST_PLAN.md): the report is the same bytes
in both runs directories; a rerun over copies of the runs in another directory, time zone,
locale and umask gives the same archive, manifest and report; the manifest is exactly the
run graph's files; every table and figure carries its provenance; an altered input is
refused; verify-release passes and names the first changed file; every number of the
report's tables is its sealed table's; the report loads in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from acceptance.browser import find_browser, open_page
from acceptance.checks import CheckContext, check
from acceptance.harness import COMMAND_TIMEOUT_S, cli, entrypoint, tree_hashes
from canon import CANON
from critspec.paths import project_root
from critspec.store.writers import read_json
from critspec.validate import contracts

FMT = CANON.ENUM.ARTIFACT_FORMAT
REPORT, MANIFEST, ARCHIVE = "release_report", "release_manifest", "release_archive"
# Another machine's settings: far-east time zone, a German locale, a private umask.
OTHER_ENV = {"TZ": "Pacific/Kiritimati", "LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8"}
OTHER_UMASK = "077"


def _released(ctx: CheckContext) -> list[Path]:
    """Every run of store A but the release itself (what the embedded pipeline releases)."""
    return [
        ctx.a.run_dir(p.key, role)
        for p in ctx.spec.phases.phases
        if p.key != ctx.phase.key
        for role in p.roles
    ]


def _copy_runs(ctx: CheckContext, into: Path, with_release: bool = False) -> Path:
    into.mkdir()
    for run in _released(ctx) + ([ctx.run_a] if with_release else []):
        shutil.copytree(run, into / run.name)
    return into


def _flip(path: Path) -> bytes:
    """Change one byte in the middle of `path`; returns the original bytes."""
    path.chmod(0o644)
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return original


@check("report_deterministic")
def report_deterministic(ctx: CheckContext) -> None:
    a, b = (contracts.path_in(r, REPORT) for r in (ctx.run_a, ctx.run_b))
    assert ctx.run_a.name == ctx.run_b.name, "same pipeline gave different release run ids"
    assert a.read_bytes() == b.read_bytes(), f"{a} and {b} differ"


@check("release_rerun_byte_identical")
def release_rerun_byte_identical(ctx: CheckContext) -> None:
    """Phase 8 over copies of the runs in another directory, TZ, locale and umask, with
    unrelated files beside the runs: the same run id and the same release bytes."""
    runs = _copy_runs(ctx, ctx.scratch / "elsewhere")
    (runs / "notes.txt").write_text("not a run\n")
    stray = runs / f"{CANON.PATH.TMP_RUN_PREFIX}{ctx.run_a.name}.1"
    stray.mkdir()
    (stray / "partial.bin").write_bytes(b"\0" * 10)
    argv = [entrypoint(), *ctx.command().split()[1:], "--runs-dir", str(runs)]
    env = {**os.environ, **OTHER_ENV}
    proc = subprocess.run(
        ["sh", "-c", f'umask {OTHER_UMASK} && exec "$@"', "sh", *argv],
        cwd=project_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    rerun = runs / ctx.run_a.name
    assert rerun.is_dir(), f"rerun sealed another id: {proc.stdout}"
    for cid in (REPORT, MANIFEST, ARCHIVE):
        a, b = contracts.path_in(ctx.run_a, cid), contracts.path_in(rerun, cid)
        assert a.read_bytes() == b.read_bytes(), f"{cid}: {a} and {b} differ"


@check("release_manifest_walks_the_graph")
def release_manifest_walks_the_graph(ctx: CheckContext) -> None:
    manifest = read_json(contracts.path_in(ctx.run_a, MANIFEST))
    want_runs = sorted(r.name for r in _released(ctx))
    assert sorted(r["run_id"] for r in manifest["released_runs"]) == want_runs
    deps = {d["run_id"] for d in ctx.record()["dependencies"]}
    assert deps <= set(want_runs), f"dependencies outside the manifest: {deps - set(want_runs)}"
    want = {
        f"{run.name}/{rel}": sha for run in _released(ctx) for rel, sha in tree_hashes(run).items()
    }
    got = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert got == want, f"manifest differs from the runs' files: {sorted(set(got) ^ set(want))}"
    assert [f["path"] for f in manifest["files"]] == sorted(want, key=str.encode)
    assert manifest["n_files"] == len(want)


class _Report(HTMLParser):
    """Provenance lines, and the data cells with their source, row and column."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.prov: list[str] = []
        self.cells: list[tuple[str, int, str, str]] = []
        self._prov: list[str] | None = None
        self._row: tuple[str, int] | None = None
        self._cell: list[str] | None = None
        self._column = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and a.get("class") == "prov":
            self._prov = []
        elif tag == "tr" and "data-source" in a:
            self._row = (str(a["data-source"]), int(str(a["data-row"])))
        elif tag == "td" and "data-column" in a and self._row:
            self._cell, self._column = [], str(a["data-column"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._prov is not None:
            self.prov.append(" ".join("".join(self._prov).split()))
            self._prov = None
        elif tag == "td" and self._cell is not None and self._row:
            self.cells.append((*self._row, self._column, "".join(self._cell)))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        for buf in (self._prov, self._cell):
            if buf is not None:
                buf.append(data)


def _parse(run_dir: Path) -> _Report:
    parser = _Report()
    parser.feed(contracts.path_in(run_dir, REPORT).read_text(encoding="utf-8"))
    return parser


@check("release_provenance")
def release_provenance(ctx: CheckContext) -> None:
    """Each table and figure of every released run: a provenance line in the report with
    run id, config sha256, code version and the file's sha256; a dependency of the release."""
    prov = set(_parse(ctx.run_a).prov)
    deps = {
        (d["run_id"], a["contract"]): a["sha256"]
        for d in ctx.record()["dependencies"]
        for a in d["artifacts"]
    }
    n = 0
    for run in _released(ctx):
        rec = read_json(run / CANON.OUTPUT.RUN_RECORD)
        role = f", {rec['model_role']}" if rec["model_role"] else ""
        for item in rec["artifact_index"]:
            if contracts.entry(item["contract"])["format"] not in (FMT.PARQUET, FMT.FIGURE):
                continue
            line = (
                f"run {rec['run_id']} ({rec['phase_id']}{role}) · config sha256 "
                f"{rec['config_sha256']} · code {rec['code_version']} · "
                f"{item['relative_path']} sha256 {item['sha256']}"
            )
            assert line in prov, f"no provenance line for {run.name}/{item['relative_path']}"
            assert (rec["run_id"], item["contract"]) in deps, f"{item['contract']} not consumed"
            n += 1
    assert n > 0


@check("release_tamper_detected")
def release_tamper_detected(ctx: CheckContext) -> None:
    runs = _copy_runs(ctx, ctx.scratch / "store")
    target = contracts.path_in(
        runs / ctx.a.run_dir("PHASE5_ANALYZE", CANON.ENUM.MODEL_ROLE.BASE).name, "summary"
    )
    _flip(target)
    proc = cli(ctx.command(), "--runs-dir", str(runs))
    assert proc.returncode == CANON.CLI.EXIT.DEPENDENCY, proc.stderr
    assert target.name in proc.stderr, proc.stderr
    assert not (runs / ctx.run_a.name).exists(), "a release was sealed over an altered run"


@check("verify_release_detects_changes")
def verify_release_detects_changes(ctx: CheckContext) -> None:
    verb = [CANON.CLI.SUBCOMMAND.VERIFY_RELEASE]
    ok = cli([*verb, str(ctx.run_a)])
    assert ok.returncode == CANON.CLI.EXIT.OK, ok.stderr
    runs = _copy_runs(ctx, ctx.scratch / "store", with_release=True)
    release = runs / ctx.run_a.name
    phase2 = runs / ctx.a.run_dir("PHASE2_GAIN_GRID", CANON.ENUM.MODEL_ROLE.INSTRUCT).name
    targets = [
        phase2 / CANON.OUTPUT.SUBDIR.LOGS / ctx.spec.phases.by_key("PHASE2_GAIN_GRID").log,
        contracts.path_in(release, ARCHIVE),
    ]
    for target in targets:
        original = _flip(target)
        proc = cli([*verb, str(release)])
        assert proc.returncode == CANON.CLI.EXIT.DEPENDENCY, (target, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and str(target.name) in proc.stderr
        target.write_bytes(original)


def _as_value(text: str, value: Any) -> bool:
    if value is None:
        return text == "null"
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, float):
        return (text == "NaN" and value != value) or (text != "NaN" and float(text) == value)
    if isinstance(value, int):
        return int(text) == value
    return text == str(value)


@check("report_numbers_equal_sealed_tables")
def report_numbers_equal_sealed_tables(ctx: CheckContext) -> None:
    """Every data cell of report.html parses to exactly its sealed table's value."""
    runs_dir = ctx.run_a.parent
    rows: dict[str, list[dict]] = {}
    cells = _parse(ctx.run_a).cells
    shown: dict[str, set[int]] = {}
    for source, i, column, text in cells:
        if source not in rows:
            rows[source] = pq.read_table(runs_dir / source).to_pylist()
        value = rows[source][i][column]
        assert _as_value(text, value), (
            f"{source} row {i} {column}: report {text!r}, table {value!r}"
        )
        shown.setdefault(source, set()).add(i)
    assert len(cells) > 1000, f"only {len(cells)} cells compared"
    limit = CANON.CONST.REPORT_TABLE_MAX_ROWS
    for run in _released(ctx):
        for item in read_json(run / CANON.OUTPUT.RUN_RECORD)["artifact_index"]:
            if contracts.entry(item["contract"])["format"] != FMT.PARQUET:
                continue
            source = f"{run.name}/{item['relative_path']}"
            n = pq.read_metadata(runs_dir / source).num_rows
            if n <= limit:
                assert shown.get(source) == set(range(n)), f"{source}: not every row is shown"


@check("report_renders_in_browser")
def report_renders_in_browser(ctx: CheckContext) -> None:
    browser = find_browser()
    if browser is None:
        pytest.skip(
            "no Chromium found (apt-get install chromium-headless-shell); the report "
            "was not opened in a browser"
        )
    page = open_page(contracts.path_in(ctx.run_a, REPORT), ctx.scratch / "browser", browser)
    assert not page.problems(), page.problems()
    n_figures = sum(
        1
        for run in _released(ctx)
        for item in read_json(run / CANON.OUTPUT.RUN_RECORD)["artifact_index"]
        if contracts.entry(item["contract"])["format"] == FMT.FIGURE
        and item["relative_path"].endswith(".png")
    )
    assert len(page.images) == n_figures
    assert all(p.stat().st_size > 0 for p in page.screenshots)
    print(f"screenshots: {', '.join(str(p) for p in page.screenshots)}")
