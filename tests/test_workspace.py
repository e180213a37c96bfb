"""Workspace location, ids and atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("step", ["record", "rename"])
def test_an_upload_interrupted_at_any_step_is_stored_once_on_retry(tmp_path: Path, monkeypatch, step) -> None:
    """A kill between storing the bytes and recording them for de-duplication must not lead to the retry
    storing a second copy (seen as a flaky duplicate in the kill -9 test)."""
    import os as real_os

    from vscli import files as vfiles
    from vscli.files import FileRegistry
    from vscli.workspace import Workspace

    registry = FileRegistry(Workspace(tmp_path))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # like a signal: no clean-up code runs for it

    if step == "record":
        monkeypatch.setattr(vfiles, "atomic_write_bytes", killed)
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
    upload manifest: 50,000 file reads in a 50,000-file store); files.json is written compactly. A store
    written the old way (pretty JSON, neither kept) reads as before, still recognises content it has,
    and gains both at its next write."""
    import json

    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    manifest = store.dir / "files.json"
    state = json.loads(manifest.read_text())
    assert all(e["vscli"]["sha256"] and e["vscli"]["filename"] for e in state["files"].values())
    assert "\n  " not in manifest.read_text()
    for entry in state["files"].values():
        del entry["vscli"]["sha256"], entry["vscli"]["filename"]
    manifest.write_text(json.dumps(state, indent=2))  # as vscli 0.1 wrote it
    assert "data_mining.md" in cli("files", "docs").stdout  # looked up in the uploads registry
    again = cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q")  # same bytes: not added
    assert again.exit_code == 0 and len(store.files()) == 1
    assert cli("upload", str(dataset / "vector_search.md"), "--store", "docs", "-q").exit_code == 0
    entries = json.loads(manifest.read_text())["files"].values()
    assert len(entries) == 2 and all(e["vscli"]["sha256"] for e in entries)  # filled in by the write
    assert {e["vscli"]["filename"] for e in entries} == {"data_mining.md", "vector_search.md"}
    listed = cli("files", "docs").stdout
    assert "data_mining.md" in listed and "vector_search.md" in listed


def test_a_damaged_files_json_is_caught_after_a_good_one_was_read(cli, home: Path) -> None:
    """A process checks files.json's shape once per version of the file; a replaced file is a new version
    and is checked again."""
    import json

    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    assert store.folder.state()["files"] == {}
    good = json.loads((store.dir / "files.json").read_text())
    write_json(store.dir / "files.json", {**good, "files": {"file-x": "not an entry"}})
    with pytest.raises(CorruptData, match="is not a file entry"):
        store.folder.state()


def test_a_store_reads_its_manifest_once_per_version(cli, dataset: Path, home: Path, monkeypatch) -> None:
    """`status` looks at files.json three times (orphans, counts, the index): a 58 MB files.json at
    100,000 files was parsed three times. Read-only looks share one parse per version of the file, and
    a commit made meanwhile (here by another command) is seen at the next look."""
    from vscli import folder
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    parsed: list[Path] = []
    real_parse = folder.parse_json

    def counting(raw: bytes, path: Path):
        parsed.append(path)
        return real_parse(raw, path)

    monkeypatch.setattr(folder, "parse_json", counting)
    store = resolve_store(Workspace(home), "docs")
    store.reap_orphans()
    assert store.obj()["file_counts"]["total"] == 1 and store.settings()["index"].startswith("faiss flat")
    assert len(parsed) == 1
    assert cli("upload", str(dataset / "vector_search.md"), "--store", "docs", "-q").exit_code == 0
    parsed.clear()
    assert store.obj()["file_counts"]["completed"] == 2 and store.obj()["file_counts"]["total"] == 2
    assert len(parsed) == 1
    [entry] = store.entries([store.files(reap=False)[1]["id"]])
    entry["attributes"]["changed"] = "by the caller"  # a copy: what later looks see is not changed
    assert all("changed" not in e["attributes"] for e in store.entries([f["id"] for f in store.files()]))
