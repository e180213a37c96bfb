"""Parsing of option values shared by several commands (KEY=VALUE pairs)."""

from __future__ import annotations

import json
import re
from typing import Any

from vscli.errors import InvalidInput
from vscli.store import validate_attributes
from vscli.workspace import check_text

_WHERE = re.compile(r"^\s*([^=!<>\s][^=!<>]*?)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$", re.S)
_WHERE_OPS = {"=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def split_pair(raw: str, option: str) -> tuple[str, str]:
    check_text(raw, option)
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"{option} expects KEY=VALUE, got {raw!r}")
    return key.strip(), value


def parse_metadata(pairs: list[str] | None) -> dict[str, str]:
    """Store metadata: string values, as OpenAI's."""
    result: dict[str, str] = {}
    for raw in pairs or []:
        key, value = split_pair(raw, "--metadata")
        result[key] = value
    return result


def parse_attributes(pairs: list[str] | None) -> dict[str, Any]:
    """File attributes: true/false become booleans, numbers become numbers, a JSON-quoted value or
    anything else stays a string (so `--attr code='"007"'` keeps the leading zeros)."""
    result: dict[str, Any] = {}
    for raw in pairs or []:
        key, value = split_pair(raw, "--attr")
        result[key] = _attribute_value(value)
    validate_attributes(result)  # before anything is uploaded
    return result


def _attribute_value(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value


def parse_where(clauses: list[str] | None) -> list[dict[str, Any]]:
    """`--where KEY=VALUE` clauses (also != > >= < <=) -> comparison filters; values typed as `--attr`
    types them, so `--where year>=2020` compares numbers when `--attr year=2021` stored one."""
    filters = []
    for clause in clauses or []:
        check_text(clause, "--where")
        match = _WHERE.match(clause)
        if not match:
            raise InvalidInput(f"--where expects KEY OP VALUE with OP one of = != > >= < <=, got {clause!r}")
        key, op, value = match.groups()
        filters.append({"type": _WHERE_OPS[op], "key": key, "value": _attribute_value(value)})
    return filters
