"""Query pipeline: rank a store's chunks for a query and shape OpenAI's search results page.

Three modes rank chunks:
- ``vector``: cosine similarity between the query's and the chunk's embeddings (the store's model);
- ``keyword``: BM25 over the chunk texts (tantivy; English stemming), which catches exact terms such as
  names, codes and numbers that embeddings blur;
- ``hybrid`` (the default): both, fused. Two fusions:
  - ``score`` (the default): a relevance score in 0..1 from the chunk's cosine and its BM25 as a share of
    the query's own scale (see `relevance`), so a fixed threshold means the same for every query and store;
  - ``rrf``: reciprocal rank fusion, sum of 1/(60 + rank) over the two lists divided by its maximum 2/61,
    which says how two rankings agree, not how relevant a chunk is (kept for comparison).

Filters select files before ranking, so top k is cut from the matching files only.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from vscli.background import Background
from vscli.errors import CorruptData, InvalidInput
from vscli.index.keyword import identifier_share
from vscli.store import MAX_RESULTS, READ_RETRIES, Store
from vscli.workspace import check_text

if TYPE_CHECKING:
    from vscli.reader import Snapshot

MODES = ("hybrid", "vector", "keyword")
DEFAULT_MODE = "hybrid"
FUSIONS = ("score", "rrf")
DEFAULT_FUSION = "score"
RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks
FUSION_DEPTH = 50  # each ranking contributes at least this many candidates to the fusion
# Score fusion's weights, tuned on SciFact's train queries and checked on bench/collection (README, "Search
# quality"): nDCG@10 is flat for a keyword weight of 0.4-0.6, and a query made only of identifiers needs
# the keyword side to outweigh the cosine (E-4012 and E-4013 read alike to the model).
KEYWORD_WEIGHT = 0.5
IDENTIFIER_WEIGHT = 1.5
AUTO = "auto"
# `--min-score auto`: the floor under which a result is "not relevant", on each mode's calibrated scale
# (hybrid's score, vector's cosine, keyword's BM25 as a share of the query's scale). At 0.3 the best hybrid
# result of 98-100% of on-topic queries stays and that of 98-100% of off-topic queries goes (README).
RELEVANT = 0.3


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_RESULTS:
        raise InvalidInput(f"max_num_results must be between 1 and {MAX_RESULTS}, got {k}", field="max_num_results")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}", field="mode")
    return mode


def check_fusion(fusion: str) -> str:
    if fusion not in FUSIONS:
        raise InvalidInput(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}", field="fusion")
    return fusion


def parse_min_score(value: str | None) -> float | str | None:
    """A minimum score as a user writes it: a number, "auto" for the documented floor (`RELEVANT`), or
    "none" for no floor at all."""
    if value is None or value == "none":
        return None
    if value == AUTO:
        return AUTO
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"min_score must be a number, auto or none, got {value!r}", field="min_score") from None
    if math.isnan(number):
        raise InvalidInput("min_score must be a number, auto or none, got nan", field="min_score")
    return number


def page_label(pages: list[int]) -> str:
    """How a PDF result says where it is: "page 3" or "pages 3-4"."""
    return f"page {pages[0]}" if len(pages) == 1 else f"pages {pages[0]}-{pages[-1]}"


def source_name(result: dict[str, Any]) -> str:
    """What a result is called for people (and for the chat model): the file's path in the folder it
    came from when it has one (the `path` attribute `sync` and `upload -r` record, so nine README.md
    stay apart), else its filename."""
    path = (result.get("attributes") or {}).get("path")
    return path if isinstance(path, str) and path else result["filename"]


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
    min_score: float | str | None = None,
    fusion: str = DEFAULT_FUSION,
) -> Iterator[dict[str, Any]]:
    """Many queries over one store; yields one page per query as soon as it is ready."""
    check_k(k)
    searcher = Searcher(store, mode, filters, min_score, fusion=fusion)
    with store.opened():  # one connection for the batch (a Milvus Lite file is opened once)
        for query in queries:
            yield page(query, searcher.results(query, k))


class Searcher:
    """Runs queries against a store in one mode, loading the query encoder once and reusing the store's
    snapshot while nothing changes. ``min_score`` drops results scoring below it, on the mode's scale;
    "auto" is the documented floor of relevance (`RELEVANT`), which rank fusion does not have."""

    def __init__(self, store: Store, mode: str = DEFAULT_MODE, filters: dict[str, Any] | None = None,
                 min_score: float | str | None = None, encoder: Any = None, fusion: str = DEFAULT_FUSION) -> None:
        from vscli import filters as vfilters

        self.store = store
        self.mode = check_mode(mode)
        self.fusion = check_fusion(fusion)
        if filters is not None:
            vfilters.validate(filters)
        if isinstance(min_score, str):
            min_score = parse_min_score(min_score)
        if min_score == AUTO and self.mode == "hybrid" and self.fusion == "rrf":
            raise InvalidInput("--min-score auto needs a score that means relevance: rank fusion (--fusion rrf) "
                               "has none; use --fusion score or a number")
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
        check_text(query, "the query")
        vector = self._embed(query) if self.mode != "keyword" else None
        try:
            with self.store.opened(self.config):
                return self._results(query, vector, k)
        except Exception:
            if vector is not None:
                vector.wait()  # never leave the encoder loading into the interpreter's shutdown
            raise  # (but Ctrl-C does not wait for it)

    def _embed(self, query: str) -> Background:
        """The query's vector. The first query of a process loads the encoder in a worker thread
        (onnxruntime builds its session without the GIL) while this thread reads the store, opens the
        vector index and runs the keyword search."""
        if self._encoder is not None:
            return Background.done(self._encoder.embed_query(query))
        from vscli.embedding.onnx_query import preload

        preload()

        model = self.config["vscli"]["model"]

        def load_and_embed() -> Any:
            from vscli.embedding import load_query_encoder

            encoder = load_query_encoder(model)
            vector = encoder.embed_query(query)
            self._encoder = encoder
            return vector

        return Background(load_and_embed, name="vscli-query-vector")

    def _results(self, query: str, vector: Background | None, k: int) -> list[dict[str, Any]]:
        for attempt in range(READ_RETRIES):
            try:
                snap = self._snapshot = self.store.snapshot(self._snapshot)
                hits = self._ranked(snap, query, vector, k)
                floor = self._floor(snap, query)
                if floor is not None:  # on the score as reported (rounded), as the user sees it
                    hits = [(cid, score) for cid, score in hits if round(score, 6) >= floor]
                return snap.results(hits)
            except FileNotFoundError as exc:
                self._snapshot = None
                if attempt == READ_RETRIES - 1:  # not a race with a commit: the file is gone
                    raise CorruptData(f"store {self.store.id} is missing {exc.filename or exc}; "
                                      f"`vscli doctor {self.store.id} --repair` recovers what it can") from exc
                time.sleep(0.05)  # a commit replaced what we were reading: read the new state
        return []

    def _floor(self, snap: Snapshot, query: str) -> float | None:
        """The lowest score kept, on the scale of the mode's hits."""
        if self.min_score != AUTO:
            return None if self.min_score is None else float(self.min_score)
        if self.mode == "keyword":  # BM25 has no fixed scale of its own: a share of the query's
            return RELEVANT * snap.keyword_scale(query)
        return RELEVANT

    def _ranked(self, snap: Snapshot, query: str, vector: Background | None,
                k: int) -> list[tuple[int, float]]:
        if self.mode == "keyword" or vector is None:
            return snap.keyword_hits(query, k, self.filters)
        snap.open_vectors()  # while the vector is being made
        if self.mode == "vector":
            return snap.vector_hits(vector.result(), k, self.filters)
        depth = max(k, FUSION_DEPTH)
        keyword_hits = snap.keyword_hits(query, depth, self.filters)  # also while the vector is being made
        vector_hits = snap.vector_hits(vector.result(), depth, self.filters)
        if self.fusion == "rrf":
            return fuse([vector_hits, keyword_hits])[:k]
        return fuse_scores(vector_hits, keyword_hits, depth, snap.keyword_scale(query), keyword_weight(query))[:k]


def keyword_weight(query: str) -> float:
    """The keyword share's weight next to the cosine: more for a query that is mostly identifiers."""
    return KEYWORD_WEIGHT + IDENTIFIER_WEIGHT * identifier_share(query)


def relevance(cosine: float, bm25: float, scale: float, weight: float) -> float:
    """Score fusion's relevance in 0..1: the convex combination of the cosine (negatives count as 0) and the
    BM25 score as a share of the query's scale (the score of a chunk of average length holding each query
    term once; capped at 1), so that a fixed threshold means the same for every query and store."""
    share = min(1.0, bm25 / scale) if scale > 0 else 0.0
    return (max(0.0, cosine) + weight * share) / (1.0 + weight)


def fuse_scores(vector: list[tuple[int, float]], keyword: list[tuple[int, float]], depth: int, scale: float,
                weight: float) -> list[tuple[int, float]]:
    """Score fusion of the two rankings' candidates, best first.

    A chunk found by one ranking only gets, for the other, the lowest score that ranking returned: it
    scores no higher than that, and the exact value changes nDCG@10 on SciFact by less than 0.002. A
    keyword list shorter than ``depth`` holds every chunk sharing a word with the query, so there the
    others score 0.
    """
    cosines, bm25 = dict(vector), dict(keyword)
    cosine_floor = min(cosines.values(), default=0.0)
    bm25_floor = min(bm25.values()) if len(keyword) >= depth else 0.0
    scored = {cid: (relevance(cosines.get(cid, cosine_floor), bm25.get(cid, bm25_floor), scale, weight),
                    cosines.get(cid, cosine_floor)) for cid in {**cosines, **bm25}}
    order = sorted(scored, key=lambda cid: (-scored[cid][0], -scored[cid][1], cid))
    return [(cid, scored[cid][0]) for cid in order]


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
