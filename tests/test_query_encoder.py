"""The fast query path: an ONNX export of the store's model, verified against sentence-transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vscli.embedding import load_model, load_query_encoder, resolve_model
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
    embedder = load_model("all-MiniLM-L6-v2")
    meta = ensure_export(embedder, resolve_model("all-MiniLM-L6-v2"))
    assert meta["verified"] and meta["max_seq_length"] == 256 and meta["cosine_min"] >= MIN_COSINE
    assert meta["windows_equal"] is True
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
    encoder = load_query_encoder("all-MiniLM-L6-v2")  # loads sentence-transformers, which exports again
    assert json.loads((directory / "meta.json").read_text())["verified"] is True
    assert isinstance(encoder, OnnxQueryEncoder)


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


def run_noting_heavy_modules(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, str]:
    """Run vscli in a subprocess; also return which of the heavy model libraries it imported."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('LOADED=' + ','.join(sorted(m for m in "
        "('torch', 'sentence_transformers', 'transformers', 'onnxruntime') if m in sys.modules)) + '\\n'))\n"
        f"sys.argv = ['vscli', *{args!r}]\n"
        "from vscli.cli import main\nmain()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, env=env)
    return proc, proc.stderr.decode().strip().splitlines()[-1]


def test_ingest_with_an_export_loads_neither_torch_nor_sentence_transformers(cli, dataset: Path) -> None:
    """Every processing run imported torch (5-9 s) although the verified export gives the same vectors."""
    load_query_encoder("all-MiniLM-L6-v2")  # the export exists, as after a user's first ingest
    cli("create", "docs")
    proc, loaded = run_noting_heavy_modules(["upload", str(dataset / "data_mining.md"), "--store", "docs"],
                                            os.environ.copy())
    assert proc.returncode == 0 and loaded == "LOADED=onnxruntime", proc.stderr
    hits = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)["data"]
    assert hits[0]["filename"] == "data_mining.md"


def test_the_first_ingest_makes_the_export_that_queries_use(tmp_path: Path, dataset: Path) -> None:
    """The export used to wait for the first query (16-50 s of it); the first ingest makes it now."""
    env = {**os.environ, "VSCLI_CACHE_DIR": str(tmp_path / "fresh-cache")}
    proc, loaded = run_noting_heavy_modules(["create", "docs"], env)
    assert proc.returncode == 0
    proc, loaded = run_noting_heavy_modules(["upload", str(dataset / "data_mining.md"), "--store", "docs"], env)
    assert proc.returncode == 0 and "torch" in loaded, proc.stderr  # the export needs the model itself
    metas = list((tmp_path / "fresh-cache").glob("onnx/*/meta.json"))
    assert len(metas) == 1 and json.loads(metas[0].read_text())["verified"] is True
    assert (metas[0].parent / "model.onnx.data").stat().st_size > 80_000_000  # weights beside the graph
    proc, loaded = run_noting_heavy_modules(["query", "docs", "what is data mining?", "--json"], env)
    assert proc.returncode == 0 and loaded == "LOADED=onnxruntime", proc.stderr
    assert json.loads(proc.stdout)["data"][0]["filename"] == "data_mining.md"


def test_a_model_that_cannot_load_fails_the_query_cleanly_from_the_worker_thread(cli, dataset: Path,
                                                                                 home: Path) -> None:
    """The encoder loads in a worker thread while the store is read; its failure must still be one
    `Error:` line and the documented exit code, in every mode that embeds (and keyword mode works)."""
    from tests.conftest import assert_clean_error
    from vscli.errors import ExitCode

    cli("create", "docs")
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs").exit_code == 0
    config_path = next((home / "stores").glob("vs_*/store.json"))
    config = json.loads(config_path.read_text())
    config["vscli"]["model"] = "no-such-model-anywhere"
    config_path.write_text(json.dumps(config))
    for mode in ("hybrid", "vector"):
        assert_clean_error(cli("query", "docs", "data mining", "--mode", mode), ExitCode.UNAVAILABLE,
                           "cannot load embedding model 'no-such-model-anywhere'")
    assert "data_mining.md" in cli("query", "docs", "data mining", "--mode", "keyword").stdout
