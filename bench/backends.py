"""FAISS vs Milvus Lite on the same store (issue 10): insert rate, query latency, recall@10, migration.

    python bench/backends.py                    # 100,000 vectors (about 10 minutes on 2 cores)
    python bench/backends.py --vectors 20000

The same clustered unit vectors (bench/scale.py) are committed through vscli's library into a FAISS
store and into a Milvus Lite store, in the same number of commits. Queries are data points plus noise,
searched through each backend's reader (as `vscli query --mode vector` does, without the encoder), with
the connection held open, as in a batch of queries or `vscli serve` with a server URI. recall@10 is
against exact search by numpy over all vectors. Last, the FAISS store is migrated to a second Milvus
Lite file: vectors per second moved without embedding anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import DIM, build, clustered, unit_centers  # noqa: E402


def searcher(home: Path, store_id: str):  # type: ignore[no-untyped-def]
    from vscli.store import Store
    from vscli.workspace import Workspace

    store = Store(Workspace(home), store_id)
    return store, store.snapshot()


def measure(name: str, home: Path, store_id: str, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    store, snap = searcher(home, store_id)
    latencies, recalls = [], []
    with store.opened():
        snap.vector_hits(queries[0], 10, None)  # warm: open the index / connection
        for q, want in zip(queries, truth, strict=False):
            t = time.perf_counter()
            hits = snap.vector_hits(q, 10, None)
            latencies.append(time.perf_counter() - t)
            recalls.append(len({cid for cid, _ in hits} & set(want.tolist())) / 10)
    return {"p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * sorted(latencies)[int(0.95 * len(latencies)) - 1],
            "recall": float(np.mean(recalls))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    from vscli import index as vindex

    rng = np.random.default_rng(7)
    vectors = clustered(args.vectors, rng, unit_centers(256, rng))
    queries = vectors[rng.integers(0, len(vectors), args.queries)] + rng.normal(0, 0.02, (args.queries, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    ids = np.asarray([vindex.chunk_id(1 + i // 1000, i % 1000) for i in range(len(vectors))], np.int64)
    truth = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]

    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for name, create in (("faiss", {}), ("milvus-lite", {"backend": "milvus", "uri": f"{tmp}/m.db"})):
            home = Path(tmp) / name
            print(f"building the {name} store ...", file=sys.stderr, flush=True)
            store_id, seconds = build(home, vectors, args.commits, **create)
            rows[name] = {"insert_per_s": len(vectors) / seconds, **measure(name, home, store_id, queries, truth)}
            rows[name]["store_id"], rows[name]["home"] = store_id, home  # type: ignore[assignment]
        from vscli.backends import new_spec
        from vscli.store import Store
        from vscli.workspace import Workspace

        store = Store(Workspace(rows["faiss"]["home"]), rows["faiss"]["store_id"])  # type: ignore[arg-type]
        print("migrating the faiss store to a second Milvus Lite file ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        store.migrate(new_spec("milvus", f"{tmp}/migrated.db", None, store.id))
        migrate_rate = len(vectors) / (time.perf_counter() - t)

    print(f"{args.vectors} vectors of {DIM} dimensions, {args.commits} commits, {args.queries} queries")
    print(f"{'backend':<12} {'insert/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}")
    for name, row in rows.items():
        print(f"{name:<12} {row['insert_per_s']:>9.0f} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} "
              f"{row['recall']:>9.3f}")
    print(f"migrate faiss -> milvus-lite: {migrate_rate:.0f} vectors/s (no embedding)")


if __name__ == "__main__":
    main()
