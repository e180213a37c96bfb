"""Export a sentence-transformers model to ONNX for the fast query path, and verify it.

Runs where torch is already loaded (while processing files), once per model: the result is cached and
reused by every later query. Only models made of Transformer + mean/CLS Pooling (+ Normalize) are
exported; the export is used only if it reproduces sentence-transformers' vectors (cosine >= 0.9999).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from vscli import notices
from vscli.embedding.onnx_query import OnnxQueryEncoder, cache_dir, read_meta
from vscli.workspace import write_json

MIN_COSINE = 0.9999
VERIFY_TEXTS = [
    "what is data mining?",
    "Explain the difference between supervised and unsupervised learning.",
    "HNSW-graph vs IVF partitioning: which ANN index for 10M vectors?",
    "Quokka 🐾 on Rottnest Island; café crème at 07:30, ticket #A-1042.",
    "a",
    # Longer than 128 word pieces (the bundled tokenizer.json's own limit) and than 256 (the model's):
    " ".join(["Retrieval-augmented generation grounds a chat model's answer in retrieved passages."] * 30),
]


def ensure_export(embedder: Any, resolved_model: str) -> dict[str, Any]:
    """Export and verify once per model; returns the cached record (``verified`` true or false)."""
    meta = read_meta(resolved_model)
    if meta is not None:
        return meta
    notices.announce("exporting the model for fast queries (once per model, about 15 s)")
    target = cache_dir(resolved_model)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        meta = _export(embedder, staging)
        if meta["verified"]:
            meta["cosine_min"] = _verify(embedder, staging, meta)
            meta["verified"] = meta["cosine_min"] >= MIN_COSINE
        write_json(staging / "meta.json", meta)  # last: its presence marks a complete export
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def _export(embedder: Any, staging: Path) -> dict[str, Any]:
    import torch

    model = embedder.model
    modules = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    mode = getattr(pooling, "pooling_mode", None) or _pooling_mode(pooling)
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]) or mode not in (
        "mean", "cls"
    ):
        return {"verified": False, "reason": f"unsupported modules {modules} / pooling {mode}"}
    hf = model[0].auto_model.eval()

    class Wrapper(torch.nn.Module):  # torch.onnx.export needs keyword arguments passed explicitly
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((1, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapper(hf), (ids, ids, torch.zeros_like(ids)), f"{staging}/model.onnx",
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes},
                          opset_version=17, dynamo=False)
    model.tokenizer.save_pretrained(staging)
    return {"verified": True, "pooling": mode, "dimension": embedder.dimension,
            "max_seq_length": int(model.max_seq_length), "model": embedder.name}


def _pooling_mode(pooling: Any) -> str | None:
    config = getattr(pooling, "get_config_dict", lambda: {})()
    for mode in ("mean", "cls"):
        if config.get(f"pooling_mode_{mode}_tokens"):
            return mode
    return None


def _verify(embedder: Any, directory: Path, meta: dict[str, Any]) -> float:
    fast = OnnxQueryEncoder(embedder.name, directory, meta)
    reference = embedder.embed_queries(VERIFY_TEXTS)
    return min(float(fast.embed_query(t) @ reference[i]) for i, t in enumerate(VERIFY_TEXTS))


def describe(resolved_model: str) -> str:
    meta = read_meta(resolved_model)
    if meta is None:
        return "not exported yet (the first processing run exports it)"
    if meta.get("verified"):
        return f"onnxruntime (verified, min cosine {meta['cosine_min']:.7f})"
    return f"sentence-transformers ({meta.get('reason', 'export did not verify')})"

