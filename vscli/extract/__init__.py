"""Bytes -> text. One module per format; `extract` picks by content (magic bytes) and file name.

Upload calls `extract` before storing anything, so a file vscli cannot read is refused with a clear
error instead of being stored and failing later. Offsets of chunks (and PDF page spans) refer to the
extracted text, which `vscli cat --text` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from vscli.errors import InvalidInput

SUPPORTED = "text, Markdown, source code and config files, PDF, HTML and DOCX"

# Types we recognise and refuse: images, audio/video, archives, executables, office formats we don't read.
_UNSUPPORTED_EXTENSIONS = {
    **dict.fromkeys(["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff", "ico", "heic", "svgz"], "image"),
    **dict.fromkeys(["mp3", "wav", "flac", "ogg", "mp4", "mkv", "mov", "avi", "webm"], "audio/video"),
    **dict.fromkeys(["zip", "tar", "gz", "tgz", "bz2", "xz", "7z", "rar", "zst", "jar", "whl"], "archive"),
    **dict.fromkeys(["exe", "dll", "so", "dylib", "bin", "o", "a", "class", "pyc", "wasm"], "executable"),
    **dict.fromkeys(["doc", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp"], "office document"),
}
_MAGIC = [
    (b"\x89PNG", "image"), (b"\xff\xd8\xff", "image"), (b"GIF8", "image"), (b"RIFF", "image/audio"),
    (b"\x7fELF", "executable"), (b"MZ", "executable"), (b"\xca\xfe\xba\xbe", "executable"),
    (b"\x1f\x8b", "archive"), (b"BZh", "archive"), (b"\xfd7zXZ", "archive"), (b"7z\xbc\xaf", "archive"),
    (b"Rar!", "archive"),
]


class ExtractionError(InvalidInput):
    """The file's bytes cannot be turned into text (binary, bad encoding, empty, encrypted...)."""


class UnsupportedType(ExtractionError):
    """A kind of file vscli does not read at all."""


@dataclass
class Extracted:
    text: str
    pages: list[tuple[int, int, int]] | None = None  # (page number, start, end) character spans
    title: str | None = None


def detect(data: bytes, filename: str) -> str:
    """'pdf', 'docx', 'html' or 'text'; UnsupportedType for what vscli does not read."""
    ext = PurePath(filename).suffix.lower().lstrip(".")
    if data.startswith(b"%PDF-") or ext == "pdf":
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        if ext == "docx" or b"word/document.xml" in data[:65536] or _zip_has(data, "word/document.xml"):
            return "docx"
        raise UnsupportedType(f"unsupported file type: {filename} (a zip archive); vscli reads {SUPPORTED}")
    # What the bytes say wins over what the name says.
    kind = next((k for magic, k in _MAGIC if data.startswith(magic)), None) or _UNSUPPORTED_EXTENSIONS.get(ext)
    if kind:
        raise UnsupportedType(f"unsupported file type: {filename} ({kind}); vscli reads {SUPPORTED}")
    if ext in ("html", "htm", "xhtml"):
        return "html"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return "html"
    return "text"


def _zip_has(data: bytes, name: str) -> bool:
    import io
    import zipfile

    try:
        return name in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False


def extract(data: bytes, filename: str, encoding: str | None = None) -> Extracted:
    """The text of a file, or ExtractionError saying why there is none."""
    if not data:
        raise ExtractionError(f"{filename}: file is empty")
    kind = detect(data, filename)
    try:
        if kind == "pdf":
            from vscli.extract import pdf

            result = pdf.extract(data)
        elif kind == "docx":
            from vscli.extract import docx

            result = docx.extract(data)
        elif kind == "html":
            from vscli.extract import html, text

            result = html.extract(text.decode(data, encoding))
        else:
            from vscli.extract import text

            result = Extracted(text.decode(data, encoding))
    except ValueError as exc:
        raise ExtractionError(f"{filename}: {exc}") from exc
    if not result.text.strip():
        raise ExtractionError(f"{filename}: file has no text (only whitespace)")
    return result


def extract_text(data: bytes, filename: str, encoding: str | None = None) -> str:
    return extract(data, filename, encoding).text
