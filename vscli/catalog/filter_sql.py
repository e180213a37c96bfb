"""Attribute filters (`vscli.filters`) as SQL conditions on the catalog's rows, so a query reads only
the files that pass."""

from __future__ import annotations

from typing import Any

_SAFE_INT = 1 << 53  # numbers SQLite and Python compare alike (beyond, SQLite may round through a double)
_ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def filter_sql(node: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """A validated filter as an SQL condition on a row's ``entry`` (its attributes), following
    `vscli.filters`' rules exactly (types never mix: the string "2020" is not the number 2020), or None
    where SQL cannot say it exactly (a key with a double quote, an integer past 2**53)."""
    kind = node["type"]
    if kind in ("and", "or"):
        parts = [filter_sql(child) for child in node["filters"]]
        if any(part is None for part in parts):
            return None
        joiner = " AND " if kind == "and" else " OR "
        return joiner.join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]  # type: ignore[misc]
    key, value = node["key"], node["value"]
    if '"' in key or any(_unsafe(v) for v in (value if isinstance(value, list) else [value])):
        return None
    path = f'$.attributes."{key}"'
    if kind in ("eq", "ne", "in", "nin"):
        values = value if kind in ("in", "nin") else [value]
        tests = [_equals(path, v) for v in values]
        sql = " OR ".join(f"({t})" for t, _ in tests) or "0"
        params = [p for _, ps in tests for p in ps]
        return (sql, params) if kind in ("eq", "in") else (f"NOT coalesce(({sql}), 0)", params)
    if isinstance(value, bool):
        return "0", []  # booleans have no order: nothing passes
    types = "'text'" if isinstance(value, str) else "'integer', 'real'"
    return (f"json_type(entry, ?) IN ({types}) AND json_extract(entry, ?) {_ORDER[kind]} ?", [path, path, value])


def _equals(path: str, value: Any) -> tuple[str, list[Any]]:
    if isinstance(value, bool):
        return "json_type(entry, ?) = ?", [path, "true" if value else "false"]
    types = "'text'" if isinstance(value, str) else "'integer', 'real'"
    return f"json_type(entry, ?) IN ({types}) AND json_extract(entry, ?) = ?", [path, path, value]


def _unsafe(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT
