"""The seed workflow end to end through the CLI, with the real model and a real FAISS index."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_vscli

pytestmark = pytest.mark.usefixtures("backend")  # the shared suite: every test on FAISS and on Milvus

ID_RE = re.compile(r"^vs_[A-Za-z0-9]{24}$")
FILE_RE = re.compile(r"^file-[A-Za-z0-9]{24}$")


def make_store(cli, name: str = "docs", *extra: str) -> str:
    result = cli("create", name, *extra)
    assert result.exit_code == 0, result.stderr
    store_id = result.stdout.strip()
    assert ID_RE.match(store_id)
    return store_id


def test_seed_workflow(cli, dataset: Path) -> None:
    """create, upload, attach, status --wait, cat, query, rm, files: as the NEAR AI tutorial does."""
    store_id = make_store(cli, "My_Vector_Store")

    up = cli("upload", str(dataset / "data_mining.md"), str(dataset / "sourdough_bread.md"))
    assert up.exit_code == 0, up.stderr
    file_ids = up.stdout.split()
    assert len(file_ids) == 2 and all(FILE_RE.match(f) for f in file_ids)
    mining, bread = file_ids

    att = cli("attach", store_id, mining, bread)
    assert att.exit_code == 0, att.stderr

    st = cli("status", store_id, "--wait", "--json")
    assert st.exit_code == 0, st.stderr
    obj = json.loads(st.stdout)
    assert obj["object"] == "vector_store" and obj["status"] == "completed"
    assert obj["file_counts"] == {"in_progress": 0, "completed": 2, "failed": 0, "cancelled": 0, "total": 2}
    assert obj["usage_bytes"] == sum((dataset / n).stat().st_size for n in ("data_mining.md", "sourdough_bread.md"))

    cat = cli("cat", mining)
    assert cat.exit_code == 0
    assert cat.stdout_bytes == (dataset / "data_mining.md").read_bytes()

    q = cli("query", "My_Vector_Store", "what is data mining?", "--json")
    assert q.exit_code == 0, q.stderr
    page = json.loads(q.stdout)
    assert page["object"] == "vector_store.search_results.page"
    assert page["search_query"] == "what is data mining?"
    assert page["has_more"] is False and page["next_page"] is None
    top = page["data"][0]
    assert top["file_id"] == mining and top["filename"] == "data_mining.md"
    assert set(top) == {"file_id", "filename", "score", "attributes", "content"}
    assert top["content"][0]["type"] == "text" and "Data mining" in top["content"][0]["text"]
    scores = [d["score"] for d in page["data"]]
    assert scores == sorted(scores, reverse=True)

    rm = cli("rm", store_id, mining)
    assert rm.exit_code == 0, rm.stderr
    q2 = json.loads(cli("query", store_id, "what is data mining?", "--json").stdout)
    assert q2["data"] and all(d["file_id"] != mining for d in q2["data"])

    files = json.loads(cli("files", store_id, "--json").stdout)
    assert files["object"] == "list"
    assert [f["id"] for f in files["data"]] == [bread]
    assert files["data"][0]["object"] == "vector_store.file"
    assert files["data"][0]["vector_store_id"] == store_id
    assert files["data"][0]["status"] == "completed"


def test_upload_with_store_prints_ids_in_input_order(cli, dataset: Path) -> None:
    make_store(cli)
    names = ["vector_search.md", "data_mining.md", "neural_networks.md"]
    result = cli("upload", *[str(dataset / n) for n in names], "--store", "docs")
    assert result.exit_code == 0, result.stderr
    ids = result.stdout.split()
    uploaded = {f["id"]: f["filename"] for f in json.loads(cli("uploads", "--json").stdout)["data"]}
    assert [uploaded[i] for i in ids] == names
    for query, expected in [("approximate nearest neighbour index HNSW", "vector_search.md"),
                            ("backpropagation and activation functions", "neural_networks.md"),
                            ("discovering unknown patterns in databases", "data_mining.md")]:
        page = json.loads(cli("query", "docs", query, "--json", "-k", "3").stdout)
        assert page["data"][0]["filename"] == expected, (query, page["data"][0]["filename"])


def test_reupload_of_same_content_adds_nothing(cli, dataset: Path, home: Path) -> None:
    make_store(cli)
    first = cli("upload", str(dataset / "data_mining.md"), "--store", "docs")
    again = cli("upload", str(dataset / "data_mining.md"), "--store", "docs")
    copy = dataset / "copy_of_mining.md"
    copy.write_bytes((dataset / "data_mining.md").read_bytes())
    renamed = cli("upload", str(copy), "--store", "docs")
    assert first.stdout == again.stdout == renamed.stdout
    assert "already uploaded" not in first.stderr
    assert "1 of 1 file(s) already uploaded" in again.stderr and "already uploaded" in renamed.stderr
    alone = cli("upload", str(dataset / "vector_search.md"))
    assert "already uploaded" not in alone.stderr
    assert cli("upload", str(dataset / "vector_search.md")).stdout == alone.stdout  # same bytes and name
    assert "already uploaded" in cli("upload", str(dataset / "vector_search.md")).stderr
    status = json.loads(cli("status", "docs", "--json").stdout)
    assert status["file_counts"]["total"] == 1
    assert len(json.loads(cli("uploads", "--json").stdout)["data"]) == 2
    page = json.loads(cli("query", "docs", "data mining", "--json", "-k", "50").stdout)
    texts = [d["content"][0]["text"] for d in page["data"]]
    assert len(texts) == len(set(texts))  # no duplicate chunks


def test_upload_directory_recursive_and_stdin(cli, dataset: Path) -> None:
    make_store(cli)
    (dataset / "sub").mkdir()
    (dataset / "sub" / "extra.txt").write_text("Gradient boosting builds an ensemble of shallow trees.")
    (dataset / ".hidden").write_text("never uploaded")
    result = cli("upload", str(dataset), "--recursive", "--store", "docs", "--json")
    assert result.exit_code == 0, result.stderr
    listing = json.loads(result.stdout)
    assert len(listing["data"]) == 7 and all(e["status"] == "completed" for e in listing["data"])

    piped = cli("upload", "-", "--filename", "notes.txt", "--store", "docs",
                input="Quokkas are small marsupials that live on Rottnest Island.")
    assert piped.exit_code == 0, piped.stderr
    page = json.loads(cli("query", "docs", "which animal lives on Rottnest Island?", "--json").stdout)
    assert page["data"][0]["filename"] == "notes.txt"
    assert page["data"][0]["file_id"] == piped.stdout.strip()


def test_attributes_and_metadata_round_trip(cli, dataset: Path) -> None:
    out = cli("create", "docs", "--metadata", "project=wiki", "--metadata", "env=test", "--json")
    store = json.loads(out.stdout)
    assert store["metadata"] == {"project": "wiki", "env": "test"}
    assert store["object"] == "vector_store" and store["file_counts"]["total"] == 0
    cli("upload", str(dataset / "data_mining.md"), "--store", "docs",
        "--attr", "author=Jane", "--attr", "year=2021", "--attr", "draft=false", "--attr", 'code="007"')
    page = json.loads(cli("query", "docs", "data mining", "--json").stdout)
    assert page["data"][0]["attributes"] == {"author": "Jane", "year": 2021, "draft": False, "code": "007"}


def test_static_chunking_and_file_strategy(cli, dataset: Path) -> None:
    make_store(cli, "docs", "--chunk-size", "100", "--chunk-overlap", "20")
    cli("upload", str(dataset / "data_mining.md"), "--store", "docs")
    entry = json.loads(cli("files", "docs", "--json").stdout)["data"][0]
    assert entry["chunking_strategy"] == {
        "type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}}
    page = json.loads(cli("query", "docs", "data mining", "--json", "-k", "50").stdout)
    assert len(page["data"]) >= 3  # a ~230-token file in 100-token chunks


def test_large_explicit_chunks_keep_every_word_searchable(cli, tmp_path: Path) -> None:
    """4096-token chunks are far over the model's 256 pieces; the last sentence must still be found."""
    make_store(cli, "big", "--chunk-size", "4096", "--chunk-overlap", "0")
    filler = "The council discussed road maintenance, budgets and the timetable for street lighting. " * 120
    doc = tmp_path / "minutes.txt"
    doc.write_text(filler + "Finally, the mayor announced that the zebra from the city zoo escaped on Tuesday.")
    other = tmp_path / "other.txt"
    other.write_text(filler + "Finally, the meeting closed with thanks to the staff.")
    assert cli("upload", str(doc), str(other), "--store", "big").exit_code == 0
    page = json.loads(cli("query", "big", "which zoo animal escaped?", "--json").stdout)
    assert page["data"][0]["filename"] == "minutes.txt"
    assert page["data"][0]["score"] > page["data"][1]["score"] + 0.1


def test_batch_queries_from_stdin_print_ndjson(cli, dataset: Path) -> None:
    make_store(cli)
    cli("upload", str(dataset), "-r", "--store", "docs")
    result = cli("query", "docs", "-", "-k", "2", input="what is data mining?\n\nhow do I bake sourdough?\n")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    pages = [json.loads(line) for line in lines]
    assert [p["search_query"] for p in pages] == ["what is data mining?", "how do I bake sourdough?"]
    assert pages[0]["data"][0]["filename"] == "data_mining.md"
    assert pages[1]["data"][0]["filename"] == "sourdough_bread.md"
    assert all(len(p["data"]) == 2 for p in pages)


def test_human_outputs(cli, dataset: Path) -> None:
    store_id = make_store(cli)
    cli("upload", str(dataset / "data_mining.md"), "--store", "docs")
    ls = cli("ls")
    assert ls.exit_code == 0 and store_id in ls.stdout and "docs" in ls.stdout
    st = cli("status", "docs")
    assert "completed" in st.stdout and "all-MiniLM-L6-v2" in st.stdout
    q = cli("query", "docs", "data mining", "-k", "1")
    assert q.stdout.startswith("1. data_mining.md")
    assert "data_mining.md" in cli("files", "docs").stdout


def test_delete_store_and_delete_file(cli, dataset: Path, home: Path) -> None:
    store_id = make_store(cli)
    file_id = cli("upload", str(dataset / "data_mining.md"), "--store", "docs").stdout.strip()
    deleted = cli("delete-file", file_id, "--json")
    assert deleted.exit_code == 0, deleted.stderr
    assert json.loads(cli("files", "docs", "--json").stdout)["data"] == []
    assert cli("cat", file_id).exit_code == 3
    result = cli("delete", "docs", "--json")
    assert json.loads(result.stdout) == {"id": store_id, "object": "vector_store.deleted", "deleted": True}
    assert json.loads(cli("ls", "--json").stdout)["data"] == []
    assert not (home / "stores" / store_id).exists()


def test_store_expiry(cli, dataset: Path, home: Path) -> None:
    store_id = make_store(cli, "temp", "--expires-after-days", "1")
    cli("upload", str(dataset / "data_mining.md"), "--store", "temp")
    obj = json.loads(cli("status", "temp", "--json").stdout)
    assert obj["expires_after"] == {"anchor": "last_active_at", "days": 1}
    assert obj["expires_at"] == obj["last_active_at"] + 86400
    # Age the store by two days, as if it had not been used since.
    manifest = home / "stores" / store_id / "store.json"
    config = json.loads(manifest.read_text())
    config["last_active_at"] -= 2 * 86400
    manifest.write_text(json.dumps(config))
    assert json.loads(cli("status", "temp", "--json").stdout)["status"] == "expired"
    result = cli("query", "temp", "data mining")
    assert result.exit_code == 6 and result.stderr.startswith("Error: vector store") and "expired" in result.stderr


def test_query_updates_last_active_at(cli, dataset: Path, home: Path) -> None:
    store_id = make_store(cli)
    manifest = home / "stores" / store_id / "store.json"
    config = json.loads(manifest.read_text())
    config["last_active_at"] -= 3600
    manifest.write_text(json.dumps(config))
    asked_at = int(time.time())
    cli("query", "docs", "anything")
    assert json.loads(manifest.read_text())["last_active_at"] >= asked_at  # however long the query took


HOLD_LOCK = """
import sys, time
from pathlib import Path
from vscli.workspace import locked
with locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_query_never_waits_for_a_writer_to_note_its_activity(cli, dataset: Path, home: Path,
                                                                 monkeypatch) -> None:
    """A query notes its activity under the store's lock: with a writer holding it, the query goes on
    without waiting (it asked for the lock without a timeout) and the next query notes it."""
    from vscli.store import vector_store
    from vscli.workspace import Workspace

    store_id = make_store(cli)
    manifest = home / "stores" / store_id / "store.json"
    config = json.loads(manifest.read_text())
    config["last_active_at"] -= 3600
    manifest.write_text(json.dumps(config))
    store = vector_store.Store(Workspace(home), store_id)
    asked: list[float] = []
    real = vector_store.locked
    monkeypatch.setattr(vector_store, "locked", lambda path, timeout=60: asked.append(timeout) or real(path, timeout))
    writer = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store.folder.lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        store.touch()
        assert asked == [0] and json.loads(manifest.read_text())["last_active_at"] == config["last_active_at"]
    finally:
        writer.kill()
        writer.wait()
    store.touch()
    assert json.loads(manifest.read_text())["last_active_at"] > config["last_active_at"]


def test_custom_model_directory(cli, dataset: Path, tmp_path: Path) -> None:
    import shutil

    from vscli.embedding import bundled_model_path

    local = tmp_path / "my-model"
    shutil.copytree(bundled_model_path(), local)
    created = json.loads(cli("create", "custom", "--model", str(local), "--json").stdout)
    assert created["object"] == "vector_store"
    assert cli("upload", str(dataset / "vector_search.md"), "--store", "custom").exit_code == 0
    status = cli("status", "custom")
    assert str(local) in status.stdout and "384 dimensions" in status.stdout
    page = json.loads(cli("query", "custom", "nearest neighbour search", "--json").stdout)
    assert page["data"][0]["filename"] == "vector_search.md"


@pytest.mark.timeout(300)
def test_attach_no_wait_runs_in_background(cli, dataset: Path, home: Path) -> None:
    make_store(cli)
    file_id = cli("upload", str(dataset / "neural_networks.md")).stdout.strip()
    result = run_vscli("attach", "docs", file_id, "--no-wait", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(cli("status", "docs", "--json").stdout)["file_counts"]["in_progress"] == 1
    waited = run_vscli("status", "docs", "--wait", "--timeout", "240", "--json", home=home)
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["file_counts"]["completed"] == 1
    page = json.loads(cli("query", "docs", "backpropagation", "--json").stdout)
    assert page["data"][0]["file_id"] == file_id


def test_examples_shipped_with_the_repo() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.md")) == [
        "data_mining.md", "neural_networks.md", "sourdough_bread.md", "supervised_learning.md",
        "unsupervised_learning.md", "vector_search.md"]
