"""Query pipeline: embed the query with the store's own model, search, and shape OpenAI's results page."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from vscli.errors import InvalidInput
from vscli.store import MAX_RESULTS, Store


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_RESULTS:
        raise InvalidInput(f"-k must be between 1 and {MAX_RESULTS} (OpenAI's max_num_results), got {k}")


def page_label(pages: list[int]) -> str:
    """How a PDF result says where it is: "page 3" or "pages 3-4"."""
    return f"page {pages[0]}" if len(pages) == 1 else f"pages {pages[0]}-{pages[-1]}"


def page(query: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": query,
        "data": results,
        "has_more": False,
        "next_page": None,
    }


def search(store: Store, query: str, k: int = 10) -> dict[str, Any]:
    """One query -> a `vector_store.search_results.page`."""
    return next(search_many(store, [query], k))


def search_many(store: Store, queries: Iterable[str], k: int = 10) -> Iterator[dict[str, Any]]:
    """Many queries, loading the model once; yields one page per query as soon as it is ready."""
    check_k(k)
    config = store.check_queryable()
    store.touch()  # a query is activity: it moves the expiry anchor (OpenAI's last_active_at)
    from vscli.embedding import load_query_encoder

    embedder = None
    for query in queries:
        if not query.strip():
            raise InvalidInput("the query must not be empty")
        if embedder is None:
            embedder = load_query_encoder(config["vscli"]["model"])
        yield page(query, store.search(embedder.embed_query(query), k))
