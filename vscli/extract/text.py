"""Plain text: UTF-8 (with or without BOM) and UTF-16 with a BOM, or an encoding the user names."""

from __future__ import annotations

import codecs

_SNIFF_BYTES = 8192


def decode(data: bytes, encoding: str | None = None) -> str:
    """Decode text bytes, refusing binary content and undecodable encodings with a reason."""
    if encoding:
        return _decode(data, encoding)
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[len(codecs.BOM_UTF8):], "utf-8")
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return _decode(data, "utf-16")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise ValueError("binary file (contains NUL bytes); only text files are supported")
    return _decode(data, "utf-8")


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        hint = "" if encoding.lower().replace("_", "-") != "utf-8" else " (upload it with --encoding NAME)"
        raise ValueError(
            f"not valid {encoding.upper()} text (undecodable byte at offset {exc.start}){hint}"
        ) from None
