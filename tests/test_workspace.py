"""Workspace location, ids and atomic writes."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.states import CATALOG, read_state, write_old_format
from vscli.errors import CorruptData
from vscli.workspace import atomic_write_bytes, new_id, read_json, user_dir, write_json


def test_user_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSCLI_HOME", str(tmp_path / "env"))
    assert user_dir(tmp_path / "flag") == tmp_path / "flag"
    assert user_dir() == tmp_path / "env"
    monkeypatch.delenv("VSCLI_HOME")
    assert user_dir().name == "vscli"


def test_ids_have_openai_shape() -> None:
    assert re.fullmatch(r"vs_[A-Za-z0-9]{24}", new_id("vs_"))
    assert re.fullmatch(r"file-[A-Za-z0-9]{24}", new_id("file-"))
    assert len({new_id("vs_") for _ in range(1000)}) == 1000


def test_failed_atomic_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    write_json(target, {"version": 1})

    def crash_half_way(tmp: Path) -> None:
        tmp.write_bytes(b'{"version": 2, "trunc')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_bytes(target, crash_half_way)
    assert read_json(target) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left behind


def test_corrupted_manifest_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "files.json"
    target.write_text('{"files": {')
    with pytest.raises(CorruptData, match="corrupted manifest"):
        read_json(target)


@pytest.mark.parametrize("step", ["row", "rename"])
def test_an_upload_interrupted_at_any_step_is_stored_once_on_retry(tmp_path: Path, monkeypatch, step) -> None:
    """A kill between storing the bytes and recording them in the registry must not lead to the retry
    storing a second copy (seen as a flaky duplicate in the kill -9 test)."""
    import os as real_os

    from vscli import files as vfiles
    from vscli.files import FileRegistry
    from vscli.workspace import Workspace

    registry = FileRegistry(Workspace(tmp_path))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # like a signal: no clean-up code runs for it

    if step == "row":
        monkeypatch.setattr(vfiles.FileRegistry, "_writing", killed)
    else:
        real_replace = real_os.replace

        def replace(src, dst):
            if Path(dst).parent == tmp_path / "files":
                killed()
            real_replace(src, dst)

        monkeypatch.setattr(vfiles.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        registry.add(b"hello", "a.txt")
    monkeypatch.undo()
    obj, new = registry.add(b"hello", "a.txt")
    assert new and [f["id"] for f in registry.list()] == [obj["id"]]
    assert registry.add(b"hello", "a.txt") == (obj, False)


def test_a_store_from_an_older_vscli_keeps_working_and_gains_upload_facts(cli, dataset: Path,
                                                                               home: Path) -> None:
    """Entries now keep their upload's hash and filename (uploads and `files` used to read every file's
    upload manifest: 50,000 file reads in a 50,000-file store). A store written by vscli 0.1 (a pretty
    files.json, neither kept) reads as before, still recognises content it has, and at its next write
    gains a catalog holding both."""
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    state = read_state(store.dir)
    assert all(e["vscli"]["sha256"] and e["vscli"]["filename"] for e in state["files"].values())
    for entry in state["files"].values():
        del entry["vscli"]["sha256"], entry["vscli"]["filename"]
    write_old_format(store.dir, state)
    assert "data_mining.md" in cli("files", "docs").stdout  # looked up in the uploads registry
    again = cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q")  # same bytes: not added
    assert again.exit_code == 0 and len(store.files()) == 1
    assert (store.dir / "files.json").exists() and not (store.dir / CATALOG).exists()  # nothing written
    assert cli("upload", str(dataset / "vector_search.md"), "--store", "docs", "-q").exit_code == 0
    assert (store.dir / CATALOG).exists() and not (store.dir / "files.json").exists()  # upgraded
    entries = read_state(store.dir)["files"].values()
    assert len(entries) == 2 and all(e["vscli"]["sha256"] for e in entries)  # filled in by the write
    assert {e["vscli"]["filename"] for e in entries} == {"data_mining.md", "vector_search.md"}
    listed = cli("files", "docs").stdout
    assert "data_mining.md" in listed and "vector_search.md" in listed


def test_a_damaged_state_is_caught_after_a_good_one_was_read(cli, home: Path) -> None:
    """A process checks files.json's shape once per version of the file; a replaced file is a new version
    and is checked again. A catalog's entries are checked as each is read."""
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    assert dict(store.folder.state()["files"]) == {}
    good = read_state(store.dir)
    write_old_format(store.dir, good)
    assert dict(store.folder.state()["files"]) == {}
    write_json(store.dir / "files.json", {**good, "files": {"file-x": "not an entry"}})
    with pytest.raises(CorruptData, match="is not a file entry"):
        store.folder.state()
    store.folder.write_state(good)  # the catalog again
    assert store.folder.has_catalog() and list(store.folder.committed()["files"]) == []
    with sqlite3.connect(store.dir / CATALOG) as conn:
        conn.execute("INSERT INTO files VALUES ('file-x', 1, 'failed', NULL, 0, 0, NULL, '\"not an entry\"')")
    with pytest.raises(CorruptData, match="is not a file entry"):
        list(store.folder.committed()["files"].values())


def test_status_reads_no_entry_and_a_query_only_its_hits(cli, dataset: Path, home: Path, monkeypatch) -> None:
    """`status` looked at files.json three times (orphans, counts, the index): a 58 MB files.json at
    100,000 files was parsed three times. From the catalog, `status` reads counts and no file's entry, a
    query reads the entries of the files it returns, and a commit made meanwhile (here by another
    command) is seen at the next look."""
    from vscli import catalog
    from vscli.search import search
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    assert cli("upload", *map(str, sorted(dataset.glob("*.md"))), "--store", "docs", "-q").exit_code == 0
    parsed: list[str] = []
    real_parse = catalog.CatalogEntries._parse

    def counting(self, file_id: str, text: str):
        parsed.append(file_id)
        return real_parse(self, file_id, text)

    monkeypatch.setattr(catalog.CatalogEntries, "_parse", counting)
    store = resolve_store(Workspace(home), "docs")
    store.reap_orphans()
    total = store.obj()["file_counts"]["total"]
    assert total == len(list(dataset.glob("*.md"))) > 2 and store.settings()["index"].startswith("faiss flat")
    assert parsed == []
    page = search(store, "what is data mining?", 1, mode="keyword")
    assert parsed == [page["data"][0]["file_id"]]
    extra = dataset / "extra.md"
    extra.write_text("An extra note on tea and biscuits.")
    assert cli("upload", str(extra), "--store", "docs", "-q").exit_code == 0
    assert store.obj()["file_counts"]["completed"] == total + 1 and store.obj()["file_counts"]["total"] == total + 1
    [entry] = store.entries([store.files(reap=False)[1]["id"]])
    entry["attributes"]["changed"] = "by the caller"  # a copy: what later looks see is not changed
    assert all("changed" not in e["attributes"] for e in store.entries([f["id"] for f in store.files()]))
