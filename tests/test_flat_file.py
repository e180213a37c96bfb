"""Exact segments read by numpy (`vscli.index.flat_file`): the same hits as FAISS, and FAISS for the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vscli.errors import CorruptData
from vscli.index import chunk_id, faiss_index, open_for_search, open_index
from vscli.index.faiss_index import FaissIndex
from vscli.index.flat_file import FlatFile

DIM = 48


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def saved(path: Path, vectors: np.ndarray, ids: np.ndarray) -> Path:
    index = FaissIndex.empty(DIM)
    index.add(vectors, ids)
    index.fit_to_size()
    index.save(path)
    return path


@pytest.mark.parametrize("n", [0, 1, 7, 2500])
def test_the_same_hits_as_faiss_with_and_without_a_filter(n: int, tmp_path: Path) -> None:
    """Up to three windows per chunk (sharing its id), duplicated vectors (equal scores, also at the cut
    of k), k past the number of chunks, and filters that keep a few chunks or none."""
    rng = np.random.default_rng(n)
    vectors = unit(rng.normal(size=(n, DIM)))
    if n > 10:
        vectors[n // 2: n // 2 + 5] = vectors[:5]  # the same text in another file: equal scores
        vectors[n // 3: n // 3 + 12] = vectors[0]  # ...in many chunks: more ties than k * 4 vectors
    ids = np.array([chunk_id(3 + i // 30, (i % 30) // 3) for i in range(n)], np.int64)
    path = saved(tmp_path / "index-1.faiss", vectors, ids)
    faiss_reader = open_index(path, DIM, read_only=True)
    flat = FlatFile.open(path, DIM)
    assert isinstance(flat, FlatFile) and flat.size == n and flat.kind() == faiss_reader.kind() == "flat (exact)"
    chunks = np.unique(ids)
    filters = [None, chunks[::3], chunks[-2:], np.zeros(0, np.int64)]
    queries = unit(rng.normal(size=(12, DIM)))
    if n:
        queries = np.vstack([queries, vectors[:1]])  # a query equal to a duplicated vector
    for query in queries:
        best = best_scores(vectors @ query, ids)
        for k in (1, 5, 10, 200):
            for allowed in filters:
                found = flat.search(query, k, allowed)
                assert_agree(found, faiss_reader.search(query, k, allowed))
                assert all(abs(best[cid] - score) <= 1e-6 for cid, score in found)  # each chunk's best window
                assert allowed is None or {cid for cid, _ in found} <= set(allowed.tolist())


def best_scores(scores: np.ndarray, ids: np.ndarray) -> dict[int, float]:
    best: dict[int, float] = {}
    for cid, score in zip(ids.tolist(), scores.tolist(), strict=True):
        best[cid] = max(score, best.get(cid, -2.0))
    return best


def assert_agree(found: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    """The same ids in the same order (equal scores too: a store's results do not depend on the reader)
    and the same scores to 1e-6 (numpy sums the products in another order)."""
    assert [cid for cid, _ in found] == [cid for cid, _ in expected]
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=1e-6)


def test_the_same_ranking_as_faiss_on_a_larger_segment(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    vectors = unit(rng.normal(size=(3000, DIM)))
    ids = np.array([chunk_id(1 + i // 100, (i % 100) // 2) for i in range(3000)], np.int64)
    path = saved(tmp_path / "index-1.faiss", vectors, ids)
    faiss_reader, flat = open_index(path, DIM, read_only=True), FlatFile.open(path, DIM)
    assert flat is not None
    for query in unit(rng.normal(size=(50, DIM))):
        for allowed in (None, np.unique(ids)[::7]):
            assert [c for c, _ in flat.search(query, 10, allowed)] == [c for c, _ in faiss_reader.search(query, 10,
                                                                                                          allowed)]


def test_other_indexes_are_left_to_faiss(tmp_path: Path, monkeypatch) -> None:
    """An IVF segment, another dimension, a cut or padded file: not read by numpy. open_for_search then
    opens it with FAISS, which searches the IVF one and reports the damaged ones."""
    rng = np.random.default_rng(2)
    vectors = unit(rng.normal(size=(3000, DIM)))
    ids = np.arange(3000, dtype=np.int64)
    monkeypatch.setattr(faiss_index, "FLAT_MAX_VECTORS", 1000)
    ivf = saved(tmp_path / "ivf.faiss", vectors, ids)
    assert FlatFile.open(ivf, DIM) is None
    opened = open_for_search(ivf, DIM)
    assert isinstance(opened, FaissIndex) and "IVF" in opened.kind()
    assert opened.search(vectors[0], 3)[0][0] == 0
    monkeypatch.setattr(faiss_index, "FLAT_MAX_VECTORS", 200_000)
    flat = saved(tmp_path / "flat.faiss", vectors, ids)
    assert isinstance(open_for_search(flat, DIM), FlatFile)
    assert FlatFile.open(flat, DIM + 1) is None
    whole = flat.read_bytes()
    (tmp_path / "padded.faiss").write_bytes(whole + b"\0" * 8)  # FAISS reads it (and ignores the rest)
    assert FlatFile.open(tmp_path / "padded.faiss", DIM) is None
    assert isinstance(open_for_search(tmp_path / "padded.faiss", DIM), FaissIndex)
    for damaged in (whole[:-8], whole[:50], b""):
        (tmp_path / "damaged.faiss").write_bytes(damaged)
        assert FlatFile.open(tmp_path / "damaged.faiss", DIM) is None
        with pytest.raises(CorruptData):
            open_for_search(tmp_path / "damaged.faiss", DIM)
    with pytest.raises(FileNotFoundError):  # a merge deleted it: the reader starts again from the catalog
        open_for_search(tmp_path / "gone.faiss", DIM)
