"""Which requests a server without an API key answers: only those a local client sends.

A keyless server listens on loopback, but a web page in the user's browser can still reach it: by DNS
rebinding (a name of the attacker's that resolves to 127.0.0.1, so the browser sends `Host: evil.example`)
or by a cross-site "simple" request (a form POST, multipart or text/plain, which needs no CORS preflight).
So a keyless server checks `Host` against the names it is reachable by, refuses any `Origin` that is not
one of them, and every server takes request bodies only as JSON or multipart (what OpenAI's SDKs send).
"""

from __future__ import annotations

from typing import Iterable, Mapping
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
BODY_TYPES = ("application/json", "multipart/form-data")


def host_names(bound_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a request may carry (lower case, IPv6 in brackets, no port)."""
    bound = f"[{bound_host}]" if ":" in bound_host and not bound_host.startswith("[") else bound_host
    return frozenset(name.strip().lower() for name in (*LOOPBACK_NAMES, bound, *extra) if name.strip())


def _name(host_and_port: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``[::1]``, ``localhost:8000`` -> ``localhost``."""
    value = host_and_port.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def refusal(method: str, headers: Mapping[str, str], names: frozenset[str] | None) -> tuple[int, str] | None:
    """(status, message) when the request must be refused, else None. ``names`` None: any Host and
    Origin (a server with an API key, which a web page cannot send)."""
    if names is not None:
        host = headers.get("host", "")
        if _name(host) not in names:
            return 421, (f"this server answers requests for {', '.join(sorted(names))}, not {host!r} "
                         "(a reverse proxy's name can be allowed with `vscli serve --allowed-host NAME`)")
        origin = headers.get("origin")
        if origin is not None:
            parsed = urlsplit(origin)
            origin_host = parsed.hostname or ""
            origin_name = f"[{origin_host}]" if ":" in origin_host else origin_host
            if parsed.scheme not in ("http", "https") or origin_name.lower() not in names:
                return 403, f"requests from the web page at {origin!r} are not allowed"
    has_body = headers.get("transfer-encoding") is not None or headers.get("content-length", "0") not in ("", "0")
    if method in ("POST", "PUT", "PATCH") and has_body:
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind not in BODY_TYPES:
            return 415, f"a request body must be JSON or multipart/form-data, not {kind or 'untyped'}"
    return None
