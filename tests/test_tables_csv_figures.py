"""CSV twins and figure files: the deterministic CSV writer, the CSV validator against the
Parquet twin's contract, the figure validator, and the README findings block
(spec/13_TABLES_AND_FIGURES.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from canon import CANON
from critspec.errors import ConfigError, ContractError
from critspec.figures import chi_over_g, save_figure
from critspec.findings import END, START, replace_block
from critspec.store import writers
from critspec.validate import contracts
from critspec.validate.artifact import validate_artifact
from tests import figure_tables

SD = (CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS)
RATES = (0.25, 0.1 + 0.2)  # 0.30000000000000004: shortest repr must round-trip exactly
BINDINGS = {"spike_def_ids": list(SD), "target_rates": list(RATES)}
CSV, PARQUET = "identifiability_csv", "identifiability"


def _ident_frame() -> pd.DataFrame:
    rows = []
    for i, (sd, r) in enumerate(itertools.product(SD, RATES)):
        rows.append(
            {
                "spike_def_id": sd,
                "target_rate": r,
                "gstar": 1.0 + i / 3,
                "gstar_at_edge": i % 2 == 0,
                "b_tot_min": float("nan") if i == 1 else 1e-300 * (i + 1),
                "b_tot_max": 2.0 / 3.0,
                "b_tot_range": float(i),
                "b_tot_ci_width_max": float("nan"),
                **{
                    f"{name}{bound}": 0.1 * i - 1.0 / 7.0
                    for name in ("b_tot_gstar", "delta_baseline", "delta_lower", "delta_upper")
                    for bound in ("", "_ci_low", "_ci_high")
                },
                "differs_from_baseline": i == 3,
                "differs_from_neighbours": i > 1,
                "abs_dev_one_min": 1e-17 * i,
                "g_closest_to_one": 0.6 + i * 0.05,
                "near_one": True,
                "ci_width_within_max": True,
                "dm_peak_g": float("nan") if i == 2 else 1.0 + 0.15,
                "dm_peak": 0.1 + 0.2,
                "dm_peak_at_edge": False,
                "identifiable": i == 3,
                "why": "not identifiable: gstar is the baseline gain; [0.1 .. 0.2] (a)"
                if i != 3
                else "identifiable: yes",
            }
        )
    return pd.DataFrame(rows)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    types = {c["name"]: c["type"] for c in contracts.view(PARQUET, "columns")["columns"]}
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    writers.write_csv(path, writers.parquet_table(columns, types, path))


def test_csv_round_trips_every_value_and_passes_its_contract(tmp_path: Path) -> None:
    path = tmp_path / "ident.csv"
    frame = _ident_frame()
    _write_csv(path, frame)
    validate_artifact(CSV, path, BINDINGS)
    back = pd.read_csv(path)
    for name in frame.columns:
        if frame[name].dtype == np.float64:
            assert np.array_equal(back[name].to_numpy(), frame[name].to_numpy(), equal_nan=True)
        else:
            assert back[name].tolist() == frame[name].tolist(), name
    text = path.read_text()
    assert ",," in text and "nan" not in text.lower(), "NaN is an empty cell"
    assert "true" in text and "True" not in text
    assert repr(RATES[1]) in text


def test_csv_writer_is_byte_stable(tmp_path: Path) -> None:
    _write_csv(tmp_path / "a.csv", _ident_frame())
    _write_csv(tmp_path / "b.csv", _ident_frame())
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: [",".join(reversed(lines[0].split(","))), *lines[1:]], "order"),
        (lambda lines: [lines[0].replace("gstar,", "g_star,", 1), *lines[1:]], "column"),
        (lambda lines: [lines[0], lines[1].replace("true", "maybe", 1), *lines[2:]], "CSV"),
        (lambda lines: [lines[0], *lines[1:-1]], "coverage"),
        (lambda lines: [lines[0], ",".join([""] + lines[1].split(",")[1:]), *lines[2:]], "null"),
    ],
)
def test_csv_violations_fail(tmp_path: Path, mutate, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "ident.csv"
    _write_csv(path, _ident_frame())
    lines = path.read_text().splitlines()
    path.write_text("\n".join(mutate(lines)) + "\n")
    with pytest.raises(ContractError, match=message):
        validate_artifact(CSV, path, BINDINGS)


def test_figure_files_pass_and_broken_ones_fail(tmp_path: Path) -> None:
    png, pdf = CANON.OUTPUT.FIGURE.CHI_OVER_G
    save_figure(chi_over_g(figure_tables.summary_table()), tmp_path / png, tmp_path / pdf)
    for name in (png, pdf):
        validate_artifact("fig_chi_over_g", tmp_path / name)
    cut = tmp_path / "cut" / pdf
    cut.parent.mkdir()
    cut.write_bytes((tmp_path / pdf).read_bytes()[:-200])
    with pytest.raises(ContractError, match="not a complete PDF"):
        validate_artifact("fig_chi_over_g", cut)
    fake = tmp_path / "fake" / png
    fake.parent.mkdir()
    fake.write_bytes(b"GIF89a" + bytes(64))
    with pytest.raises(ContractError, match="not a PNG"):
        validate_artifact("fig_chi_over_g", fake)


def test_findings_block_replaces_only_between_markers() -> None:
    text = f"# head\n{START}\nold\n{END}\ntail\n"
    assert replace_block(text, f"{START}\nnew\n{END}") == f"# head\n{START}\nnew\n{END}\ntail\n"
    with pytest.raises(ConfigError, match="findings"):
        replace_block("# no markers\n", f"{START}\n{END}")
    with pytest.raises(ConfigError):
        replace_block(text + text, f"{START}\n{END}")
