"""The FAISS index: exact below a size threshold, IVF above it with measured recall, ids by range."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vscli.index import chunk_id, faiss_index, open_index, split_chunk_id
from vscli.index.faiss_index import FaissIndex, recall_at_10

DIM = 32


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + rng.normal(0, 0.35, (n, DIM))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 1, (40, DIM))
    vectors = clustered(6000, rng, centers)
    ids = np.array([chunk_id(1 + i // 100, i % 100) for i in range(6000)], np.int64)
    return rng, centers, vectors, ids


def test_chunk_ids_pack_file_serial_and_position() -> None:
    cid = chunk_id(12345, 678)
    assert split_chunk_id(cid) == (12345, 678)
    assert split_chunk_id(chunk_id(12345, 0) - 1) == (12344, (1 << 24) - 1)


def test_small_indexes_stay_exact(data) -> None:
    _, _, vectors, ids = data
    index = FaissIndex.empty(DIM)
    index.add(vectors, ids)
    index.fit_to_size()
    assert index.kind() == "flat (exact)"


def test_large_indexes_become_ivf_with_the_promised_recall(data, monkeypatch, tmp_path: Path) -> None:
    rng, centers, vectors, ids = data
    monkeypatch.setattr(faiss_index, "FLAT_MAX_VECTORS", 1000)
    index = FaissIndex.empty(DIM)
    index.add(vectors, ids)
    index.fit_to_size()
    assert "IVF" in index.kind() and index.size == 6000
    assert sorted(index.ids().tolist()) == sorted(ids.tolist())
    # Fresh queries (not the tuning sample), against exact search.
    queries = clustered(300, rng, centers)
    exact = FaissIndex.empty(DIM)
    exact.add(vectors, np.arange(6000, dtype=np.int64))
    truth = np.array([[ids[i] for i, _ in exact.search(q, 10)] for q in queries])
    found = np.array([[i for i, _ in index.search(q, 10)] for q in queries])
    assert recall_at_10(found, truth) >= 0.95
    # A memory-mapped reload searches the same, and gives back every vector and id (what a merge reads).
    path = tmp_path / "index-1.faiss"
    index.save(path)
    again = open_index(path, DIM, read_only=True)
    assert again.size == 6000 and "IVF" in again.kind()
    assert again.search(queries[0], 10) == index.search(queries[0], 10)
    read_vectors, read_ids = again.vectors_and_ids()
    order, expected = np.argsort(read_ids, kind="stable"), np.argsort(ids, kind="stable")
    assert np.array_equal(read_ids[order], ids[expected]) and np.allclose(read_vectors[order], vectors[expected])


def test_filtered_search_returns_k_matches_on_flat_and_ivf(data, monkeypatch) -> None:
    """The filter applies inside the search: k matches come back even when they rank far down, also on an
    IVF index whose tuned nprobe would not reach the lists that hold them."""
    _, _, vectors, ids = data
    monkeypatch.setattr(faiss_index, "FLAT_MAX_VECTORS", 1000)
    query = vectors[0]
    exact = FaissIndex.empty(DIM)
    exact.add(vectors, ids)
    worst = [cid for cid, _ in exact.search(-query, 12)]  # the chunks farthest from the query
    allowed = np.array(worst, np.int64)
    ivf = FaissIndex.empty(DIM)
    ivf.add(vectors, ids)
    ivf.fit_to_size()
    assert "IVF" in ivf.kind() and ivf._ivf.nprobe < ivf._ivf.nlist
    for index in (exact, ivf):
        found = index.search(query, 10, allowed)
        assert len(found) == 10 and {cid for cid, _ in found} <= set(worst)
        assert [cid for cid, _ in found] == [cid for cid, _ in exact.search(query, 10, allowed)]
    assert ivf.search(query, 10, np.zeros(0, np.int64)) == []


def test_ivf_keeps_its_training_as_a_merge_base_until_it_grows_4x(data, monkeypatch) -> None:
    """What a merge does with an IVF segment: drop ids, add vectors, keep the training while the index
    is within 4x what it was trained for, train anew past it. Windows that share an id stay together."""
    rng, centers, vectors, _ = data
    monkeypatch.setattr(faiss_index, "FLAT_MAX_VECTORS", 1000)
    shared = np.repeat(np.arange(3000, dtype=np.int64), 2)  # two windows per chunk
    index = FaissIndex.empty(DIM)
    index.add(vectors, shared)
    index.fit_to_size()
    nlist = index._ivf.nlist
    assert len(index.ids()) == 6000 and len({cid for cid, _ in index.search(vectors[0], 10)}) == 10
    assert index.remove(np.arange(100, dtype=np.int64)) == 200  # both windows of each id
    index.add(clustered(3000, rng, centers), np.arange(10000, 13000, dtype=np.int64))
    index.fit_to_size()
    assert index._ivf.nlist == nlist and index.size == 8800  # within 4x: the same lists
    index.add(clustered(30000, rng, centers), np.arange(20000, 50000, dtype=np.int64))
    index.fit_to_size()
    assert index._ivf.nlist > nlist and index.size == 38800  # past it: trained anew
    assert not {cid for cid, _ in index.search(vectors[0], 50)} & set(range(100))


def test_a_store_past_the_threshold_queries_and_checks_out(cli, dataset: Path, home: Path, monkeypatch) -> None:
    monkeypatch.setattr(faiss_index, "FLAT_MAX_VECTORS", 5)
    cli("create", "docs", "--chunk-size", "100", "--chunk-overlap", "0")
    assert cli("upload", str(dataset), "-r", "--store", "docs").exit_code == 0
    assert "IVF" in cli("status", "docs").stdout
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert page["data"][0]["filename"] == "data_mining.md"
    assert json.loads(cli("doctor", "docs", "--json").stdout)["healthy"]
    file_id = page["data"][0]["file_id"]
    assert cli("rm", "docs", file_id).exit_code == 0
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert all(d["file_id"] != file_id for d in page["data"])
    assert json.loads(cli("doctor", "docs", "--json").stdout)["healthy"]
