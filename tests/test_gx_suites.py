"""The generated Great Expectations suites, run by GX itself on conforming and broken
tables: an independent check of the column contracts (contracts/*.gx_suite.json)."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from canon import CANON
from critspec.paths import contracts_dir
from critspec.validate import contracts

gx = pytest.importorskip("great_expectations")
from great_expectations.expectations.expectation_configuration import (  # noqa: E402
    ExpectationConfiguration,
)

SD = [CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS]


def run_suite(contract_id: str, frame: pd.DataFrame) -> set[tuple[str, str | None]]:
    """The (expectation type, column) pairs GX reports as failed."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    doc = json.loads(
        (contracts_dir() / contracts.entry(contract_id)["views"]["gx_suite"]).read_text()
    )
    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name=doc["name"])
    for e in doc["expectations"]:
        suite.add_expectation_configuration(
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"])
        )
    suite = context.suites.add(suite)
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset("frame")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    result = batch.validate(suite)
    return {
        (r.expectation_config.type, r.expectation_config.kwargs.get("column"))
        for r in result.results
        if not r.success
    }


def metrics_frame() -> pd.DataFrame:
    rows = list(itertools.product(SD, [0.25, 0.5], [0.5, 1.5]))
    cols: dict[str, object] = {}
    for spec in contracts.view("metrics", "columns")["columns"]:
        cols[spec["name"]] = (
            np.ones(len(rows), dtype=spec["type"]) if spec["type"] != "string" else ""
        )
    frame = pd.DataFrame(cols)
    frame["spike_def_id"] = [r[0] for r in rows]
    frame["target_rate"] = [r[1] for r in rows]
    frame["g"] = [r[2] for r in rows]
    frame["achieved_rate_mean"] = 0.25
    return frame


def test_conforming_metrics_pass() -> None:
    assert run_suite("metrics", metrics_frame()) == set()


def test_broken_metrics_fail_on_each_violation() -> None:
    frame = metrics_frame()
    frame.loc[0, "spike_def_id"] = "SPIKE_SIDEWAYS"
    frame.loc[1, "achieved_rate_mean"] = 3.0
    frame = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    failed = run_suite("metrics", frame)
    assert failed == {
        ("expect_column_values_to_be_in_set", "spike_def_id"),
        ("expect_column_values_to_be_between", "achieved_rate_mean"),
        ("expect_compound_columns_to_be_unique", None),
    }


def test_missing_column_fails() -> None:
    failed = run_suite("metrics", metrics_frame().drop(columns=["n_events"]))
    assert ("expect_table_columns_to_match_ordered_list", None) in failed


@pytest.mark.parametrize("arrow_type", ["string", "large_string", "string_view", "dictionary"])
def test_suite_accepts_every_string_encoding_read_back_by_pandas(
    tmp_path: Path, arrow_type: str
) -> None:
    """A table whose strings are stored as pandas 2, pandas 3 or pyarrow store them (issue 7)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(metrics_frame(), preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = table.column(i).cast(pa.string())
            if arrow_type == "dictionary":
                column = column.dictionary_encode()
            elif arrow_type != "string":
                column = column.cast(getattr(pa, arrow_type)())
            table = table.set_column(i, field.name, column)
    path = tmp_path / CANON.OUTPUT.ARTIFACT.METRICS
    pq.write_table(table, path)
    assert run_suite("metrics", pd.read_parquet(path)) == set()
