"""FAISS segments: a commit writes only its own vectors, a removal rewrites no index, segments merge by size
tier, results do not depend on how the vectors are split, and older stores (one index generation) upgrade
at their next write. Real FAISS files, real model, real subprocesses for the kill test."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest

from tests.conftest import ROOT, kill_9_when_marked, run_vscli
from tests.states import CATALOG, read_state, write_old_format
from vscli.index import segments as vsegments
from vscli.index.segments import MERGE_FACTOR, MERGE_FLOOR, plan_merge, tier
from vscli.store import Store, resolve_store
from vscli.workspace import Workspace, locked

COLLECTION = ROOT / "bench" / "collection"


def state_of(store: Store) -> dict:
    return read_state(store.dir)


def files_on_disk(store: Store) -> dict[str, tuple[int, int]]:
    """Each index file with its inode and mtime: a file rewritten in place or replaced shows."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.dir.glob("index-*.faiss")}


def one_commit_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSCLI_BATCH_CHUNKS", "1")  # every file is its own batch, so its own commit


# ---- the policy ------------------------------------------------------------------------------------------


def test_tiers_grow_by_the_merge_factor() -> None:
    assert tier(0) == tier(MERGE_FLOOR - 1) == 0
    assert tier(MERGE_FLOOR) == 1 and tier(MERGE_FLOOR * MERGE_FACTOR - 1) == 1
    assert tier(MERGE_FLOOR * MERGE_FACTOR) == 2 and tier(MERGE_FLOOR * MERGE_FACTOR ** 3) == 4


def test_a_full_tier_is_merged_and_nothing_else() -> None:
    small, big = 10, MERGE_FLOOR * 2
    assert plan_merge([small] * (MERGE_FACTOR - 1), dead=0) == []
    assert plan_merge([big, small, big, small, small, small], dead=0) == [1, 3, 4, 5]
    assert plan_merge([big] * MERGE_FACTOR + [small], dead=0) == list(range(MERGE_FACTOR))
    assert plan_merge([], dead=0) == []


def test_half_dead_merges_everything() -> None:
    assert plan_merge([100, 100], dead=100) == []
    assert plan_merge([100, 100], dead=101) == [0, 1]
    assert plan_merge([100], dead=51) == [0]  # one segment mostly of removed files is rewritten too


def test_ingest_rewrites_each_vector_a_bounded_number_of_times() -> None:
    """Simulated: 2,000 commits of 256 vectors (half a million) keep few segments, and the merges rewrite
    each vector only a few times (the write amplification a size-tiered policy promises)."""
    sizes: list[int] = []
    written = 0
    for _ in range(2000):
        sizes.append(256)
        written += 256
        while group := plan_merge(sizes, dead=0):
            merged = sum(sizes[at] for at in group)
            written += merged
            sizes = [s for at, s in enumerate(sizes) if at not in group] + [merged]
    assert len(sizes) <= 3 * 6 and sum(sizes) == 512_000
    assert written / sum(sizes) < 8


# ---- stores ------------------------------------------------------------------------------------------------


def test_each_commit_adds_a_segment_and_a_full_tier_merges(cli, home: Path, dataset: Path, monkeypatch) -> None:
    one_commit_per_file(monkeypatch)
    docs = sorted(dataset.glob("*.md"))[:MERGE_FACTOR]
    assert cli("create", "docs").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    for at, path in enumerate(docs[:-1], start=1):
        before = files_on_disk(store)
        assert cli("upload", str(path), "--store", "docs", "-q").exit_code == 0
        after = files_on_disk(store)
        assert len(state_of(store)["segments"]) == at
        assert {name: after[name] for name in before} == before  # the earlier segments were not touched
    assert cli("upload", str(docs[-1]), "--store", "docs", "-q").exit_code == 0
    state = state_of(store)
    assert len(state["segments"]) == 1  # the fourth small segment filled the tier: merged into one
    assert sorted(files_on_disk(store)) == [f"index-{state['segments'][0]['n']}.faiss"]
    assert state["segments"][0]["vectors"] == sum(e["vscli"]["vectors"] for e in state["files"].values())
    assert json.loads(cli("doctor", "docs", "--json").stdout)["findings"] == []
    page = json.loads(cli("query", "docs", "what is data mining?", "--json", "-k", "50").stdout)
    assert {d["file_id"] for d in page["data"]} == set(state["files"])


def test_rm_rewrites_no_segment_and_half_dead_compacts(cli, home: Path, dataset: Path, monkeypatch) -> None:
    one_commit_per_file(monkeypatch)
    docs = sorted(dataset.glob("*.md"))[:3]
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", *map(str, docs), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    before, state = files_on_disk(store), state_of(store)
    by_name = {e["vscli"]["filename"]: e for e in state["files"].values()}
    first = by_name[docs[0].name]
    assert cli("rm", "docs", first["id"]).exit_code == 0
    assert files_on_disk(store) == before  # removal is a manifest change: no index file written
    assert f"(and {first['vscli']['vectors']} of removed files" in cli("status", "docs").stdout
    page = json.loads(cli("query", "docs", docs[0].stem.replace("_", " "), "--json", "-k", "50").stdout)
    assert page["data"] and first["id"] not in {d["file_id"] for d in page["data"]}
    assert json.loads(cli("doctor", "docs", "--json").stdout)["findings"] == []  # normal, not damage
    second = by_name[docs[1].name]
    assert cli("rm", "docs", second["id"]).exit_code == 0  # now most vectors held are dead: compacted
    state = state_of(store)
    third = by_name[docs[2].name]
    assert len(state["segments"]) == 1 and state["segments"][0]["vectors"] == third["vscli"]["vectors"]
    assert store.backend().serial_counts(state) == {third["vscli"]["serial"]: third["vscli"]["vectors"]}
    assert "removed files" not in cli("status", "docs").stdout


def test_rankings_do_not_depend_on_the_segments(cli, home: Path, monkeypatch) -> None:
    """bench/collection in one segment per file (merged as they come) and then in a single segment
    holding the same vectors: every query ranks the same files and chunks with the same scores."""
    one_commit_per_file(monkeypatch)
    docs = sorted((COLLECTION / "corpus").iterdir())
    assert cli("create", "collection").exit_code == 0
    assert cli("upload", *map(str, docs), "--store", "collection", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "collection")
    assert len(state_of(store)["segments"]) > 2
    queries = [json.loads(line)["text"] for line in (COLLECTION / "queries.jsonl").read_text().splitlines()]

    def rankings() -> list[list[tuple[str, str, float]]]:
        out = []
        for mode in ("vector", "hybrid"):
            for query in queries:
                page = json.loads(cli("query", "collection", query, "--json", "-k", "10", "--mode", mode,
                                      "--min-score", "0").stdout)
                out.append([(d["file_id"], d["content"][0]["text"], d["score"]) for d in page["data"]])
        return out

    split = rankings()
    with locked(store.folder.lock):
        state = store.folder.state()
        with store.changing(state) as change:
            change.writer.compact()
    assert len(state_of(store)["segments"]) == 1
    whole = rankings()
    assert len(split) == len(whole) == 2 * len(queries) and all(split)
    for a, b in zip(split, whole, strict=True):
        assert [(f, t) for f, t, _ in a] == [(f, t) for f, t, _ in b]
        assert [s for *_, s in a] == pytest.approx([s for *_, s in b], abs=1e-5)


def test_a_store_with_one_index_generation_upgrades_at_its_next_write(cli, home: Path, dataset: Path) -> None:
    """Before segments, files.json named one index generation ("generation": g, index-g.faiss, each commit
    rewriting it). Such a store is read as one segment, and gains the list at its next write without
    rewriting the index it has."""
    docs = sorted(dataset.glob("*.md"))
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", *map(str, docs[:3]), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    state = state_of(store)
    (old,) = state.pop("segments")
    state["index"] = f"faiss flat (exact), {old['vectors']} vectors"
    write_old_format(store.dir, state)
    kept = files_on_disk(store)
    expected = {e["id"] for e in state["files"].values()}
    page = json.loads(cli("query", "docs", "what is data mining?", "--json", "-k", "50").stdout)
    assert {d["file_id"] for d in page["data"]} == expected
    report = json.loads(cli("doctor", "docs", "--json").stdout)
    assert report["healthy"] and [f["problem"] for f in report["findings"]] == [
        "the store keeps its files in files.json (vscli 0.1)"]
    assert cli("upload", str(docs[3]), "--store", "docs", "-q").exit_code == 0
    state = state_of(store)
    assert [s["n"] for s in state["segments"]] == [old["n"], old["n"] + 1]
    assert state["segments"][0] == old  # its size and type read from the file, the file itself kept
    assert {name: files_on_disk(store)[name] for name in kept} == kept
    page = json.loads(cli("query", "docs", "what is data mining?", "--json", "-k", "50").stdout)
    assert {d["file_id"] for d in page["data"]} == set(state["files"]) and len(state["files"]) == 4


def test_a_store_past_the_flat_threshold_merges_into_ivf(cli, home: Path, dataset: Path, monkeypatch) -> None:
    """Merged segments past the flat threshold are IVF (trained, nprobe tuned); a later merge of an IVF
    segment with flat ones adds them to it, dropping the vectors of a file removed meanwhile."""
    one_commit_per_file(monkeypatch)
    monkeypatch.setenv("VSCLI_FLAT_MAX_VECTORS", "5")
    (dataset / "zz_tea.md").write_text("Green tea is steamed or pan-fired soon after picking. " * 20)
    docs = sorted(dataset.glob("*.md"))
    assert len(docs) == 2 * MERGE_FACTOR - 1  # 4 flat segments merge into an IVF one; 3 more merge with it
    assert cli("create", "docs", "--chunk-size", "100", "--chunk-overlap", "0").exit_code == 0
    assert cli("upload", *map(str, docs[:MERGE_FACTOR]), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    (ivf,) = state_of(store)["segments"]
    assert ivf["kind"].startswith("IVF")
    removed = next(e for e in state_of(store)["files"].values() if e["vscli"]["filename"] == docs[1].name)
    assert cli("rm", "docs", removed["id"]).exit_code == 0
    assert cli("upload", *map(str, docs[MERGE_FACTOR:]), "--store", "docs", "-q").exit_code == 0
    state = state_of(store)
    assert len(state["segments"]) == 1 and state["segments"][0]["kind"] == ivf["kind"]  # its training kept
    assert removed["vscli"]["serial"] not in store.backend().serial_counts(state)
    held = sum(s["vectors"] for s in state["segments"])
    assert held == sum(e["vscli"]["vectors"] for e in state["files"].values())
    assert "IVF" in cli("status", "docs").stdout
    assert json.loads(cli("doctor", "docs", "--json").stdout)["findings"] == []
    page = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)
    assert page["data"][0]["filename"] == "data_mining.md"


KILLED_IN_A_MERGE = """
import pathlib, sys, time
from vscli.backends import faiss_backend
marker = pathlib.Path(sys.argv[1])
merge = faiss_backend.FaissWriter._merge
def merging(self, *args, **kwargs):
    merge(self, *args, **kwargs)  # the merged segment is written; the catalog does not name it yet
    marker.write_text("merged")
    time.sleep(120)
faiss_backend.FaissWriter._merge = merging
from vscli.cli import main
sys.argv = ["vscli", *sys.argv[2:]]
main()
"""


def test_kill_9_during_a_merge(tmp_path: Path, home: Path, dataset: Path) -> None:
    env = {"VSCLI_BATCH_CHUNKS": "1"}
    docs = sorted(dataset.glob("*.md"))[:MERGE_FACTOR]
    assert run_vscli("create", "docs", home=home).returncode == 0
    assert run_vscli("upload", *map(str, docs[:-1]), "--store", "docs", "-q", home=home, env=env).returncode == 0
    store = resolve_store(Workspace(home), "docs")
    before = state_of(store)
    assert len(before["segments"]) == MERGE_FACTOR - 1
    marker = tmp_path / "merged"
    kill_9_when_marked(KILLED_IN_A_MERGE, marker, "upload", str(docs[-1]), "--store", "docs", "-q", home=home,
                       env=env)
    after = state_of(store)
    assert after["segments"] == before["segments"]  # the commit never happened
    assert {f: e["status"] for f, e in after["files"].items() if f in before["files"]} == \
        {f: "completed" for f in before["files"]}
    assert len(list(store.dir.glob("index-*.faiss"))) > MERGE_FACTOR  # the merge's output, left over
    page = json.loads(run_vscli("query", "docs", "what is data mining?", "--json", "-k", "50", home=home).stdout)
    assert {d["file_id"] for d in page["data"]} == set(before["files"])
    problems = [f["problem"] for f in json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)["findings"]]
    assert len(problems) == 2, problems  # the file whose upload was killed, and the merge's output
    assert any("stuck in progress" in p for p in problems) and any("leftover" in p for p in problems)
    rerun = run_vscli("upload", *map(str, docs), "--store", "docs", "-q", home=home, env=env)
    assert rerun.returncode == 0, rerun.stderr
    state = state_of(store)
    assert len(state["files"]) == MERGE_FACTOR and all(e["status"] == "completed" for e in state["files"].values())
    assert vsegments.plan_merge([s["vectors"] for s in state["segments"]], 0) == []
    assert store.backend().serial_counts(state) == {e["vscli"]["serial"]: e["vscli"]["vectors"]
                                                    for e in state["files"].values()}
    report = json.loads(run_vscli("doctor", "docs", "--repair", "--json", home=home).stdout)
    assert report["healthy"]
    assert sorted(p.name for p in store.dir.glob("index-*.faiss")) == sorted(
        f"index-{s['n']}.faiss" for s in state["segments"])


def test_a_lost_catalog_is_rebuilt_over_segments_with_removed_vectors(cli, home: Path, dataset: Path,
                                                                      monkeypatch) -> None:
    """The catalog deleted from a store of several segments, one holding a removed file's vectors (the
    newest serial, so the rebuilt manifest could hand it out again): doctor calls them damage, --repair
    rebuilds the list of segments from disk and drops them, and no file is ever given a stale vector."""
    one_commit_per_file(monkeypatch)
    docs = sorted(dataset.glob("*.md"))
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", *map(str, docs[:3]), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    newest = max(state_of(store)["files"].values(), key=lambda e: e["vscli"]["serial"])
    assert cli("rm", "docs", newest["id"]).exit_code == 0
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(f"{store.dir / CATALOG}{suffix}").unlink(missing_ok=True)
    report = json.loads(cli("doctor", "docs", "--json").stdout)
    assert not report["healthy"]
    assert any(f"serial {newest['vscli']['serial']}" in f["problem"] for f in report["findings"])
    assert cli("doctor", "docs", "--repair").exit_code == 0
    state = state_of(store)
    assert len(state["files"]) == 2 and newest["vscli"]["serial"] not in store.backend().serial_counts(state)
    assert json.loads(cli("doctor", "docs", "--json").stdout)["findings"] == []
    assert cli("upload", str(docs[3]), "--store", "docs", "-q").exit_code == 0
    state = state_of(store)
    assert store.backend().serial_counts(state) == {e["vscli"]["serial"]: e["vscli"]["vectors"]
                                                    for e in state["files"].values()}  # nothing stale under them
    page = json.loads(cli("query", "docs", "what is data mining?", "--json", "-k", "50").stdout)
    assert {d["file_id"] for d in page["data"]} == set(state["files"])
