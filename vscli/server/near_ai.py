"""NEAR AI's search shape. The NEAR AI hub client's `query_vector_store` posts `{"query", "full_files"}`
to `/vector_stores/{id}/search` and reads a JSON list, not OpenAI's page:

- ``full_files`` false: ``[{"file_id", "chunk_text", "distance"}]``, one item per chunk, best first;
- ``full_files`` true: ``[{"file_id", "filename", "file_content", "distance"}]``, one item per file (its
  best chunk's distance), with the file's whole text.

``distance`` is ``1 - score``: lower is better, and with the default (hybrid) ranker it lies in 0..1.
"""

from __future__ import annotations

from typing import Any, Callable


def near_ai_results(results: list[dict[str, Any]], full_files: bool,
                    file_text: Callable[[str], str]) -> list[dict[str, Any]]:
    """Search results (OpenAI's items, best first) in NEAR AI's shape; ``file_text`` reads a file's text."""
    if not full_files:
        return [{"file_id": r["file_id"], "chunk_text": r["content"][0]["text"], "distance": _distance(r)}
                for r in results]
    best: dict[str, dict[str, Any]] = {}
    for result in results:
        best.setdefault(result["file_id"], result)
    return [{"file_id": file_id, "filename": r["filename"], "file_content": file_text(file_id),
             "distance": _distance(r)} for file_id, r in best.items()]


def _distance(result: dict[str, Any]) -> float:
    return round(1.0 - float(result["score"]), 6)
