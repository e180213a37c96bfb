"""The query command: ranked chunks for a natural-language query (or one query per stdin line)."""


import re
import sys
import textwrap
from typing import Annotated

import typer

from vscli.cli import render
from vscli.cli.app import app, workspace
from vscli.cli.stores import JsonOpt, StoreArg
from vscli.search import check_k, page_label, search_many
from vscli.store import resolve_store


@app.command()
def query(
    store: StoreArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The query, or - to read one query per line "
                                        "from stdin and print one JSON page per line (NDJSON).")],
    k: Annotated[int, typer.Option("-k", "--max-results", help="How many chunks to return (1-50).")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Search a store: the best-matching chunks, best first (score: cosine similarity, higher is better).

    Example: vscli query docs "what is data mining?" -k 5
    Batch:   printf 'first query\\nsecond query\\n' | vscli query docs -
    """
    check_k(k)
    s = resolve_store(workspace(), store)
    if text == "-":
        queries = (line.rstrip("\n") for line in sys.stdin if line.strip())
        for page in search_many(s, queries, k):
            render.emit_json(page, compact=True)
        return
    page = next(search_many(s, [text], k))
    if as_json:
        render.emit_json(page)
        return
    if not page["data"]:
        render.message("no results (the store has no completed files)")
        return
    for rank, item in enumerate(page["data"], 1):
        where = f" ({page_label(item['pages'])})" if item.get("pages") else ""
        render.emit_line(f"{rank}. {item['filename']}{where}  {item['file_id']}  score {item['score']:.4f}")
        body = re.sub(r"\n{3,}", "\n\n", item["content"][0]["text"].strip())
        render.emit_line(textwrap.indent(body, "   "))
        render.emit_line("")
