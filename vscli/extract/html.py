"""HTML via selectolax (lexbor): the visible text only — no scripts, styles or tags — title first."""

from __future__ import annotations

import re

from vscli.extract import Extracted

_INVISIBLE = ["script", "style", "noscript", "template", "svg", "head"]


def extract(markup: str) -> Extracted:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text().split()) if title_node else None
    tree.strip_tags(_INVISIBLE)
    root = tree.body or tree.root
    body = root.text(separator="\n") if root else ""
    lines = [" ".join(line.split()) for line in body.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if title:
        text = f"{title}\n\n{text}" if text else title
    return Extracted(text, title=title)
