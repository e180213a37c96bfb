"""Make a model's ONNX export for fast queries and ingest, and verify it.

Runs once per model, at its first ingest; the result is cached and every later query and ingest runs on
it without torch. Two ways to make it:
- built from the weights with `onnx.helper` (`onnx_build`, no torch, ~2 s) for a BERT sentence encoder
  whose sentence-transformers vectors are stored (`reference`: the bundled model), which is how a plain
  install embeds;
- traced by torch from sentence-transformers (~15 s) for any other model made of Transformer +
  mean/CLS Pooling (+ Normalize), with torch installed (`vscli[torch]`).
Either export is used only if it reproduces sentence-transformers' vectors (cosine >= 0.9999), for
queries one at a time and for documents in padded batches, and cuts the same windows.

The traced graph uses eager attention (the SDPA trace ran ~15% slower here); both are saved with their
weights as external data, which onnxruntime memory-maps instead of parsing: a query session opens in
~50 ms instead of ~200 ms.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

from vscli import notices
from vscli.embedding.onnx_build import build, describe_model, exportable, pooling_mode
from vscli.embedding.onnx_query import FORMAT_VERSION, OnnxQueryEncoder, cache_dir, read_meta
from vscli.embedding.reference import StoredReference
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
DOCUMENT_TEXTS = VERIFY_TEXTS * 2  # enough windows for batches of mixed lengths, padding included


def ensure_export(embedder: Any, resolved_model: str) -> dict[str, Any]:
    """Trace and verify once per model with sentence-transformers (``embedder``); returns the cached
    record (``verified`` true or false). A built graph that failed its check is traced over."""
    meta = read_meta(resolved_model)
    if meta is not None and not (meta.get("built") and not meta.get("verified")):
        return meta
    notices.announce("exporting the model for fast queries and ingest (once per model, about 15 s)")
    return _make(resolved_model, lambda staging: _export(embedder, staging), embedder)


def ensure_built_export(name: str, resolved_model: str) -> dict[str, Any] | None:
    """Build and verify once per model without torch, when the model is a BERT encoder whose
    sentence-transformers vectors are stored; None when it is not (then only torch can export it)."""
    meta = read_meta(resolved_model)
    if meta is not None:
        return meta
    model_dir = Path(resolved_model)
    if describe_model(model_dir) is None:
        return None
    reference = StoredReference.for_model(model_dir)
    if reference is None:
        return None
    notices.announce("preparing the model for fast queries and ingest (once per model, a few seconds)")
    return _make(resolved_model, lambda staging: build(model_dir, staging, name), reference)


def _make(resolved_model: str, produce: Callable[[Path], dict[str, Any]], reference: Any) -> dict[str, Any]:
    """``produce`` an export in a staging folder, verify it against ``reference``, then move it into the
    cache whole (its meta.json, written last, marks it complete) and delete the model's exports of older
    formats, which this vscli no longer reads."""
    target = cache_dir(resolved_model)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        meta = produce(staging)
        if meta["verified"]:
            meta.update(_verify(reference, staging, meta))
            meta["verified"] = meta["cosine_min"] >= MIN_COSINE and meta["windows_equal"]
        write_json(staging / "meta.json", meta)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for version in range(1, FORMAT_VERSION):  # the exports an older vscli made of this model (90 MB each)
        shutil.rmtree(cache_dir(resolved_model, version), ignore_errors=True)
    return meta


def _export(embedder: Any, staging: Path) -> dict[str, Any]:
    model = embedder.model
    modules = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    mode = getattr(pooling, "pooling_mode", None) or pooling_mode(getattr(pooling, "get_config_dict", dict)())
    if not exportable(modules, mode):
        return {"verified": False, "reason": f"unsupported modules {modules} / pooling {mode}"}
    hf = model[0].auto_model.eval()
    attention = getattr(hf.config, "_attn_implementation", None)
    if attention not in (None, "eager") and hasattr(hf, "set_attn_implementation"):
        hf.set_attn_implementation("eager")  # a graph onnxruntime fuses; put back below
    try:
        _trace(hf, staging)
    finally:
        if attention not in (None, "eager") and hasattr(hf, "set_attn_implementation"):
            hf.set_attn_implementation(attention)
    model.tokenizer.save_pretrained(staging)
    return {"verified": True, "format": FORMAT_VERSION, "pooling": mode, "dimension": embedder.dimension,
            "max_seq_length": int(model.max_seq_length), "model": embedder.name}


def _trace(hf: Any, staging: Path) -> None:
    """Write model.onnx (the graph) and model.onnx.data (the weights, memory-mapped when loaded)."""
    import onnx
    import torch

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
    graph = onnx.load(str(staging / "model.onnx"))
    onnx.save_model(graph, str(staging / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=1024)


def _verify(reference: Any, directory: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The lowest cosine to sentence-transformers' vectors (queries alone, documents in padded
    batches), and whether both paths cut the same windows. ``reference`` is sentence-transformers
    itself or its stored output (`reference.StoredReference`)."""
    from vscli.embedding.onnx_documents import OnnxDocumentEmbedder
    from vscli.embedding.windows import split_windows

    fast = OnnxQueryEncoder(meta["model"], directory, meta)
    expected = reference.embed_queries(VERIFY_TEXTS)
    cosines = [float(fast.embed_query(t) @ expected[i]) for i, t in enumerate(VERIFY_TEXTS)]
    documents = OnnxDocumentEmbedder(meta["model"], directory, meta)
    fast_vectors, fast_owners = documents.embed_documents(DOCUMENT_TEXTS)
    vectors, owners = reference.embed_documents(DOCUMENT_TEXTS)
    windows_equal = fast_owners.tolist() == owners.tolist() and split_windows(
        DOCUMENT_TEXTS, documents.piece_offsets, documents.max_pieces) == reference.windows(DOCUMENT_TEXTS)
    if windows_equal:
        cosines += [float(c) for c in (fast_vectors * vectors).sum(axis=1)]
    return {"cosine_min": min(cosines), "windows_equal": windows_equal}
