"""The slow half of processing a file, done outside any lock: extract -> chunk -> embed.

`prepare` turns attached files into `Prepared` results (chunks and vectors, or an error); the store
commits them under its lock. Work for many files is embedded in one batch, so small files cost no more
per chunk than large ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vscli.chunking import Chunk, chunk_text
from vscli.errors import VscliError


@dataclass
class Job:
    file_id: str
    attempt: str
    filename: str
    path: Path  # the uploaded bytes; read when the job's batch is prepared, not before
    size: int
    max_tokens: int
    overlap: int
    encoding: str | None = None  # a text file's encoding, when the user named one at upload


@dataclass
class Prepared:
    job: Job
    chunks: list[Chunk] = field(default_factory=list)
    pages: list[list[int]] = field(default_factory=list)  # for each chunk, the PDF pages it spans
    vectors: np.ndarray | None = None
    owners: np.ndarray | None = None  # for each vector, the position of its chunk in `chunks`
    error: dict[str, str] | None = None


def prepare(
    jobs: list[Job],
    embedder: Any,
    on_chunked: Callable[[int], None] | None = None,
    on_embedded: Callable[[int], None] | None = None,
) -> list[Prepared]:
    """Chunk and embed every job; a file that cannot be read becomes a result with an error."""
    import numpy as np

    from vscli.extract import extract

    results: list[Prepared] = []
    texts: list[str] = []
    text_owner: list[tuple[int, int]] = []  # (result index, chunk position) for each chunk text
    for job in jobs:
        result = Prepared(job)
        try:
            try:
                data = job.path.read_bytes()
            except OSError as exc:
                raise VscliError(f"cannot read the uploaded file: {exc.strerror or exc}") from exc
            extracted = extract(data, job.filename, job.encoding)
            result.chunks = chunk_text(extracted.text, job.max_tokens, job.overlap)
            if extracted.pages:
                result.pages = [[n for n, start, end in extracted.pages if start < c.end and end > c.start]
                                for c in result.chunks]
        except VscliError as exc:
            result.error = {"code": "invalid_file", "message": exc.message}
        for pos, chunk in enumerate(result.chunks):
            texts.append(chunk.text)
            text_owner.append((len(results), pos))
        results.append(result)
    if on_chunked:
        on_chunked(len(texts))
    vectors, owners = embedder.embed_documents(texts, progress=on_embedded)
    # Hand each result its own vectors, with owners re-based to the result's chunk positions.
    by_result: dict[int, list[int]] = {}
    for row, text_index in enumerate(owners.tolist()):
        by_result.setdefault(text_owner[text_index][0], []).append(row)
    for i, result in enumerate(results):
        rows = by_result.get(i, [])
        result.vectors = vectors[rows] if rows else np.zeros((0, embedder.dimension), np.float32)
        result.owners = np.asarray([text_owner[owners[r]][1] for r in rows], np.int64)
    return results
