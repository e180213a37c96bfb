"""`vscli export` / `vscli import`: a store moves between workspaces without re-embedding, and a bad
archive changes nothing. Also `vscli info`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, run_vscli, snapshot
from vscli import liveness
from vscli.errors import ExitCode
from vscli.store import resolve_store
from vscli.workspace import Workspace

QUERIES = ["what is data mining?", "backpropagation", "sourdough starter"]


@pytest.fixture
def exported(cli, dataset: Path, home: Path, tmp_path: Path) -> Path:
    assert cli("create", "docs", "--metadata", "team=wiki").exit_code == 0
    ids = cli("upload", *sorted(str(p) for p in dataset.glob("*.md")), "--store", "docs", "-q",
              "--attr", "year=2021").stdout.split()
    assert cli("rm", "docs", ids[-1]).exit_code == 0  # the removed file stays out after the move
    archive = tmp_path / "docs.tar.gz"
    result = cli("export", "docs", str(archive))
    assert result.exit_code == 0 and result.stdout == "", result.output
    return archive


def _pages(cli, home: Path, store: str) -> list[dict]:
    pages = []
    for mode in ("hybrid", "vector", "keyword"):
        for text in QUERIES:
            result = cli("--home", str(home), "query", store, text, "--mode", mode, "--json")
            assert result.exit_code == 0, result.output
            pages.append(json.loads(result.stdout))
    return pages


def test_round_trip_gives_identical_results(cli, exported: Path, home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-machine"
    result = cli("--home", str(other), "import", str(exported))
    assert result.exit_code == 0, result.output
    store_id = result.stdout.strip()
    assert store_id == resolve_store(Workspace(home), "docs").id  # ids survive the move
    assert _pages(cli, other, "docs") == _pages(cli, home, "docs")
    for name in ("files", "status"):
        mine = json.loads(cli(name, "docs", "--json").stdout)
        theirs = json.loads(cli("--home", str(other), name, "docs", "--json").stdout)
        if name == "status":
            mine.pop("last_active_at"), theirs.pop("last_active_at")
        assert mine == theirs
    for f in json.loads(cli("files", "docs", "--json").stdout)["data"]:
        assert cli("--home", str(other), "cat", f["id"]).stdout_bytes == cli("cat", f["id"]).stdout_bytes
    assert cli("--home", str(other), "doctor", "docs").exit_code == 0
    assert (next((other / "stores").glob("vs_*")) / "keyword" / "meta.json").exists()


def test_import_twice_needs_new_id(cli, exported: Path, home: Path) -> None:
    before = snapshot(home)
    assert_clean_error(cli("import", str(exported)), ExitCode.USAGE, "already exists in this workspace")
    assert snapshot(home) == before
    result = cli("import", str(exported), "--new-id", "--name", "docs-copy")
    assert result.exit_code == 0 and result.stdout.startswith("vs_")
    assert _pages(cli, home, "docs-copy") == _pages(cli, home, "docs")  # uploads shared, not copied twice
    assert len(json.loads(cli("uploads", "--json").stdout)["data"]) == 6


def test_streaming_through_a_pipe(exported: Path, home: Path, tmp_path: Path) -> None:
    """`vscli export docs - | vscli --home elsewhere import -`, with real processes."""
    other = tmp_path / "piped"
    export = subprocess.Popen([sys.executable, "-m", "vscli", "--home", str(home), "export", "docs", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = subprocess.run([sys.executable, "-m", "vscli", "--home", str(other), "import", "-"],
                              stdin=export.stdout, capture_output=True, timeout=120)
    export.stdout.close()  # type: ignore[union-attr]
    assert export.wait(timeout=60) == 0 and imported.returncode == 0, imported.stderr
    assert run_vscli("doctor", "docs", home=other).returncode == 0


def test_damaged_archives_change_nothing(cli, exported: Path, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    assert cli("--home", str(target), "ls").exit_code == 0
    before = snapshot(target)
    data = exported.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    assert_clean_error(cli("--home", str(target), "import", str(truncated)), ExitCode.CORRUPT, "damaged or truncated")
    # an upload whose bytes were changed after export
    tampered = tmp_path / "tampered.tar.gz"
    _rewrite(exported, tampered, lambda name, blob: blob + b"tampered" if name.endswith("/content") else blob)
    assert_clean_error(cli("--home", str(target), "import", str(tampered)), ExitCode.CORRUPT, "checksum")
    # a member that tries to leave the staging directory
    evil = tmp_path / "evil.tar.gz"
    _rewrite(exported, evil, lambda name, blob: blob, extra=("files/../../escape", b"x"))
    assert_clean_error(cli("--home", str(target), "import", str(evil)), ExitCode.CORRUPT, "unexpected archive member")
    not_archive = tmp_path / "notes.txt"
    not_archive.write_text("hello")
    assert_clean_error(cli("--home", str(target), "import", str(not_archive)), ExitCode.USAGE,
                       "not a vscli store archive")
    assert_clean_error(cli("--home", str(target), "import", str(tmp_path / "none.tar.gz")), ExitCode.NOT_FOUND)
    assert snapshot(target) == before
    assert not list((target / "stores").glob(".import-*")) and not list((target / "files").glob(".import-*"))
    assert not (tmp_path.parent / "escape").exists()


def _rewrite(source: Path, dest: Path, change, extra: tuple[str, bytes] | None = None) -> None:
    with tarfile.open(source) as tin, tarfile.open(dest, "w:gz") as tout:
        for member in tin:
            blob = tin.extractfile(member).read()  # type: ignore[union-attr]
            blob = change(member.name, blob)
            member.size = len(blob)
            tout.addfile(member, io.BytesIO(blob))
        if extra:
            info = tarfile.TarInfo(extra[0])
            info.size = len(extra[1])
            tout.addfile(info, io.BytesIO(extra[1]))


def test_export_refuses_files_in_progress(cli, dataset: Path, home: Path, tmp_path: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    file_id = cli("upload", str(dataset / "data_mining.md")).stdout.strip()
    store = resolve_store(Workspace(home), "docs")
    store.attach([file_id], worker=liveness.this_process())  # this live process "is processing" it
    assert_clean_error(cli("export", "docs", str(tmp_path / "a.tar.gz")), ExitCode.USAGE, "still being processed")
    assert not (tmp_path / "a.tar.gz").exists()
    assert_clean_error(cli("export", "docs", str(tmp_path)), ExitCode.USAGE, "is a directory")


def test_info(cli, home: Path, dataset: Path) -> None:
    result = cli("info", "--json")
    assert result.exit_code == 0 and not home.exists()  # looking does not create the workspace
    facts = json.loads(result.stdout)
    assert facts["workspace"] == str(home) and facts["workspace_exists"] is False and facts["stores"] == []
    assert facts["default_model"]["name"] == "all-MiniLM-L6-v2" and Path(facts["default_model"]["path"]).is_dir()
    assert facts["libraries"]["faiss-cpu"] and facts["libraries"]["tantivy"]
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    store = json.loads(cli("info", "--json").stdout)["stores"][0]
    assert store["name"] == "docs" and store["file_counts"]["completed"] == 1 and store["disk_bytes"] > 0
    human = cli("info")
    assert human.exit_code == 0 and "workspace" in human.stdout and "docs" in human.stdout
