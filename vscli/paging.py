"""OpenAI's list order and cursors over objects in memory: by ``created_at``, ``asc`` or ``desc``, after
and/or before an object's id. (A catalog pages its files in SQL the same way: `CatalogEntries.page`.)"""

from __future__ import annotations

from typing import Any, Iterable

from vscli.errors import InvalidInput


def page_of(items: Iterable[dict[str, Any]], limit: int, order: str = "desc", after: str | None = None,
            before: str | None = None) -> tuple[list[dict[str, Any]], bool]:
    """One page of ``items`` (objects with "id" and "created_at", given oldest first; objects made in the
    same second keep that order) and whether the list goes on. ``after``/``before`` must name objects of
    the list (InvalidInput names the field otherwise); ``before`` alone gives the last ``limit`` before it."""
    ordered = sorted(items, key=lambda o: o.get("created_at", 0))  # stable: ties stay in the given order
    if order == "desc":
        ordered.reverse()
    ids = [o["id"] for o in ordered]
    for field, cursor in (("after", after), ("before", before)):
        if cursor is not None and cursor not in ids:
            raise InvalidInput(f"{field}: no object {cursor!r} in this list")
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(before) if before is not None else len(ordered)
    window = ordered[start:end]
    chosen = window[-limit:] if before is not None and after is None else window[:limit]
    return chosen, len(window) > len(chosen)
