"""`POST /v1/chat/completions` and `GET /v1/models`, passed through to the chat endpoint `ask` uses, so an
application written for NEAR AI or LiteLLM finds retrieval and generation at one base URL.

The upstream is resolved as for `ask` (`--base-url`/`--api-key` are `ask`'s flags; here: `VSCLI_BASE_URL`,
`VSCLI_API_KEY`, `OPENAI_*`, the config file), and the key sent upstream is the upstream's, never the
server's own. Bodies go through unchanged; a streamed answer (SSE) is relayed as it arrives; upstream
errors keep their status and body.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, Iterator

from vscli.errors import Unavailable

OPENAI_BASE_URL = "https://api.openai.com/v1"


def forward(method: str, path: str, body: bytes | None) -> Any:
    """The upstream's answer to ``method path`` as a Starlette response."""
    from starlette.responses import Response, StreamingResponse

    from vscli import config

    settings = config.resolve({})
    base_url, api_key = settings.get("base_url"), settings.get("api_key")
    if not base_url and not api_key:
        raise Unavailable("no chat endpoint configured for `vscli serve` to pass chat requests to: set "
                          "VSCLI_BASE_URL (and VSCLI_API_KEY if it needs one), OPENAI_API_KEY, or "
                          "`vscli config set base_url URL`, then restart the server")
    url = (base_url or OPENAI_BASE_URL).rstrip("/") + "/" + path
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        upstream = urllib.request.urlopen(request, timeout=settings["timeout"])
    except urllib.error.HTTPError as exc:  # the upstream's own error, as it gave it
        return Response(exc.read(), status_code=exc.code,
                        media_type=exc.headers.get("content-type", "application/json"))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unavailable(f"cannot reach the chat endpoint {url}: {reason}") from None
    media = upstream.headers.get("content-type", "application/json")
    if media.startswith("text/event-stream"):
        return StreamingResponse(_relay(upstream), status_code=upstream.status, media_type=media)
    with upstream:
        return Response(upstream.read(), status_code=upstream.status, media_type=media)


def _relay(upstream: Any) -> Iterator[bytes]:
    """Pass on what the upstream sends as soon as it arrives (read1: no waiting for a full buffer)."""
    with upstream:
        while chunk := upstream.read1(65536):
            yield chunk
