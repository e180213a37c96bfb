"""The chunk texts (chunks.sqlite): a row per chunk, read a hit at a time; a store of vscli 0.3 (a chunk
manifest per file) is read as it is and moved in by its first write, a kill -9 at any step losing nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import kill_9_when_marked, run_vscli
from tests.states import CHUNKS, read_chunks, write_chunk_manifests
from vscli.catalog.chunk_texts import ChunkTexts
from vscli.errors import CorruptData
from vscli.store import resolve_store
from vscli.workspace import Workspace


def _doc(file_id: str, *texts: str, pages: bool = False) -> dict:
    return {"file_id": file_id, "chunks": [{"text": t, "start": 10 * i, "end": 10 * i + len(t), "tokens": 3,
                                            **({"pages": [i + 1]} if pages else {})} for i, t in enumerate(texts)]}


def test_chunks_are_written_replaced_read_one_at_a_time_and_deleted(tmp_path: Path) -> None:
    texts = ChunkTexts(tmp_path / CHUNKS)
    assert texts.doc(1) is None and texts.chunk(1, 0) is None and not texts.has(1)  # no file yet: nothing
    texts.write([(1, _doc("file-a", "alpha", "beta")), (2, _doc("file-b", "gamma", pages=True)),
                 (3, _doc("file-c"))])
    assert texts.doc(1) == _doc("file-a", "alpha", "beta") and texts.doc(2) == _doc("file-b", "gamma", pages=True)
    assert texts.chunk(1, 1) == _doc("file-a", "alpha", "beta")["chunks"][1] and texts.chunk(1, 2) is None
    assert texts.has(3) and texts.doc(3) == _doc("file-c")  # a file without chunks has its (empty) list
    texts.write([(1, _doc("file-d", "delta"))])  # a serial written again: what was under it goes
    assert texts.doc(1) == _doc("file-d", "delta") and texts.chunk(1, 1) is None
    texts.delete([1, 3])
    assert set(texts.owners()) == {2} and texts.doc(1) is None
    assert read_chunks(tmp_path) == {2: _doc("file-b", "gamma", pages=True)}  # as sqlite3 reads the file


def test_a_serial_short_of_its_chunks_is_corrupt(tmp_path: Path) -> None:
    texts = ChunkTexts(tmp_path / CHUNKS)
    texts.write([(1, _doc("file-a", "alpha", "beta"))])
    conn = sqlite3.connect(tmp_path / CHUNKS)
    conn.execute("DELETE FROM chunks WHERE position = 1")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptData, match="1 of its 2 chunks"):
        texts.doc(1)


def _query(home: Path, k: int = 50) -> list[tuple[str, float, str]]:
    result = run_vscli("query", "docs", "what is data mining?", "--json", "-k", str(k), "--mode", "vector",
                       home=home)  # vector scores: what a file added later leaves as they were
    assert result.returncode == 0, result.stderr
    return [(d["file_id"], d["score"], d["content"][0]["text"]) for d in json.loads(result.stdout)["data"]]


def _old_store(home: Path, dataset: Path) -> tuple[Path, dict[int, dict], list]:
    """A store of three files whose chunks are kept as vscli 0.3 kept them; and its query results."""
    docs = sorted(dataset.glob("*.md"))
    assert run_vscli("create", "docs", home=home).returncode == 0
    assert run_vscli("upload", *map(str, docs[:3]), "--store", "docs", "-q", home=home).returncode == 0
    store = resolve_store(Workspace(home), "docs").dir
    before = _query(home)
    return store, write_chunk_manifests(store), before


def test_a_store_of_chunk_manifests_is_read_as_it_is_and_moved_in_by_its_first_write(home: Path,
                                                                                   dataset: Path) -> None:
    store, old, before = _old_store(home, dataset)
    assert not (store / CHUNKS).exists() and len(list((store / "chunks").glob("*.json"))) == 3
    assert _query(home) == before  # read from the manifests
    report = json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)
    assert report["healthy"] and ["manifest per file" in f["problem"] for f in report["findings"]] == [True]
    docs = sorted(dataset.glob("*.md"))
    assert run_vscli("upload", str(docs[3]), "--store", "docs", "-q", home=home).returncode == 0
    assert not (store / "chunks").exists()
    chunks = read_chunks(store)
    assert len(chunks) == 4 and all(chunks[serial] == doc for serial, doc in old.items())  # nothing re-embedded
    assert [hit for hit in _query(home) if hit[0] in {d["file_id"] for d in old.values()}] == before
    assert json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)["findings"] == []


def test_doctor_repair_moves_the_chunk_manifests_in(home: Path, dataset: Path) -> None:
    store, old, before = _old_store(home, dataset)
    assert run_vscli("doctor", "docs", "--repair", home=home).returncode == 0
    assert not (store / "chunks").exists() and read_chunks(store) == old and _query(home) == before


STALLED = """
import importlib, pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
*path, name = sys.argv[2].split(".")
owner = importlib.import_module("vscli.catalog.chunk_texts" if path[-1] == "ChunkTexts" else ".".join(path))
if path[-1] == "ChunkTexts":
    owner = owner.ChunkTexts
def stalled(*args, **kwargs):
    marker.write_text("here")
    time.sleep(120)
setattr(owner, name, stalled)
from vscli.cli import main
sys.argv = ["vscli", *sys.argv[3:]]
main()
"""


@pytest.mark.parametrize("step", [
    "vscli.catalog.chunk_texts.ChunkTexts.write",  # before the chunk texts commit: the manifests alone
    "vscli.folder.delete_quietly",  # after: the chunks in both places
])
def test_kill_9_while_chunk_manifests_are_moved_in(tmp_path: Path, home: Path, dataset: Path, step: str) -> None:
    store, old, before = _old_store(home, dataset)
    docs = sorted(dataset.glob("*.md"))
    marker = tmp_path / "stalled"
    kill_9_when_marked(STALLED, marker, step, "upload", str(docs[3]), "--store", "docs", "-q", home=home)
    assert len(list((store / "chunks").glob("*.json"))) == 3  # no manifest deleted before its rows are whole
    assert _query(home) == before
    report = json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)
    assert all("stuck in progress" in f["problem"] for f in report["findings"] if f["damage"]), report  # the 4th
    rerun = run_vscli("upload", *map(str, docs[:4]), "--store", "docs", "-q", home=home)
    assert rerun.returncode == 0, rerun.stderr
    assert not (store / "chunks").exists()
    chunks = read_chunks(store)
    assert len(chunks) == 4 and all(chunks[serial] == doc for serial, doc in old.items())
    assert [hit for hit in _query(home) if hit[0] in {d["file_id"] for d in old.values()}] == before
    assert json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)["findings"] == []
