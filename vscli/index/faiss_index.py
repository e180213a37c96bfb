"""The FAISS implementation of `VectorIndex`: inner product over normalized vectors (= cosine).

The index type follows the store's size. Up to `FLAT_MAX_VECTORS` vectors the index is exact
(`IndexIDMap2(IndexFlatIP)`); past that it becomes an inverted file (`IndexIVFFlat`, 4*sqrt(n) lists), whose
`nprobe` is tuned at build time until recall@10 against exact search on a sample of the store's own
vectors reaches `TARGET_RECALL`. A merge of segments (`vscli.index.segments`) that holds an IVF one
adds the others to it and keeps its training until the merged index is 4x what it was trained for, then
trains anew. Queries
open the index memory-mapped, so opening costs no more than the pages a search touches.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np

from vscli.errors import CorruptData, VscliError
from vscli.workspace import atomic_write_bytes, env_positive_int, os_error

# Windows per chunk are few; fetch this many times k vectors so k distinct chunks survive de-duplication.
OVERFETCH = 4
FLAT_MAX_ENV = "VSCLI_FLAT_MAX_VECTORS"
FLAT_MAX_VECTORS = 200_000
TARGET_RECALL = 0.97  # tuned with a margin over the 0.95 promised
RETRAIN_GROWTH = 4
TUNE_QUERIES = 200


class FaissIndex:
    def __init__(self, index: Any, dimension: int) -> None:
        self._index = index
        self.dimension = dimension

    @classmethod
    def empty(cls, dimension: int) -> "FaissIndex":
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), dimension)

    @staticmethod
    def _read(path: Path, read_only: bool) -> Any:
        import faiss

        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if read_only else 0
        try:
            return faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            if not path.exists():
                raise FileNotFoundError(errno.ENOENT, "no such file", str(path)) from exc
            raise CorruptData(f"corrupted index {path}: FAISS cannot read it") from exc

    @classmethod
    def dimension_of(cls, path: Path) -> int:
        return int(cls._read(path, read_only=True).d)

    @classmethod
    def load(cls, path: Path, dimension: int, read_only: bool = False) -> "FaissIndex":
        index = cls._read(path, read_only)
        if index.d != dimension:
            raise CorruptData(f"index {path} has dimension {index.d}, the store expects {dimension} "
                              "(`vscli doctor STORE --repair` sets the store's to the index's)")
        return cls(index, dimension)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def _ivf(self) -> Any:
        import faiss

        try:
            return faiss.extract_index_ivf(self._index)
        except RuntimeError:
            return None

    def kind(self) -> str:
        """The index type, as `vscli status` shows it: exact, or IVF with its lists and nprobe."""
        ivf = self._ivf
        if ivf is None:
            return "flat (exact)"
        return f"IVF{ivf.nlist},Flat nprobe {ivf.nprobe} (approximate)"

    def remove(self, ids: np.ndarray) -> int:
        """Drop every vector with one of these ids; returns how many went."""
        import faiss

        if not len(ids):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64))))

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))

    def ids(self) -> np.ndarray:
        return self._contents(with_vectors=False)[1]

    def vectors_and_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """Every vector and its id, in matching order (ids repeat: a chunk's windows share one)."""
        vectors, ids = self._contents()
        assert vectors is not None
        return vectors, ids

    def _contents(self, with_vectors: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Every vector and its id, in matching order (ids repeat: a chunk's windows share one)."""
        import faiss

        ivf = self._ivf
        if ivf is None:
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            vectors = self._index.index.reconstruct_n(0, self.size) if with_vectors else None
            return vectors, ids
        lists = ivf.invlists
        id_parts, vector_parts = [], []
        for i in range(ivf.nlist):
            size = lists.list_size(i)
            if not size:
                continue
            id_parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).copy())
            if with_vectors:  # IVFFlat codes are the raw float32 vectors
                raw = faiss.rev_swig_ptr(lists.get_codes(i), size * lists.code_size).copy()
                vector_parts.append(raw.view(np.float32).reshape(size, self.dimension))
        ids = np.concatenate(id_parts).astype(np.int64) if id_parts else np.zeros(0, np.int64)
        if not with_vectors:
            return None, ids
        vectors = np.vstack(vector_parts) if vector_parts else np.zeros((0, self.dimension), np.float32)
        return vectors, ids

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if self.size == 0 or k <= 0 or allowed is not None and not len(allowed):
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), np.float32)
        params = self._selecting(allowed) if allowed is not None else None
        fetch = min(self.size, k * OVERFETCH)
        while True:
            scores, ids = self._index.search(q, fetch, params=params)
            best: dict[int, float] = {}
            for cid, score in zip(ids[0].tolist(), scores[0].tolist(), strict=False):
                if cid >= 0 and cid not in best:
                    best[cid] = score
            if len(best) >= k or fetch >= self.size:
                break
            if ids[0][-1] >= 0:
                fetch = min(self.size, fetch * 4)
            elif not self._widen(params):  # the lists searched hold no more matches, and there are no others
                break
        return sorted(best.items(), key=lambda kv: -kv[1])[:k]

    def _widen(self, params: Any) -> bool:
        """A selective filter on an approximate index: the matching vectors may sit in lists the tuned
        nprobe skips, so look in 4x more lists; False once every list is searched (or on a flat index)."""
        ivf = self._ivf
        if params is None or ivf is None or params.nprobe >= ivf.nlist:
            return False
        params.nprobe = min(ivf.nlist, params.nprobe * 4)
        return True

    def _selecting(self, allowed: np.ndarray) -> Any:
        """Search parameters that let only these chunk ids through, inside the search (before top k)."""
        import faiss

        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, np.int64))
        ivf = self._ivf
        if ivf is None:
            params: Any = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]  # SWIG kwargs
        else:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)  # type: ignore[call-arg]
        params._selector = selector  # the parameters hold a raw pointer: keep the selector alive
        return params

    def fit_to_size(self) -> None:
        """Switch to an IVF index when the vectors added have outgrown an exact one, and train an IVF
        index anew when it has grown past RETRAIN_GROWTH times what it was trained for."""
        ivf = self._ivf
        if ivf is None and self.size <= env_positive_int(FLAT_MAX_ENV, FLAT_MAX_VECTORS):
            return
        if ivf is not None and self.size <= RETRAIN_GROWTH * _trained_size(ivf.nlist):
            return
        vectors, ids = self._contents()
        self._index = _build_ivf(vectors, ids, self.dimension)  # type: ignore[arg-type]

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


def _build_ivf(vectors: np.ndarray, ids: np.ndarray, dimension: int) -> Any:
    """An IVF index over these vectors, with nprobe tuned to reach TARGET_RECALL on a sample."""
    import faiss

    n = len(vectors)
    # 4*sqrt(n) lists keep the share of the store a search must scan small; each needs ~39 training points.
    nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
    rng = np.random.default_rng(0)
    train = vectors[rng.choice(n, size=min(n, 39 * nlist), replace=False)]
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(np.ascontiguousarray(train))
    ivf.add_with_ids(np.ascontiguousarray(vectors), ids)
    # Tune on queries near the store's own vectors, against exact search over all of them.
    # Real queries sit farther from their best documents than documents from each other: perturb the
    # sample to a cosine of about 0.7 from where it started.
    sample = vectors[rng.choice(n, size=min(n, TUNE_QUERIES), replace=False)]
    queries = sample + rng.normal(0, 1.0 / np.sqrt(dimension), sample.shape).astype(np.float32)
    faiss.normalize_L2(queries)
    exact = faiss.IndexFlatIP(dimension)
    exact.add(np.ascontiguousarray(vectors))
    _, truth = exact.search(queries, 10)
    truth_ids = ids[truth]
    ivf.nprobe = min(nlist, max(16, nlist // 64))  # a floor: never bet a query on one or two lists
    while True:
        _, found = ivf.search(queries, 10)
        if recall_at_10(found, truth_ids) >= TARGET_RECALL or ivf.nprobe >= nlist:
            return ivf
        ivf.nprobe = min(nlist, ivf.nprobe * 2)


def _trained_size(nlist: int) -> float:
    """About how many vectors an IVF index with nlist lists was built for (inverts `_build_ivf`)."""
    return max((nlist / 4) ** 2, 39 * nlist)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=False))
    return hits / truth.size


def _io_reason(path: Path, exc: RuntimeError) -> str:
    import shutil

    try:
        if shutil.disk_usage(path.parent).free < 1024 * 1024:
            return "no space left on device"
    except OSError:
        pass
    return str(exc).rsplit("failed:", 1)[-1].strip() or "write error"
