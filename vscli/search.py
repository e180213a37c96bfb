"""Query pipeline: rank a store's chunks for a query and shape OpenAI's search results page.

Three modes rank chunks:
- ``vector``: cosine similarity between the query's and the chunk's embeddings (the store's model);
- ``keyword``: BM25 over the chunk texts (tantivy; English stemming), which catches exact terms such as
  names, codes and numbers that embeddings blur;
- ``hybrid`` (the default): both rankings fused by reciprocal rank fusion, score = sum of 1/(60 + rank)
  over the two lists, divided by its maximum 2/61, so 1.0 means "first in both".

Filters select files before ranking, so top k is cut from the matching files only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from vscli.errors import CorruptData, InvalidInput
from vscli.store import MAX_RESULTS, READ_RETRIES, Store

if TYPE_CHECKING:
    from vscli.reader import Snapshot

MODES = ("hybrid", "vector", "keyword")
DEFAULT_MODE = "hybrid"
RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks
FUSION_DEPTH = 50  # each ranking contributes at least this many candidates to the fusion


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_RESULTS:
        raise InvalidInput(f"-k must be between 1 and {MAX_RESULTS} (OpenAI's max_num_results), got {k}")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInput(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


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


def search(store: Store, query: str, k: int = 10, **options: Any) -> dict[str, Any]:
    """One query -> a `vector_store.search_results.page`."""
    return next(search_many(store, [query], k, **options))


def search_many(
    store: Store,
    queries: Iterable[str],
    k: int = 10,
    mode: str = DEFAULT_MODE,
    filters: dict[str, Any] | None = None,
    min_score: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Many queries over one store; yields one page per query as soon as it is ready."""
    check_k(k)
    searcher = Searcher(store, mode, filters, min_score)
    with store.opened():  # one connection for the batch (a Milvus Lite file is opened once)
        for query in queries:
            yield page(query, searcher.results(query, k))


class Searcher:
    """Runs queries against a store in one mode, loading the query encoder once and reusing the store's
    snapshot while nothing changes. ``min_score`` drops results scoring below it, on the mode's scale."""

    def __init__(self, store: Store, mode: str = DEFAULT_MODE, filters: dict[str, Any] | None = None,
                 min_score: float | None = None, encoder: Any = None) -> None:
        from vscli import filters as vfilters

        self.store = store
        self.mode = check_mode(mode)
        if filters is not None:
            vfilters.validate(filters)
        self.filters = filters
        self.min_score = min_score
        self.config = store.check_queryable()
        self._encoder: Any = encoder  # a query encoder already loaded for the store's model, if any
        self._snapshot: Snapshot | None = None
        store.touch()  # a query is activity: it moves the expiry anchor (OpenAI's last_active_at)

    def results(self, query: str, k: int) -> list[dict[str, Any]]:
        """The top-k chunks for a query, as OpenAI search result items, best first."""
        if not query.strip():
            raise InvalidInput("the query must not be empty")
        vector = self._embed(query) if self.mode != "keyword" else None
        with self.store.opened(self.config):
            return self._results(query, vector, k)

    def _results(self, query: str, vector: Any, k: int) -> list[dict[str, Any]]:
        for attempt in range(READ_RETRIES):
            try:
                self._snapshot = self.store.snapshot(self._snapshot)
                results = self._snapshot.results(self._ranked(self._snapshot, query, vector, k))
                if self.min_score is not None:  # on the score as reported (rounded), as the user sees it
                    results = [r for r in results if r["score"] >= self.min_score]
                return results
            except FileNotFoundError as exc:
                self._snapshot = None
                if attempt == READ_RETRIES - 1:  # not a race with a commit: the file is gone
                    raise CorruptData(f"store {self.store.id} is missing {exc.filename or exc}; "
                                      f"`vscli doctor {self.store.id} --repair` recovers what it can") from exc
                time.sleep(0.05)  # a commit replaced what we were reading: read the new state
        return []

    def _embed(self, query: str) -> Any:
        if self._encoder is None:
            from vscli.embedding import load_query_encoder

            self._encoder = load_query_encoder(self.config["vscli"]["model"])
        return self._encoder.embed_query(query)

    def _ranked(self, snap: Snapshot, query: str, vector: Any, k: int) -> list[tuple[int, float]]:
        if self.mode == "vector":
            return snap.vector_hits(vector, k, self.filters)
        if self.mode == "keyword":
            return snap.keyword_hits(query, k, self.filters)
        depth = max(k, FUSION_DEPTH)
        return fuse([snap.vector_hits(vector, depth, self.filters),
                     snap.keyword_hits(query, depth, self.filters)])[:k]


def fuse(rankings: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of best-first rankings, scaled so an item first in every ranking scores 1.

    Equal fused scores are common (first in one list and second in the other, or the reverse); they are
    ordered by the evidence of the scores themselves: the sum of each score relative to its list's best.
    """
    fused: dict[int, float] = {}
    evidence: dict[int, float] = {}
    for ranking in rankings:
        best = ranking[0][1] if ranking and ranking[0][1] > 0 else 1.0
        for rank, (cid, score) in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
            evidence[cid] = evidence.get(cid, 0.0) + score / best
    top = len(rankings) / (RRF_K + 1)
    order = sorted(fused, key=lambda cid: (-fused[cid], -evidence[cid]))
    return [(cid, fused[cid] / top) for cid in order]
