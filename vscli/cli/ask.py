"""The ask command: retrieve passages, send them with the question to a chat model, print the answer
and its sources."""


import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional, Union

import typer

from vscli.cli import render
from vscli.cli.app import app, workspace
from vscli.cli.query import FilterOpt, FusionOpt, ModeOpt, WhereOpt, search_filter
from vscli.cli.stores import JsonOpt, StoreArg
from vscli.search import (
    AUTO,
    DEFAULT_FUSION,
    DEFAULT_MODE,
    RELEVANT,
    check_fusion,
    check_mode,
    page_label,
    source_name,
)

if TYPE_CHECKING:
    from vscli.store import Store


@app.command()
def ask(
    store: StoreArg,
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="The question to answer.")],
    k: Annotated[Optional[int], typer.Option("-k", "--max-results",
                                             help="Passages to retrieve (default: config top_k, 5).")] = None,
    min_score: Annotated[Optional[str], typer.Option(
        "--min-score", metavar="SCORE|auto|none",
        help="Drop passages scoring below this, on the mode's scale (default auto: the documented floor of "
        "relevance, 0.3; none with --fusion rrf, whose scores are ranks).")] = None,
    mode: ModeOpt = DEFAULT_MODE,
    fusion: FusionOpt = DEFAULT_FUSION,
    filter_json: FilterOpt = None,
    where: WhereOpt = None,
    base_url: Annotated[Optional[str], typer.Option(
        "--base-url", help="Chat-completions endpoint (env VSCLI_BASE_URL, OPENAI_BASE_URL).")] = None,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", help="API key, sent as a bearer token (env VSCLI_API_KEY, OPENAI_API_KEY).")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Chat model (env VSCLI_MODEL; default gpt-4o-mini).")] = None,
    system: Annotated[Optional[str], typer.Option(
        "--system", help="Replace the system prompt's instructions (the passages are still added).")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="Sampling temperature (0-2).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Limit the answer's length.")] = None,
    max_context_tokens: Annotated[Optional[int], typer.Option(
        "--max-context-tokens", help="Token budget for the passages (default 3000).")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", help="Seconds the endpoint has for the whole answer (default 60).")] = None,
    stream: Annotated[Optional[bool], typer.Option(
        "--stream/--no-stream", help="Print the answer as it arrives (default: when stdout is a terminal).")] = None,
    context_only: Annotated[bool, typer.Option(
        "--context-only", help="Print the request that would be sent (JSON) and call nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from a store's passages with a chat model, citing its sources.

    Works with any OpenAI-compatible chat-completions endpoint (OpenAI, LiteLLM, vLLM, Ollama,
    llama.cpp server, NEAR AI).

    \b
    Example: vscli ask docs "what is data mining?" --base-url http://localhost:11434/v1 -m llama3.2
    """
    from vscli import config
    from vscli.chat import NoContext, build_prompt, complete
    from vscli.errors import InvalidInput
    from vscli.search import parse_min_score, search
    from vscli.store import resolve_store

    flags = {"base_url": base_url, "api_key": api_key, "model": model, "top_k": k,
             "max_context_tokens": max_context_tokens, "temperature": temperature,
             "max_tokens": max_tokens, "timeout": timeout}
    for name, value in flags.items():
        if value is not None and name != "api_key":
            flags[name] = config.parse_value(name, str(value))
    settings = config.resolve(flags)
    if not question.strip():
        raise InvalidInput("the question must not be empty")
    check_mode(mode)
    check_fusion(fusion)
    rank_fused = mode == "hybrid" and fusion == "rrf"
    floor = parse_min_score(min_score) if min_score is not None else (None if rank_fused else AUTO)
    flt = search_filter(filter_json, where)
    s = resolve_store(workspace(), store)
    results = search(s, question, min(settings["top_k"], 50), mode=mode, filters=flt, min_score=floor,
                     fusion=fusion)["data"]
    if not results:
        raise NoContext(f"no relevant passage in {store} for this question ({_why_none(s, floor, flt, mode)}); "
                        "nothing was sent to the model")
    prompt = build_prompt(question, results, settings["max_context_tokens"], system)
    if context_only:
        render.emit_json({"model": settings["model"], "messages": prompt.messages})
        return
    streaming = (stream if stream is not None else sys.stdout.isatty()) and not as_json
    answer = complete(prompt, settings, streaming, on_delta=_write_delta if streaming else None)
    if answer.cut_at is not None:
        render.message(f"warning: the answer was cut at {answer.cut_at} tokens: the endpoint went on past "
                       + ("--max-tokens" if settings.get("max_tokens") else "any answer's length"))
    if as_json:
        render.emit_json({"answer": answer.text, "model": answer.model, "sources": prompt.sources,
                          "usage": answer.usage})
        return
    if streaming:
        sys.stdout.write("\n")
    else:
        render.emit_line(render.terminal_safe(answer.text.rstrip("\n")))
    render.emit_line("\nSources:")
    for number, source in enumerate(prompt.sources, 1):
        place = f" ({page_label(source['pages'])})" if source.get("pages") else ""
        render.emit_line(render.terminal_safe(f"  [{number}] {source_name(source)}{place}  {source['file_id']}  "
                                              f"score {source['score']:.4f}"))


def _why_none(s: "Store", floor: Optional[Union[float, str]], flt: Optional[dict[str, Any]], mode: str) -> str:
    """Why a search found no passage, in the words of the options that explain it."""
    if not s.obj()["file_counts"]["completed"]:
        return "the store has no completed files"
    if floor == AUTO:
        return f"every passage scores below the relevance floor, --min-score auto = {RELEVANT:g}"
    if floor is not None:
        return f"all scores are below --min-score {floor:g}"
    if flt:
        return "no completed file matches the filter"
    if mode == "keyword":
        return "no passage contains a word of the question"
    return "nothing matched"


def _write_delta(text: str) -> None:
    sys.stdout.write(render.terminal_safe(text))
    sys.stdout.flush()
