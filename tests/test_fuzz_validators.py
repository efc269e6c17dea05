"""Fuzz every validator (issue 7): arbitrary bytes, truncated and mutated valid artifacts.

Whatever the bytes, validating a file either passes or raises a CritspecError
whose exit code is CANON.CLI.EXIT.CONTRACT, within a per-example deadline; no
other exception (a bug, exit 1) and no unbounded memory. Valid seeds come from a
sealed throwaway run (NPZ, JSON record, JSONL log) and a conforming metrics table.
"""

from __future__ import annotations

import atexit
import functools
import resource
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canon import CANON
from critspec.errors import CritspecError
from critspec.store.run_store import _make_writable
from critspec.store.writers import read_json, read_yaml
from critspec.validate import bindings, contracts
from critspec.validate.artifact import validate_artifact
from tests.test_store_throwaway import consume, produce
from tests.test_validate_cli import metrics_binds, metrics_columns, write_metrics

FUZZ = settings(
    max_examples=100,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
# Peak resident memory may grow by at most this much over a whole fuzz test.
MAX_RSS_GROWTH_KIB = 512 * 1024


@functools.cache
def seeds() -> tuple[Path, list[tuple[str, bytes, dict[str, Any]]]]:
    """(scratch dir, [(contract id, valid bytes, bindings)]) for one artifact per format."""
    root = Path(tempfile.mkdtemp(prefix="critspec_fuzz_"))
    atexit.register(_remove, root)
    down = consume(root / "store", produce(root / "store"))
    record = read_json(down / CANON.OUTPUT.RUN_RECORD)
    b = bindings.from_run(record, read_yaml(down / CANON.OUTPUT.CONFIG_RESOLVED))
    up = root / "store" / record["dependencies"][0]["run_id"]
    up_record = read_json(up / CANON.OUTPUT.RUN_RECORD)
    up_b = bindings.from_run(up_record, read_yaml(up / CANON.OUTPUT.CONFIG_RESOLVED))
    out = [("run_record", (down / CANON.OUTPUT.RUN_RECORD).read_bytes(), {})]
    for run_dir, run_b, rec in ((down, b, record), (up, up_b, up_record)):
        for item in rec["artifact_index"]:
            out.append((item["contract"], (run_dir / item["relative_path"]).read_bytes(), run_b))
    metrics = write_metrics(root, metrics_columns())
    out.append(("metrics", metrics.read_bytes(), bindings.parse_binds(metrics_binds())))
    return root, out


def _remove(root: Path) -> None:
    _make_writable(root)  # sealed runs are read-only
    shutil.rmtree(root, ignore_errors=True)


def check(contract_id: str, data: bytes, b: dict[str, Any]) -> None:
    """Validate `data` as `contract_id`: pass, or a CritspecError with the contract exit code."""
    root, _ = seeds()
    base = contracts.entry(contract_id)["basenames"][0]
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        path = Path(scratch) / base
        path.write_bytes(data)
        try:
            validate_artifact(contract_id, path, b)
        except CritspecError as exc:
            assert exc.exit_code == CANON.CLI.EXIT.CONTRACT, exc
            assert len(str(exc).splitlines()) == 1, str(exc)


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_seeds_are_valid_and_cover_every_format() -> None:
    _, items = seeds()
    for cid, data, b in items:
        check(cid, data, b)
    formats = {contracts.entry(cid)["format"] for cid, _, _ in items}
    assert formats >= {
        CANON.ENUM.ARTIFACT_FORMAT.JSON,
        CANON.ENUM.ARTIFACT_FORMAT.JSONL,
        CANON.ENUM.ARTIFACT_FORMAT.NPZ,
        CANON.ENUM.ARTIFACT_FORMAT.PARQUET,
    }


@FUZZ
@given(contract=st.sampled_from(contracts.contract_ids()), data=st.binary(max_size=2048))
def test_arbitrary_bytes(contract: str, data: bytes) -> None:
    before = _rss_kib()
    check(contract, data, {})
    assert _rss_kib() - before < MAX_RSS_GROWTH_KIB


@FUZZ
@given(index=st.integers(min_value=0), cut=st.floats(min_value=0, max_value=1))
def test_truncated_valid_artifacts(index: int, cut: float) -> None:
    _, items = seeds()
    cid, data, b = items[index % len(items)]
    check(cid, data[: int(len(data) * cut)], b)


@FUZZ
@given(
    index=st.integers(min_value=0),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=8),
)
def test_mutated_valid_artifacts(index: int, flips: list[tuple[float, int]]) -> None:
    before = _rss_kib()
    _, items = seeds()
    cid, data, b = items[index % len(items)]
    mutated = bytearray(data)
    for where, xor in flips:
        mutated[int(where * len(mutated))] ^= xor
    check(cid, bytes(mutated), b)
    assert _rss_kib() - before < MAX_RSS_GROWTH_KIB
