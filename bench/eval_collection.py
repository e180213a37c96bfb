"""Retrieval quality of every search mode on the labelled collection in bench/collection.

    python bench/eval_collection.py             # the figures the README shows, and nDCG@10 by query kind
    python bench/eval_collection.py --chunk-size 400
    python bench/eval_collection.py --backend milvus   # the same on a Milvus Lite collection

Builds the store in a scratch workspace with the vscli CLI itself (upload, then eval --mode all
--per-query), so the figures are exactly what a user gets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "collection"


def vscli(*args: str, home: str) -> str:
    result = subprocess.run([sys.executable, "-m", "vscli", "--home", home, *args], capture_output=True,
                            text=True, env={**os.environ, "VSCLI_HOME": home})
    if result.returncode:
        sys.exit(f"vscli {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk-size", type=int, help="create the store with this chunk size (default: auto)")
    parser.add_argument("--backend", choices=("faiss", "milvus"), default="faiss",
                        help="milvus: a Milvus Lite file in the scratch workspace")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vscli-eval-") as home:
        backend = ["--backend", "milvus", "--uri", f"{home}/milvus.db"] if args.backend == "milvus" else []
        vscli("create", "collection", *(["--chunk-size", str(args.chunk_size)] if args.chunk_size else []),
              *backend, home=home)
        vscli("upload", *sorted(str(p) for p in (HERE / "corpus").glob("*.md")), "--store", "collection", "-q",
              home=home)
        report = json.loads(vscli("eval", "collection", "--queries", str(HERE / "queries.jsonl"), "--qrels",
                                  str(HERE / "qrels.tsv"), "--mode", "all", "--json", "--per-query", home=home))
    kinds = {}
    for line in (HERE / "queries.jsonl").read_text().splitlines():
        query = json.loads(line)
        kinds[query["_id"]] = query["metadata"]["kind"]
    names = sorted(set(kinds.values()))
    print(f"{report['queries']} queries ({', '.join(f'{sum(k == n for k in kinds.values())} {n}' for n in names)})\n")
    print("| mode | nDCG@10 | Recall@10 | Recall@100 | MRR@10 | " + " | ".join(f"nDCG@10 {n}" for n in names) + " |")
    print("|---" * (5 + len(names)) + "|")
    for run in report["runs"]:
        m = run["metrics"]
        by_kind = []
        for name in names:
            scores = [q["ndcg@10"] for q in run["per_query"] if kinds[q["query_id"]] == name]
            by_kind.append(f"{sum(scores) / len(scores):.3f}")
        label = run["mode"] + ("-rrf" if run.get("fusion") == "rrf" else "")
        print(f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | "
              f"{m['mrr@10']:.4f} | " + " | ".join(by_kind) + " |")


if __name__ == "__main__":
    main()
