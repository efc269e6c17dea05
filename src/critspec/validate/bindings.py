"""Bind contract symbols (L, d_ff, N, T, configured lists) to values (spec/00_OVERVIEW.md,
spec/08_TEST_PLAN.md).

Within a run they come from run_record.json and config_resolved.yaml as the
contract index declares; for an external file they come from `--bind KEY=VALUE`.
"""

from __future__ import annotations

from typing import Any

from critspec.errors import ContractError
from critspec.validate import contracts

Bindings = dict[str, Any]


def _scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def parse_binds(pairs: list[str]) -> Bindings:
    """'L=4', 'gains=0.7,0.8' -> {'L': 4, 'gains': [0.7, 0.8]}; list symbols always lists."""
    out: Bindings = {}
    list_symbols = {
        lst for e in contracts.index()["artifacts"].values() for lst in _coverage_lists(e)
    }
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ContractError(f"--bind {pair!r}: expected KEY=VALUE")
        if key not in contracts.index()["bindings"]:
            known = ", ".join(sorted(contracts.index()["bindings"]))
            raise ContractError(f"--bind {key}: unknown symbol; known: {known}")
        items = [_scalar(v) for v in value.split(",") if v != ""]
        out[key] = items if (key in list_symbols or len(items) != 1) else items[0]
    return out


def _coverage_lists(entry: dict[str, Any]) -> list[str]:
    if "columns" not in entry["views"]:
        return []
    return list(contracts.view_for_entry(entry, "columns")["coverage"].values())


def _dig(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def from_run(record: dict[str, Any], config: dict[str, Any]) -> Bindings:
    """Every symbol the run's record or resolved config can bind (others stay unbound)."""
    sources = {"run_record": record, "config": config}
    out: Bindings = {}
    for symbol, binding in contracts.index()["bindings"].items():
        value = _dig(sources[binding["source"]], binding["path"])
        if value is not None:
            out[symbol] = value
    return out


class UnboundSymbol(ContractError):
    """A contract needed a symbol nobody bound (the CLI then names every unbound one)."""


def need(bindings: Bindings, symbol: str, contract_id: str) -> Any:
    if symbol not in bindings:
        raise UnboundSymbol(
            f"contract {contract_id}: symbol {symbol} is unbound; pass --bind {symbol}=VALUE"
        )
    return bindings[symbol]


VIEW_KINDS = ("schema", "arrays", "columns")


def required_symbols(contract_id: str) -> list[str]:
    """The symbols a contract's views refer to (array shapes, coverage lists, list
    lengths), in first-use order: what `critspec validate --contract` must have bound."""
    from critspec.generate.json_schema import LENGTH_SYMBOL

    known = contracts.index()["bindings"]
    entry = contracts.entry(contract_id)
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str) and value in known and value not in found:
            found.append(value)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "shape" and isinstance(value, list):
                    for dim in value:
                        add(dim)
                elif key == "coverage" and isinstance(value, dict):
                    for lst in value.values():
                        add(lst)
                elif key == LENGTH_SYMBOL:
                    add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for kind in VIEW_KINDS:
        if kind in entry["views"]:
            walk(contracts.view_for_entry(entry, kind))
    return found


def check_bound(contract_id: str, bindings: Bindings) -> None:
    """One ContractError naming every unbound symbol of the contract at once."""
    missing = [s for s in required_symbols(contract_id) if s not in bindings]
    if missing:
        binds = " ".join(f"--bind {s}=VALUE" for s in missing)
        raise ContractError(
            f"contract {contract_id}: {len(missing)} unbound symbol(s) {', '.join(missing)}; "
            f"pass {binds}, or --bind-from RUN_DIR to take them from a run"
        )
