"""The FAISS implementation of `VectorIndex`: exact inner product over normalized vectors (= cosine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vscli.errors import CorruptData, VscliError
from vscli.workspace import atomic_write_bytes, os_error

# Windows per chunk are few; fetch this many times k vectors so k distinct chunks survive de-duplication.
OVERFETCH = 4


class FaissIndex:
    def __init__(self, index, dimension: int) -> None:  # type: ignore[no-untyped-def]
        self._index = index
        self.dimension = dimension

    @classmethod
    def empty(cls, dimension: int) -> "FaissIndex":
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), dimension)

    @classmethod
    def load(cls, path: Path, dimension: int) -> "FaissIndex":
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            if not path.exists():
                raise FileNotFoundError(str(path)) from exc
            raise CorruptData(f"corrupted index {path}: FAISS cannot read it") from exc
        if index.d != dimension:
            raise CorruptData(f"index {path} has dimension {index.d}, the store expects {dimension}")
        return cls(index, dimension)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))

    def remove_range(self, lo: int, hi: int) -> int:
        import faiss

        return int(self._index.remove_ids(faiss.IDSelectorRange(lo, hi)))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.size == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), np.float32)
        fetch = min(self.size, k * OVERFETCH)
        while True:
            scores, ids = self._index.search(q, fetch)
            best: dict[int, float] = {}
            for cid, score in zip(ids[0].tolist(), scores[0].tolist()):
                if cid >= 0 and cid not in best:
                    best[cid] = score
            if len(best) >= k or fetch >= self.size:
                return sorted(best.items(), key=lambda kv: -kv[1])[:k]
            fetch = min(self.size, fetch * 4)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def save(self, path: Path) -> None:
        import faiss

        def write(tmp: Path) -> None:
            try:
                faiss.write_index(self._index, str(tmp))
            except RuntimeError as exc:  # FAISS reports I/O failures as RuntimeError
                raise VscliError(f"cannot write the index {path}: {_io_reason(tmp, exc)}") from exc

        try:
            atomic_write_bytes(path, write)
        except OSError as exc:
            raise os_error("write the index", path, exc) from exc


def _io_reason(path: Path, exc: RuntimeError) -> str:
    import shutil

    try:
        if shutil.disk_usage(path.parent).free < 1024 * 1024:
            return "no space left on device"
    except OSError:
        pass
    return str(exc).rsplit("failed:", 1)[-1].strip() or "write error"
