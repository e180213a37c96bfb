"""Output: data to stdout (tables on a terminal, tab-separated text when piped, or JSON), and messages,
warnings and progress to stderr. Nothing else in the CLI writes to the terminal."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any, Iterable, Sequence


def emit_json(obj: Any, compact: bool = False) -> None:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if compact else json.dumps(
        obj, indent=2, ensure_ascii=False
    )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_list_page(objs: Iterable[dict[str, Any]]) -> None:
    """`emit_json(list_page(objs))`, written as the objects come (byte for byte the same text): a
    listing of 100,000 files starts at once and never holds the whole page."""
    out = sys.stdout
    out.write('{\n  "object": "list",\n  "data": [')
    first = last = None
    for obj in objs:
        out.write(("\n" if first is None else ",\n") + "    "
                  + json.dumps(obj, indent=2, ensure_ascii=False).replace("\n", "\n    "))
        first = obj["id"] if first is None else first
        last = obj["id"]
    tail = {"first_id": first, "last_id": last, "has_more": False}
    out.write(("]" if first is None else "\n  ]") + ",\n"
              + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in tail.items())
              + "\n}\n")
    out.flush()


def list_page(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's list envelope."""
    return {
        "object": "list",
        "data": objs,
        "first_id": objs[0]["id"] if objs else None,
        "last_id": objs[-1]["id"] if objs else None,
        "has_more": False,
    }


# Escape sequences (CSI, OSC and the rest) and control characters other than newline and tab: text from
# outside (a model's answer) must not set the terminal's title, clear it or move the cursor.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
                      r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """The text without escape sequences or control characters, when stdout is a terminal; unchanged when
    it is a pipe or a file (the bytes are the user's to keep)."""
    return _CONTROL.sub("", text) if sys.stdout.isatty() else text


_TSV_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_CELL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TSV_SPECIAL = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _TSV_ESCAPES.get(char) or f"\\x{ord(char):02x}"


def cell(value: Any, tsv: bool = False) -> str:
    """A value for one cell of a row: control characters written ``\\n``, ``\\t``, ``\\xNN``, so a file
    or store name with a newline cannot split a row (or move the cursor). In tab-separated output a
    backslash is doubled too, so every cell can be read back exactly."""
    text = "" if value is None else str(value)
    return (_TSV_SPECIAL if tsv else _CELL_CONTROL).sub(_escape, text)


def emit_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def pairs(rows: Sequence[tuple[str, Any]]) -> None:
    """Key/value lines with the values aligned (`status`, `info`)."""
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        emit_line(f"{key.ljust(width)}  {cell(value)}")


def message(text: str) -> None:
    """A progress or status note for the person at the terminal (stderr)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def color_allowed(stream: Any) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on a terminal; tab-separated lines with a header line when stdout is piped."""
    if not sys.stdout.isatty():
        emit_line("\t".join(columns))
        for row in rows:
            emit_line("\t".join(cell(v, tsv=True) for v in row))
        return
    from rich.console import Console
    from rich.table import Table

    plain = not color_allowed(sys.stdout)
    t = Table(box=None, header_style="" if plain else "bold", pad_edge=False)
    for col in columns:
        # ids are copied and pasted: never split; the other columns give way first on a narrow terminal
        t.add_column(col, overflow="fold", no_wrap=col == "ID" or col.endswith(" ID"))
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    Console(no_color=plain, highlight=False).print(t)


def timestamp(epoch: int | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
