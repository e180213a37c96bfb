"""Grounded answers: the prompt from retrieved passages, and the chat-completions call.

The `openai` client is imported only inside `complete`, so no other command pays for it. Every failure of
the endpoint becomes an `EndpointError` whose message says what to set or check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from vscli.chunking import encoding
from vscli.errors import ExitCode, VscliError
from vscli.search import page_label, source_name

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful assistant. Answer the user's question using only the numbered context passages "
    "below. Cite the passages you use by their numbers in square brackets, for example [1] or [2][3]. "
    "If the passages do not contain the answer, say that you do not know rather than guessing."
)
NO_KEY_PLACEHOLDER = "not-needed"  # local servers (Ollama, vLLM, llama.cpp) accept any key


class EndpointError(VscliError):
    exit_code = ExitCode.ENDPOINT


class NoContext(VscliError):
    exit_code = ExitCode.NO_CONTEXT


@dataclass
class Prompt:
    messages: list[dict[str, str]]
    sources: list[dict[str, Any]]  # the search results whose text went into the prompt, in order
    context_tokens: int


def build_prompt(question: str, results: list[dict[str, Any]], max_context_tokens: int,
                 system: str | None = None) -> Prompt:
    """System message (instructions + numbered passages) and the question, within a token budget.

    Passages are added best first while they fit; the first one is shortened to the budget if it
    alone is too long, so there is always some context when there are results.
    """
    enc = encoding()
    blocks: list[str] = []
    sources: list[dict[str, Any]] = []
    used = 0
    for result in results:
        number = len(blocks) + 1
        where = f" ({page_label(result['pages'])})" if result.get("pages") else ""
        header = f"[{number}] {source_name(result)}{where}\n"
        text = result["content"][0]["text"].strip()
        cost = len(enc.encode(header + text, disallowed_special=())) + 2
        if used + cost > max_context_tokens:
            if blocks:
                break
            room = max_context_tokens - len(enc.encode(header, disallowed_special=())) - 2
            if room <= 0:
                break
            text = enc.decode(enc.encode(text, disallowed_special=())[:room])
            cost = max_context_tokens
        blocks.append(header + text)
        sources.append(result)
        used += cost
    instructions = system if system is not None else DEFAULT_SYSTEM_PROMPT
    content = instructions + "\n\nContext passages:\n\n" + "\n\n".join(blocks)
    return Prompt(
        messages=[{"role": "system", "content": content}, {"role": "user", "content": question}],
        sources=sources,
        context_tokens=used,
    )


MAX_ANSWER_TOKENS = 100_000  # far beyond any model's answer: an endless stream is cut here


@dataclass
class Answer:
    text: str
    model: str
    usage: dict[str, Any] | None
    cut_at: int | None = None  # tokens: the endpoint went on past --max-tokens (or MAX_ANSWER_TOKENS)


def complete(prompt: Prompt, settings: dict[str, Any], stream: bool,
             on_delta: Callable[[str], None] | None = None) -> Answer:
    """Send the prompt to the chat-completions endpoint; streams deltas to `on_delta` when asked.

    ``settings["timeout"]`` is a deadline for the whole answer, not for each read: an endpoint that drips
    a byte at a time, or sends keep-alive comments forever, is given up on when it passes. The call runs
    in a worker thread the deadline can leave behind (a blocking read cannot be interrupted)."""
    import threading

    from vscli.background import Background

    deadline = settings["timeout"]
    stopped = threading.Event()

    def deliver(text: str) -> None:
        if on_delta is not None and not stopped.is_set():
            on_delta(text)

    worker = Background(lambda: _call(prompt, settings, stream, deliver, stopped), name="vscli-chat")
    if not worker.wait(deadline):
        stopped.set()
        where = settings.get("base_url") or "the OpenAI API"
        raise EndpointError(f"{where} did not answer within {deadline:g}s (--timeout bounds the whole "
                            "answer; raise it or check the server)")
    return worker.result()


def _call(prompt: Prompt, settings: dict[str, Any], stream: bool, on_delta: Callable[[str], None],
          stopped: Any) -> Answer:
    import openai

    base_url = settings.get("base_url")
    api_key = settings.get("api_key")
    if not base_url and not api_key:
        raise EndpointError(
            "no chat endpoint configured: pass --base-url (and --api-key if it needs one), set "
            "VSCLI_BASE_URL / OPENAI_BASE_URL or OPENAI_API_KEY, or `vscli config set base_url URL`",
            ExitCode.USAGE,
        )
    where = base_url or "the OpenAI API"
    client = openai.OpenAI(base_url=base_url or None, api_key=api_key or NO_KEY_PLACEHOLDER,
                           timeout=settings["timeout"] + 5, max_retries=1)  # the deadline comes first
    request: dict[str, Any] = {"model": settings["model"], "messages": prompt.messages}
    if settings.get("temperature") is not None:
        request["temperature"] = settings["temperature"]
    if settings.get("max_tokens") is not None:
        request["max_tokens"] = settings["max_tokens"]
    try:
        if stream:
            return _streamed(client.chat.completions.create(stream=True, **request), settings, on_delta, stopped)
        return _whole(client.chat.completions.create(**request), settings)
    except openai.AuthenticationError as exc:
        raise EndpointError(f"{where} rejected the API key (HTTP 401); check --api-key, VSCLI_API_KEY, "
                            f"OPENAI_API_KEY or `vscli config set api_key`") from exc
    except openai.NotFoundError as exc:
        raise EndpointError(f"{where} answered 404 for model {settings['model']!r}: check --model and "
                            f"that --base-url ends with the API root (e.g. .../v1)") from exc
    except openai.APITimeoutError as exc:
        raise EndpointError(f"{where} did not answer within {settings['timeout']:g}s "
                            f"(raise --timeout or check the server)") from exc
    except openai.APIConnectionError as exc:
        raise EndpointError(f"cannot reach the chat endpoint {where}: {_cause(exc)}; "
                            f"check --base-url / VSCLI_BASE_URL and that the server is running") from exc
    except openai.APIStatusError as exc:
        raise EndpointError(f"{where} returned HTTP {exc.status_code}: {_short(exc.message)}") from exc
    except (openai.APIError, ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise EndpointError(f"malformed response from {where}: {_short(str(exc))}") from exc


def _whole(response: Any, settings: dict[str, Any]) -> Answer:
    if not getattr(response, "choices", None):
        raise ValueError("the response has no choices")
    text = response.choices[0].message.content
    if not isinstance(text, str):
        raise ValueError("the response's message has no text content")
    usage = response.usage.model_dump() if getattr(response, "usage", None) else None
    model = getattr(response, "model", None) or settings["model"]
    budget = settings.get("max_tokens") or MAX_ANSWER_TOKENS
    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) > budget:
        return Answer(encoding().decode(tokens[:budget]), model, usage, cut_at=budget)
    return Answer(text, model, usage)


def _streamed(stream: Any, settings: dict[str, Any], on_delta: Callable[[str], None], stopped: Any) -> Answer:
    """Read the stream until it ends, the deadline passes (``stopped``), or the answer passes its token
    budget: an endpoint that ignores max_tokens is cut there."""
    enc = encoding()
    budget = settings.get("max_tokens") or MAX_ANSWER_TOKENS
    parts: list[str] = []
    tokens = 0
    model = settings["model"]
    usage = None
    saw_chunk = False
    try:
        for chunk in stream:
            saw_chunk = True
            model = getattr(chunk, "model", None) or model
            if getattr(chunk, "usage", None):
                usage = chunk.usage.model_dump()
            for choice in chunk.choices or []:
                delta = getattr(choice.delta, "content", None) if choice.delta else None
                if delta:
                    parts.append(delta)
                    on_delta(delta)
                    tokens += len(enc.encode(delta, disallowed_special=()))
            if tokens > budget:
                return Answer("".join(parts), model, usage, cut_at=budget)
            if stopped.is_set():
                break
    finally:
        stream.close()
    if not saw_chunk:
        raise ValueError("the stream ended without any event")
    return Answer("".join(parts), model, usage)


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    while inner is not None and (inner.__cause__ or inner.__context__) is not None:
        inner = inner.__cause__ or inner.__context__
    return _short(str(inner) if inner is not None else str(exc))


def _short(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
