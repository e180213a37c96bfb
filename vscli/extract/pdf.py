"""PDF via pypdf: text page by page, with each page's character span kept for page numbers."""

from __future__ import annotations

import io

from vscli.extract import Extracted


def extract(data: bytes) -> Extracted:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("encrypted PDF (it needs a password); decrypt it first")
        parts: list[str] = []
        pages: list[tuple[int, int, int]] = []
        at = 0
        for number, page in enumerate(reader.pages, 1):
            text = (page.extract_text() or "").strip()
            if parts:
                parts.append("\n\n")
                at += 2
            parts.append(text)
            pages.append((number, at, at + len(text)))
            at += len(text)
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF ({exc})") from None
    text = "".join(parts)
    if not text.strip():
        raise ValueError("PDF has no extractable text (image-only? run OCR on it first)")
    title = reader.metadata.title if reader.metadata else None
    return Extracted(text, pages=pages, title=title)
