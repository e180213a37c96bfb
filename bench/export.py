"""The two ways to make a model's ONNX export, side by side: built from the weights with onnx.helper (no
torch: what a plain install does for the bundled model) and traced by torch from sentence-transformers.

    python bench/export.py [--rounds 3]

Prints, as a Markdown table: the time to make each export in a fresh process with an empty cache (what
a user's first upload waits), and, in one process with both loaded, document throughput on chunks of
the labelled collection and one-at-a-time query latency, the two graphs interleaved round by round;
plus the lowest cosine between their vectors.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAKE = {
    "built (onnx.helper)": "from vscli.embedding import resolve_model\n"
                           "from vscli.embedding.onnx_export import ensure_built_export\n"
                           "meta = ensure_built_export('all-MiniLM-L6-v2', resolve_model('all-MiniLM-L6-v2'))\n"
                           "assert meta and meta['verified'], meta\n",
    "traced (torch)": "from vscli.embedding import load_model, resolve_model\n"
                      "from vscli.embedding.onnx_export import ensure_export\n"
                      "meta = ensure_export(load_model('all-MiniLM-L6-v2'), resolve_model('all-MiniLM-L6-v2'))\n"
                      "assert meta['verified'], meta\n",
}


def make(cache: Path, code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "VSCLI_CACHE_DIR": str(cache)})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import numpy as np

    from vscli.chunking import chunk_text
    from vscli.embedding import resolve_model
    from vscli.embedding.onnx_documents import OnnxDocumentEmbedder
    from vscli.embedding.onnx_query import OnnxQueryEncoder, cache_dir, read_meta

    texts = [p.read_text() for p in sorted((ROOT / "bench" / "collection" / "corpus").glob("*"))]
    chunks = [c.text for t in texts for c in chunk_text(t, 200, 50)][:240]
    queries = [json.loads(line)["text"] for line in (ROOT / "bench" / "collection" / "queries.jsonl").open()][:100]
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        encoders = {}
        for index, (name, code) in enumerate(MAKE.items()):
            cache = Path(tmp) / f"cache{index}"
            seconds = make(cache, code)
            os.environ["VSCLI_CACHE_DIR"] = str(cache)
            resolved = resolve_model("all-MiniLM-L6-v2")
            meta = read_meta(resolved)
            assert meta is not None
            encoders[name] = (OnnxDocumentEmbedder(name, cache_dir(resolved), meta),
                              OnnxQueryEncoder(name, cache_dir(resolved), meta))
            rows.append([name, seconds])
        throughput: dict[str, list[float]] = {name: [] for name in MAKE}
        latency: dict[str, list[float]] = {name: [] for name in MAKE}
        for _ in range(args.rounds):
            for name, (documents, query) in encoders.items():
                started = time.perf_counter()
                documents.embed_documents(chunks)
                throughput[name].append(len(chunks) / (time.perf_counter() - started))
                started = time.perf_counter()
                for text in queries:
                    query.embed_query(text)
                latency[name].append((time.perf_counter() - started) / len(queries) * 1000)
        built, traced = (encoders[name][0].embed_documents(chunks)[0] for name in MAKE)
        cosine = float((np.asarray(built) * np.asarray(traced)).sum(axis=1).min())
    print(f"{len(chunks)} chunks of the labelled collection (200 cl100k tokens), {len(queries)} queries, "
          f"{args.rounds} interleaved rounds (medians)\n")
    print("| export | made in (fresh process, empty cache) | documents / s | query latency |")
    print("|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} s | {statistics.median(throughput[name]):.1f} | "
              f"{statistics.median(latency[name]):.1f} ms |")
    print(f"\nlowest cosine between the two exports' document vectors: {cosine:.7f}")


if __name__ == "__main__":
    main()
