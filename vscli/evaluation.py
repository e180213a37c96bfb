"""Retrieval quality on the user's own judgments: BEIR-format queries and qrels in, nDCG@10, Recall@10,
Recall@100 and MRR@10 out.

A search result counts as a document through its ``doc_id`` attribute, or else its filename without the
extension; the chunks of one document count once, at the rank of its best chunk. The metrics follow
trec_eval as BEIR runs it: gains are the judged grades (linear, not 2^grade - 1); a grade above 0 is
relevant; queries without a relevant judgment are left out; ideal DCG ranks all judged documents, found
or not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable

from vscli.errors import InvalidInput

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DEPTH = 100  # documents ranked per query
CHUNKS_PER_DOCUMENT = 3  # chunks fetched per wanted document, so DEPTH distinct documents usually survive


@dataclass
class Judged:
    queries: dict[str, str]  # query id -> text, only queries with a relevant judgment
    qrels: dict[str, dict[str, int]]  # query id -> {document id: grade}


def read_queries(path: Path) -> dict[str, str]:
    """BEIR queries.jsonl: one {"_id": ..., "text": ...} object per line."""
    queries: dict[str, str] = {}
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number}: not a JSON object ({exc.msg})") from None
        if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text"), str):
            raise InvalidInput(f'{path}:{number}: each line needs "_id" and a string "text"')
        queries[str(obj["_id"])] = obj["text"]
    if not queries:
        raise InvalidInput(f"{path} holds no queries")
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: tab-separated `query-id corpus-id score` lines after a header line."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 3:
            raise InvalidInput(f"{path}:{number}: expected 3 tab-separated fields (query-id, corpus-id, score)")
        try:
            grade = int(fields[2])
        except ValueError:
            if number == 1:
                continue  # the header line
            raise InvalidInput(f"{path}:{number}: the score must be an integer, got {fields[2]!r}") from None
        qrels.setdefault(fields[0], {})[fields[1]] = grade
    if not qrels:
        raise InvalidInput(f"{path} holds no judgments")
    return qrels


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def judged(queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> Judged:
    """The queries that can be scored: in both files, with at least one relevant document."""
    relevant = {q: grades for q, grades in qrels.items() if any(g > 0 for g in grades.values())}
    kept = {q: text for q, text in queries.items() if q in relevant}
    if not kept:
        raise InvalidInput("no query in the queries file has a relevant judgment in the qrels file "
                           "(do the query ids match?)")
    return Judged(kept, {q: relevant[q] for q in kept})


def document_id(result: dict[str, Any]) -> str:
    doc_id = result.get("attributes", {}).get("doc_id")
    if doc_id is not None and not isinstance(doc_id, bool):
        return str(doc_id)
    return PurePath(result["filename"]).stem


def documents(results: Iterable[dict[str, Any]], depth: int = DEPTH) -> list[str]:
    """Chunk results -> distinct document ids, best first."""
    ranked = list(dict.fromkeys(document_id(r) for r in results))
    return ranked[:depth]


# ---- the metrics (one query) ------------------------------------------------------------------------------


def ndcg(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum(grades.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: list[str], grades: dict[str, int], k: int) -> float:
    relevant = {doc for doc, g in grades.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if grades.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_query(ranked: list[str], grades: dict[str, int]) -> dict[str, float]:
    return {
        "ndcg@10": ndcg(ranked, grades, 10),
        "recall@10": recall(ranked, grades, 10),
        "recall@100": recall(ranked, grades, 100),
        "mrr@10": mrr(ranked, grades, 10),
    }


def mean(per_query: list[dict[str, float]]) -> dict[str, float]:
    return {m: round(sum(q[m] for q in per_query) / len(per_query), 4) for m in METRICS}


def evaluate(
    rank: Callable[[str], list[dict[str, Any]]],
    data: Judged,
    depth: int = DEPTH,
    on_query: Callable[[], None] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Run every judged query through ``rank`` (query text -> chunk results, best first); returns the
    mean metrics and one record per query."""
    records, scores = [], []
    for query_id, text in data.queries.items():
        ranked = documents(rank(text), depth)
        scores.append(score_query(ranked, data.qrels[query_id]))
        records.append({"query_id": query_id, **{m: round(v, 4) for m, v in scores[-1].items()},
                        "top": ranked[:10]})
        if on_query:
            on_query()
    return mean(scores), records
