"""The fast query path: an ONNX export of the store's model, verified against sentence-transformers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vscli.embedding import load_model, load_query_encoder, resolve_model
from vscli.embedding.onnx_documents import OnnxDocumentEmbedder
from vscli.embedding.onnx_export import (
    DOCUMENT_TEXTS,
    MIN_COSINE,
    VERIFY_TEXTS,
    ensure_built_export,
    ensure_export,
)
from vscli.embedding.onnx_query import FORMAT_VERSION, OnnxQueryEncoder, cache_dir
from vscli.embedding.reference import StoredReference

TEST_SET = VERIFY_TEXTS + [
    "How many chunks does a 4096-token static strategy produce?",
    "Sourdough: 500 g flour, 350 g water, 100 g starter, 10 g salt.",
    "   leading and trailing spaces   ",
    "UPPER CASE QUERY ABOUT VECTOR DATABASES",
    " ".join(f"word{i}" for i in range(400)),  # far past both 128 and 256 pieces
]


@pytest.mark.parametrize("made_by", ["onnx.helper", "torch"])
def test_export_reproduces_sentence_transformers(made_by: str, tmp_path: Path, monkeypatch) -> None:
    """Both ways of making the export: built from the weights (no torch: a plain install) and traced by
    torch (any other model)."""
    monkeypatch.setenv("VSCLI_CACHE_DIR", str(tmp_path / "cache"))
    embedder = load_model("all-MiniLM-L6-v2")
    resolved = resolve_model("all-MiniLM-L6-v2")
    meta = ensure_built_export("all-MiniLM-L6-v2", resolved) if made_by == "onnx.helper" else ensure_export(
        embedder, resolved)
    assert meta is not None and meta["verified"] and meta["cosine_min"] >= MIN_COSINE
    assert meta["max_seq_length"] == 256 and meta["windows_equal"] is True
    assert ("built" in meta) == (made_by == "onnx.helper")
    fast = OnnxQueryEncoder("all-MiniLM-L6-v2", cache_dir(resolved), meta)
    reference = embedder.embed_queries(TEST_SET)  # beyond the texts the verification used
    cosines = [float(fast.embed_query(t) @ reference[i]) for i, t in enumerate(TEST_SET)]
    assert min(cosines) >= 0.9999, cosines
    assert all(abs(float(np.linalg.norm(fast.embed_query(t))) - 1) < 1e-5 for t in TEST_SET)
    documents, owners = OnnxDocumentEmbedder("all-MiniLM-L6-v2", cache_dir(resolved), meta).embed_documents(TEST_SET)
    expected, expected_owners = embedder.embed_documents(TEST_SET)
    assert owners.tolist() == expected_owners.tolist()
    assert float((documents * expected).sum(axis=1).min()) >= 0.9999


def test_the_stored_reference_is_what_sentence_transformers_computes() -> None:
    """The vectors a torch-free install verifies its built graph against (scripts/make_reference_vectors.py)."""
    embedder = load_model("all-MiniLM-L6-v2")
    stored = StoredReference.for_model(Path(resolve_model("all-MiniLM-L6-v2")))
    assert stored is not None
    queries = stored.embed_queries(VERIFY_TEXTS) * embedder.embed_queries(VERIFY_TEXTS)
    assert float(queries.sum(axis=1).min()) > 0.99999
    vectors, owners = embedder.embed_documents(DOCUMENT_TEXTS)
    stored_vectors, stored_owners = stored.embed_documents(DOCUMENT_TEXTS)
    assert stored_owners.tolist() == owners.tolist() and float((stored_vectors * vectors).sum(axis=1).min()) > 0.99999
    assert stored.windows(DOCUMENT_TEXTS) == embedder.windows(DOCUMENT_TEXTS)


BLOCK_TORCH = ("import sys\n"
               "for name in ('torch', 'sentence_transformers', 'transformers'):\n"
               "    sys.modules[name] = None  # as in a plain install: not there\n")


def test_a_plain_install_embeds_without_torch(tmp_path: Path, dataset: Path) -> None:
    """`pip install vscli` pulled torch (5.8-6.2 GB with CUDA) only to make the export; without torch and
    sentence-transformers the bundled model's export is built from its weights and verified."""
    env = {**os.environ, "VSCLI_CACHE_DIR": str(tmp_path / "cache"), "VSCLI_HOME": str(tmp_path / "home")}
    assert run_noting_heavy_modules(["create", "docs"], env, BLOCK_TORCH)[0].returncode == 0
    proc, loaded = run_noting_heavy_modules(["upload", str(dataset / "data_mining.md"), "--store", "docs"], env,
                                            BLOCK_TORCH)
    assert proc.returncode == 0 and loaded == "LOADED=faiss,onnxruntime", proc.stderr
    meta = json.loads(next((tmp_path / "cache").glob("onnx/*/meta.json")).read_text())
    assert meta["verified"] is True and meta["built"] and meta["cosine_min"] >= MIN_COSINE
    proc, loaded = run_noting_heavy_modules(["query", "docs", "what is data mining?", "--json"], env, BLOCK_TORCH)
    assert proc.returncode == 0 and json.loads(proc.stdout)["data"][0]["filename"] == "data_mining.md"
    assert loaded == "LOADED=onnxruntime"  # its one segment is exact: read by numpy


def test_another_model_without_torch_says_what_to_install(tmp_path: Path, dataset: Path) -> None:
    """A model whose vectors vscli has not stored cannot be verified without sentence-transformers: one
    clean error naming the extra, and nothing stored wrongly."""
    from vscli.errors import ExitCode

    model = tmp_path / "my-model"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), model)
    with (model / "model.safetensors").open("r+b") as weights:  # other weights: no stored reference
        weights.seek(-4, os.SEEK_END)
        weights.write(b"\x00\x00\x80\x3f")
    env = {**os.environ, "VSCLI_CACHE_DIR": str(tmp_path / "cache"), "VSCLI_HOME": str(tmp_path / "home")}
    proc, _ = run_noting_heavy_modules(["create", "docs", "--model", str(model)], env, BLOCK_TORCH)
    assert proc.returncode == ExitCode.UNAVAILABLE, proc.stderr
    assert b"pip install 'vscli[torch]'" in proc.stderr and b"Traceback" not in proc.stderr
    assert not list((tmp_path / "home").glob("stores/vs_*"))  # no store of a model it cannot use
    assert not list((tmp_path / "cache").glob("onnx/*/meta.json"))  # nothing verified, nothing cached


def test_the_tokenizer_reads_256_pieces_not_128() -> None:
    load_query_encoder("all-MiniLM-L6-v2")  # exported by now, or exports here
    fast = load_query_encoder("all-MiniLM-L6-v2")
    assert isinstance(fast, OnnxQueryEncoder)
    assert len(fast.tokenizer.encode(" ".join(["vector"] * 500)).ids) == 256


def test_a_damaged_cache_falls_back_and_re_exports() -> None:
    load_query_encoder("all-MiniLM-L6-v2")
    directory = cache_dir(resolve_model("all-MiniLM-L6-v2"))
    (directory / "meta.json").unlink()
    encoder = load_query_encoder("all-MiniLM-L6-v2")  # made again
    assert json.loads((directory / "meta.json").read_text())["verified"] is True
    assert isinstance(encoder, OnnxQueryEncoder)


def test_cold_query_loads_neither_torch_nor_sentence_transformers(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs").exit_code == 0
    proc, loaded = run_noting_heavy_modules(["query", "docs", "what is data mining?", "--json"], os.environ.copy(),
                                            timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"][0]["filename"] == "data_mining.md"
    assert loaded == "LOADED=onnxruntime"


def run_noting_heavy_modules(args: list[str], env: dict[str, str], prelude: str = "",
                             timeout: float = 300) -> tuple[subprocess.CompletedProcess, str]:
    """Run vscli in a subprocess; also return which of the heavy libraries it imported (the model's, and
    FAISS: a query over exact segments reads them with numpy)."""
    code = prelude + (
        "import sys\n"
        f"sys.argv = ['vscli', *{args!r}]\n"
        "from vscli.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"  # (main() ends the process: an exit handler registered before it would not run)
        "    sys.stderr.write('LOADED=' + ','.join(sorted(m for m in "
        "('torch', 'sentence_transformers', 'transformers', 'onnxruntime', 'faiss') if sys.modules.get(m))) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=timeout, env=env)
    return proc, proc.stderr.decode().strip().splitlines()[-1]


def test_ingest_with_an_export_loads_neither_torch_nor_sentence_transformers(cli, dataset: Path) -> None:
    """Every processing run imported torch (5-9 s) although the verified export gives the same vectors."""
    load_query_encoder("all-MiniLM-L6-v2")  # the export exists, as after a user's first ingest
    cli("create", "docs")
    proc, loaded = run_noting_heavy_modules(["upload", str(dataset / "data_mining.md"), "--store", "docs"],
                                            os.environ.copy())
    assert proc.returncode == 0 and loaded == "LOADED=faiss,onnxruntime", proc.stderr
    hits = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)["data"]
    assert hits[0]["filename"] == "data_mining.md"


def test_the_first_ingest_makes_the_export_that_queries_use(tmp_path: Path, dataset: Path) -> None:
    """The export used to wait for the first query (16-50 s of it); the first ingest makes it now."""
    env = {**os.environ, "VSCLI_CACHE_DIR": str(tmp_path / "fresh-cache")}
    proc, loaded = run_noting_heavy_modules(["create", "docs"], env)
    assert proc.returncode == 0
    proc, loaded = run_noting_heavy_modules(["upload", str(dataset / "data_mining.md"), "--store", "docs"], env)
    assert proc.returncode == 0 and loaded == "LOADED=faiss,onnxruntime", proc.stderr  # built from the weights
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


def test_a_built_graph_that_failed_its_check_is_traced_over(tmp_path: Path, monkeypatch) -> None:
    """With torch installed, an unverified built export does not keep the model on the slow path."""
    monkeypatch.setenv("VSCLI_CACHE_DIR", str(tmp_path / "cache"))
    resolved = resolve_model("all-MiniLM-L6-v2")
    cache_dir(resolved).mkdir(parents=True)
    (cache_dir(resolved) / "meta.json").write_text(json.dumps({"verified": False, "built": "onnx.helper",
                                                               "reason": "cosine 0.93"}))
    meta = ensure_export(load_model("all-MiniLM-L6-v2"), resolved)
    assert meta["verified"] is True and "built" not in meta


def test_an_export_of_an_older_format_is_replaced_and_deleted(tmp_path: Path, monkeypatch) -> None:
    """After an upgrade the model is exported again in the new format, and the old export (90 MB that
    this vscli no longer reads) does not stay behind in the user's cache."""
    monkeypatch.setenv("VSCLI_CACHE_DIR", str(tmp_path / "cache"))
    resolved = resolve_model("all-MiniLM-L6-v2")
    old = cache_dir(resolved, FORMAT_VERSION - 1)
    old.mkdir(parents=True)
    (old / "model.onnx.data").write_bytes(b"\0" * 4096)
    (old / "meta.json").write_text(json.dumps({"verified": True, "format": FORMAT_VERSION - 1, "pooling": "mean",
                                               "dimension": 384, "max_seq_length": 256, "cosine_min": 1.0}))
    assert load_query_encoder("all-MiniLM-L6-v2") is not None and not old.exists()
    meta = json.loads((cache_dir(resolved) / "meta.json").read_text())
    assert meta["verified"] is True and meta["format"] == FORMAT_VERSION
