"""Scale benchmark: a store of a million chunks with synthetic vectors (issue 5, goals 4 and 5).

    python bench/scale.py                  # 1,000,000 vectors (about 15 minutes, 8 GB of RAM)
    python bench/scale.py --vectors 200000

The store is built through vscli's own library (real catalog, chunk texts, uploads and index), with
clustered random unit vectors standing in for embeddings, so the embedding model's speed does not
matter here. Then it measures, each in a fresh process where it matters: opening the store, the search
step, recall@10 against exact search, a cold `vscli query` (wall time and peak RSS), and `vscli rm`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's vscli, here and (PYTHONPATH) in the processes it starts

DIM = 384
CHUNKS_PER_FILE = 1000


def unit_centers(count: int, rng: np.random.Generator) -> np.ndarray:
    """Cluster centres on the unit sphere, for `clustered`."""
    centers = rng.normal(0, 1, (count, DIM)).astype(np.float32)
    return centers / np.linalg.norm(centers, axis=1, keepdims=True)


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    out = np.empty((n, DIM), np.float32)
    for at in range(0, n, 100_000):
        m = min(100_000, n - at)
        x = centers[rng.integers(0, len(centers), m)] + rng.normal(0, 0.045, (m, DIM)).astype(np.float32)
        out[at:at + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def build(home: Path, vectors: np.ndarray, commits: int, **create: str) -> tuple[str, float, list[float]]:
    """Build the store (``create``: e.g. backend="milvus", uri=...); returns its id, the seconds the
    commits took, and each commit's own seconds."""
    from vscli.chunking import Chunk
    from vscli.files import FileRegistry
    from vscli.ingest import Job, Prepared
    from vscli.store import create_store
    from vscli.workspace import Workspace

    ws = Workspace(home)
    store = create_store(ws, "scale", **create)  # type: ignore[arg-type]
    registry = FileRegistry(ws)
    n_files = len(vectors) // CHUNKS_PER_FILE
    file_ids = [registry.add(f"synthetic file {i}\n".encode(), f"file-{i:05d}.txt")[0]["id"] for i in range(n_files)]
    store.attach(file_ids)
    state = store.folder.state()
    per_commit = -(-n_files // commits)
    start = time.perf_counter()
    each = []
    for c in range(commits):
        results = []
        for f in range(c * per_commit, min(n_files, (c + 1) * per_commit)):
            fid = file_ids[f]
            job = Job(fid, state["files"][fid]["vscli"]["attempt"], f"file-{f:05d}.txt",
                      registry.content_path(fid), 20, 100, 0)
            chunks = [Chunk(f"synthetic chunk {p} of file {f}", 0, 1, 5) for p in range(CHUNKS_PER_FILE)]
            rows = slice(f * CHUNKS_PER_FILE, (f + 1) * CHUNKS_PER_FILE)
            results.append(Prepared(job, chunks, vectors=vectors[rows],
                                    owners=np.arange(CHUNKS_PER_FILE, dtype=np.int64)))
        began = time.perf_counter()
        store._commit(results)
        each.append(time.perf_counter() - began)
        print(f"  commit {c + 1}/{commits}: {(c + 1) * per_commit * CHUNKS_PER_FILE} vectors, "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return store.id, time.perf_counter() - start, each


def commit_one_more(home: Path, store_id: str, vectors: np.ndarray) -> float:
    """Seconds to commit one more file of CHUNKS_PER_FILE chunks to the built store (the commit step)."""
    from vscli.chunking import Chunk
    from vscli.files import FileRegistry
    from vscli.ingest import Job, Prepared
    from vscli.store import Store
    from vscli.workspace import Workspace

    ws = Workspace(home)
    store = Store(ws, store_id)
    registry = FileRegistry(ws)
    fid = registry.add(b"one more synthetic file\n", "one-more.txt")[0]["id"]
    store.attach([fid])
    job = Job(fid, store.folder.state()["files"][fid]["vscli"]["attempt"], "one-more.txt",
              registry.content_path(fid), 20, 100, 0)
    chunks = [Chunk(f"one more chunk {p}", 0, 1, 4) for p in range(CHUNKS_PER_FILE)]
    began = time.perf_counter()
    store._commit([Prepared(job, chunks, vectors=vectors, owners=np.arange(CHUNKS_PER_FILE, dtype=np.int64))])
    took = time.perf_counter() - began
    if store.file(fid)["status"] != "completed":
        raise SystemExit(f"the extra file was not committed: {store.file(fid)}")
    return took


OPEN_AND_SEARCH = """
import json, sys, time
t0 = time.perf_counter()
from vscli.store import Store
from vscli.workspace import Workspace
import numpy as np
from pathlib import Path
store = Store(Workspace(Path(sys.argv[1])), sys.argv[2])
snapshot = store.snapshot()  # reads the catalog's top-level keys
t1 = time.perf_counter()
snapshot.open_vectors()  # every segment, memory-mapped
t2 = time.perf_counter()
queries = np.load(sys.argv[3])
times, results = [], []
for q in queries:
    s = time.perf_counter()
    results.append([cid for cid, _ in snapshot.vector_hits(q, 10, None)])
    times.append(time.perf_counter() - s)
print(json.dumps({"imports": t1 - t0, "open_index": t2 - t1, "search_ms": sorted(times)[len(times) // 2] * 1000,
                  "search_p95_ms": sorted(times)[int(len(times) * 0.95)] * 1000, "results": results,
                  "index": store.settings()["index"]}))
"""


MODEL_ONLY = """
from vscli.embedding import load_query_encoder
load_query_encoder("all-MiniLM-L6-v2").embed_query("what is data mining?")
"""


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of a command, measured by GNU time.

    Not getrusage(RUSAGE_CHILDREN): on Linux a child forked from this (large) process starts with
    this process's RSS in its ru_maxrss, which would be counted as the child's."""
    with tempfile.NamedTemporaryFile("r") as out:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd], env=env, capture_output=True, check=True)
        elapsed = time.perf_counter() - start
        return elapsed, int(out.read().split()[-1]) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    centers = unit_centers(4000, rng)
    n = args.vectors - args.vectors % CHUNKS_PER_FILE
    print(f"generating {n} vectors ...", file=sys.stderr, flush=True)
    vectors = clustered(n, rng, centers)
    queries = clustered(args.queries, rng, centers)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="vscli-scale-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "VSCLI_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        store_id, built, each = build(home, vectors, args.commits)
        rows.append(("build", f"{n} vectors in {args.commits} commits", f"{built:.0f} s"))
        rows.append(("build", "each commit, in order", ", ".join(f"{t:.1f} s" for t in each)))
        np.save(Path(tmp) / "queries.npy", queries)

        import faiss

        exact = faiss.IndexFlatIP(DIM)
        exact.add(vectors)
        _, truth_rows = exact.search(queries, 10)
        del exact
        from vscli.index import chunk_id

        # Row r of the store is chunk (r % 1000) of file serial r // 1000 + 1 (serials start at 1).
        truth = [[chunk_id(int(r) // CHUNKS_PER_FILE + 1, int(r) % CHUNKS_PER_FILE) for r in row] for row in truth_rows]
        del vectors

        out = subprocess.run([sys.executable, "-c", OPEN_AND_SEARCH, str(home), store_id,
                              str(Path(tmp) / "queries.npy")],
                             env=env, capture_output=True)
        if out.returncode:
            raise SystemExit(out.stderr.decode()[-3000:])
        measured = json.loads(out.stdout)
        recall = sum(len(set(f) & set(t)) for f, t in zip(measured["results"], truth, strict=False)) / (10 * len(truth))
        rows.append(("index", "type chosen for this size", measured["index"]))
        rows.append(("open", "read the store's catalog",
                     f"{measured['imports'] * 1000:.0f} ms incl. imports"))
        rows.append(("open", "open the index (memory-mapped)", f"{measured['open_index'] * 1000:.0f} ms (goal <= 1 s)"))
        rows.append(("search", f"search step, median of {len(truth)} queries",
                     f"{measured['search_ms']:.2f} ms (p95 {measured['search_p95_ms']:.2f} ms; goal <= 20 ms)"))
        rows.append(("search", "recall@10 against exact search", f"{recall:.3f} (goal >= 0.95)"))

        runs = [peak_rss([sys.executable, "-m", "vscli", "query", "scale", "synthetic chunk", "--json"], env)
                for _ in range(3)]
        times = [t for t, _ in runs]
        raw = n * DIM * 4
        peak = max(r for _, r in runs)
        model = max(peak_rss([sys.executable, "-c", MODEL_ONLY], env)[1] for _ in range(2))
        budget = 1.5 * raw + model
        rows.append(("query", "cold `vscli query` (wall, median of 3)", f"{statistics.median(times):.2f} s"))
        rows.append(("memory", "peak RSS of a process that only loads the query encoder and embeds one query",
                     f"{model / 2**20:.0f} MiB (\"the model\")"))
        rows.append(("memory", "peak RSS of a cold query",
                     f"{peak / 2**20:.0f} MiB; budget 1.5 x {raw / 2**20:.0f} MiB of raw vectors + the model = "
                     f"{budget / 2**20:.0f} MiB ({peak / budget:.2f}x of it)"))
        file_id = json.loads(subprocess.run([sys.executable, "-m", "vscli", "files", "scale", "--json"], env=env,
                                            capture_output=True, check=True).stdout)["data"][0]["id"]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vscli", "rm", "scale", file_id], env=env, capture_output=True,
                       check=True)
        rows.append(("rm", "remove one file (1000 chunks) from the store", f"{time.perf_counter() - start:.2f} s"))
        more = commit_one_more(home, store_id, clustered(CHUNKS_PER_FILE, rng, centers))
        rows.append(("commit", f"commit one more file ({CHUNKS_PER_FILE} chunks) to the full store", f"{more:.2f} s"))
    print("| case | what | figure |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
