"""DOCX via python-docx: paragraphs (headings included) and table cells, in document order."""

from __future__ import annotations

import io

from vscli.extract import Extracted


def extract(data: bytes) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise ValueError(f"not a readable DOCX document ({exc})") from None
    blocks = [p.text.strip() for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(" | ".join(dict.fromkeys(cells)))
    title = document.core_properties.title or None
    return Extracted("\n\n".join(blocks), title=title)
