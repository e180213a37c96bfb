"""OpenAI's list order and cursors over objects in memory: by ``created_at``, ``asc`` or ``desc``, after
and/or before an object's id. (A catalog pages its files in SQL the same way: `CatalogEntries.page`.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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


def sql_page(select: Callable[[str, list[Any]], list[Any]], table: str, columns: str, key: list[str],
             where: list[str], params: list[Any], limit: int, order: str = "desc", after: str | None = None,
             before: str | None = None) -> tuple[list[Any], bool]:
    """The same page read from ``table`` in SQL: rows of ``columns`` ordered by ``key`` (expressions an
    index orders by, ending with a unique one, so the page is read through the index: the rows of the
    page and one more, whatever the table's size), only those passing ``where``; the cursors are looked
    up by ``id``. ``select(sql, params)`` runs a query."""
    ascending = order == "asc"
    conditions, filtering = " AND ".join(where) or "1", list(params)
    where, params = list(where), list(params)
    for field, cursor, later in (("after", after, ascending), ("before", before, not ascending)):
        if cursor is None:
            continue
        found = select(f"SELECT {', '.join(key)} FROM {table} WHERE id = ? AND {conditions}", [cursor, *filtering])
        if not found:
            raise InvalidInput(f"{field}: no object {cursor!r} in this list")
        where.append(f"({', '.join(key)}) {'>' if later else '<'} ({', '.join('?' * len(key))})")
        params += list(found[0])
    from_end = before is not None and after is None  # the last `limit` before the cursor
    direction = "ASC" if ascending != from_end else "DESC"
    rows = select(f"SELECT {columns} FROM {table} WHERE {' AND '.join(where) or '1'} "
                  f"ORDER BY {', '.join(f'{k} {direction}' for k in key)} LIMIT ?", [*params, limit + 1])
    chosen = rows[:limit]
    if from_end:
        chosen.reverse()
    return chosen, len(rows) > limit
