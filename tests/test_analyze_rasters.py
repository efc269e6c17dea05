"""`critspec analyze-rasters` (spec/12_STATISTICS_AND_BOOTSTRAP.md §6): a hand-made raster
whose b, chi and avalanches are worked out by hand and by a direct flood fill, analyzed
through the CLI into a sealed run; reruns byte-identical; a Phase 3 raster of the embedded
model gives Phase 5's own tables for the nulls it shares; every bad input refused in one
line with exit 2 and nothing created in the runs directory."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from canon import CANON
from critspec.cli import main
from critspec.paths import project_root
from critspec.store import writers
from critspec.store.writers import read_json
from critspec.validate import contracts

# One worker runs this module: its embedded pipeline is built once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("analyze_rasters")
SUB = CANON.CLI.SUBCOMMAND
EXIT = CANON.CLI.EXIT
NULL_SUFFIX = CANON.OUTPUT.NULL_SUFFIX
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
EPS = CANON.CONST.CHI_EPS  # analysis.chi_eps of the shipped config
ADJ = CANON.ENUM.ADJACENCY
CONFIG = str(project_root() / CANON.PATH.CONFIG_PIPELINE)
REPS = CANON.CONST.CONFIG_LIMIT.BOOTSTRAP_REPS_MIN
SET = ["--set", f"analysis.bootstrap_reps={REPS}"]
SEQ_ID = np.array([10, 20, 30], dtype=np.int64)

# Condition 0, three windows of L = 3 layers x T = 6 tokens (rows are layers).
W0 = [[2, 1, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]]
W1 = [[0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0]]
W2 = [[0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 4, 0]]
# Condition 1: the first layer fires at every token of every window.
ROW = [[1] * 6, [0] * 6, [0] * 6]


def hand_rasters() -> np.ndarray:
    return np.array([[W0, W1, W2], [ROW, ROW, ROW]], dtype=np.uint16)


# By hand (spec/12 §2). Condition 0: occupied sites D = 4 + 3 + 4 = 11; time pairs
# P = 1 (w0: l0 t0-t1) + 0 + 2 (w2: l0 t1-t2, t2-t3) = 3; depth pairs Q = 1 (w0: t1 l0-l1)
# + 1 (w1: t5 l0-l1) + 0 = 2. Y = (7, 3, 7): mean 17/3, population variance 32/9.
# Avalanches 4N: w0 {(0,0),(0,1),(1,1)} and {(2,2)}; w1 {(0,5),(1,5)} and {(2,0)};
# w2 {(0,1),(0,2),(0,3)} and {(2,4)}: 6. 8N joins (1,1) and (2,2) of w0: 5.
# Condition 1: D = 18, P = 15, Q = 0, Y = (6, 6, 6), one avalanche per window either way.
HAND = {
    0: {"b_time": 3 / 11, "b_depth": 2 / 11, B_TOT: 5 / 11, "chi": (32 / 9) / (17 / 3 + EPS),
        "n_events": 17, ADJ.ADJ_4N: 6, ADJ.ADJ_8N: 5},
    1: {"b_time": 15 / 18, "b_depth": 0.0, B_TOT: 15 / 18, "chi": 0.0, "n_events": 18,
        ADJ.ADJ_4N: 3, ADJ.ADJ_8N: 3},
}  # fmt: skip


def write_rasters(path: Path, A: np.ndarray, **override: np.ndarray) -> Path:
    arrays = {
        "A": A,
        "X": (A > 0).astype(np.uint8),
        "cond_id": np.arange(A.shape[0], dtype=np.int64),
        "seq_id": SEQ_ID[: A.shape[1]] if A.ndim == 4 else SEQ_ID,
    }
    arrays.update(override)
    writers.write_npz(path, arrays)
    return path


def write_conditions(path: Path, gains: list[float], **override: list) -> Path:
    """One (spike definition, target rate) over `gains`: the first is the baseline, the
    last gstar."""
    n = len(gains)
    columns = {
        "cond_id": np.arange(n, dtype=np.int64),
        "spike_def_id": np.array([CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS] * n, dtype=object),
        "target_rate": np.full(n, 0.25),
        "g": np.array(gains, dtype=np.float64),
        "is_baseline": np.arange(n) == 0,
        "is_gstar": np.arange(n) == n - 1,
        "null_id": np.array([None] * n, dtype=object),
    }
    columns.update({k: np.asarray(v) for k, v in override.items()})
    types = {
        c["name"]: c["type"] for c in contracts.view("raster_conditions", "columns")["columns"]
    }
    writers.write_parquet(path, columns, types)
    return path


def analyze(rasters: Path, runs: Path, conditions: Path | None = None) -> list[str]:
    extra = [] if conditions is None else ["--conditions", str(conditions)]
    return [SUB.ANALYZE_RASTERS, str(rasters), *extra, "--runs-dir", str(runs), "--config", CONFIG]


def sealed(argv: list[str], capsys: pytest.CaptureFixture) -> Path:
    assert main([*argv, *SET, "-q"]) == EXIT.OK, capsys.readouterr().err
    [line] = capsys.readouterr().out.splitlines()
    return Path(line.split(" ", 1)[1])


def table(run: Path, cid: str) -> pd.DataFrame:
    return writers.read_parquet(contracts.path_in(run, cid)).to_pandas()


def flood_fill(A: np.ndarray, diagonal: bool) -> list[tuple]:
    """(seq index, size, duration, height, t_min, l_min, touches boundary) of every
    component of A [N, L, T] > 0, by breadth-first search over the neighbour offsets."""
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if diagonal:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    out = []
    n_seq, n_layers, n_tokens = A.shape
    for n in range(n_seq):
        seen = np.zeros((n_layers, n_tokens), dtype=bool)
        for l0 in range(n_layers):
            for t0 in range(n_tokens):
                if A[n, l0, t0] == 0 or seen[l0, t0]:
                    continue
                seen[l0, t0] = True
                queue, sites = [(l0, t0)], []
                while queue:
                    layer, t = queue.pop()
                    sites.append((layer, t))
                    for dl, dt in steps:
                        ll, tt = layer + dl, t + dt
                        inside = 0 <= ll < n_layers and 0 <= tt < n_tokens
                        if inside and A[n, ll, tt] > 0 and not seen[ll, tt]:
                            seen[ll, tt] = True
                            queue.append((ll, tt))
                ls, ts = [s[0] for s in sites], [s[1] for s in sites]
                touches = min(ts) == 0 or max(ts) == n_tokens - 1
                touches |= min(ls) == 0 or max(ls) == n_layers - 1
                size = int(sum(int(A[n, layer, t]) for layer, t in sites))
                span = (max(ts) - min(ts) + 1, max(ls) - min(ls) + 1)
                out.append((n, size, *span, min(ts), min(ls), touches))
    return sorted(out)


@pytest.fixture(scope="module")
def hand_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rasters(tmp_path_factory.mktemp("hand") / "in.npz", hand_rasters())


@pytest.fixture(scope="module")
def hand_run(hand_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("store") / "store"
    argv = [*analyze(hand_file, runs), *SET, "-q"]
    assert main(argv) == EXIT.OK
    [run] = list(runs.iterdir())
    return run


def test_hand_raster_values_by_hand(hand_run: Path) -> None:
    summary = table(hand_run, "summary")
    for cid, want in HAND.items():
        row = summary[summary["cond_id"] == cid].iloc[0]
        for name in ("b_time", "b_depth", B_TOT):
            assert row[name] == pytest.approx(want[name], rel=1e-12), (cid, name)
        assert row["chi"] == pytest.approx(want["chi"], rel=1e-12, abs=1e-15)
        assert row["n_events"] == want["n_events"]
        assert row["n_sequences"] == len(SEQ_ID)
        # The generic key: (EXTERNAL, EXTERNAL_TARGET_RATE, cond_id + 1).
        assert row["spike_def_id"] == CANON.ENUM.SPIKE_DEF_ID.EXTERNAL
        assert row["target_rate"] == CANON.CONST.EXTERNAL_TARGET_RATE
        assert row["g"] == cid + 1
        assert not row["is_baseline"] and not row["is_gstar"]
        # The token shuffle is not applicable; no rates travel with rasters.
        for col in (f"{B_TOT}_", "delta_b_time_", f"delta_{B_TOT}_"):
            assert math.isnan(row[col + NULL_SUFFIX.TOKEN_SHUFFLE])
        assert math.isnan(row["achieved_rate_oos_mean"])
        # Perm and shift keep each row's counts, hence D and the events.
        for sfx in (NULL_SUFFIX.TIME_PERM, NULL_SUFFIX.CIRCULAR_SHIFT):
            assert math.isfinite(row[f"{B_TOT}_{sfx}"])
    # Condition 1's time permutation of a full row is the row itself: no delta.
    one = summary[summary["cond_id"] == 1].iloc[0]
    assert one[f"delta_{B_TOT}_{NULL_SUFFIX.TIME_PERM}"] == 0.0


def test_hand_raster_avalanches_by_flood_fill(hand_run: Path) -> None:
    av = table(hand_run, "avalanches")
    A = hand_rasters()
    position = {int(s): i for i, s in enumerate(SEQ_ID)}
    for cid, want in HAND.items():
        for adjacency in (ADJ.ADJ_4N, ADJ.ADJ_8N):
            rows = av[(av["cond_id"] == cid) & (av["adjacency"] == adjacency)]
            assert len(rows) == want[adjacency], (cid, adjacency)
            got = sorted(
                (position[int(r.seq_id)], int(r.size), int(r.duration), int(r.height),
                 int(r.t_min), int(r.l_min), bool(r.touches_boundary))
                for r in rows.itertuples()
            )  # fmt: skip
            assert got == flood_fill(A[cid], adjacency == ADJ.ADJ_8N)


def test_hand_run_is_sealed_and_says_what_it_skipped(hand_run: Path, capsys) -> None:
    assert main([SUB.VALIDATE_RUN, str(hand_run)]) == EXIT.OK
    assert "intact" in capsys.readouterr().out
    record = read_json(hand_run / CANON.OUTPUT.RUN_RECORD)
    assert record["phase_id"] == SUB.ANALYZE_RASTERS
    assert record["run_id"].startswith(
        f"{CANON.PATH.RUN_DIR_PREFIX}{CANON.OUTPUT.STAGE_TAG.ANALYZE_RASTERS}_"
    )
    summary = record["summary"]
    assert list(summary["nulls_not_applicable"]) == [CANON.ENUM.NULL_ID.TOKEN_SHUFFLE]
    assert "gain axis" in summary["identifiability_skipped"]
    [dep] = record["dependencies"]
    assert dep["run_id"] is None and [a["contract"] for a in dep["artifacts"]] == ["rasters"]
    indexed = {item["contract"] for item in record["artifact_index"]}
    assert "identifiability" not in indexed and "summary" in indexed
    log = writers.read_jsonl(hand_run / CANON.OUTPUT.SUBDIR.LOGS / CANON.OUTPUT.LOG.ANALYZE_RASTERS)
    checks = [e["payload"] for e in log if e["event_type"] == CANON.ENUM.LOG_EVENT.CHECK]
    assert any(c["check_id"] == CANON.ENUM.CHECK_ID.NULL_NOT_APPLICABLE for c in checks)


def _files(run: Path) -> dict[str, bytes]:
    subdirs = (CANON.OUTPUT.SUBDIR.RESULTS, CANON.OUTPUT.SUBDIR.TABLES)
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for sub in subdirs
        for p in sorted((run / sub).iterdir())
    }


def test_rerun_is_byte_identical_and_refused_in_place(
    hand_file: Path, hand_run: Path, tmp_path: Path, capsys
) -> None:
    again = sealed(analyze(hand_file, tmp_path / "other"), capsys)
    assert again.name == hand_run.name
    assert _files(again) == _files(hand_run)
    assert main([*analyze(hand_file, hand_run.parent), *SET]) == EXIT.RUN_EXISTS
    [line] = capsys.readouterr().err.splitlines()
    assert "already analyzed" in line


def test_conditions_table_gives_keys_and_identifiability(
    hand_file: Path, hand_run: Path, tmp_path: Path, capsys
) -> None:
    gains = [CANON.CONST.GAIN_BASELINE, CANON.CONST.GAIN_BASELINE + 0.5]
    cond = write_conditions(tmp_path / "conditions.parquet", gains)
    run = sealed(analyze(hand_file, tmp_path / "store", cond), capsys)
    assert run.name != hand_run.name  # the table is part of the run id
    assert main([SUB.VALIDATE_RUN, str(run)]) == EXIT.OK
    summary = table(run, "summary")
    assert summary["g"].tolist() == gains
    assert summary[B_TOT].tolist() == table(hand_run, "summary")[B_TOT].tolist()
    [ident] = table(run, "identifiability").to_dict("records")
    assert ident["gstar"] == gains[-1]
    assert ident["gstar_at_edge"] and not ident["identifiable"]
    assert ident[f"{B_TOT}_gstar"] == pytest.approx(HAND[1][B_TOT])


# --- a Phase 3 raster of the embedded model against Phase 5 ----------------------------
RATE = CANON.PROFILE.EMBEDDED_DEFAULT.TARGET_LAYER_RATES[0]
GRID = CANON.CONST.GAIN_GRID_DEFAULT
AT = GRID.index(CANON.CONST.GAIN_BASELINE)
PIPELINE_SET = [
    f"gain_grid.gains={list(GRID[AT - 1 : AT + 2])}",
    f"analysis.bootstrap_reps={REPS}",
    f"calibration.spike_def_ids=[{CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS}]",
    f"calibration.target_rates=[{RATE}]",
]
PHASES = ("PHASE1_CALIBRATE", "PHASE2_GAIN_GRID", "PHASE2_SELECT_GSTAR",
          "PHASE3_EXTRACT_RASTERS", "PHASE4_RUN_NULLS", "PHASE5_ANALYZE")  # fmt: skip


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(Phase 3 run, Phase 5 run, analyze-rasters run on the Phase 3 rasters): one reduced
    embedded pipeline (one spike definition and rate, three gains), run in process."""
    from critspec.spec.load import project_spec

    runs = tmp_path_factory.mktemp("emb") / "store"
    sets = [a for s in PIPELINE_SET for a in ("--set", s)]
    made = {}
    for key in PHASES:
        phase = project_spec().phases.by_key(key)
        argv = [phase.id, "--model-role", CANON.ENUM.MODEL_ROLE.INSTRUCT, "--config", CONFIG]
        assert main([*argv, "--runs-dir", str(runs), *sets, "-q"]) == EXIT.OK, key
        [made[key]] = [p for p in runs.iterdir() if f"_{phase.stage_tag}_" in p.name]
    p3 = made["PHASE3_EXTRACT_RASTERS"]
    results = p3 / CANON.OUTPUT.SUBDIR.RESULTS
    argv = analyze(
        results / CANON.OUTPUT.ARTIFACT.RASTERS,
        tmp_path_factory.mktemp("mine") / "store",
        results / CANON.OUTPUT.ARTIFACT.RASTER_CONDITIONS,
    )
    assert main([*argv, *SET, "-q"]) == EXIT.OK
    [mine] = list(Path(argv[argv.index("--runs-dir") + 1]).iterdir())
    return p3, made["PHASE5_ANALYZE"], mine


def test_phase3_raster_gives_phase5_tables_for_the_shared_nulls(embedded) -> None:
    _, p5, mine = embedded
    ours, theirs = table(mine, "summary"), table(p5, "summary")
    # What rasters alone cannot give: the token-shuffle null and the out-of-sample rates.
    absent = [c for c in theirs.columns if c.endswith(NULL_SUFFIX.TOKEN_SHUFFLE)]
    absent += [c for c in theirs.columns if c.startswith(NULL_SUFFIX.TOKEN_SHUFFLE)]
    absent += [c for c in theirs.columns if "_ci_" in c and NULL_SUFFIX.TOKEN_SHUFFLE in c]
    absent += ["achieved_rate_oos_mean", "rate_err_oos_max_abs"]
    assert ours[absent].isna().all().all()
    assert theirs[absent].notna().all().all()
    shared = [c for c in theirs.columns if c not in absent]
    assert any(NULL_SUFFIX.TIME_PERM in c for c in shared)
    assert any(NULL_SUFFIX.CIRCULAR_SHIFT in c for c in shared)
    pd.testing.assert_frame_equal(ours[shared], theirs[shared], check_exact=True)
    for cid in ("identifiability", "crackling", "tail_fits", "avalanches"):
        pd.testing.assert_frame_equal(table(mine, cid), table(p5, cid), check_exact=True)


def test_phase3_run_analysis_is_sealed_and_pins_both_inputs(embedded, capsys) -> None:
    p3, _, mine = embedded
    assert main([SUB.VALIDATE_RUN, str(mine)]) == EXIT.OK
    record = read_json(mine / CANON.OUTPUT.RUN_RECORD)
    p3_index = {a["contract"]: a["sha256"] for a in read_json(p3 / CANON.OUTPUT.RUN_RECORD)[
        "artifact_index"]}  # fmt: skip
    [dep] = record["dependencies"]
    pinned = {a["contract"]: a["sha256"] for a in dep["artifacts"]}
    assert pinned == {k: p3_index[k] for k in ("rasters", "raster_conditions")}


# --- refusals: one line, exit 2, nothing in the runs directory ---------------------------
def _rasters_with(tmp: Path, **override: np.ndarray) -> Path:
    return write_rasters(tmp / "in.npz", hand_rasters(), **override)


def _oversize(tmp: Path) -> Path:
    """An NPZ above NPZ_MAX_BYTES as a sparse file (no disk, no time)."""
    path = tmp / "in.npz"
    with path.open("wb") as fh:
        fh.write(b"PK\x03\x04")
        fh.truncate(CANON.CONST.NPZ_MAX_BYTES + 1)
    return path


def _two_gstar(tmp: Path) -> Path:
    return write_conditions(tmp / "c.parquet", [1.0, 1.5], is_gstar=[True, True])


RasterMaker = Callable[[Path], Path]
ConditionMaker = Callable[[Path], Path | None]
REFUSALS: list[tuple[str, RasterMaker, ConditionMaker, str]] = [
    ("raster file missing", lambda t: t / "absent.npz", lambda t: None, "raster file not found"),
    ("raster file not an NPZ", lambda t: _text(t / "r.npz"), lambda t: None, "not a valid NPZ"),
    ("raster file above NPZ_MAX_BYTES", _oversize, lambda t: None, "above the bound"),
    (
        "A of the wrong dtype (int32)",
        lambda t: write_rasters(t / "r.npz", hand_rasters().astype(np.int32)),
        lambda t: None,
        "dtype int32, expected uint16",
    ),
    (
        "A of the wrong rank",
        lambda t: write_rasters(t / "r.npz", hand_rasters()[0]),
        lambda t: None,
        "wants [C, N, L, T]",
    ),
    (
        "a raster array missing (seq_id)",
        lambda t: _without_seq_id(t / "r.npz"),
        lambda t: None,
        "missing array 'seq_id'",
    ),
    (
        "X not A > 0",
        lambda t: _rasters_with(t, X=np.zeros(hand_rasters().shape, np.uint8)),
        lambda t: None,
        "X differs from A > 0",
    ),
    (
        "conditions table of another raster (3 conditions for 2)",
        lambda t: _rasters_with(t),
        lambda t: write_conditions(t / "c.parquet", [1.0, 1.5, 2.0]),
        "does not describe these rasters",
    ),
    (
        "conditions table with a NaN gain",
        lambda t: _rasters_with(t),
        lambda t: write_conditions(t / "c.parquet", [1.0, float("nan")]),
        "NaN",
    ),
    (
        "conditions table with two gstar rows",
        lambda t: _rasters_with(t),
        _two_gstar,
        "needs exactly one",
    ),
    (
        "conditions table naming one key twice",
        lambda t: _rasters_with(t),
        lambda t: write_conditions(t / "c.parquet", [1.0, 1.0], is_gstar=[True, False]),
        "names two conditions",
    ),
    (
        "conditions table missing",
        lambda t: _rasters_with(t),
        lambda t: t / "absent.parquet",
        "conditions table not found",
    ),
    (
        "conditions table not Parquet",
        lambda t: _rasters_with(t),
        lambda t: _text(t / "c.parquet"),
        "Parquet",
    ),
]


def _text(path: Path) -> Path:
    path.write_text("not binary at all\n" * 8, encoding="utf-8")
    return path


def _without_seq_id(path: Path) -> Path:
    A = hand_rasters()
    arrays = {"A": A, "X": (A > 0).astype(np.uint8), "cond_id": np.arange(2, dtype=np.int64)}
    writers.write_npz(path, arrays)
    return path


def refusal_argv(tmp: Path, make_rasters: RasterMaker, make_conditions: ConditionMaker) -> list:
    return analyze(make_rasters(tmp), tmp / "store", make_conditions(tmp))


@pytest.mark.parametrize(
    ("make_rasters", "make_conditions", "fragment"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_bad_input_one_line_exit_2_nothing_created(
    make_rasters, make_conditions, fragment, tmp_path: Path, capsys
) -> None:
    argv = refusal_argv(tmp_path, make_rasters, make_conditions)
    assert main([*argv, *SET]) == EXIT.CONTRACT
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "store").exists()


def test_set_outside_the_analysis_section_is_refused(hand_file: Path, tmp_path: Path, capsys):
    argv = analyze(hand_file, tmp_path / "store")
    assert main([*argv, "--set", "gain_grid.gains=[1.0]"]) == EXIT.CONTRACT
    [line] = capsys.readouterr().err.splitlines()
    assert "uses only the analysis section" in line
    assert not (tmp_path / "store").exists()


def test_a_standalone_run_consumes_nothing_and_shares_no_key() -> None:
    from pydantic import ValidationError

    from critspec.spec.load import project_spec
    from critspec.spec.phases_spec import Consumes, PhasesSpec

    phases = project_spec().phases
    stage = phases.standalone_by_key("ANALYZE_RASTERS")
    assert stage.key not in {p.key for p in phases.phases}  # run-all never plans it
    reading = stage.model_copy(
        update={"consumes": (Consumes(phase=phases.phases[0].key, artifacts=()),)}
    )
    with pytest.raises(ValidationError, match="consumes no run"):
        PhasesSpec(phases=phases.phases, standalone=(reading,))
    clash = stage.model_copy(update={"key": phases.phases[0].key})
    with pytest.raises(ValidationError, match="phase keys repeat"):
        PhasesSpec(phases=phases.phases, standalone=(clash,))
