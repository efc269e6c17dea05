"""The release library on a throwaway run graph (spec/16_RELEASE.md): which runs, the
manifest, the archive's bytes under another directory/umask/TZ, the report's content and
self-containment, verify-release and its refusals."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from canon import CANON
from critspec.cli import main
from critspec.errors import ContractError, DependencyError
from critspec.figures import save_figure
from critspec.figures.render import new_figure
from critspec.release.archive import members, write_archive
from critspec.release.graph import release_closure
from critspec.release.manifest import manifest_document
from critspec.release.report import cell_text, render_report, report_data, shown_artifacts
from critspec.release.verify import verify_release
from critspec.spec.load import project_spec
from critspec.spec.phases_spec import Consumes, PhaseSpec
from critspec.store.hashing import sha256_file
from critspec.store.run_store import SealedRun, open_run
from critspec.validate import contracts
from critspec.validate.artifact import validate_artifact
from critspec.validate.html_validator import validate as validate_html

SUB, TAG, LOG = CANON.CLI.SUBCOMMAND, CANON.OUTPUT.STAGE_TAG, CANON.OUTPUT.LOG
SD = CANON.ENUM.SPIKE_DEF_ID
RATES = (0.25, 0.5)


def _phase(
    key: str, produces: tuple[str, ...], consumes: tuple[Consumes, ...] = (), pipeline: bool = False
) -> PhaseSpec:
    return PhaseSpec(
        key=key,
        id=getattr(SUB, key),
        stage_tag=getattr(TAG, key),
        log=getattr(LOG, key),
        runner="tests",
        per_model_role=False,
        commands={},
        config_sections=(),
        consumes=consumes,
        produces=produces,
        checks=(),
        once_checks=(),
        consumes_pipeline=pipeline,
    )


ANALYZE = _phase("PHASE5_ANALYZE", ("identifiability", "fig_b_curves"))
COMPARE = _phase(
    "PHASE7_REPLICATION",
    ("fig_chi_over_g",),
    (Consumes(phase="PHASE5_ANALYZE", artifacts=("identifiability",)),),
)
RELEASE = _phase(
    "PHASE8_RELEASE", ("release_manifest", "release_archive", "release_report"), pipeline=True
)
CONFIG = {
    "profile": "throwaway",
    "calibration": {"spike_def_ids": [SD.ONE_SIDED_POS, SD.TWO_SIDED_ABS], "target_rates": RATES},
}


def _open(phase: PhaseSpec, runs: Path, upstream: list[str], config: dict = CONFIG):  # noqa: ANN202
    return open_run(
        phase=phase,
        runs_dir=runs,
        config_doc=config,
        model_role=None,
        upstream_ids=upstream,
        run_id_mode=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
        allow_resume=False,
    )


def _figure(title: str):  # noqa: ANN202
    fig, axes = new_figure(1, 1)
    axes[0, 0].plot([0, 1, 2], [1.0, 0.5, 0.75])
    axes[0, 0].set_title(title)
    return fig


WHY_YES = "identifiable: b_tot(gstar) = 1.01 [0.98, 1.04] differs from the baseline"
WHY_NO = "not identifiable: gstar is at the edge of the gain grid"


def _identifiability(seed: int) -> dict:
    """A table with the identifiability contract's columns (values drawn, not computed:
    the report copies them, it does not recompute them)."""
    rng = np.random.default_rng(seed)
    keys = [(sd, r) for sd in (SD.ONE_SIDED_POS, SD.TWO_SIDED_ABS) for r in RATES]
    n = len(keys)
    b_min = rng.uniform(0.5, 1.0, n)
    b_range = np.array([0.1, 0.001, 0.2, 0.0])
    yes = np.array([True, False, False, False])

    def value_ci() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        v = rng.uniform(-0.2, 0.2, n)
        return v, v - 0.05, v + 0.05

    cols: dict = {
        "spike_def_id": np.array([k[0] for k in keys], dtype=object),
        "target_rate": np.array([k[1] for k in keys]),
        "gstar": np.array([1.0, 0.75, 1.125, 1.375]),
        "gstar_at_edge": np.array([False, True, False, True]),
        "b_tot_min": b_min,
        "b_tot_max": b_min + b_range,
        "b_tot_range": b_range,
        "b_tot_ci_width_max": np.array([0.05, 0.05, 0.6, np.nan]),
    }
    for name in ("b_tot_gstar", "delta_baseline", "delta_lower", "delta_upper"):
        v, lo, hi = value_ci()
        cols[name], cols[f"{name}_ci_low"], cols[f"{name}_ci_high"] = v, lo, hi
    cols.update(
        differs_from_baseline=yes,
        differs_from_neighbours=yes,
        abs_dev_one_min=rng.uniform(0, 0.1, n),
        g_closest_to_one=np.array([1.0, 0.75, 1.125, 1.375]),
        near_one=yes,
        ci_width_within_max=np.array([True, True, False, False]),
        dm_peak_g=np.array([1.0, 1.0, 1.125, 0.875]),
        dm_peak=rng.uniform(0, 0.3, n),
        dm_peak_at_edge=np.zeros(n, dtype=bool),
        identifiable=yes,
        why=np.array([WHY_YES, WHY_NO, WHY_NO, WHY_NO], dtype=object),
    )
    return cols


def build_graph(runs: Path) -> tuple[SealedRun, SealedRun, SealedRun]:
    """(analysis, comparison consuming it, an unrelated analysis of another config)."""
    with _open(ANALYZE, runs, []) as run:
        run.write_parquet("identifiability", _identifiability(0))
        run.write_figure("fig_b_curves", _figure("b"), save_figure)
    analysis = SealedRun.open(run.final_dir)
    with _open(COMPARE, runs, [analysis.run_id]) as run:
        run.consume(analysis, "identifiability")
        run.write_figure("fig_chi_over_g", _figure("chi"), save_figure)
    compare = SealedRun.open(run.final_dir)
    with _open(ANALYZE, runs, [], {**CONFIG, "profile": "other"}) as run:
        run.write_parquet("identifiability", _identifiability(1))
        run.write_figure("fig_b_curves", _figure("b2"), save_figure)
    return analysis, compare, SealedRun.open(run.final_dir)


def release(runs: Path, roots: list[SealedRun]) -> Path:
    """A sealed release run as Phase 8 writes it (runners/phase8_release.py)."""
    released = release_closure(roots, runs)
    with _open(RELEASE, runs, [r.run_id for r in roots]) as run:
        for up, cid in shown_artifacts(released):
            run.consume(up, cid)
        manifest = manifest_document(released)
        run.write_json("release_manifest", manifest)
        files = [f["path"] for f in manifest["files"]]
        run.write_file("release_archive", lambda p: write_archive(p, runs, files))
        html = render_report(
            report_data(released, project_spec(), "throwaway", 3, "a.tar.gz", "verify DIR")
        )
        run.write_file("release_report", lambda p: p.write_bytes(html.encode()))
    return run.final_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    runs = tmp_path_factory.mktemp("graph") / "store"
    analysis, compare, other = build_graph(runs)
    return runs, [analysis.run_id, compare.run_id, other.run_id, release(runs, [compare]).name]


@pytest.fixture()
def graph(built, tmp_path: Path):  # noqa: ANN201
    """A fresh copy of the built runs per test (tests alter files)."""
    src, ids = built
    runs = tmp_path / "store"
    shutil.copytree(src, runs)
    analysis, compare, other = (SealedRun.open(runs / i) for i in ids[:3])
    return runs, analysis, compare, other, runs / ids[3]


def test_closure_follows_dependencies_only(graph) -> None:
    runs, analysis, compare, other, _ = graph
    got = [r.run_id for r in release_closure([compare], runs)]
    assert got == sorted([analysis.run_id, compare.run_id])
    shutil.rmtree(analysis.run_dir, onerror=lambda f, p, e: (os.chmod(p, 0o755), f(p)))
    with pytest.raises(DependencyError, match=analysis.run_id):
        release_closure([compare], runs)


def test_manifest_lists_every_file_by_an_independent_walk(graph) -> None:
    runs, analysis, compare, _, rel = graph
    manifest = manifest_document(release_closure([compare], runs))
    want = {}
    for run in (analysis, compare):
        for dirpath, _, names in os.walk(run.run_dir):
            for name in names:
                path = Path(dirpath) / name
                want[f"{run.run_id}/{path.relative_to(run.run_dir).as_posix()}"] = (
                    sha256_file(path),
                    path.stat().st_size,
                )
    got = {f["path"]: (f["sha256"], f["bytes"]) for f in manifest["files"]}
    assert got == want
    assert [f["path"] for f in manifest["files"]] == sorted(want, key=str.encode)
    assert manifest["total_bytes"] == sum(b for _, b in want.values())
    validate_artifact("release_manifest", contracts.path_in(rel, "release_manifest"))


def test_archive_same_bytes_in_another_directory_umask_and_zone(graph, tmp_path: Path) -> None:
    runs, analysis, compare, _, rel = graph
    archive = contracts.path_in(rel, "release_archive")
    other = tmp_path / "elsewhere" / "deeper"
    other.mkdir(parents=True)
    for run in (analysis, compare):
        shutil.copytree(run.run_dir, other / run.run_id)
    files = [f.name for f in members(archive)]
    old_umask, old_tz = os.umask(0o077), os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    try:
        write_archive(tmp_path / "again.tar.gz", other, files)
    finally:
        os.umask(old_umask)
        os.environ.pop("TZ") if old_tz is None else os.environ.update(TZ=old_tz)
        time.tzset()
    assert (tmp_path / "again.tar.gz").read_bytes() == archive.read_bytes()
    raw = archive.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[3] == 0 and raw[4:8] == b"\0\0\0\0"
    with tarfile.open(archive) as tar:
        infos = tar.getmembers()
    names = [i.name + ("/" if i.isdir() else "") for i in infos]
    assert names == sorted(names, key=str.encode)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos} == {(0, 0, 0, "", "")}
    assert {i.mode for i in infos if i.isfile()} == {0o444}
    assert {i.mode for i in infos if i.isdir()} == {0o555}


def _tar_gz(infos: list[tuple[tarfile.TarInfo, bytes]], mtime: int = 0, name: str = "") -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=mtime) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for info, data in infos:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _member(name: str, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uname, info.gname = 0o444, 0, "", ""
    for k, v in attrs.items():
        setattr(info, k, v)
    return info


@pytest.mark.parametrize(
    ("archive", "match"),
    [
        (_tar_gz([(_member("a"), b"x")], mtime=7), "modification time"),
        (_tar_gz([(_member("a"), b"x")], name="named"), "file name"),
        (_tar_gz([(_member("a", mtime=5), b"x")]), "non-fixed metadata"),
        (_tar_gz([(_member("a", uname="me"), b"x")]), "non-fixed metadata"),
        (_tar_gz([(_member("b"), b"x"), (_member("a"), b"y")]), "out of order"),
        (_tar_gz([(_member("../a"), b"x")]), "escapes"),
        (_tar_gz([(_member("a"), b"x")])[:-12], "readable"),
    ],
    ids=["gzip-mtime", "gzip-name", "member-mtime", "owner", "order", "dotdot", "truncated"],
)
def test_archive_contract_refuses(tmp_path: Path, archive: bytes, match: str) -> None:
    path = tmp_path / "x.tar.gz"
    path.write_bytes(archive)
    with pytest.raises(ContractError, match=match):
        validate_artifact("release_archive", path)


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, int, str, str]] = []
        self._row: tuple[str, int] | None = None
        self._col: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-source" in a:
            self._row = (a["data-source"], int(a["data-row"]))
        if tag == "td" and "data-column" in a:
            self._col = a["data-column"]

    def handle_data(self, data: str) -> None:
        if self._col is not None and self._row is not None:
            self.cells.append((*self._row, self._col, data))
            self._col = None


def test_report_content_numbers_and_determinism(graph) -> None:
    runs, analysis, compare, other, rel = graph
    path = contracts.path_in(rel, "release_report")
    html = path.read_text(encoding="utf-8")
    validate_html(path, "release_report")
    released = release_closure([compare], runs)
    again = render_report(
        report_data(released, project_spec(), "throwaway", 3, "a.tar.gz", "verify DIR")
    )
    assert again == html
    parser = _Cells()
    parser.feed(html)
    table = pq.read_table(contracts.path_in(analysis.run_dir, "identifiability")).to_pylist()
    source = f"{analysis.run_id}/{contracts.entry('identifiability')['subdir']}/"
    cells = [c for c in parser.cells if c[0].startswith(source)]
    # The max_rows of 3 leaves the 4-row table unrendered; the gstar table shows every row.
    assert {i for _, i, _, _ in cells} == {0, 1, 2, 3}
    for _, i, column, text in cells:
        assert text == cell_text(table[i][column])
    assert "4 rows, more than the 3" in html
    assert html.count("<img ") == 2 and other.run_id not in html
    assert WHY_NO in html and WHY_YES in html  # the verdict in words is the row's `why`
    for run in (analysis, compare):
        for item in run.record["artifact_index"]:
            if item["contract"].startswith("fig_") or item["contract"] == "identifiability":
                assert item["sha256"] in html and run.record["config_sha256"] in html
    assert str(runs) not in html and run.record["created_utc"] not in html


def test_report_refuses_an_altered_artifact(graph) -> None:
    runs, analysis, compare, _, _ = graph
    target = contracts.path_in(analysis.run_dir, "identifiability")
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(DependencyError, match=target.name):
        report_data([analysis, compare], project_spec(), "t", 3, "a", "v")


@pytest.mark.parametrize(
    ("page", "match"),
    [
        ("<html></html>", "doctype"),
        ("<!DOCTYPE html><html><head></head></html>", "Content-Security-Policy"),
        (
            '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{csp}">'
            "<script>1</script>",
            "<script>",
        ),
        (
            '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<img src="https://example.org/a.png">',
            "refers outside",
        ),
        (
            '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<a href="other.html">x</a>',
            "refers outside",
        ),
        (
            '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{csp}">'
            "<style>body {{ background: url(x.png) }}</style>",
            "loads a resource",
        ),
        (
            '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<body onload="x()">',
            "event handler",
        ),
    ],
)
def test_html_contract_refuses(tmp_path: Path, page: str, match: str) -> None:
    path = tmp_path / "page.htm"
    path.write_text(page.format(csp=CANON.CONST.REPORT_CSP))
    with pytest.raises(ContractError, match=match):
        validate_html(path, "release_report")


def _flip(path: Path) -> bytes:
    path.chmod(0o644)
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    return original


def test_verify_release_intact_then_names_the_first_change(graph, tmp_path, capsys) -> None:
    runs, analysis, compare, _, rel = graph
    verb = CANON.CLI.SUBCOMMAND.VERIFY_RELEASE
    assert main([verb, str(rel)]) == CANON.CLI.EXIT.OK
    assert "intact" in capsys.readouterr().out
    log = next((compare.run_dir / CANON.OUTPUT.SUBDIR.LOGS).iterdir())
    for target in (log, contracts.path_in(rel, "release_archive")):
        original = _flip(target)
        assert main([verb, str(rel)]) == CANON.CLI.EXIT.DEPENDENCY
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and target.name in err[0], err
        target.write_bytes(original)
    extra = analysis.run_dir / CANON.OUTPUT.SUBDIR.LOGS
    extra.chmod(0o755)
    (extra / "added.txt").write_text("x")
    with pytest.raises(DependencyError, match="added.txt"):
        verify_release(rel)
    (extra / "added.txt").unlink()
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copytree(rel, alone / rel.name)
    done = verify_release(alone / rel.name)
    assert not done.runs_checked_on_disk and done.n_runs == 2
