"""An exact FAISS segment searched with numpy alone, so that a cold query need not import FAISS.

Importing FAISS costs a cold `vscli query` 70-85 ms here (mostly its Python wrapper), on the main thread
and holding the GIL while the query's encoder loads beside it. A segment of up to `FLAT_MAX_VECTORS`
vectors is exact (`IndexIDMap2(IndexFlatIP)`), and FAISS writes that as two index headers, the raw
float32 vectors and the id map (faiss/impl/index_write.cpp). `FlatFile.open` reads that layout and no
other: a file of any other shape (an IVF segment, another byte order, a FAISS release that writes flat
indexes differently, a damaged file) gives None, and the caller opens it with FAISS, which reports what
is wrong with it. Scores are the same inner products, summed in another order: they may differ from
FAISS's in the seventh digit.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from vscli.index.faiss_index import OVERFETCH

# fourcc, dimension, vectors held, two unused fields, is_trained, metric (faiss `write_index_header`)
HEADER = struct.Struct("<4siqqq?i")
COUNT = struct.Struct("<Q")
ID_MAP = b"IxM2"  # IndexIDMap2
FLAT_IP = b"IxFI"  # IndexFlatIP
METRIC_INNER_PRODUCT = 0


class FlatFile:
    """The vectors and chunk ids of one exact segment, read into memory; searched like `FaissIndex`."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.vectors = vectors
        self._ids = ids
        self.dimension = vectors.shape[1]

    @classmethod
    def open(cls, path: Path, dimension: int) -> FlatFile | None:
        """The segment at ``path`` when it is an exact FAISS index of ``dimension`` written as this
        module expects, else None. FileNotFoundError when the file is gone (a merge deleted it)."""
        with open(path, "rb") as f:
            total = os.fstat(f.fileno()).st_size
            head = f.read(2 * HEADER.size + COUNT.size)
            if len(head) < 2 * HEADER.size + COUNT.size:
                return None
            outer, inner = HEADER.unpack_from(head, 0), HEADER.unpack_from(head, HEADER.size)
            (floats,) = COUNT.unpack_from(head, 2 * HEADER.size)
            (kind, d, n, _, _, _, metric), (inner_kind, inner_d, inner_n, _, _, _, inner_metric) = outer, inner
            if (kind, inner_kind) != (ID_MAP, FLAT_IP) or d != dimension or (inner_d, inner_n) != (d, n):
                return None
            if (metric, inner_metric) != (METRIC_INNER_PRODUCT,) * 2 or n < 0 or floats != n * d:
                return None
            if total != len(head) + 4 * floats + COUNT.size + 8 * n:
                return None
            vectors = np.fromfile(f, np.float32, floats)  # a copy: the file's floats start at byte 82,
            if len(vectors) != floats or COUNT.unpack(f.read(COUNT.size)) != (n,):  # unaligned for numpy
                return None
            ids = np.fromfile(f, np.int64, n)
            if len(ids) != n:
                return None
        return cls(vectors.reshape(n, dimension), ids)

    @property
    def size(self) -> int:
        return len(self._ids)

    def kind(self) -> str:
        return "flat (exact)"

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """As `FaissIndex.search`: up to k distinct ids with their best score, best first, and equal
        scores in FAISS's order (below), so that a store's results do not depend on which reads it."""
        if self.size == 0 or k <= 0 or allowed is not None and not len(allowed):
            return []
        # einsum sums every row the same way: identical vectors (the same text in two files) tie exactly
        scores = np.einsum("ij,j->i", self.vectors, np.asarray(query, np.float32).reshape(-1))
        ids = self._ids
        if allowed is not None:
            rows = np.flatnonzero(np.isin(ids, allowed))
            scores, ids = scores[rows], ids[rows]
        fetch = min(len(ids), k * OVERFETCH)
        while True:
            best: dict[int, float] = {}
            top = _best_first(scores, fetch)
            for cid, score in zip(ids[top].tolist(), scores[top].tolist(), strict=True):
                best.setdefault(cid, score)
            if len(best) >= k or fetch >= len(ids):
                return list(best.items())[:k]
            fetch = min(len(ids), fetch * 4)


def _best_first(scores: np.ndarray, fetch: int) -> np.ndarray:
    """The positions of the ``fetch`` best scores, best first, as FAISS's exact search picks and orders
    them: of vectors tied at the cut, the first in the file; among equal scores, the last first."""
    if fetch < len(scores):
        cut = np.partition(scores, len(scores) - fetch)[len(scores) - fetch]  # the fetch-th best score
        above = np.flatnonzero(scores > cut)
        chosen = np.concatenate([above, np.flatnonzero(scores == cut)[: fetch - len(above)]])
    else:
        chosen = np.arange(len(scores))
    return chosen[np.lexsort((-chosen, -scores[chosen]))]
