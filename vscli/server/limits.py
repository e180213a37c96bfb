"""A request body is counted as it arrives and refused past its limit, whatever `Content-Length` says.

A chunked upload carries no length, and the multipart parser spools everything it is given before the
endpoint sees a byte; so the count has to happen in the stream itself. Past the limit the request is
cut off and answered 413, having spooled at most the limit.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

FORM_ROOM = 1024 * 1024  # an upload's form fields and boundaries, beyond the file's own limit
MAX_JSON_BYTES = 16 * 1024 * 1024  # far beyond any request of OpenAI's API (10,000 file ids are 0.3 MB)

Message = dict[str, Any]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 once a body passes ``upload_limit()`` + FORM_ROOM (multipart), or
    MAX_JSON_BYTES (any other body)."""

    def __init__(self, app: Any, upload_limit: Callable[[], int], too_large: Callable[[int], Any]) -> None:
        """``too_large(limit)`` makes the 413 response (an ASGI app) that names the limit passed."""
        self.app = app
        self.upload_limit = upload_limit
        self.too_large = too_large

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        multipart = any(name == b"content-type" and value.lower().startswith(b"multipart/")
                        for name, value in scope.get("headers", ()))
        file_limit = self.upload_limit()
        limit = file_limit + FORM_ROOM if multipart else MAX_JSON_BYTES
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge()
            return message

        async def unless_over(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app makes of a body cut short, the answer is the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over and not started:
            response = self.too_large(file_limit if multipart else MAX_JSON_BYTES)
            response.headers["connection"] = "close"  # and the server stops reading the rest
            await response(scope, receive, send)
