"""vscli doctor: finds real damage done to a store on disk, repairs it, and never touches uploads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_clean_error
from tests.states import CHUNKS, delete_chunks, read_chunks, read_state
from vscli.errors import ExitCode
from vscli.index import chunk_id, open_index


@pytest.fixture
def store(cli, dataset: Path, home: Path) -> Path:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset), "-r", "--store", "docs").exit_code == 0
    return next((home / "stores").iterdir())


def manifest(store: Path) -> dict:
    return read_state(store)


def entry_for(store: Path, filename_fragment: str, home: Path) -> dict:
    for file_id, entry in manifest(store)["files"].items():
        if filename_fragment in json.loads((home / "files" / file_id / "file.json").read_text())["filename"]:
            return entry
    raise AssertionError(filename_fragment)


def doctor(cli, *extra: str) -> tuple[int, dict]:
    result = cli("doctor", "docs", "--json", *extra)
    return result.exit_code, json.loads(result.stdout)


def test_a_healthy_store(cli, store: Path) -> None:
    code, report = doctor(cli)
    assert code == 0 and report["healthy"] and report["findings"] == []
    assert report["files_checked"] == 6 and report["vectors_checked"] >= 6
    assert cli("doctor", "docs").stdout.startswith("ok: 6 file(s)")


def test_lost_chunks_are_repaired_and_reattach_restores(cli, store: Path, home: Path) -> None:
    entry = entry_for(store, "data_mining", home)
    delete_chunks(store, entry["vscli"]["serial"])
    uploads_before = sorted(p.name for p in (home / "files").iterdir())
    code, report = doctor(cli)
    assert code == ExitCode.CORRUPT and not report["healthy"]
    assert any("its chunks are missing" in f["problem"] for f in report["findings"])
    code, report = doctor(cli, "--repair")
    assert code == 0 and report["repaired"]
    files = {f["id"]: f for f in json.loads(cli("files", "docs", "--json").stdout)["data"]}
    assert files[entry["id"]]["status"] == "failed"
    assert "its chunks are missing" in files[entry["id"]]["last_error"]["message"]
    code, again = doctor(cli)
    assert code == 0 and again["findings"] == []
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert all(d["file_id"] != entry["id"] for d in page["data"])  # its vectors are gone too
    assert cli("attach", "docs", entry["id"]).exit_code == 0
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert page["data"][0]["file_id"] == entry["id"]
    assert sorted(p.name for p in (home / "files").iterdir()) == uploads_before  # uploads untouched


def test_stray_vectors_are_removed(cli, store: Path) -> None:
    state = manifest(store)
    path = store / f"index-{state['generation']}.faiss"
    index = open_index(path, 384)
    stray = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)
    stray /= np.linalg.norm(stray, axis=1, keepdims=True)
    index.add(stray, np.array([chunk_id(999, i) for i in range(3)], np.int64))
    index.save(path)
    code, report = doctor(cli)
    assert code == ExitCode.CORRUPT
    assert any("3 vectors belong to no file" in f["problem"] for f in report["findings"])
    code, report = doctor(cli, "--repair")
    assert code == 0 and doctor(cli)[1]["findings"] == []
    assert json.loads(cli("status", "docs", "--json").stdout)["file_counts"]["completed"] == 6


def test_lost_index_starts_empty_and_files_can_be_reattached(cli, store: Path) -> None:
    state = manifest(store)
    (store / f"index-{state['generation']}.faiss").unlink()
    assert_clean_error(cli("query", "docs", "data"), ExitCode.CORRUPT, "doctor")
    code, report = doctor(cli, "--repair")
    assert code == 0 and report["repaired"]
    failed = [f["id"] for f in json.loads(cli("files", "docs", "--json").stdout)["data"] if f["status"] == "failed"]
    assert len(failed) == 6
    assert json.loads(cli("query", "docs", "data mining", "--json").stdout)["data"] == []
    assert cli("attach", "docs", *failed).exit_code == 0
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert page["data"][0]["filename"] == "data_mining.md"
    assert doctor(cli)[1]["findings"] == []


def test_leftovers_are_cleaned_but_are_not_damage(cli, store: Path) -> None:
    (store / ".catalog.sqlite.9999.ab.tmp").write_text("half a manifest")
    (store / "index-0.faiss").write_bytes(b"an old generation")
    (store / "chunks").mkdir()
    (store / "chunks" / "424242.json").write_text("{}")
    code, report = doctor(cli)
    assert code == 0 and report["healthy"]  # consistent: the leftovers are only clutter
    assert [f["damage"] for f in report["findings"]] == [False]
    assert "3 leftover(s)" in report["findings"][0]["problem"]
    doctor(cli, "--repair")
    assert not (store / ".catalog.sqlite.9999.ab.tmp").exists() and not (store / "chunks" / "424242.json").exists()
    assert doctor(cli)[1]["findings"] == []


def test_chunks_of_no_file_are_leftovers_and_are_deleted(cli, store: Path) -> None:
    """A kill after the chunk texts committed and before the catalog did leaves chunks no file names."""
    conn = sqlite3.connect(store / CHUNKS)
    conn.execute("INSERT INTO owners VALUES (424242, 'file-gone', 1, 0)")
    conn.execute("INSERT INTO chunks VALUES (424242, 0, 'a chunk of nothing', 0, 18, 4, NULL)")
    conn.commit()
    conn.close()
    code, report = doctor(cli)
    assert code == 0 and report["healthy"]
    assert [(f["damage"], f["problem"]) for f in report["findings"]] == [
        (False, "1 leftover(s) from interrupted writes: the chunks of serial 424242")]
    assert doctor(cli, "--repair")[0] == 0
    assert 424242 not in read_chunks(store) and len(read_chunks(store)) == 6
    assert doctor(cli)[1]["findings"] == []


def test_damaged_chunk_texts_are_set_aside_and_reattach_restores(cli, store: Path, home: Path) -> None:
    """chunks.sqlite overwritten: queries fail cleanly, doctor sets it aside (kept) and marks the files
    whose chunks it held failed; attaching them again restores the store."""
    (store / CHUNKS).write_bytes(b"not a database at all\n" * 200)
    assert_clean_error(cli("query", "docs", "data mining"), ExitCode.CORRUPT, "chunk texts")
    code, report = doctor(cli)
    assert code == ExitCode.CORRUPT and "chunk texts" in report["findings"][0]["problem"]
    assert doctor(cli, "--repair")[0] == 0
    assert list(store.glob(f"{CHUNKS}.damaged-*")), "the damaged file is kept"
    failed = [f["id"] for f in json.loads(cli("files", "docs", "--json").stdout)["data"] if f["status"] == "failed"]
    assert len(failed) == 6 and doctor(cli)[1]["findings"] == []
    assert cli("attach", "docs", *failed).exit_code == 0
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert page["data"][0]["filename"] == "data_mining.md"
    assert doctor(cli)[1]["findings"] == []
