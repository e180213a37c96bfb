"""The fast query encoder: onnxruntime + tokenizers on an ONNX export of the store's own model.

A cold `vscli query` cannot afford to import torch and sentence-transformers (5-9 s here); this path
loads in about 0.3 s. It is used only for a model whose export was verified against
sentence-transformers (cosine >= 0.9999 on a test set, see `onnx_export`); otherwise queries fall back to
sentence-transformers. The cache lives in the user cache dir (`VSCLI_CACHE_DIR` overrides it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
CACHE_ENV = "VSCLI_CACHE_DIR"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("vscli", appauthor=False))


def cache_dir(resolved_model: str) -> Path:
    """Where a model's export lives: keyed by its path and, for a local model, its weights' size/mtime."""
    fingerprint = [resolved_model, str(FORMAT_VERSION)]
    path = Path(resolved_model)
    for weights in ("model.safetensors", "pytorch_model.bin"):
        if (path / weights).is_file():
            st = (path / weights).stat()
            fingerprint += [weights, str(st.st_size), str(st.st_mtime_ns)]
            break
    key = hashlib.sha256("|".join(fingerprint).encode()).hexdigest()[:20]
    return cache_root() / "onnx" / key


def read_meta(resolved_model: str) -> dict[str, Any] | None:
    """The export's record (written last, so its presence means the export is complete), if any."""
    try:
        return json.loads((cache_dir(resolved_model) / "meta.json").read_text())
    except (OSError, ValueError):
        return None


class OnnxQueryEncoder:
    """Mean-pooled, L2-normalized sentence embeddings, as sentence-transformers computes them."""

    def __init__(self, name: str, directory: Path, meta: dict[str, Any]) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name
        self.dimension = int(meta["dimension"])
        self.pooling = meta["pooling"]
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # The bundled tokenizer.json truncates at 128; the model reads max_seq_length (256) pieces.
        self.tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(directory / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def embed_query(self, text: str) -> Any:
        import numpy as np

        enc = self.tokenizer.encode(text)
        feeds = {
            "input_ids": np.asarray([enc.ids], dtype=np.int64),
            "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64),
        }
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0][0]
        if self.pooling == "cls":
            pooled = hidden[0]
        else:
            pooled = hidden.mean(axis=0)  # one unpadded sequence: the mask is all ones
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def load(name: str, resolved_model: str) -> OnnxQueryEncoder | None:
    """The verified ONNX encoder for a model, or None when there is none (yet)."""
    meta = read_meta(resolved_model)
    if not meta or not meta.get("verified"):
        return None
    try:
        return OnnxQueryEncoder(name, cache_dir(resolved_model), meta)
    except Exception:  # a damaged cache: fall back to sentence-transformers, which re-exports
        return None
