"""The sentence-transformers encoder: batch document embedding for ingest, and query embedding."""

from __future__ import annotations

import numpy as np

from vscli.embedding import Progress
from vscli.embedding.windows import split_windows

BATCH_SIZE = 32
PROGRESS_SLICE = 128  # windows per encode call (four batches): progress every few seconds, little overhead


class SentenceTransformerEmbedder:
    def __init__(self, name: str, path: str) -> None:
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()
        self.name = name
        self.model = SentenceTransformer(path, device="cpu")
        self.max_pieces = int(self.model.max_seq_length or 0) - 2  # [CLS] and [SEP]
        dim = self.model.get_embedding_dimension() if hasattr(
            self.model, "get_embedding_dimension"
        ) else self.model.get_sentence_embedding_dimension()
        if dim is None or self.max_pieces <= 0:
            raise ValueError("the model does not say its dimension or its maximum sequence length")
        self.dimension = int(dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def piece_offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character offsets of each text's word pieces, without special tokens or truncation."""
        encoded = self.model.tokenizer(
            texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        return [list(map(tuple, offsets)) for offsets in encoded["offset_mapping"]]

    def windows(self, texts: list[str]) -> tuple[list[str], list[int]]:
        """The texts cut to the model's length, and each window's text index."""
        return split_windows(texts, self.piece_offsets, self.max_pieces)

    def embed_documents(
        self, texts: list[str], progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        windows, owners = self.windows(texts)
        if not windows:
            return np.zeros((0, self.dimension), np.float32), np.zeros(0, np.int64)
        # Encode longest first in slices: similar lengths batch well, and progress moves steadily.
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i]))
        vectors = np.empty((len(windows), self.dimension), np.float32)
        for at in range(0, len(order), PROGRESS_SLICE):
            part = order[at : at + PROGRESS_SLICE]
            vectors[part] = self._encode([windows[i] for i in part])
            if progress:
                progress(len(part))
        return vectors, np.asarray(owners, dtype=np.int64)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)
