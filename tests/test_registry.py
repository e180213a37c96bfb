"""The upload registry (files/registry.sqlite): uploads found by id, content and page without reading a
folder per upload; a workspace of vscli 0.2 (folders only) indexed at its first look; identical bytes
stored once; kills between a folder and its row leave nothing a user sees, and doctor sweeps them."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from functools import partial
from pathlib import Path

from tests.conftest import assert_same_pages, kill_9_when_marked, run_vscli
from vscli.files import REGISTRY, FileRegistry
from vscli.paging import page_of
from vscli.workspace import Workspace


def _uploads(home: Path) -> list[dict]:
    result = run_vscli("uploads", "--json", home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["data"]


def _make_old_workspace(home: Path) -> None:
    """As vscli 0.2 left a workspace: upload folders and de-duplication records, no registry."""
    files = home / "files"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{files / REGISTRY}{suffix}").unlink(missing_ok=True)
    (files / ".index").mkdir()
    for folder in files.glob("file-*"):
        obj = json.loads((folder / "file.json").read_text())
        (files / ".index" / f"{obj['sha256']}.0123456789abcdef").write_text(obj["id"])


def test_an_old_workspace_is_indexed_at_its_first_look(home: Path, dataset: Path) -> None:
    docs = sorted(dataset.glob("*.md"))
    assert run_vscli("create", "docs", home=home).returncode == 0
    ids = run_vscli("upload", *map(str, docs[:3]), "--store", "docs", "-q", home=home).stdout.decode().split()
    before = _uploads(home)
    _make_old_workspace(home)
    assert _uploads(home) == before  # read from the folders' file.json, nothing lost
    assert (home / "files" / REGISTRY).exists() and not (home / "files" / ".index").exists()
    again = run_vscli("upload", *map(str, docs[:3]), "--store", "docs", home=home)
    assert again.stdout.decode().split() == ids  # the same bytes and names: the same uploads
    assert "already uploaded" in again.stderr.decode()
    first = run_vscli("cat", ids[0], home=home)
    assert first.returncode == 0 and first.stdout == docs[0].read_bytes()


def test_identical_bytes_are_stored_once_and_deleting_one_upload_keeps_the_other(tmp_path: Path, home: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("the same bytes, twice\n" * 100)
    twin = tmp_path / "b.txt"
    shutil.copy(source, twin)
    first, second = (run_vscli("upload", str(p), home=home).stdout.decode().strip() for p in (source, twin))
    assert first != second  # each upload is its own file
    one, two = (home / "files" / f / "content" for f in (first, second))
    assert one.stat().st_ino == two.stat().st_ino and one.stat().st_nlink == 2  # the bytes stored once
    assert run_vscli("delete-file", first, "--yes", home=home).returncode == 0
    assert not (home / "files" / first).exists()
    assert run_vscli("cat", second, home=home).stdout == source.read_bytes() and two.stat().st_nlink == 1


def test_a_page_of_uploads_is_the_page_listed_in_memory(tmp_path: Path) -> None:
    registry = FileRegistry(Workspace(tmp_path / "home"))
    rng = random.Random(5)
    for i in range(30):
        obj, _ = registry.add(f"upload {i}".encode(), f"u{i}.txt", purpose=rng.choice(["assistants", "batch"]))
    objs = registry.list()
    with sqlite3.connect(registry.path) as conn:  # many in the same second: the nanoseconds order them
        conn.execute("UPDATE uploads SET created_at = 1000 + (created_ns % 3)")
        conn.execute("UPDATE uploads SET object = json_set(object, '$.created_at', created_at)")
    objs = registry.list()
    cursors = [None, objs[0]["id"], objs[13]["id"], objs[-1]["id"]]
    for purpose in (None, "batch"):
        listed = [o for o in objs if purpose is None or o["purpose"] == purpose]
        assert_same_pages(partial(registry.page, purpose=purpose), partial(page_of, listed), cursors, (1, 4, 100))


KILLED_AFTER_THE_FOLDER = """
import os, sys, time
from pathlib import Path
import vscli.files as vfiles
MARK = Path(sys.argv[1])
real = vfiles.FileRegistry._writing
def writing(self):
    MARK.write_text("placed")  # the upload's folder is in place, its row not yet written
    time.sleep(60)
    return real(self)
vfiles.FileRegistry._writing = writing
from vscli.cli import main
sys.argv = ["vscli", *sys.argv[2:]]
main()
"""


def test_kill_9_between_an_uploads_folder_and_its_row(tmp_path: Path, home: Path, dataset: Path) -> None:
    docs = sorted(dataset.glob("*.md"))
    kept = run_vscli("upload", str(docs[0]), home=home).stdout.decode().strip()
    kill_9_when_marked(KILLED_AFTER_THE_FOLDER, tmp_path / "placed", "upload", str(docs[1]), home=home)
    assert [u["id"] for u in _uploads(home)] == [kept]  # the killed upload is not there
    assert run_vscli("create", "docs", home=home).returncode == 0
    report = json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)
    assert report["healthy"] and any("registry does not name" in f["problem"] for f in report["findings"])
    assert run_vscli("doctor", "docs", "--repair", home=home).returncode == 0
    assert sorted(p.name for p in (home / "files").glob("file-*")) == [kept]
    again = run_vscli("upload", str(docs[1]), home=home)  # the upload made again, whole
    assert again.returncode == 0 and again.stdout.decode().strip() != kept and len(_uploads(home)) == 2


def test_a_damaged_registry_is_a_clean_error_and_doctor_indexes_the_uploads_again(home: Path, dataset: Path) -> None:
    assert run_vscli("create", "docs", home=home).returncode == 0
    ids = run_vscli("upload", str(dataset), "-r", "--store", "docs", "-q", home=home).stdout.decode().split()
    (home / "files" / REGISTRY).write_bytes(b"not a database at all\n" * 300)
    for args in (("uploads",), ("cat", ids[0])):
        result = run_vscli(*args, home=home)
        err = result.stderr.decode()
        assert result.returncode == 7 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1, err
        assert "upload registry" in err and "doctor" in err
    report = json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)
    assert not report["healthy"] and "upload registry" in report["findings"][0]["problem"]
    assert run_vscli("doctor", "docs", "--repair", home=home).returncode == 0
    assert sorted(u["id"] for u in _uploads(home)) == sorted(ids)
    assert list((home / "files").glob(f"{REGISTRY}.damaged-*"))
    assert run_vscli("doctor", "docs", home=home).returncode == 0
