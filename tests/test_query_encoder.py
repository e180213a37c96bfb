"""The fast query path: an ONNX export of the store's model, verified against sentence-transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vscli.embedding import load_embedder, load_query_encoder, resolve_model
from vscli.embedding.onnx_export import MIN_COSINE, VERIFY_TEXTS, ensure_export
from vscli.embedding.onnx_query import OnnxQueryEncoder, cache_dir

TEST_SET = VERIFY_TEXTS + [
    "How many chunks does a 4096-token static strategy produce?",
    "Sourdough: 500 g flour, 350 g water, 100 g starter, 10 g salt.",
    "   leading and trailing spaces   ",
    "UPPER CASE QUERY ABOUT VECTOR DATABASES",
    " ".join(f"word{i}" for i in range(400)),  # far past both 128 and 256 pieces
]


def test_export_reproduces_sentence_transformers() -> None:
    embedder = load_embedder("all-MiniLM-L6-v2")
    meta = ensure_export(embedder, resolve_model("all-MiniLM-L6-v2"))
    assert meta["verified"] and meta["max_seq_length"] == 256 and meta["cosine_min"] >= MIN_COSINE
    fast = load_query_encoder("all-MiniLM-L6-v2")
    assert isinstance(fast, OnnxQueryEncoder)
    reference = embedder.embed_queries(TEST_SET)
    cosines = [float(fast.embed_query(t) @ reference[i]) for i, t in enumerate(TEST_SET)]
    assert min(cosines) >= 0.9999, cosines
    assert all(abs(float(np.linalg.norm(fast.embed_query(t))) - 1) < 1e-5 for t in TEST_SET)


def test_the_tokenizer_reads_256_pieces_not_128() -> None:
    load_query_encoder("all-MiniLM-L6-v2")  # exported by now, or exports here
    fast = load_query_encoder("all-MiniLM-L6-v2")
    assert isinstance(fast, OnnxQueryEncoder)
    assert len(fast.tokenizer.encode(" ".join(["vector"] * 500)).ids) == 256


def test_a_damaged_cache_falls_back_and_re_exports() -> None:
    load_query_encoder("all-MiniLM-L6-v2")
    directory = cache_dir(resolve_model("all-MiniLM-L6-v2"))
    (directory / "meta.json").unlink()
    encoder = load_query_encoder("all-MiniLM-L6-v2")  # sentence-transformers, which exports again
    assert not isinstance(encoder, OnnxQueryEncoder)
    assert json.loads((directory / "meta.json").read_text())["verified"] is True
    assert isinstance(load_query_encoder("all-MiniLM-L6-v2"), OnnxQueryEncoder)


def test_cold_query_loads_neither_torch_nor_sentence_transformers(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs").exit_code == 0
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('LOADED=' + ','.join(sorted(m for m in "
        "('torch', 'sentence_transformers', 'transformers', 'onnxruntime') if m in sys.modules)) + '\\n'))\n"
        "sys.argv = ['vscli', 'query', 'docs', 'what is data mining?', '--json']\n"
        "from vscli.cli import main\nmain()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"][0]["filename"] == "data_mining.md"
    assert proc.stderr.decode().strip().splitlines()[-1] == "LOADED=onnxruntime"
