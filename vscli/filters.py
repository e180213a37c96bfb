"""Attribute filters in OpenAI's grammar (the CLI's `--where` shorthand builds them too).

A comparison is ``{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key": K, "value": V}``; a
compound is ``{"type": "and"|"or", "filters": [...]}``, nested to any depth. Filters apply to the file
attributes set with ``--attr`` and select files before results are ranked and cut to top k.

Rules (the same in every mode):
- ``eq``/``in`` match when the attribute exists and equals the value, with the same type (a boolean never
  equals a number, the string "2020" never equals the number 2020); ``ne``/``nin`` are their negations,
  so they also match files without the attribute.
- ``gt gte lt lte`` compare numbers with numbers and strings with strings (ISO dates sort correctly);
  anything else, including a missing attribute, does not match.
"""

from __future__ import annotations

import json
from typing import Any

from vscli.errors import InvalidInput

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 16


def parse_filter(raw: str) -> dict[str, Any]:
    """A `--filter` JSON text -> a validated filter."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"filters is not valid JSON: {exc.msg} at character {exc.pos + 1}",
                           field="filters") from None
    except RecursionError:  # the JSON decoder recurses per level: hundreds of levels overflow it
        raise InvalidInput(f"filters: filters nest deeper than {MAX_DEPTH} levels", field="filters") from None
    validate(value)
    return value


def combine(*filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """All of these filters (None when there are none)."""
    present = [f for f in filters if f]
    if not present:
        return None
    return present[0] if len(present) == 1 else {"type": "and", "filters": present}


def validate(node: Any, depth: int = 0, where: str = "filter") -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: filters nest deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict):
        raise InvalidInput(f"{where}: expected an object, got {json.dumps(node)[:60]}")
    kind = node.get("type")
    if kind in COMPOUNDS:
        extra = set(node) - {"type", "filters"}
        children = node.get("filters")
        if extra or not isinstance(children, list) or not children:
            raise InvalidInput(f'{where}: a "{kind}" filter needs a non-empty "filters" list and nothing else')
        for i, child in enumerate(children):
            validate(child, depth + 1, f"{where}.filters[{i}]")
        return
    if kind not in COMPARISONS:
        raise InvalidInput(
            f'{where}: "type" must be one of {", ".join(COMPARISONS + COMPOUNDS)}, got {json.dumps(kind)}'
        )
    extra = set(node) - {"type", "key", "value"}
    if extra:
        raise InvalidInput(f"{where}: unexpected field {sorted(extra)[0]!r} in a comparison filter")
    if not isinstance(node.get("key"), str) or not node["key"]:
        raise InvalidInput(f'{where}: a comparison filter needs a non-empty string "key"')
    if "value" not in node:
        raise InvalidInput(f'{where}: a comparison filter needs a "value"')
    value = node["value"]
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(_scalar(v) for v in value):
            raise InvalidInput(f'{where}: "{kind}" needs a list of strings, numbers or booleans as "value"')
    elif not _scalar(value):
        raise InvalidInput(f'{where}: "value" must be a string, number or boolean for "{kind}"')


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def matches(node: dict[str, Any], attributes: dict[str, Any]) -> bool:
    """Whether a file with these attributes passes the (validated) filter."""
    kind = node["type"]
    if kind == "and":
        return all(matches(child, attributes) for child in node["filters"])
    if kind == "or":
        return any(matches(child, attributes) for child in node["filters"])
    present = node["key"] in attributes
    actual = attributes.get(node["key"])
    value = node["value"]
    if kind == "eq":
        return present and _equal(actual, value)
    if kind == "ne":
        return not (present and _equal(actual, value))
    if kind == "in":
        return present and any(_equal(actual, v) for v in value)
    if kind == "nin":
        return not (present and any(_equal(actual, v) for v in value))
    if not present or _kind(actual) != _kind(value) or _kind(value) == "bool":
        return False
    if kind == "gt":
        return actual > value
    if kind == "gte":
        return actual >= value
    if kind == "lt":
        return actual < value
    return actual <= value  # lte


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b
