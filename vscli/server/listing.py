"""OpenAI's list pages: `limit`, `order` by creation time, and `after` / `before` cursors (object ids)."""

from __future__ import annotations

from typing import Any

from vscli.errors import InvalidInput
from vscli.paging import page_of

MAX_LIMIT = 100


def check_page(limit: int, order: str) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be asc or desc, got {order!r}")


def envelope(page: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list object around one page."""
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": has_more,
    }


def paginate(items: list[dict[str, Any]], limit: int = 20, order: str = "desc", after: str | None = None,
             before: str | None = None) -> dict[str, Any]:
    """One page of ``items`` (given oldest first) in OpenAI's list envelope. (A store's files are paged
    by the catalog: `Store.files_page`.)"""
    check_page(limit, order)
    return envelope(*page_of(items, limit, order, after, before))
