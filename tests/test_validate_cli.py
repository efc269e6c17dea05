"""`critspec validate` on conforming and broken artifacts: exit 0, or exit 2 with one line."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from canon import CANON
from critspec.cli import main
from critspec.errors import ContractError
from critspec.store import writers
from critspec.validate import contracts

SUB = CANON.CLI.SUBCOMMAND
SD = [CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS]
RATES = [0.25, 0.5]
GAINS = [0.5, 1.5, 3.0]
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
ACCURACY = CANON.ENUM.FORBIDDEN_SELECTION_INPUT.ACCURACY


def run_validate(
    capsys: pytest.CaptureFixture[str], contract: str, path: Path, *binds: str
) -> tuple[int, str]:
    args = [SUB.VALIDATE, "--contract", contract, str(path)]
    for b in binds:
        args += ["--bind", b]
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def assert_rejected(code: int, err: str, *fragments: str) -> None:
    assert code == CANON.CLI.EXIT.CONTRACT, err
    assert len(err.splitlines()) == 1, f"expected one line, got: {err!r}"
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"


# --- NPZ ----------------------------------------------------------------------
def stats(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS
    writers.write_npz(path, arrays)
    return path


GOOD_MU = np.zeros((2, 3), np.float32)
GOOD_SIGMA = np.ones((2, 3), np.float32)


def test_npz_conforming(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stats(tmp_path, mu=GOOD_MU, sigma=GOOD_SIGMA)
    assert run_validate(capsys, "calibration_stats", path, "L=2", "d_ff=3")[0] == CANON.CLI.EXIT.OK


def test_npz_missing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stats(tmp_path, mu=GOOD_MU)
    assert_rejected(*run_validate(capsys, "calibration_stats", path, "L=2", "d_ff=3"), "sigma")


def test_npz_wrong_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stats(tmp_path, mu=GOOD_MU, sigma=GOOD_SIGMA)
    assert_rejected(*run_validate(capsys, "calibration_stats", path, "L=3", "d_ff=3"), "shape")


def test_npz_wrong_dtype(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stats(tmp_path, mu=GOOD_MU.astype(np.float64), sigma=GOOD_SIGMA)
    assert_rejected(
        *run_validate(capsys, "calibration_stats", path, "L=2", "d_ff=3"), "dtype", "mu"
    )


def test_npz_object_array(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, mu=np.array([{"a": 1}], dtype=object), sigma=GOOD_SIGMA)
    assert_rejected(*run_validate(capsys, "calibration_stats", path, "L=2", "d_ff=3"), "pickled")


def test_npz_nan_where_finite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sigma = GOOD_SIGMA.copy()
    sigma[1, 2] = np.nan
    path = stats(tmp_path, mu=GOOD_MU, sigma=sigma)
    assert_rejected(
        *run_validate(capsys, "calibration_stats", path, "L=2", "d_ff=3"), "non-finite", "[1, 2]"
    )


def test_npz_unbound_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stats(tmp_path, mu=GOOD_MU, sigma=GOOD_SIGMA)
    assert_rejected(*run_validate(capsys, "calibration_stats", path, "L=2"), "--bind d_ff")


# --- Parquet ------------------------------------------------------------------
def metrics_columns() -> dict[str, list]:
    rows = list(itertools.product(SD, RATES, GAINS))
    cols: dict[str, list] = {}
    for spec in contracts.view("metrics", "columns")["columns"]:
        name, kind = spec["name"], spec["type"]
        if kind == "int64":
            cols[name] = [1] * len(rows)
        elif kind == "float64":
            cols[name] = [0.25] * len(rows)
        else:
            cols[name] = [""] * len(rows)
    cols["spike_def_id"] = [r[0] for r in rows]
    cols["target_rate"] = [r[1] for r in rows]
    cols["g"] = [r[2] for r in rows]
    return cols


def write_metrics(tmp_path: Path, cols: dict[str, list]) -> Path:
    path = tmp_path / CANON.OUTPUT.ARTIFACT.METRICS
    types = {c["name"]: c["type"] for c in contracts.view("metrics", "columns")["columns"]}
    writers.write_parquet(path, cols, {k: v for k, v in types.items() if k in cols})
    return path


def metrics_binds() -> list[str]:
    return [
        "spike_def_ids=" + ",".join(SD),
        "target_rates=" + ",".join(map(str, RATES)),
        "gains=" + ",".join(map(str, GAINS)),
    ]


def test_parquet_conforming(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_metrics(tmp_path, metrics_columns())
    code, err = run_validate(capsys, "metrics", path, *metrics_binds())
    assert code == CANON.CLI.EXIT.OK, err


def test_parquet_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cols = metrics_columns()
    del cols[B_TOT]
    path = write_metrics(tmp_path, cols)
    assert_rejected(
        *run_validate(capsys, "metrics", path, *metrics_binds()), "missing column", B_TOT
    )


def test_parquet_value_outside_enum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cols = metrics_columns()
    cols["spike_def_id"][0] = "SPIKE_SIDEWAYS"
    path = write_metrics(tmp_path, cols)
    assert_rejected(*run_validate(capsys, "metrics", path, *metrics_binds()), "SPIKE_SIDEWAYS")


def test_parquet_duplicate_row_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cols = metrics_columns()
    cols["g"][1] = cols["g"][0]
    path = write_metrics(tmp_path, cols)
    assert_rejected(*run_validate(capsys, "metrics", path, *metrics_binds()), "duplicate row key")


def test_parquet_incomplete_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cols = {k: v[:-1] for k, v in metrics_columns().items()}
    path = write_metrics(tmp_path, cols)
    assert_rejected(
        *run_validate(capsys, "metrics", path, *metrics_binds()),
        "incomplete coverage",
        str(GAINS[-1]),
    )


def test_parquet_nan_where_not_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cols = metrics_columns()
    cols["achieved_rate_mean"][2] = float("nan")
    path = write_metrics(tmp_path, cols)
    assert_rejected(*run_validate(capsys, "metrics", path, *metrics_binds()), "NaN", "row 2")


def test_parquet_nan_allowed_in_b_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cols = metrics_columns()
    cols[B_TOT][2] = float("nan")
    path = write_metrics(tmp_path, cols)
    assert run_validate(capsys, "metrics", path, *metrics_binds())[0] == CANON.CLI.EXIT.OK


# --- JSON ---------------------------------------------------------------------
def gstar_doc() -> dict:
    return {
        "method": CANON.ENUM.GSTAR_METHOD.BTOT_NEAR_ONE,
        "selection_inputs": [B_TOT],
        "tie_tol_abs": 0.0,
        "gain_baseline": 1.0,
        "gains": GAINS,
        "metrics_sha256": "0" * 64,
        "conditions": [
            {
                "spike_def_id": SD[0],
                "target_rate": RATES[0],
                "gstar": GAINS[0],
                "b_tot_at_gstar": 0.75,
                "abs_dev": 0.25,
                "tied_gains": [GAINS[0]],
                "decided_by": CANON.ENUM.GSTAR_DECIDED_BY.UNIQUE_MIN,
                "n_nan_excluded": 0,
                "b_tot_by_gain": [0.75, *([None] * (len(GAINS) - 1))],
            }
        ],
    }


def test_json_conforming(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / CANON.OUTPUT.ARTIFACT.GSTAR
    writers.write_json(path, gstar_doc())
    assert run_validate(capsys, "gstar", path)[0] == CANON.CLI.EXIT.OK


def test_json_field_of_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = gstar_doc()
    doc["conditions"][0]["gstar"] = "one point one"
    path = tmp_path / CANON.OUTPUT.ARTIFACT.GSTAR
    writers.write_json(path, doc)
    assert_rejected(*run_validate(capsys, "gstar", path), "conditions/0/gstar")


def test_json_unknown_key_and_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = gstar_doc()
    doc[ACCURACY] = 0.5
    path = tmp_path / CANON.OUTPUT.ARTIFACT.GSTAR
    writers.write_json(path, doc)
    assert_rejected(*run_validate(capsys, "gstar", path), ACCURACY)
    path.write_text(json.dumps(gstar_doc()).replace('"abs_dev": 0.25', '"abs_dev": NaN'))
    assert_rejected(*run_validate(capsys, "gstar", path), "NaN")


def test_rate_targets_length_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {
        "n_layers": 2,
        "d_ff": 3,
        "tau0": 2.0,
        "eps": 0.5,
        "gain_baseline": 1.0,
        "samples_per_layer": 6,
        "n_sigma_clamped": 0,
        "spike_defs": [
            {
                "spike_def_id": SD[0],
                "r_base": [0.1, 0.2],
                "r_base_mean": 0.15,
                "targets": [{"target_rate": 0.3, "r_star": [0.2, 0.4], "clipped": False}],
            }
        ],
    }
    path = tmp_path / CANON.OUTPUT.ARTIFACT.RATE_TARGETS
    writers.write_json(path, doc)
    assert run_validate(capsys, "rate_targets", path, "L=2")[0] == CANON.CLI.EXIT.OK
    assert_rejected(*run_validate(capsys, "rate_targets", path, "L=3"), "r_base", "L=3")


def test_unknown_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    assert_rejected(*run_validate(capsys, "no_such_contract", path), "unknown contract")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(ContractError):
        main([SUB.VALIDATE, "--contract", "no_such_contract", str(path), "--debug"])


# --- Logical string types (issue 7) ----------------------------------------------
def _string_columns(cols: dict[str, list]) -> list[str]:
    specs = contracts.view("metrics", "columns")["columns"]
    return [s["name"] for s in specs if s["type"] == "string" and s["name"] in cols]


def _write_with(tmp_path: Path, writer: str) -> tuple[Path, dict[str, object]]:
    """The same conforming metrics table as pandas 2, pandas 3 or pyarrow write it."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = metrics_columns()
    path = tmp_path / f"{writer}_{CANON.OUTPUT.ARTIFACT.METRICS}"
    frame = pd.DataFrame(cols)
    strings = _string_columns(cols)
    if writer == "pandas2_object":  # pandas 2's default: object columns -> Arrow string
        frame[strings] = frame[strings].astype(object)
        frame.to_parquet(path, index=False)
    elif writer == "pandas3_default":  # pandas 3's default str dtype -> large_string
        frame.to_parquet(path, index=False)
    elif writer == "pandas_category":  # categorical -> dictionary<int8, string>
        frame[strings] = frame[strings].astype("category")
        frame.to_parquet(path, index=False)
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        kind = pa.string_view() if writer == "pyarrow_string_view" else pa.large_string()
        for name in strings:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, table.column(name).cast(kind))
        pq.write_table(table, path)
    written = pq.read_schema(path)
    return path, {name: written.field(name).type for name in strings}


@pytest.mark.parametrize(
    "writer",
    [
        "pandas2_object",
        "pandas3_default",
        "pandas_category",
        "pyarrow_large_string",
        "pyarrow_string_view",
    ],
)
def test_parquet_string_encodings_are_one_logical_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], writer: str
) -> None:
    import pyarrow as pa

    path, types = _write_with(tmp_path, writer)
    code, err = run_validate(capsys, "metrics", path, *metrics_binds())
    assert code == CANON.CLI.EXIT.OK, (types, err)
    if writer.startswith("pyarrow"):  # the encoding really differs from the contract's
        assert all(t != pa.string() for t in types.values()), types


def test_parquet_integer_width_stays_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = write_metrics(tmp_path, metrics_columns())
    table = pq.read_table(path)
    specs = contracts.view("metrics", "columns")["columns"]
    name = next(s["name"] for s in specs if s["type"] == "int64")
    i = table.schema.get_field_index(name)
    pq.write_table(table.set_column(i, name, table.column(name).cast(pa.int32())), path)
    assert_rejected(*run_validate(capsys, "metrics", path, *metrics_binds()), name, "int32")


def test_parquet_enum_checked_through_dictionary_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    cols = metrics_columns()
    cols["spike_def_id"] = ["SPIKE_NOT_DECLARED"] * len(cols["spike_def_id"])
    path = write_metrics(tmp_path, cols)
    table = pq.read_table(path)
    i = table.schema.get_field_index("spike_def_id")
    pq.write_table(table.set_column(i, "spike_def_id", table.column(i).dictionary_encode()), path)
    assert_rejected(*run_validate(capsys, "metrics", path, *metrics_binds()), "SPIKE_NOT_DECLARED")
