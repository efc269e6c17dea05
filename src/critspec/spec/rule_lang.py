"""The rule language of contract packs (spec/packs/README.md).

A rule is a Python *expression* parsed with `ast` and accepted only if every
node is on a short whitelist: names, attribute and item access, constants,
list/tuple literals, comparisons, arithmetic, and/or/not, `x if c else y`, and
calls of the named functions below. No statements, lambdas, comprehensions,
keyword arguments or dunder attributes exist, so nothing in a spec can run
arbitrary code. Evaluation is a pure walk of the tree over values the pack
validator loaded: JSON documents, NPZ arrays, bindings and the pack's constants.

A value that is not there (an optional field, an absent file, a missing key)
raises `Absent`; `has(x)` and `get(x, default)` are the only forms that catch it.
"""

from __future__ import annotations

import ast
import hashlib
import math
import operator
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from canon import CANON


def _range(*args: int) -> list[int]:
    """range() as a list, refused above CANON.CONST.RULE_RANGE_MAX items: a length read
    from an input must never size memory (compare listed indices with set arithmetic)."""
    r = range(*args)
    if len(r) > CANON.CONST.RULE_RANGE_MAX:
        raise ValueError(
            f"range of {len(r)} items is above {CANON.CONST.RULE_RANGE_MAX}; not built"
        )
    return list(r)


def _number(cast: Callable[[Any], Any], value: Any) -> Any:
    # bool is an int in Python; a JSON true is not a number to the consumers packs mirror.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{cast.__name__}() of a {type(value).__name__}")
    return cast(value)


def _text(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise TypeError(f"str() of a {type(value).__name__}")
    return str(value)


# Functions a rule may call; each takes positional arguments only.
PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "sorted": lambda xs: sorted(xs),
    "range": _range,
    "keys": lambda d: sorted(_as_mapping(d)),
    "column": lambda rows, key: [_item(r, key) for r in rows],
    "first": lambda rows, key, value: _first(rows, key, value),
    "overlap": lambda a, b: sorted(set(a) & set(b)),
    # Items of a that are not in b (set arithmetic; nothing sized by a value in the data).
    "difference": lambda a, b: sorted(set(a) - set(b)),
    "duplicates": lambda xs: sorted(k for k, n in Counter(xs).items() if n > 1),
    "missing": lambda obj, names: sorted(n for n in names if n not in _as_mapping(obj)),
    "close": lambda a, b, rtol: math.isclose(a, b, rel_tol=rtol, abs_tol=0.0),
    "sqrt": lambda x: math.sqrt(_number(float, x)),
    # Python's own spellings, as the consumers format values into strings they hash.
    "int": lambda x: _number(int, x),
    "float": lambda x: _number(float, x),
    "str": _text,
    "lower": lambda s: _as_str(s).lower(),
    "sha256_text": lambda s: hashlib.sha256(_as_str(s).encode("utf-8")).hexdigest(),
}
FILE_FUNCTIONS = ("exists", "sha256", "path", "file")
SPECIAL_FORMS = ("has", "get")
FUNCTIONS = frozenset((*PLAIN_FUNCTIONS, *FILE_FUNCTIONS, *SPECIAL_FORMS))

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type, tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", lambda a, b: a in b),
    ast.NotIn: ("not in", lambda a, b: a not in b),
}
_ALLOWED = (
    ast.Expression,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Compare,
    ast.BinOp,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.IfExp,
    ast.Call,
    *_BINOPS,
    *_CMPOPS,
)
ARRAY_ATTRIBUTES = ("shape", "dtype", "ndim")
SHOWN_ITEMS = 8


class Absent(Exception):
    """A value the expression reads is not there; the message names it."""


@dataclass(frozen=True)
class Expr:
    """A parsed, whitelisted expression and the free names it reads."""

    source: str
    tree: ast.Expression = field(repr=False, compare=False)
    names: frozenset[str]


@dataclass(frozen=True)
class Doc:
    """A pack file that is present: its path in the pack directory and its content.

    `digest` computes the file's sha256 when a rule asks for it (an opaque model file
    is not read otherwise)."""

    file_id: str
    path: str
    digest: Callable[[], str] = field(repr=False, compare=False)
    content: Any

    @property
    def sha256(self) -> str:
        return self.digest()


@dataclass(frozen=True)
class NoFile:
    """A declared pack file that is absent (its path, when the pack fixes one)."""

    file_id: str
    path: str | None


def parse(source: str) -> Expr:
    """Parse one rule expression; ValueError names the first construct not allowed."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an expression: {source!r} ({exc.msg})") from None
    funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(f"{type(node).__name__} is not allowed in rules: {source!r}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ValueError(f"attribute {node.attr!r} is not allowed in rules: {source!r}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ValueError(f"only {', '.join(sorted(FUNCTIONS))} may be called: {source!r}")
            if node.keywords:
                raise ValueError(f"keyword arguments are not allowed in rules: {source!r}")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in funcs}
    return Expr(source=source.strip(), tree=tree, names=frozenset(names))


def parse_each(source: str) -> tuple[str, Expr]:
    """`NAME in EXPR`: the loop variable and the expression of the sequence it runs over."""
    name, sep, rest = source.strip().partition(" in ")
    if not sep or not name.isidentifier():
        raise ValueError(f"`each` must read `NAME in EXPR`: {source!r}")
    return name, parse(rest)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Doc):
        value = value.content
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _item(container: Any, key: Any) -> Any:
    if isinstance(container, Doc):
        container = container.content
    if isinstance(container, NoFile):
        raise Absent(f"file {container.file_id} is absent")
    if isinstance(container, Mapping):
        if key not in container:
            raise Absent(f"key {key!r} is absent")
        return container[key]
    if isinstance(container, list | tuple):
        if not isinstance(key, int) or not -len(container) <= key < len(container):
            raise Absent(f"index {key!r} is outside a list of {len(container)}")
        return container[key]
    raise TypeError(f"cannot index a {type(container).__name__}")


def _attribute(value: Any, name: str) -> Any:
    if isinstance(value, np.ndarray):
        if name == "shape":
            return [int(d) for d in value.shape]
        if name == "dtype":
            return str(value.dtype)
        if name == "ndim":
            return int(value.ndim)
        raise TypeError(f"arrays have only {ARRAY_ATTRIBUTES}, not {name!r}")
    return _item(value, name)


def _first(rows: list[Any], key: str, value: Any) -> Any:
    for row in rows:
        if _item(row, key) == value:
            return row
    raise Absent(f"no row with {key} == {value!r}")


@dataclass(frozen=True)
class Context:
    """What a rule can read: named values (lazy ones are zero-argument callables) and files."""

    values: Mapping[str, Any]
    files: Mapping[str, Doc | NoFile | list[Doc]]
    lazy: frozenset[str] = frozenset()

    def lookup(self, name: str) -> Any:
        if name in self.lazy:
            return self.values[name]()
        if name in self.values:
            return self.values[name]
        return self.files[name]


def _file_call(name: str, arg: Any, ctx: Context) -> Any:
    if name == "file":
        if arg not in ctx.files:
            raise Absent(f"no pack file {arg!r}")
        return ctx.files[arg]
    if isinstance(arg, list):
        raise TypeError(f"{name}() takes one file, not a list of files")
    if not isinstance(arg, Doc | NoFile):
        raise TypeError(f"{name}() takes a pack file, got {type(arg).__name__}")
    if name == "exists":
        return isinstance(arg, Doc)
    if name == "path":
        if arg.path is None:
            raise Absent(f"file {arg.file_id} has no path")
        return arg.path
    if isinstance(arg, NoFile):
        raise Absent(f"file {arg.file_id} is absent")
    return arg.sha256


def _eval(node: ast.AST, ctx: Context) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, ctx)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return ctx.lookup(node.id)
    if isinstance(node, ast.Attribute):
        return _attribute(_eval(node.value, ctx), node.attr)
    if isinstance(node, ast.Subscript):
        return _item(_eval(node.value, ctx), _eval(node.slice, ctx))
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, ctx) for e in node.elts]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, ctx), _eval(node.right, ctx))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, ctx)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BoolOp):
        want = isinstance(node.op, ast.Or)
        for value_node in node.values:
            if bool(_eval(value_node, ctx)) == want:
                return want
        return not want
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, ctx) else node.orelse, ctx)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ctx)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, ctx)
            if not _CMPOPS[type(op)][1](left, right):
                return False
            left = right
        return True
    assert isinstance(node, ast.Call)  # the whitelist admits nothing else
    name = node.func.id  # type: ignore[attr-defined]
    if name == "has":
        try:
            _eval(node.args[0], ctx)
        except Absent:
            return False
        return True
    if name == "get":
        try:
            return _eval(node.args[0], ctx)
        except Absent:
            return _eval(node.args[1], ctx)
    args = [_eval(a, ctx) for a in node.args]
    if name in FILE_FUNCTIONS:
        return _file_call(name, *args, ctx)
    return PLAIN_FUNCTIONS[name](*args)


def evaluate(expr: Expr, ctx: Context) -> Any:
    """The value of `expr`; raises Absent, or TypeError/ValueError/ArithmeticError on bad data."""
    return _eval(expr.tree, ctx)


def show(value: Any) -> str:
    """A short, stable rendering of a value for a violation line."""
    if isinstance(value, Doc | NoFile):
        return f"file {value.file_id}"
    if isinstance(value, list):
        items = [show(v) for v in value[:SHOWN_ITEMS]]
        more = f", ... ({len(value)} items)" if len(value) > SHOWN_ITEMS else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in sorted(value.items())) + "}"
    return repr(value)


def explain(expr: Expr, ctx: Context) -> tuple[str, str]:
    """(found, expected) for a check that did not hold, read off its top-level comparison."""
    body = expr.tree.body
    if isinstance(body, ast.Compare) and len(body.ops) == 1:
        op = _CMPOPS[type(body.ops[0])][0]
        found = _eval(body.left, ctx)
        return show(found), f"{op} {show(_eval(body.comparators[0], ctx))}"
    if isinstance(body, ast.Compare):
        operands = [_eval(n, ctx) for n in (body.left, *body.comparators)]
        return show(operands), f"`{expr.source}`"
    if isinstance(body, ast.Call) and body.func.id == "has":  # type: ignore[attr-defined]
        return "absent", f"`{ast.unparse(body.args[0])}` present"
    if isinstance(body, ast.Call) and body.func.id == "close":  # type: ignore[attr-defined]
        found, want, rtol = (_eval(a, ctx) for a in body.args)
        return show(found), f"≈ {show(want)} (relative tolerance {show(rtol)})"
    return show(_eval(body, ctx)), f"`{expr.source}` to hold"
