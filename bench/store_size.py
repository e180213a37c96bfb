"""What everyday commands cost as a store grows (issue 15): one process per command, like a user's.

    python bench/store_size.py                    # 1,000 and 10,000 files (about 2 minutes)
    python bench/store_size.py --files 1000 50000 # 50,000 takes about 4 minutes to build

Each store is built through vscli's library (real uploads, manifests and FAISS index; 2 chunks per file,
random unit vectors in place of embeddings, so the model's speed does not enter), then it times, each
in a fresh process: `status`, `files --json`, a cold keyword query, uploading one new file to the store
(the model embeds it: one small file), uploading the same file again (nothing to do) and `rm` of one
file. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(home: Path, files: int) -> str:
    from vscli.chunking import Chunk
    from vscli.files import FileRegistry
    from vscli.ingest import Job, Prepared
    from vscli.store import create_store
    from vscli.workspace import Workspace

    ws = Workspace(home)
    store = create_store(ws, "big")
    registry = FileRegistry(ws)
    ids = [registry.add(f"note {i}\n".encode(), f"note-{i:05d}.md")[0]["id"] for i in range(files)]
    store.attach(ids)
    state = store.folder.state()
    rng = np.random.default_rng(0)
    prepared = []
    for i, file_id in enumerate(ids):
        job = Job(file_id, state["files"][file_id]["vscli"]["attempt"], f"note-{i:05d}.md",
                  registry.content_path(file_id), 20, 100, 0)
        vectors = rng.normal(size=(2, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        prepared.append(Prepared(job, [Chunk(f"note {i} part {p}", 0, 1, 4) for p in range(2)], vectors=vectors,
                                 owners=np.arange(2, dtype=np.int64)))
    store._commit(prepared)  # the commit step alone, with synthetic vectors (as bench/scale.py does)
    return store.id


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vscli", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "vscli")], check=True)
    rows = []
    for files in args.files:
        with tempfile.TemporaryDirectory(prefix="vscli-size-") as tmp:
            home = Path(tmp) / "home"
            print(f"building a store of {files} files ...", file=sys.stderr, flush=True)
            build(home, files)
            env = {**os.environ, "VSCLI_HOME": str(home), "PYTHONPATH": str(ROOT)}  # this checkout's vscli
            timed(["status", "big"], env)  # warm the page cache and the model's export
            new = Path(tmp) / "new.md"
            new.write_text("A new note about otters and the rivers they live in.\n")
            size = (next((home / "stores").glob("vs_*")) / "files.json").stat().st_size
            listing = json.loads(subprocess.run([sys.executable, "-m", "vscli", "files", "big", "--json"], env=env,
                                                check=True, capture_output=True).stdout)["data"]
            rows.append([f"{files:,}", f"{size / 1e6:.1f} MB",
                         timed(["status", "big"], env), timed(["files", "big", "--json"], env),
                         timed(["query", "big", "note 77", "--mode", "keyword"], env),
                         timed(["upload", str(new), "--store", "big", "-q"], env),
                         timed(["upload", str(new), "--store", "big", "-q"], env),
                         timed(["rm", "big", listing[0]["id"]], env)])
    print("| files | files.json | status | files --json | keyword query | upload 1 new file | upload it again "
          "| rm 1 file |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(c if isinstance(c, str) else f"{c:.2f} s" for c in row) + " |")


if __name__ == "__main__":
    main()
