"""sentence-transformers' own output for the verification texts, stored per model weights.

An export is used only once it reproduces sentence-transformers' vectors. With torch installed they are
computed on the spot; a plain install (no torch) verifies the graph it builds against these stored ones,
made by `scripts/make_reference_vectors.py` from the same texts and keyed by the SHA-256 of the model's
`model.safetensors`, so any copy of the same weights (the bundled model, a Hugging Face download) finds
them. A test recomputes them with sentence-transformers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

REFERENCE_DIR = Path(__file__).parent / "references"


def weights_digest(model_dir: Path) -> str | None:
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        return None
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def reference_path(digest: str) -> Path:
    return REFERENCE_DIR / f"{digest[:16]}.npz"


class StoredReference:
    """The reference side of `onnx_export`'s verification, read from a file instead of a model."""

    def __init__(self, path: Path) -> None:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            self.query_texts = [str(t) for t in data["query_texts"]]
            self.queries = data["queries"]
            self.document_texts = [str(t) for t in data["document_texts"]]
            self.documents = data["documents"]
            self.owners = data["owners"]
            self.window_texts = [str(t) for t in data["windows"]]
            self.window_owners = data["window_owners"].tolist()

    @classmethod
    def for_model(cls, model_dir: Path) -> StoredReference | None:
        digest = weights_digest(model_dir)
        path = reference_path(digest) if digest else None
        return cls(path) if path is not None and path.is_file() else None

    def embed_queries(self, texts: list[str]) -> Any:
        if texts != self.query_texts:
            raise ValueError("the stored reference holds other query texts")
        return self.queries

    def embed_documents(self, texts: list[str]) -> tuple[Any, Any]:
        if texts != self.document_texts:
            raise ValueError("the stored reference holds other document texts")
        return self.documents, self.owners

    def windows(self, texts: list[str]) -> tuple[list[str], list[int]]:
        if texts != self.document_texts:
            raise ValueError("the stored reference holds other document texts")
        return self.window_texts, self.window_owners


def save_reference(path: Path, embedder: Any, query_texts: list[str], document_texts: list[str]) -> None:
    """What `StoredReference` reads, computed with sentence-transformers (``embedder``)."""
    import numpy as np

    documents, owners = embedder.embed_documents(document_texts)
    windows, window_owners = embedder.windows(document_texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, query_texts=np.asarray(query_texts), queries=embedder.embed_queries(query_texts),
                        document_texts=np.asarray(document_texts), documents=documents, owners=owners,
                        windows=np.asarray(windows), window_owners=np.asarray(window_owners, dtype=np.int64))
