"""Encoding throughput by batch size, in one process: vscli's ONNX document embedder (one single-threaded
session per core) with its piece budget and with fixed batch sizes, and sentence-transformers (torch) at
batch sizes 1, 8 and 32 (32 is its default), on the same texts, interleaved round by round.

    python bench/encode_batches.py [--texts 240] [--words 150] [--rounds 2]

Why vscli batches windows by a budget of word pieces instead of a fixed count, and how its encoding
alone compares with torch at torch's best batch size (the whole-process comparison is bench/run.py's
ingest case). Prints a Markdown table of chunks/s, the median over rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import paragraph  # noqa: E402


def texts_of(count: int, words: int) -> list[str]:
    rng = random.Random(11)
    return [paragraph(rng, words) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=240)
    parser.add_argument("--words", type=int, default=150, help="words per text (150: ~200 word pieces)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    import vscli.embedding.onnx_documents as documents
    from vscli.embedding import bundled_model_path, load_embedder

    texts = texts_of(args.texts, args.words)
    onnx = load_embedder("all-MiniLM-L6-v2")
    assert isinstance(onnx, documents.OnnxDocumentEmbedder)
    torch_model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    pieces = sum(len(o) + 2 for o in onnx.piece_offsets(texts)) / len(texts)

    def onnx_with(count: int) -> Callable[[], object]:
        """The embedder as shipped (count 0), or with batches of ``count`` windows, longest first."""
        def fixed(order: list[int], lengths: list[int]) -> list[list[int]]:
            return [order[at : at + count] for at in range(0, len(order), count)]

        def run() -> object:
            shipped = documents.pack
            documents.pack = fixed if count else shipped  # type: ignore[assignment]
            try:
                return onnx.embed_documents(texts)
            finally:
                documents.pack = shipped
        return run

    def torch_with(count: int) -> Callable[[], object]:
        return lambda: torch_model.encode(texts, batch_size=count, normalize_embeddings=True)

    cases: dict[str, Callable[[], object]] = {
        f"vscli ONNX, batches of up to {documents.PIECES_PER_BATCH} pieces (as shipped)": onnx_with(0),
        **{f"vscli ONNX, batches of {n} windows": onnx_with(n) for n in (2, 4, 8)},
        **{f"sentence-transformers, batch_size={n}": torch_with(n) for n in (1, 8, 32)},
    }
    for run in cases.values():
        run()  # warm-up
    rates: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            rates[name].append(len(texts) / (time.perf_counter() - start))
            print(f"{name}: {rates[name][-1]:.1f}/s", file=sys.stderr, flush=True)
    print(f"{len(texts)} texts of {pieces:.0f} word pieces on average, median of {args.rounds} rounds\n")
    print("| encoder | chunks/s |\n|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()
