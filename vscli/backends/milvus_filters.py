"""OpenAI attribute filters as Milvus boolean expressions over the collection's ``attributes`` JSON field.

The expression narrows the search inside Milvus, so top k is cut from matching chunks at any scale. It is
built to select a superset of what `vscli.filters.matches` accepts, never less: Milvus compares JSON
values more loosely than OpenAI's rules (``true == 1`` holds in Milvus), so the reader checks each hit
against the manifest's attributes with `matches` as well, and the two together are exact.
"""

from __future__ import annotations

import json
from typing import Any

FIELD = "attributes"


def to_expression(node: dict[str, Any]) -> str | None:
    """A Milvus filter expression for a validated filter; None when it cannot narrow the search."""
    kind = node["type"]
    if kind in ("and", "or"):
        parts = [to_expression(child) for child in node["filters"]]
        if kind == "and":
            kept = [p for p in parts if p is not None]  # dropping a conjunct only widens the selection
            return _join(kept, "and") if kept else None
        return None if any(p is None for p in parts) else _join(parts, "or")  # type: ignore[arg-type]
    key = f"{FIELD}[{json.dumps(node['key'])}]"
    value = node["value"]
    if kind == "eq":
        return _equals(key, value)
    if kind == "in":
        return _join([_equals(key, v) for v in value], "or") if value else "false"
    if kind in ("ne", "nin"):
        values = value if kind == "nin" else [value]
        if any(isinstance(v, bool) or v in (0, 1) for v in values):
            return None  # Milvus takes true for 1, so "not equal" could drop files that pass: filter later
        if not values:
            return None
        # a missing attribute makes Milvus's comparison null, and "not null" is not true: say it outright
        return f"(not exists {key} or not {_join([_equals(key, v) for v in values], 'or')})"
    if isinstance(value, bool):
        return "false"  # OpenAI's ordering comparisons never match booleans
    op = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[kind]
    return f"({key} {op} {_literal(value)})"


def _equals(key: str, value: Any) -> str:
    return f"({key} == {_literal(value)})"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # numbers as they are; strings double-quoted with JSON escapes


def _join(parts: list[str], op: str) -> str:
    return parts[0] if len(parts) == 1 else "(" + f" {op} ".join(parts) + ")"
