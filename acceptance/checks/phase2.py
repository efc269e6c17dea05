"""Phase 2 acceptance: gain-grid metrics and gstar selection (spec/02_RATE_MATCHING.md,
spec/03_BRANCHING_AND_NULLS.md, spec/04_GAIN_AND_GSTAR.md, spec/08_TEST_PLAN.md).

gstar is recomputed here from the metrics by a separate pandas route, and
crafted metrics tables go through the CANON select command with `--metrics`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from acceptance.checks import CheckContext, check
from acceptance.harness import cli
from canon import CANON
from critspec.paths import project_root
from critspec.store import writers
from critspec.store.hashing import sha256_file
from critspec.store.writers import read_json
from critspec.validate import contracts
from critspec.validate.run import load_config

RESULTS = CANON.OUTPUT.SUBDIR.RESULTS
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
B_COLUMNS = ("b_time", "b_depth", B_TOT, "b_time_perm", "b_depth_perm", "b_tot_perm")
GRID = "PHASE2_GAIN_GRID"
DECIDED = CANON.ENUM.GSTAR_DECIDED_BY
# Distances to the baseline equal up to float rounding count as equal (0.9 vs 1.1).
DIST_ATOL = 8 * np.finfo(np.float64).eps


def _metrics(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / RESULTS / CANON.OUTPUT.ARTIFACT.METRICS)


@check("gain_grid_complete")
def gain_grid_complete(ctx: CheckContext) -> None:
    df = _metrics(ctx.run_a)
    cal = load_config(ctx.run_a)["calibration"]
    counts = df.groupby(["spike_def_id", "target_rate", "g"]).size()
    for sd, r, g in itertools.product(
        cal["spike_def_ids"], cal["target_rates"], CANON.CONST.GAIN_GRID_DEFAULT
    ):
        n = int(counts.get((sd, r, g), 0))
        assert n == 1, f"{ctx.run_a}: ({sd}, {r}, g={g}) has {n} rows, expected exactly 1"
    assert len(df) == len(cal["spike_def_ids"]) * len(cal["target_rates"]) * len(
        CANON.CONST.GAIN_GRID_DEFAULT
    )


@check("rate_error_within_tolerance")
def rate_error_within_tolerance(ctx: CheckContext) -> None:
    df = _metrics(ctx.run_a)
    worst = df["achieved_rate_max_abs_err"].max()
    assert worst <= CANON.CONST.RATE_MATCH_TOL_ABS, f"{ctx.run_a}: rate error {worst}"
    taus = pd.read_parquet(ctx.run_a / RESULTS / CANON.OUTPUT.ARTIFACT.TAU_RATE_MATCHED)
    recomputed = (taus["achieved_rate"] - taus["r_star"]).abs()
    assert (recomputed <= CANON.CONST.RATE_MATCH_TOL_ABS).all()
    assert np.allclose(recomputed, taus["abs_err"], rtol=0, atol=np.finfo(float).eps)
    per_row = taus.groupby(["spike_def_id", "target_rate", "g"])["abs_err"].max()
    joined = df.set_index(["spike_def_id", "target_rate", "g"])["achieved_rate_max_abs_err"]
    assert np.array_equal(per_row.loc[joined.index].to_numpy(), joined.to_numpy())


@check("branching_finite")
def branching_finite(ctx: CheckContext) -> None:
    df = _metrics(ctx.run_a)
    for col in B_COLUMNS:
        assert np.isfinite(df[col]).all(), f"{ctx.run_a}: {col} has non-finite values"
    assert np.allclose(df[B_TOT], df["b_time"] + df["b_depth"], rtol=0, atol=1e-15)
    assert np.allclose(df["delta_b_tot"], df[B_TOT] - df["b_tot_perm"], rtol=0, atol=1e-15)


def expected_gstar(df: pd.DataFrame, tie_tol: float, baseline: float) -> dict:
    """(spike_def_id, target_rate) -> (gstar, decided_by), by the rules of
    spec/04_GAIN_AND_GSTAR.md."""
    out = {}
    for (sd, r), group in df.groupby(["spike_def_id", "target_rate"]):
        ok = group[np.isfinite(group[B_TOT])]
        dev = (ok[B_TOT] - 1.0).abs()
        tied = ok[dev <= dev.min() + tie_tol]
        if len(tied) == 1:
            out[(sd, r)] = (float(tied["g"].iloc[0]), DECIDED.UNIQUE_MIN)
            continue
        dist = (tied["g"] - baseline).abs()
        closest = tied[dist <= dist.min() + DIST_ATOL]
        rule = DECIDED.CLOSEST_TO_BASELINE if len(closest) == 1 else DECIDED.SMALLER_GAIN
        out[(sd, r)] = (float(closest["g"].min()), rule)
    return out


def _gstar(run_dir: Path) -> dict:
    return read_json(run_dir / RESULTS / CANON.OUTPUT.ARTIFACT.GSTAR)


@check("gstar_is_argmin_in_grid")
def gstar_is_argmin_in_grid(ctx: CheckContext) -> None:
    cfg = load_config(ctx.run_a)
    grid_run = ctx.upstream_dir(GRID)
    want = expected_gstar(
        _metrics(grid_run), cfg["select_gstar"]["tie_tol_abs"], cfg["calibration"]["gain_baseline"]
    )
    doc = _gstar(ctx.run_a)
    assert len(doc["conditions"]) == len(want)
    for c in doc["conditions"]:
        assert c["gstar"] in CANON.CONST.GAIN_GRID_DEFAULT, f"gstar {c['gstar']} not in the grid"
        assert (c["gstar"], c["decided_by"]) == want[(c["spike_def_id"], c["target_rate"])], c
    metrics_path = grid_run / RESULTS / CANON.OUTPUT.ARTIFACT.METRICS
    assert doc["metrics_sha256"] == sha256_file(metrics_path)
    assert ctx.record()["summary"]["selection_inputs"] == [B_TOT]
    assert ctx.record()["model"] == ctx.record(grid_run)["model"]


# --- crafted metrics tables through --metrics ------------------------------------------
def _crafted(ctx: CheckContext, b_tot: dict[float, float], drop: float | None = None) -> Path:
    """The real metrics of run A with b_tot replaced per gain (same for every condition)."""
    df = _metrics(ctx.upstream_dir(GRID))
    df[B_TOT] = df["g"].map(b_tot).astype(float)
    if drop is not None:
        df = df[df["g"] != drop]
    path = ctx.scratch / CANON.OUTPUT.ARTIFACT.METRICS
    types = {c["name"]: c["type"] for c in contracts.view("metrics", "columns")["columns"]}
    writers.write_parquet(path, {c: df[c].to_numpy() for c in types}, types)
    return path


def _select(ctx: CheckContext, metrics: Path, *extra: str) -> tuple[int, str, dict | None]:
    runs = ctx.scratch / "selected"
    proc = cli(ctx.command(), "--runs-dir", str(runs), "--metrics", str(metrics), *extra)
    if proc.returncode != 0:
        return proc.returncode, proc.stderr.strip(), None
    [run_dir] = [p for p in runs.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]
    record = read_json(run_dir / CANON.OUTPUT.RUN_RECORD)
    [dep] = record["dependencies"]
    assert dep["run_id"] is None and dep["artifacts"][0]["contract"] == "metrics"
    assert dep["artifacts"][0]["sha256"] == sha256_file(metrics)
    return proc.returncode, proc.stderr.strip(), _gstar(run_dir)


def _base_table(gains: tuple[float, ...], baseline: float) -> dict[float, float]:
    """Every gain far from b_tot = 1, farther the farther it is from the baseline."""
    return {g: 2.0 + abs(g - baseline) for g in gains}


def _assert_all(doc: dict, gstar: float, rule: str, **extra: object) -> None:
    for c in doc["conditions"]:
        assert (c["gstar"], c["decided_by"]) == (gstar, rule), c
        for key, value in extra.items():
            assert c[key] == value, (key, c)


GAINS = CANON.CONST.GAIN_GRID_DEFAULT
BASELINE = CANON.CONST.GAIN_BASELINE


@check("gstar_crafted_unique_min")
def gstar_crafted_unique_min(ctx: CheckContext) -> None:
    table = _base_table(GAINS, BASELINE)
    best = GAINS[-1]
    table[best] = 1.0 + CANON.CONST.GSTAR_TIE_TOL_ABS / 4
    code, err, doc = _select(ctx, _crafted(ctx, table))
    assert code == CANON.CLI.EXIT.OK, err
    _assert_all(doc, best, DECIDED.UNIQUE_MIN, tied_gains=[best])


@check("gstar_crafted_tie_closest_to_baseline")
def gstar_crafted_tie_closest_to_baseline(ctx: CheckContext) -> None:
    table = _base_table(GAINS, BASELINE)
    far, near = GAINS[0], max(g for g in GAINS if g < BASELINE)
    table[far] = table[near] = 1.25
    table[GAINS[-1]] = 1.25 + CANON.CONST.GSTAR_TIE_TOL_ABS / 2
    code, err, doc = _select(ctx, _crafted(ctx, table))
    assert code == CANON.CLI.EXIT.OK, err
    _assert_all(doc, near, DECIDED.CLOSEST_TO_BASELINE, tied_gains=sorted([far, near, GAINS[-1]]))


@check("gstar_crafted_symmetric_tie_smaller_gain")
def gstar_crafted_symmetric_tie_smaller_gain(ctx: CheckContext) -> None:
    pairs = [
        (lo, hi)
        for lo, hi in itertools.combinations(GAINS, 2)
        if lo < BASELINE < hi and abs((BASELINE - lo) - (hi - BASELINE)) < DIST_ATOL
    ]
    assert pairs, "the gain grid has no pair symmetric around the baseline"
    lo, hi = pairs[0]
    table = _base_table(GAINS, BASELINE)
    table[lo], table[hi] = 0.75, 1.25
    code, err, doc = _select(ctx, _crafted(ctx, table))
    assert code == CANON.CLI.EXIT.OK, err
    _assert_all(doc, lo, DECIDED.SMALLER_GAIN, tied_gains=[lo, hi])


@check("gstar_crafted_nan_row_excluded")
def gstar_crafted_nan_row_excluded(ctx: CheckContext) -> None:
    table = _base_table(GAINS, BASELINE)
    table[BASELINE] = float("nan")
    table[GAINS[1]] = 1.5
    code, err, doc = _select(ctx, _crafted(ctx, table))
    assert code == CANON.CLI.EXIT.OK, err
    _assert_all(doc, GAINS[1], DECIDED.UNIQUE_MIN, n_nan_excluded=1)


@check("gstar_crafted_missing_gain_refused")
def gstar_crafted_missing_gain_refused(ctx: CheckContext) -> None:
    missing = GAINS[3]
    code, err, _ = _select(ctx, _crafted(ctx, _base_table(GAINS, BASELINE), drop=missing))
    assert code == CANON.CLI.EXIT.CONTRACT, f"exit {code}: {err}"
    assert len(err.splitlines()) == 1 and repr(missing) in err, err


@check("gstar_crafted_accuracy_refused")
def gstar_crafted_accuracy_refused(ctx: CheckContext) -> None:
    accuracy = CANON.ENUM.FORBIDDEN_SELECTION_INPUT.ACCURACY
    root = project_root()
    config = yaml.safe_load((root / CANON.PATH.CONFIG_PIPELINE).read_text())
    config["models_file"] = str(root / CANON.PATH.CONFIG_MODELS)
    config["datasets_file"] = str(root / CANON.PATH.CONFIG_DATASETS)
    config["select_gstar"]["selection_inputs"] = [accuracy]
    path = ctx.scratch / "accuracy.yaml"
    path.write_text(yaml.safe_dump(config))
    metrics = _crafted(ctx, _base_table(GAINS, BASELINE))
    code, err, _ = _select(ctx, metrics, "--config", str(path))
    assert code == CANON.CLI.EXIT.CONTRACT, f"exit {code}: {err}"
    assert accuracy in err and len(err.splitlines()) == 1, err

    df = pd.read_parquet(metrics)
    df[accuracy] = 0.5
    with_accuracy = ctx.scratch / ("with_" + CANON.OUTPUT.ARTIFACT.METRICS)
    df.to_parquet(with_accuracy, index=False)
    code, err, _ = _select(ctx, with_accuracy)
    assert code == CANON.CLI.EXIT.CONTRACT, f"exit {code}: {err}"
    assert accuracy in err, err
