"""What a query pays to read its hits' chunks: rows of chunks.sqlite against vscli 0.3's manifest per file.

    python bench/chunk_reads.py                       # 40 files of 1,000 chunks (about 3 minutes)
    python bench/chunk_reads.py --files 40 --chunks 2000
    python bench/chunk_reads.py --mode hybrid         # the model embeds the query too

One store is built through vscli's library (real uploads, catalog, FAISS segment and keyword index; short
synthetic chunk texts, random unit vectors in place of embeddings), then copied, and the copy's chunks
written out as vscli 0.3 kept them (`chunks/<serial>.json`, no chunks.sqlite: what a store not written
since reads). Each round runs a cold keyword query (`-k 10`, hits spread over 10 files) in a fresh
process against each copy, in turn, so drift on a busy machine hits both alike; prints the medians, their
ratio, and the bytes each layout keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(home: Path, files: int, chunks: int) -> Path:
    """A store "big" of ``files`` files of ``chunks`` chunks each; returns its folder."""
    from vscli.chunking import Chunk
    from vscli.files import FileRegistry
    from vscli.ingest import Job, Prepared
    from vscli.store import create_store
    from vscli.workspace import Workspace

    ws = Workspace(home)
    store = create_store(ws, "big")
    registry = FileRegistry(ws)
    ids = [registry.add(f"file {i}\n".encode(), f"file-{i:04d}.md")[0]["id"] for i in range(files)]
    store.attach(ids)
    state = store.folder.state()
    rng = np.random.default_rng(0)
    prepared = []
    for i, file_id in enumerate(ids):
        job = Job(file_id, state["files"][file_id]["vscli"]["attempt"], f"file-{i:04d}.md",
                  registry.content_path(file_id), 20, 100, 0)
        vectors = rng.normal(size=(chunks, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [f"chunk {p} of file {i}: " + " ".join(f"word{(p * 7 + w) % 500}" for w in range(120))
                 + (" otter" if p == 0 and i < 10 else "") for p in range(chunks)]
        prepared.append(Prepared(job, [Chunk(text, 0, len(text), 150) for text in texts], vectors=vectors,
                                 owners=np.arange(chunks, dtype=np.int64)))
    store._commit(prepared)  # the commit step, with synthetic vectors (as bench/scale.py does)
    return store.dir


def as_manifests(store: Path) -> None:
    """Write the store's chunks as a manifest per file and drop chunks.sqlite (a store of vscli 0.3)."""
    conn = sqlite3.connect(store / "chunks.sqlite")
    docs = {serial: {"file_id": file_id, "chunks": []} for serial, file_id in conn.execute(
        "SELECT serial, file_id FROM owners")}
    for serial, text, start, end, tokens in conn.execute(
            "SELECT serial, text, start_char, end_char, tokens FROM chunks ORDER BY serial, position"):
        docs[serial]["chunks"].append({"text": text, "start": start, "end": end, "tokens": tokens})
    conn.close()
    (store / "chunks").mkdir()
    for serial, doc in docs.items():
        (store / "chunks" / f"{serial}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store / 'chunks.sqlite'}{suffix}").unlink(missing_ok=True)


def cold_query(home: Path, mode: str) -> float:
    env = {**os.environ, "VSCLI_HOME": str(home), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vscli", "query", "big", "otter", "--mode", mode, "-k", "10",
                          "--json"], env=env, check=True, capture_output=True).stdout
    took = time.perf_counter() - started
    assert len(json.loads(out)["data"]) == 10
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--mode", default="keyword", choices=["keyword", "hybrid"],
                        help="hybrid: the model embeds the query too (its hits are not always in 10 files)")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "vscli")], check=True)
    with tempfile.TemporaryDirectory(prefix="vscli-chunks-") as tmp:
        rows_home, files_home = Path(tmp) / "rows", Path(tmp) / "manifests"
        print(f"building a store of {args.files} files x {args.chunks} chunks ...", file=sys.stderr, flush=True)
        store = build(rows_home, args.files, args.chunks)
        from vscli import catalog

        catalog.close_all()
        shutil.copytree(rows_home, files_home)
        as_manifests(files_home / "stores" / store.name)
        times: dict[str, list[float]] = {"rows": [], "manifests": []}
        for home in (rows_home, files_home):
            cold_query(home, args.mode)  # the page cache warm for both
        for _ in range(args.repeat):
            times["rows"].append(cold_query(rows_home, args.mode))
            times["manifests"].append(cold_query(files_home, args.mode))
        rows, manifests = (statistics.median(times[k]) for k in ("rows", "manifests"))
        size_rows = (store / "chunks.sqlite").stat().st_size
        size_files = sum(p.stat().st_size for p in (files_home / "stores" / store.name / "chunks").iterdir())
    print(f"| chunks kept as | cold {args.mode} query, k 10, files of {args.chunks:,} chunks "
          f"(median of {args.repeat}) | bytes on disk |")
    print("|---|---|---|")
    print(f"| chunks.sqlite, a row per chunk | {rows:.3f} s | {size_rows / 1e6:.1f} MB |")
    print(f"| a manifest per file (vscli 0.3) | {manifests:.3f} s | {size_files / 1e6:.1f} MB |")
    print(f"\nrows against manifests: {rows / manifests:.2f}x the time")


if __name__ == "__main__":
    main()
