"""vscli sync: a folder and a store kept in step across runs, counting what gets embedded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, snapshot
from vscli.errors import ExitCode

pytestmark = pytest.mark.usefixtures("backend")  # the shared suite: every test on FAISS and on Milvus


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "notes"
    shutil.copytree(EXAMPLES, target)
    (target / "guides").mkdir()
    (target / "guides" / "tides.txt").write_text("Spring tides happen near full and new moon, when the sun "
                                                  "and moon line up and their pulls add together.")
    return target


def sync(cli, folder: Path, *extra: str) -> tuple[int, dict]:
    result = cli("sync", str(folder), "--store", "docs", "--json", *extra)
    return result.exit_code, json.loads(result.stdout)


def by_path(cli) -> dict[str, dict]:
    return {f["attributes"]["path"]: f for f in json.loads(cli("files", "docs", "--json").stdout)["data"]}


def top(cli, question: str) -> dict:
    return json.loads(cli("query", "docs", question, "--json").stdout)["data"][0]


def test_add_modify_rename_delete_between_runs(cli, folder: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    code, first = sync(cli, folder)
    assert code == 0 and len(first["added"]) == 7 and first["windows_embedded"] >= 7
    files = by_path(cli)
    assert set(files) == {"data_mining.md", "neural_networks.md", "sourdough_bread.md", "supervised_learning.md",
                          "unsupervised_learning.md", "vector_search.md", "guides/tides.txt"}
    assert all(f["status"] == "completed" for f in files.values())

    code, again = sync(cli, folder)  # nothing changed: nothing embedded
    assert code == 0 and again["unchanged"] == 7 and again["windows_embedded"] == 0
    assert again["added"] == again["updated"] == again["removed"] == [] and again["renamed"] == []

    (folder / "guides" / "tides.txt").write_text("Neap tides happen at the quarter moons, when the sun and "
                                                 "moon pull at right angles and the tidal range is smallest.")
    (folder / "neural_networks.md").rename(folder / "guides" / "deep_learning.md")
    (folder / "sourdough_bread.md").unlink()
    old_tides = files["guides/tides.txt"]["id"]
    code, changes = sync(cli, folder)
    assert code == 0
    assert changes["updated"] == ["guides/tides.txt"] and changes["removed"] == ["sourdough_bread.md"]
    assert changes["renamed"] == [{"from": "neural_networks.md", "to": "guides/deep_learning.md"}]
    assert 0 < changes["windows_embedded"] <= 2  # only the changed file was embedded
    files = by_path(cli)
    assert "sourdough_bread.md" not in files and "neural_networks.md" not in files
    assert files["guides/deep_learning.md"]["status"] == "completed"
    assert old_tides not in {f["id"] for f in files.values()}  # the old version left the store
    assert top(cli, "when are neap tides?")["attributes"]["path"] == "guides/tides.txt"
    assert "Neap" in top(cli, "when are neap tides?")["content"][0]["text"]
    assert top(cli, "backpropagation and activation functions")["attributes"]["path"] == "guides/deep_learning.md"
    page = json.loads(cli("query", "docs", "how do I bake sourdough bread?", "--json", "-k", "50").stdout)
    assert all("sourdough" not in d["filename"] for d in page["data"])
    assert all("Spring tides" not in d["content"][0]["text"] for d in page["data"])
    assert json.loads(cli("doctor", "docs", "--json").stdout)["healthy"]


def test_no_delete_glob_and_dry_run(cli, folder: Path, home: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    code, first = sync(cli, folder, "--glob", "*.md")
    assert code == 0 and "guides/tides.txt" not in first["added"] and len(first["added"]) == 6
    (folder / "data_mining.md").unlink()
    before = snapshot(home)
    code, plan = sync(cli, folder, "--glob", "*.md", "--dry-run")
    assert code == 0 and plan["dry_run"] and plan["removed"] == ["data_mining.md"]
    assert snapshot(home) == before  # a dry run changes nothing
    code, kept = sync(cli, folder, "--glob", "*.md", "--no-delete")
    assert code == 0 and kept["removed"] == [] and "data_mining.md" in by_path(cli)
    human = cli("sync", str(folder), "--store", "docs", "--glob", "*.md")
    assert human.exit_code == 0 and "remove\tdata_mining.md" in human.stdout
    assert "data_mining.md" not in by_path(cli)


def test_failures_and_skipped_files(cli, folder: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    (folder / "empty.md").write_text("")
    (folder / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    (folder / ".cache").mkdir()
    (folder / ".cache" / "junk.md").write_text("hidden folders are not synced")
    result = cli("sync", str(folder), "--store", "docs", "--json")
    assert result.exit_code == ExitCode.FILES_FAILED
    summary = json.loads(result.stdout)
    assert summary["failed"] == [{"path": "empty.md", "error": "file is empty"}]
    assert [s["path"] for s in summary["skipped"]] == ["diagram.png"]
    assert len(summary["added"]) == 7 and ".cache/junk.md" not in by_path(cli)
    assert result.stderr.strip().splitlines()[-1] == "Error: 1 file(s) failed to sync"
    missing = cli("sync", str(folder / "nope"), "--store", "docs")
    assert missing.exit_code == ExitCode.NOT_FOUND and missing.stderr.startswith("Error: no such directory")


def test_sync_while_querying(cli, folder: Path, home: Path) -> None:
    """A sync in another process while this one queries: every query answers, from a whole state."""
    from vscli.search import Searcher
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    assert cli("create", "docs").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    searcher = Searcher(store, "hybrid")
    proc = subprocess.Popen([sys.executable, "-m", "vscli", "sync", str(folder), "--store", "docs", "--quiet"],
                            env={**os.environ, "VSCLI_HOME": str(home), "VSCLI_BATCH_CHUNKS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    texts = {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}
    searches = 0
    while proc.poll() is None:
        for r in searcher.results("patterns in data", 10):
            assert r["content"][0]["text"] in texts[r["attributes"]["path"]]
        searches += 1
    assert proc.returncode == 0, proc.stderr.read()
    assert searches > 3 and len(searcher.results("patterns in data", 50)) >= 7
