"""contracts/<id>.gx_suite.json: a Great Expectations (1.x) suite for a Parquet artifact.

The same column contract, exported for teams that run GX; critspec's own
validator does not need GX installed. Coverage (a product of configured lists)
depends on the run's config and has no static expectation; it is stated in meta.
"""

from __future__ import annotations

from typing import Any

from critspec.spec.artifacts_spec import ArtifactSpec

# Type names as a pandas batch reports them (GX checks types on the loaded frame).
# String columns get no type rule: pandas 2 and 3 disagree on their dtype, and their
# enum rule already admits nothing but the listed strings.
ARROW_TO_PANDAS_TYPES = {
    "float64": ["float64"],
    "float32": ["float32"],
    "int64": ["int64"],
    "int32": ["int32"],
    "bool": ["bool"],
}


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def render(art_id: str, art: ArtifactSpec, header: str) -> dict[str, Any]:
    cols = art.columns or {}
    expectations = [_expect("expect_table_columns_to_match_ordered_list", column_list=list(cols))]
    for name, col in cols.items():
        if col.type in ARROW_TO_PANDAS_TYPES:
            expectations.append(
                _expect(
                    "expect_column_values_to_be_in_type_list",
                    column=name,
                    type_list=ARROW_TO_PANDAS_TYPES[col.type],
                )
            )
        # pandas reads NaN as null, so a column that admits NaN gets no not-null rule.
        if not col.nullable and not col.allow_nan:
            expectations.append(_expect("expect_column_values_to_not_be_null", column=name))
        if col.enum is not None:
            expectations.append(
                _expect("expect_column_values_to_be_in_set", column=name, value_set=list(col.enum))
            )
        low = col.exclusive_minimum if col.exclusive_minimum is not None else col.minimum
        if low is not None or col.maximum is not None:
            bounds: dict[str, Any] = {"column": name, "min_value": low, "max_value": col.maximum}
            if col.exclusive_minimum is not None:
                bounds["strict_min"] = True
            expectations.append(_expect("expect_column_values_to_be_between", **bounds))
    if art.row_key:
        expectations.append(
            _expect("expect_compound_columns_to_be_unique", column_list=list(art.row_key))
        )
    return {
        "name": f"{art_id}_suite",
        "expectations": expectations,
        "meta": {"generated": header, "coverage": dict(art.coverage)},
    }
