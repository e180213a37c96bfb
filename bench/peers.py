"""Peers for bench/run.py's cold-query case: Chroma (its own ONNX MiniLM) and llm (llm-sentence-transformers).

They need packages vscli does not depend on, so they run under another interpreter (`--peers-python`), in a
scratch HOME: a virtualenv made with

    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0 chromadb llm llm-sentence-transformers

Both peers hold the same vectors as vscli's store (read back from its FAISS index) and the same chunk texts,
and embed the query with the same model: Chroma through its default embedding function (ONNX; its model
files are placed where it would download them, from the bundled model, since this machine is offline), llm
through sentence-transformers on the bundled model's directory. Only their cold query is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

CHROMA_BUILD = """
import json, sys
import numpy as np, chromadb
vectors = np.load(sys.argv[2]); texts = json.load(open(sys.argv[3]))
client = chromadb.PersistentClient(path=sys.argv[1])
col = client.get_or_create_collection("bench", metadata={"hnsw:space": "cosine"})
for at in range(0, len(texts), 5000):
    part = range(at, min(at + 5000, len(texts)))
    col.add(ids=[str(i) for i in part], embeddings=vectors[at:at + len(part)], documents=[texts[i] for i in part])
print(col.count())
"""

CHROMA_QUERY = """
import sys, chromadb
client = chromadb.PersistentClient(path=sys.argv[1])
col = client.get_collection("bench")
print(col.query(query_texts=[sys.argv[2]], n_results=10)["ids"][0][:3])
"""

LLM_BUILD = """
import json, sys, time
import llm, numpy as np, sqlite_utils
vectors = np.load(sys.argv[2]); texts = json.load(open(sys.argv[3]))
db = sqlite_utils.Database(llm.user_dir() / "embeddings.db")
col = llm.Collection("bench", db, model_id=sys.argv[1])
with db.atomic():
    db["embeddings"].insert_all(({"collection_id": col.id, "id": str(i), "embedding": llm.encode(vectors[i].tolist()),
                                  "content": t, "content_hash": llm.Collection.content_hash(t), "metadata": None,
                                  "updated": int(time.time())} for i, t in enumerate(texts)), replace=True)
print(col.count())
"""


def chroma_model_files(home: Path, bundled: Path) -> None:
    """Put all-MiniLM-L6-v2 where Chroma's default embedding function looks before downloading it: a
    single-file ONNX graph as Chroma ships it, and the tokenizer files."""
    import onnx

    from vscli.embedding import resolve_model
    from vscli.embedding.onnx_query import cache_dir

    target = home / ".cache" / "chroma" / "onnx_models" / "all-MiniLM-L6-v2" / "onnx"
    target.mkdir(parents=True, exist_ok=True)
    onnx.save_model(onnx.load(str(cache_dir(resolve_model("all-MiniLM-L6-v2")) / "model.onnx")),
                    str(target / "model.onnx"))
    for name in ("config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt"):
        (target / name).write_bytes((bundled / name).read_bytes())


def prepare(python: str, work: Path, vectors_file: Path, texts_file: Path, bundled: Path) -> dict[str, list[str]]:
    """Build both peers' stores; return the cold-query command of each, keyed by its label."""
    home = work / "peers-home"
    env = peer_env(home)
    chroma_model_files(home, bundled)
    subprocess.run([python, "-c", CHROMA_BUILD, str(work / "chroma"), str(vectors_file), str(texts_file)],
                   env=env, check=True, capture_output=True)
    llm_dir = home / "llm"
    llm_dir.mkdir(parents=True, exist_ok=True)
    (llm_dir / "sentence-transformers.json").write_text(json.dumps([{"name": str(bundled)}]))
    model_id = f"sentence-transformers/{bundled}"
    subprocess.run([python, "-c", LLM_BUILD, model_id, str(vectors_file), str(texts_file)], env=env, check=True,
                   capture_output=True)
    llm_cli = str(Path(python).parent / "llm")
    return {
        "Chroma 1.5 (PersistentClient, default ONNX embedding function)":
            [python, "-c", CHROMA_QUERY, str(work / "chroma"), "what is data mining?"],
        "llm similar (llm-sentence-transformers, SQLite collection)":
            [llm_cli, "similar", "bench", "-c", "what is data mining?", "-n", "10"],
    }


def peer_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "LLM_USER_PATH": str(home / "llm"), "HF_HUB_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false"}
