"""Document vectors for ingest from the verified ONNX export, without importing torch.

Windows are cut exactly as the sentence-transformers path cuts them (the same tokenizer.json,
untruncated), then encoded longest first in batches of at most 512 word pieces, padding included: two
windows of 200 pieces, twelve of 40. Similar lengths waste nothing on padding, and a small batch keeps a
layer's activations in the core's cache: here 200-piece windows encoded 1.10x faster two at a time than
in eights, and a budget of 512 pieces beat 256 and 1024 for long and short windows alike
(bench/encode_batches.py, BENCHMARKS.md).
The batches go to one single-threaded onnxruntime session per core, each in its own thread (onnxruntime
runs without the GIL): on two cores that encoded 1.11-1.13x faster than one session spreading every
operator over both cores, which waits for the slower half of each small operator. The weights are
memory-mapped, so the sessions share them; each session prepacks them for its matrix kernels (an ingest
encoded 7% faster, peak RSS unchanged).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Iterable

import numpy as np

from vscli.embedding import Progress, embedding_threads
from vscli.embedding.onnx_query import OnnxQueryEncoder
from vscli.embedding.windows import split_windows

PIECES_PER_BATCH = 512  # a batch's windows x its longest window, in word pieces
PROGRESS_EVERY = 64  # windows between progress reports
MAX_SESSIONS = 4  # past four cores, each session gets several threads


class OnnxDocumentEmbedder:
    """The `Embedder` interface (documents and queries) over the ONNX export."""

    def __init__(self, name: str, directory: Path, meta: dict[str, Any], threads: int | None = None) -> None:
        from tokenizers import Tokenizer

        threads = threads or embedding_threads()
        sessions = min(threads, MAX_SESSIONS)
        # prepacked weights: an ingest runs long enough for the re-laid matrices to pay (+7% here)
        self.encoders = [OnnxQueryEncoder(name, directory, meta, prepack=True, threads=threads // sessions)
                         for _ in range(sessions)]
        self.encoder = self.encoders[0]
        self.name = name
        self.dimension = self.encoder.dimension
        self.max_pieces = self.encoder.max_seq_length - 2  # [CLS] and [SEP]
        self.splitter = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.splitter.no_truncation()
        self.splitter.no_padding()

    def piece_offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character offsets of each text's word pieces, without special tokens or truncation."""
        return [e.offsets for e in self.splitter.encode_batch(texts, add_special_tokens=False)]

    def embed_documents(
        self, texts: list[str], progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        windows, owners = split_windows(texts, self.piece_offsets, self.max_pieces)
        vectors = np.empty((len(windows), self.dimension), np.float32)
        pieces = self.encoder.tokenizer.encode_batch(windows)
        lengths = [len(p.ids) for p in pieces]
        batches = pack(sorted(range(len(windows)), key=lambda i: -lengths[i]), lengths)
        idle: SimpleQueue[OnnxQueryEncoder] = SimpleQueue()
        for encoder in self.encoders:
            idle.put(encoder)

        def encode(part: list[int]) -> int:
            encoder = idle.get()  # a session is used by one thread at a time
            try:
                vectors[part] = encoder.encode_pieces([pieces[i] for i in part])
            finally:
                idle.put(encoder)
            return len(part)

        def report(counts: Iterable[int]) -> None:
            unreported = 0
            for done, count in enumerate(counts, 1):  # batches in order: progress on the calling thread
                unreported += count
                if progress and (unreported >= PROGRESS_EVERY or done == len(batches)):
                    progress(unreported)
                    unreported = 0

        if len(self.encoders) == 1:
            report(map(encode, batches))  # one session (one core): no thread to hand its batches to
        else:
            with ThreadPoolExecutor(len(self.encoders), thread_name_prefix="vscli-embed") as pool:
                try:
                    report(pool.map(encode, batches))
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C or a failure: no batch keeps running
                    raise
        return vectors, np.asarray(owners, dtype=np.int64)

    def embed_query(self, text: str) -> np.ndarray:
        return self.encoder.embed_query(text)


def pack(order: list[int], lengths: list[int], budget: int = PIECES_PER_BATCH) -> list[list[int]]:
    """``order`` (longest first) cut into consecutive batches whose windows x longest length stays within
    ``budget`` pieces; a window longer than the budget goes alone."""
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
