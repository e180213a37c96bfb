"""The query command: ranked chunks for a natural-language query (or one query per stdin line), and the
search options `ask` shares with it."""


import re
import sys
import textwrap
from typing import Annotated, Any, Optional

import typer

from vscli.cli import complete, render
from vscli.cli.app import app, workspace
from vscli.cli.options import parse_where
from vscli.cli.stores import JsonOpt, StoreArg
from vscli.search import (
    DEFAULT_FUSION,
    DEFAULT_MODE,
    check_fusion,
    check_k,
    check_mode,
    page_label,
    parse_min_score,
    search_many,
    source_name,
)
from vscli.store import resolve_store

INDENT = "   "  # a chunk's lines under its heading
PREVIEW_LINES = 6  # a chunk's lines shown on a terminal without --full

ModeOpt = Annotated[str, typer.Option(
    "--mode", envvar="VSCLI_SEARCH_MODE", metavar="hybrid|vector|keyword", autocompletion=complete.modes,
    help="Ranking: hybrid (default; fuses both), vector (embeddings) or keyword (BM25).")]
FusionOpt = Annotated[str, typer.Option(
    "--fusion", envvar="VSCLI_SEARCH_FUSION", metavar="score|rrf", autocompletion=complete.fusions,
    help="How hybrid fuses the two rankings: score (default; a 0-1 relevance score) or rrf (reciprocal "
    "rank fusion, for comparison).")]
FilterOpt = Annotated[Optional[str], typer.Option(
    "--filter", metavar="JSON", help='Attribute filter in OpenAI\'s grammar, e.g. '
    '\'{"type":"eq","key":"author","value":"Jane"}\'.')]
WhereOpt = Annotated[Optional[list[str]], typer.Option(
    "--where", metavar="KEY<op>VALUE", help="Attribute condition with = != > >= < <= (repeatable; all must "
    "hold), e.g. --where 'year>=2020' (quoted: > is the shell's).")]


def search_filter(filter_json: Optional[str], where: Optional[list[str]]) -> Optional[dict[str, Any]]:
    """--filter and --where together: every condition must hold."""
    from vscli import filters

    parsed = filters.parse_filter(filter_json) if filter_json is not None else None
    return filters.combine(parsed, *parse_where(where))


@app.command()
def query(
    store: StoreArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The query, or - to read one query per line "
                                        "from stdin and print one JSON page per line (NDJSON).")],
    k: Annotated[int, typer.Option("-k", "--max-results", help="How many chunks to return (1-50).")] = 10,
    mode: ModeOpt = DEFAULT_MODE,
    filter_json: FilterOpt = None,
    where: WhereOpt = None,
    min_score: Annotated[Optional[str], typer.Option(
        "--min-score", metavar="SCORE|auto|none",
        help="Drop results scoring below this, on the mode's scale; auto: the documented floor of relevance "
        "(0.3 of each mode's calibrated scale); none: no floor (the default).")] = None,
    fusion: FusionOpt = DEFAULT_FUSION,
    full: Annotated[bool, typer.Option(
        "--full", help=f"On a terminal, print whole chunks (else each is cut to {PREVIEW_LINES} lines; piped "
        "output and --json are always whole).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search a store: the best-matching chunks, best first.

    Scores: hybrid 0-1 (relevance: cosine and BM25 combined; below 0.3 is rarely relevant), vector cosine
    similarity (-1 to 1), keyword BM25 (0 and up). Filters pick files before the top k are cut.

    \b
    Example: vscli query docs "what is data mining?" -k 5 --where 'year>=2020'
    Batch:   printf 'first query\\nsecond query\\n' | vscli query docs -
    """
    check_k(k)
    check_mode(mode)
    check_fusion(fusion)
    floor = parse_min_score(min_score)
    flt = search_filter(filter_json, where)
    s = resolve_store(workspace(), store)
    options: dict[str, Any] = {"mode": mode, "filters": flt, "min_score": floor, "fusion": fusion}
    if text == "-":
        queries = (line.rstrip("\n") for line in sys.stdin if line.strip())
        for page in search_many(s, queries, k, **options):
            render.emit_json(page, compact=True)
        return
    page = next(search_many(s, [text], k, **options))
    if as_json:
        render.emit_json(page)
        return
    if not page["data"]:
        render.message("no results" + (f" above --min-score {min_score}" if floor is not None else "")
                       + (" among the files the filter selects" if flt else ""))
        return
    terminal = sys.stdout.isatty()
    for rank, item in enumerate(page["data"], 1):
        where_in = f" ({page_label(item['pages'])})" if item.get("pages") else ""
        heading = f"{rank}. {source_name(item)}{where_in}  {item['file_id']}  score {item['score']:.4f}"
        render.emit_line(render.terminal_safe(heading) if terminal else heading)
        body = re.sub(r"\n{3,}", "\n\n", item["content"][0]["text"].strip())
        render.emit_line(textwrap.indent(_for_terminal(body, full) if terminal else body, INDENT))
        render.emit_line("")


def _for_terminal(text: str, full: bool) -> str:
    """A chunk for the person at the terminal: wrapped inside the indent (so no line runs back to column 0)
    and, unless --full, cut to PREVIEW_LINES lines with a note of what was left out."""
    import shutil

    width = max(20, shutil.get_terminal_size().columns - len(INDENT))
    lines = [wrapped for line in render.terminal_safe(text).splitlines()
             for wrapped in (textwrap.wrap(line, width, break_on_hyphens=False) or [""])]
    if not full and len(lines) > PREVIEW_LINES:
        hidden = len(lines) - PREVIEW_LINES
        lines = lines[:PREVIEW_LINES] + [f"… {hidden} more line(s); --full prints the whole chunk"]
    return "\n".join(lines)
