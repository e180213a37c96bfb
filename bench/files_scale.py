"""What everyday commands cost as a store grows (issue 15): one process per command, like a user's.

    python bench/files_scale.py                          # 1,000, 10,000 and 100,000 files
    python bench/files_scale.py --files 1000 10000       # about 2 minutes

Each store is built through vscli's library (real uploads, catalog and FAISS index; 2 chunks per file,
random unit vectors in place of embeddings, so the model's speed does not enter), then it times the
commit step of one more file (in this process, synthetic vectors: what the store's size adds to every
commit) and of 100 (an ingest's batch), and, each in a fresh process (the median of three): `status`,
`files --json`, a cold keyword query, uploading one new file to the store (the model embeds it: one small
file), uploading the same file again (nothing to do), `cat` of one upload, a page of the uploads list
(the registry call alone, what `GET /v1/files` reads) and `rm` of one file. Prints a Markdown table, and
each figure's ratio to the smallest store's.
A million chunks: `bench/scale.py`.
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
sys.path.insert(0, str(ROOT))


def commit_notes(home: Path, first: int, count: int) -> float:
    """Add notes ``first`` .. ``first + count - 1`` (2 chunks each, synthetic vectors) to the store "big"
    (made if missing) in one commit; returns the seconds of the commit step alone."""
    from vscli.chunking import Chunk
    from vscli.files import FileRegistry
    from vscli.ingest import Job, Prepared
    from vscli.store import create_store, resolve_store
    from vscli.workspace import Workspace

    ws = Workspace(home)
    store = resolve_store(ws, "big") if first else create_store(ws, "big")
    registry = FileRegistry(ws)
    ids = [registry.add(f"note {i}\n".encode(), f"note-{i:06d}.md")[0]["id"] for i in range(first, first + count)]
    store.attach(ids)
    state = store.folder.state()
    rng = np.random.default_rng(first)
    prepared = []
    for i, file_id in enumerate(ids, start=first):
        job = Job(file_id, state["files"][file_id]["vscli"]["attempt"], f"note-{i:06d}.md",
                  registry.content_path(file_id), 20, 100, 0)
        vectors = rng.normal(size=(2, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        prepared.append(Prepared(job, [Chunk(f"note {i} part {p}", 0, 1, 4) for p in range(2)], vectors=vectors,
                                 owners=np.arange(2, dtype=np.int64)))
    began = time.perf_counter()
    store._commit(prepared)  # the commit step alone, with synthetic vectors (as bench/scale.py does)
    return time.perf_counter() - began


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vscli", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def median_of(runs: list[list[str]], env: dict[str, str]) -> float:
    """The median time of these runs (single timings swing 2x on a shared machine)."""
    return statistics.median(timed(args, env) for args in runs)


PAGE_OF_UPLOADS = """
import sys, time
from pathlib import Path
from vscli.files import FileRegistry
from vscli.workspace import Workspace
registry = FileRegistry(Workspace(Path(sys.argv[1])))
began = time.perf_counter()
page, more = registry.page(20, "desc", after=sys.argv[2])
print(time.perf_counter() - began)
"""


def page_of_uploads(home: Path, after: str, env: dict[str, str]) -> float:
    """What `GET /v1/files?limit=20&after=...` reads, in a fresh process: the call alone, cold."""
    return statistics.median(float(subprocess.run([sys.executable, "-c", PAGE_OF_UPLOADS, str(home), after], env=env,
                                                  check=True, capture_output=True, text=True).stdout)
                             for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "vscli")], check=True)
    rows = []
    for files in args.files:
        with tempfile.TemporaryDirectory(prefix="vscli-size-") as tmp:
            home = Path(tmp) / "home"
            print(f"building a store of {files} files ...", file=sys.stderr, flush=True)
            commit_notes(home, 0, files)
            one = statistics.median(commit_notes(home, files + i, 1) for i in range(3))
            batch = statistics.median(commit_notes(home, files + 3 + 100 * i, 100) for i in range(3))
            env = {**os.environ, "VSCLI_HOME": str(home), "PYTHONPATH": str(ROOT)}  # this checkout's vscli
            timed(["status", "big"], env)  # warm the page cache and the model's export
            new = [Path(tmp) / f"new-{i}.md" for i in range(3)]
            for i, path in enumerate(new):
                path.write_text(f"A new note ({i}) about otters and the rivers they live in.\n")
            from vscli import catalog

            catalog.close_all()  # the WAL folded into the catalog, as a command leaves it
            size = (next((home / "stores").glob("vs_*")) / "catalog.sqlite").stat().st_size
            listing = json.loads(subprocess.run([sys.executable, "-m", "vscli", "files", "big", "--json"], env=env,
                                                check=True, capture_output=True).stdout)["data"]
            middle = listing[len(listing) // 2]["id"]
            rows.append([f"{files:,}", f"{size / 1e6:.1f} MB", one, batch,
                         median_of([["status", "big"]] * 3, env),
                         median_of([["files", "big", "--json"]] * 3, env),
                         median_of([["query", "big", "note 77", "--mode", "keyword"]] * 3, env),
                         median_of([["upload", str(path), "--store", "big", "-q"] for path in new], env),
                         median_of([["upload", str(path), "--store", "big", "-q"] for path in new], env),
                         median_of([["cat", f["id"]] for f in listing[:3]], env),
                         page_of_uploads(home, middle, env),
                         median_of([["rm", "big", f["id"]] for f in listing[:3]], env)])
    print("| files | catalog | commit of 1 file | commit of 100 files | status | files --json | keyword query "
          "| upload 1 new file | upload it again | cat 1 upload | a page of uploads (the call) | rm 1 file |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(c if isinstance(c, str) else f"{c:.3f} s" for c in row) + " |")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"\n{last[0]} files against {first[0]}: " + ", ".join(
            f"{name} {b / a:.2f}x" for name, a, b in zip(
                ("commit", "commit of 100", "status", "files --json", "keyword query", "upload", "upload again", "cat",
                 "page of uploads", "rm"),
                first[2:], last[2:], strict=True)))


if __name__ == "__main__":
    main()
