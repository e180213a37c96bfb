"""OpenAI's list pages: `limit`, `order` by creation time, and `after` / `before` cursors (object ids)."""

from __future__ import annotations

from typing import Any

from vscli.errors import InvalidInput

MAX_LIMIT = 100


def paginate(items: list[dict[str, Any]], limit: int = 20, order: str = "desc", after: str | None = None,
             before: str | None = None) -> dict[str, Any]:
    """One page of ``items`` (objects with "id" and "created_at", given oldest first) in OpenAI's list
    envelope; objects made within the same second keep the order they were given in."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be asc or desc, got {order!r}")
    ordered = sorted(items, key=lambda o: o.get("created_at", 0))  # stable: ties stay in creation order
    if order == "desc":
        ordered.reverse()
    ids = [o["id"] for o in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        if after not in ids:
            raise InvalidInput(f"after: no object {after!r} in this list")
        start = ids.index(after) + 1
    if before is not None:
        if before not in ids:
            raise InvalidInput(f"before: no object {before!r} in this list")
        end = ids.index(before)
    window = ordered[start:end]
    page = window[-limit:] if before is not None and after is None else window[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(window) > len(page),
    }
