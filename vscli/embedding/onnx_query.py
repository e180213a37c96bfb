"""The fast encoder: onnxruntime + tokenizers on an ONNX export of the store's own model.

A cold `vscli query` cannot afford to import torch and sentence-transformers (5-9 s here); this path
loads in about 0.15 s. It is used only for a model whose export was verified against
sentence-transformers (cosine >= 0.9999, one query at a time and in padded batches, see `onnx_export`);
otherwise vscli falls back to sentence-transformers. The weights sit in a separate file
(`model.onnx.data`) that onnxruntime memory-maps instead of parsing and copying 90 MB, and a one-shot
process also skips pre-packing them (~160 ms saved, ~3 ms more per query). The cache lives in the user
cache dir (`VSCLI_CACHE_DIR` overrides it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from vscli.background import Background

T = TypeVar("T")

# 2: eager-attention graph, weights as external data, verified on padded batches;
# 3: built graphs run each layer's attention as one onnxruntime Attention node
FORMAT_VERSION = 3
CACHE_ENV = "VSCLI_CACHE_DIR"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("vscli", appauthor=False))


def cache_dir(resolved_model: str, version: int = FORMAT_VERSION) -> Path:
    """Where a model's export of this format lives: keyed by its path and, for a local model, its weights'
    size/mtime."""
    fingerprint = [resolved_model, str(version)]
    path = Path(resolved_model)
    for weights in ("model.safetensors", "pytorch_model.bin"):
        if (path / weights).is_file():
            st = (path / weights).stat()
            fingerprint += [weights, str(st.st_size), str(st.st_mtime_ns)]
            break
    import hashlib  # loads OpenSSL: kept off `status`'s path until a key is needed

    key = hashlib.sha256("|".join(fingerprint).encode()).hexdigest()[:20]
    return cache_root() / "onnx" / key


def read_meta(resolved_model: str) -> dict[str, Any] | None:
    """The export's record (written last, so its presence means the export is complete), if any."""
    try:
        meta = json.loads((cache_dir(resolved_model) / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def preload() -> None:
    """Import what the encoder runs on, on the calling thread, before a cold query starts the encoder's
    thread. That thread then has nothing left to import: its session build and first inference, which
    run without the GIL, overlap the main thread opening the index instead of trailing it (a cold query
    1-13% faster in four interleaved runs here). And two threads importing numpy at once can fail ("cannot import name
    '__cpu_features__' from partially initialized module"; 1 run in 30 here)."""
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401


class OnnxQueryEncoder:
    """Mean- or CLS-pooled, L2-normalized sentence embeddings, as sentence-transformers computes them.

    `prepack` lets onnxruntime re-lay the weights for its matrix kernels: worth it in a long-lived
    process (the server), not in a one-shot query, where it costs more at load than it saves. `threads`
    caps the session's intra-op threads (ingest runs one single-threaded session per core).
    """

    def __init__(self, name: str, directory: Path, meta: dict[str, Any], prepack: bool = False,
                 threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name
        self.dimension = int(meta["dimension"])
        self.pooling = meta["pooling"]
        self.max_seq_length = int(meta["max_seq_length"])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads  # else onnxruntime's own choice: one per core
        if not prepack:
            options.add_session_config_entry("session.disable_prepacking", "1")
        # onnxruntime builds its session without holding the GIL: read the tokenizer meanwhile (~40 ms).
        session = Background(lambda: ort.InferenceSession(str(directory / "model.onnx"), options,
                                                          providers=["CPUExecutionProvider"]),
                             name="vscli-onnx-session")
        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            # The bundled tokenizer.json truncates at 128; the model reads max_seq_length (256) pieces.
            self.tokenizer.enable_truncation(max_length=self.max_seq_length)
            self.tokenizer.no_padding()
        finally:
            session.wait()
        self.session = session.result()
        self.input_names = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> Any:
        """Normalized vectors for texts of at most max_seq_length pieces, run as one padded batch."""
        return self.encode_pieces(self.tokenizer.encode_batch(texts))

    def encode_pieces(self, encodings: list[Any]) -> Any:
        """Normalized vectors for texts this encoder's tokenizer already split (`tokenizer.encode_batch`),
        run as one batch padded to the longest."""
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), np.int64)
        mask = np.zeros((len(encodings), width), np.int64)
        types = np.zeros((len(encodings), width), np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
            types[row, : len(enc.ids)] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled / norms, dtype=np.float32)

    def embed_query(self, text: str) -> Any:
        return self.encode([text])[0]


def open_verified(resolved_model: str, make: Callable[[Path, dict[str, Any]], T]) -> T | None:
    """``make(directory, meta)`` over the model's verified export, or None when there is none (yet) or
    it is damaged (then sentence-transformers takes over and exports again)."""
    meta = read_meta(resolved_model)
    if not meta or not meta.get("verified"):
        return None
    try:
        return make(cache_dir(resolved_model), meta)
    except Exception:  # a damaged cache
        return None


def describe(resolved_model: str) -> str:
    """Which encoder a model's stores use, for `vscli status` (reads only the export's record)."""
    meta = read_meta(resolved_model)
    if meta is None:
        return "not exported yet (the first upload to a store of this model exports it)"
    if meta.get("verified"):
        return f"onnxruntime (verified, min cosine {meta['cosine_min']:.7f})"
    return f"sentence-transformers ({meta.get('reason', 'export did not verify')})"

