"""Pydantic models of spec/artifacts.yaml: one contract per artifact (spec/00_OVERVIEW.md,
spec/08_TEST_PLAN.md).

CANON references (`CANON.X.Y`) inside the file are resolved against the canon
spec while loading, so that a contract names an enum group or a basename
once and every generated view carries the resolved values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canon import CANON

JsonType = Literal["string", "integer", "number", "boolean", "object", "array"]
ArrowType = Literal["string", "float64", "float32", "int64", "int32", "bool"]
NpzDtype = Literal["float32", "float64", "int64", "int32", "uint8", "uint16", "bool"]
FMT = CANON.ENUM.ARTIFACT_FORMAT
Format = Literal[
    FMT.JSON, FMT.YAML, FMT.JSONL, FMT.NPZ, FMT.PARQUET, FMT.CSV, FMT.FIGURE, FMT.HTML, FMT.ARCHIVE
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One JSON field; objects list their own fields (closed unless `open`)."""

    type: JsonType
    required: bool = True
    nullable: bool = False
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    run_id: bool = False
    relative_path: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    length: str | None = None
    fields: dict[str, FieldSpec] | None = None
    items: FieldSpec | None = None
    open: bool = False

    @model_validator(mode="after")
    def _shape(self) -> FieldSpec:
        if self.type == "object" and self.fields is None and not self.open:
            raise ValueError("object field needs `fields` or `open: true`")
        if self.type == "array" and self.items is None:
            raise ValueError("array field needs `items`")
        if self.type not in ("object",) and (self.fields is not None or self.open):
            raise ValueError("`fields`/`open` only apply to objects")
        return self


class ArraySpec(_Strict):
    dtype: NpzDtype
    shape: tuple[str | int, ...]
    finite: bool = True
    minimum: float | None = None
    maximum: float | None = None


class ColumnSpec(_Strict):
    type: ArrowType
    enum: tuple[str, ...] | None = None
    nullable: bool = False
    allow_nan: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None


class ArtifactSpec(_Strict):
    basename: str | tuple[str, ...]
    subdir: str | None
    format: Format
    title: str
    description: str
    fields: dict[str, FieldSpec] | None = None
    arrays: dict[str, ArraySpec] | None = None
    columns: dict[str, ColumnSpec] | None = None
    row_key: tuple[str, ...] = ()
    coverage: dict[str, str] = Field(default_factory=dict)
    mirrors: str | None = None

    @model_validator(mode="after")
    def _content_matches_format(self) -> ArtifactSpec:
        want = {
            FMT.JSON: "fields",
            FMT.YAML: "fields",
            FMT.JSONL: "fields",
            FMT.NPZ: "arrays",
            FMT.PARQUET: "columns",
            FMT.CSV: "mirrors",
            FMT.FIGURE: None,
            FMT.HTML: None,
            FMT.ARCHIVE: None,
        }[self.format]
        for name in ("fields", "arrays", "columns", "mirrors"):
            present = getattr(self, name) is not None
            if present != (name == want):
                takes = f"`{want}`" if want else "no content spec"
                raise ValueError(f"format {self.format} takes {takes} and no `{name}`")
        cols = set(self.columns or {})
        for col in (*self.row_key, *self.coverage):
            if col not in cols:
                raise ValueError(f"row_key/coverage column {col!r} is not a declared column")
        return self

    @property
    def basenames(self) -> tuple[str, ...]:
        return self.basename if isinstance(self.basename, tuple) else (self.basename,)


class Binding(_Strict):
    source: Literal["run_record", "config"]
    path: str


class ArtifactsSpec(_Strict):
    symbols: dict[str, str]
    bindings: dict[str, Binding]
    artifacts: dict[str, ArtifactSpec]

    @model_validator(mode="after")
    def _symbols_bound(self) -> ArtifactsSpec:
        if set(self.bindings) != set(self.symbols):
            raise ValueError("every symbol needs exactly one binding")
        for art_id, art in self.artifacts.items():
            for arr in (art.arrays or {}).values():
                for dim in arr.shape:
                    if isinstance(dim, str) and dim not in self.symbols:
                        raise ValueError(f"{art_id}: shape symbol {dim!r} is not declared")
            for lst in art.coverage.values():
                if lst not in self.symbols:
                    raise ValueError(f"{art_id}: coverage list {lst!r} is not declared")
            if art.mirrors is not None:
                twin = self.artifacts.get(art.mirrors)
                if twin is None or twin.format != FMT.PARQUET:
                    raise ValueError(f"{art_id}: mirrors {art.mirrors!r}, not a Parquet contract")
        return self


def resolve_canon_refs(node: Any, lookup: Any, where: str = "") -> Any:
    """Replace every 'CANON.X.Y' string by its value (an enum group becomes its values)."""
    if isinstance(node, dict):
        return {k: resolve_canon_refs(v, lookup, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_canon_refs(v, lookup, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("CANON."):
        try:
            value = lookup(node.removeprefix("CANON."))
        except KeyError:
            raise ValueError(f"{where.lstrip('.')}: unresolved reference {node}") from None
        return list(value.values()) if isinstance(value, dict) else value
    return node
