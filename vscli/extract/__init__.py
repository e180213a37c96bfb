"""Bytes -> text. One module per format; `extract_text` picks by the file's name and content.

Upload calls `extract_text` before storing anything, so a file vscli cannot read is refused with a
clear error instead of being stored and failing later.
"""

from __future__ import annotations

from vscli.errors import InvalidInput
from vscli.extract import text as _text


class ExtractionError(InvalidInput):
    """The file's bytes cannot be turned into text (binary, bad encoding, empty)."""


def extract_text(data: bytes, filename: str) -> str:
    """The text of a file, or ExtractionError saying why there is none."""
    if not data:
        raise ExtractionError(f"{filename}: file is empty")
    try:
        result = _text.extract(data)
    except ValueError as exc:
        raise ExtractionError(f"{filename}: {exc}") from exc
    if not result.strip():
        raise ExtractionError(f"{filename}: file has no text (only whitespace)")
    return result
