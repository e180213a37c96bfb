"""The catalog (catalog.sqlite): writes store only what changed, reads load only what is asked for, and a
store of vscli 0.1 (files.json) is upgraded at its first write, a kill -9 in the middle losing nothing."""

from __future__ import annotations

import json
import random
import sqlite3
from functools import partial
from pathlib import Path

from tests.conftest import assert_same_pages, kill_9_when_marked, run_vscli
from tests.states import CATALOG, make_schema_1, read_state, schema_of, write_old_format
from vscli.catalog import JsonEntries
from vscli.folder import StoreFolder
from vscli.store import resolve_store
from vscli.workspace import Workspace


def _entry(file_id: str, status: str = "completed", serial: int | None = 1) -> dict:
    return {"id": file_id, "object": "vector_store.file", "created_at": 1, "vector_store_id": "vs_x",
            "usage_bytes": 10, "chunking_strategy": {"type": "auto"}, "attributes": {}, "status": status,
            "last_error": None, "vscli": {"serial": serial, "chunks": 1, "vectors": 2, "sha256": f"h{serial}",
                                          "filename": f"{file_id}.txt"}}


def _folder(tmp_path: Path, count: int) -> StoreFolder:
    (tmp_path / "store.json").write_text("{}")
    folder = StoreFolder(tmp_path, tmp_path / "lock")
    files = {f"file-{i:04d}": _entry(f"file-{i:04d}", serial=i + 1) for i in range(count)}
    folder.write_state({"next_serial": count + 1, "generation": 0, "segments": [], "files": files})
    return folder


def test_a_commit_writes_the_rows_it_changed_and_keeps_the_order(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 1000)
    state = folder.state()
    statements: list[str] = []
    entries = state["files"]
    entries._conn.set_trace_callback(statements.append)
    entries["file-0500"]["attributes"] = {"team": "research"}
    del entries["file-0001"]
    entries["file-new0"] = _entry("file-new0", status="in_progress", serial=None)
    again = entries.pop("file-0002")
    entries["file-0002"] = again  # taken out and put back: one row, unchanged
    assert len(entries) == 1000 and "file-0001" not in entries
    folder.write_state(state)
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    files_rows = {s for s in writes if " files" in s}  # each once (traced again for each trigger step)
    assert len(files_rows) == 3, files_rows  # one row changed, one deleted, one added: not 1000 rewritten
    after = read_state(tmp_path)
    assert list(after["files"])[:2] == ["file-0000", "file-0002"] and list(after["files"])[-1] == "file-new0"
    assert after["files"]["file-0500"]["attributes"] == {"team": "research"} and len(after["files"]) == 1000
    counts, usage = folder.committed()["files"].counts()
    assert counts == {"in_progress": 1, "completed": 999, "failed": 0, "cancelled": 0, "total": 1000}
    assert usage == 999 * 10


def test_questions_about_all_files_see_a_writers_own_changes(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 10)
    state = folder.state()
    state["files"]["file-0003"]["status"] = "failed"
    assert state["files"].live_serials() == [s for s in range(1, 11) if s != 4]
    assert state["files"].live_vectors() == 18
    assert folder.committed()["files"].live_vectors() == 20  # not committed: others do not see it
    folder.abandon(state)
    assert folder.state()["files"].live_vectors() == 20  # abandoned: nothing of it stayed
    assert folder.committed()["files"].holding(["h3", "h99"]) == {"h3": "file-0002"}
    assert set(folder.committed()["files"].by_serials([2, 5, 99])) == {2, 5}


KILLED_IN_AN_UPGRADE = """
import os, pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
replace = os.replace
def replacing(src, dst, *args, **kwargs):
    if str(dst).endswith("catalog.sqlite"):
        marker.write_text(str(src))  # the new catalog is whole; it is not in place yet
        time.sleep(120)
    return replace(src, dst, *args, **kwargs)
os.replace = replacing
from vscli.cli import main
sys.argv = ["vscli", *sys.argv[2:]]
main()
"""


def test_kill_9_during_the_upgrade_of_an_old_store(tmp_path: Path, home: Path, dataset: Path) -> None:
    docs = sorted(dataset.glob("*.md"))
    assert run_vscli("create", "docs", home=home).returncode == 0
    assert run_vscli("upload", *map(str, docs[:3]), "--store", "docs", "-q", home=home).returncode == 0
    store = resolve_store(Workspace(home), "docs")
    old = read_state(store.dir)
    write_old_format(store.dir, old)  # a store as vscli 0.1 left it
    marker = tmp_path / "built"
    kill_9_when_marked(KILLED_IN_AN_UPGRADE, marker, "upload", str(docs[3]), "--store", "docs", "-q", home=home)
    assert not (store.dir / CATALOG).exists() and json.loads((store.dir / "files.json").read_text()) == old
    page = json.loads(run_vscli("query", "docs", "what is data mining?", "--json", "-k", "50", home=home).stdout)
    assert {d["file_id"] for d in page["data"]} == set(old["files"])
    report = json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)
    assert report["healthy"] and any("leftover" in f["problem"] for f in report["findings"])
    rerun = run_vscli("upload", *map(str, docs[:4]), "--store", "docs", "-q", home=home)
    assert rerun.returncode == 0, rerun.stderr
    state = read_state(store.dir)
    assert not (store.dir / "files.json").exists() and len(state["files"]) == 4
    assert all(state["files"][f] == old["files"][f] for f in old["files"])  # nothing lost or re-embedded
    assert all(e["status"] == "completed" for e in state["files"].values())
    assert run_vscli("doctor", "docs", "--repair", home=home).returncode == 0
    assert json.loads(run_vscli("doctor", "docs", "--json", home=home).stdout)["findings"] == []


def test_a_files_json_left_beside_a_catalog_is_not_read_and_doctor_removes_it(cli, home: Path,
                                                                            dataset: Path) -> None:
    """A kill after the new catalog was renamed into place and before files.json went: the catalog is
    the state (it is the newer); files.json is a leftover."""
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    stale = read_state(store.dir)
    stale["files"] = {}
    (store.dir / "files.json").write_text(json.dumps(stale))
    assert len(json.loads(cli("files", "docs", "--json").stdout)["data"]) == 1
    report = json.loads(cli("doctor", "docs", "--json").stdout)
    assert report["healthy"] and "files.json" in report["findings"][0]["problem"]
    assert cli("doctor", "docs", "--repair").exit_code == 0
    assert not (store.dir / "files.json").exists()
    assert len(json.loads(cli("files", "docs", "--json").stdout)["data"]) == 1


def test_filters_in_sql_pass_exactly_the_files_the_rules_pass(tmp_path: Path) -> None:
    """`filter_sql` says in SQL what `vscli.filters.matches` says in Python: the same files pass for every
    comparison, on values of every type (the string "2020" is not the number 2020, true is not 1, a
    missing key passes ne and nin only), and compounds of them."""
    import random
    import sqlite3

    from vscli.catalog import filter_sql
    from vscli.filters import matches

    values = ["2020", "a", "b", "Zürich", "", 2020, 2021, 1, 0, -3, 2.5, 1.0, True, False]
    rng = random.Random(7)
    attributes = [{key: rng.choice(values) for key in ("year", "team", "odd.key") if rng.random() < 0.7}
                  for _ in range(120)]
    files = {}
    for i, attrs in enumerate(attributes):
        entry = _entry(f"file-{i:04d}", serial=i + 1)
        entry["attributes"] = attrs
        files[entry["id"]] = entry
    (tmp_path / "store.json").write_text("{}")
    folder = StoreFolder(tmp_path, tmp_path / "lock")
    folder.write_state({"next_serial": 200, "files": files})
    comparisons = [{"type": kind, "key": key, "value": value}
                   for kind in ("eq", "ne", "gt", "gte", "lt", "lte") for key in ("year", "odd.key", "none")
                   for value in values]
    comparisons += [{"type": kind, "key": "year", "value": list(group)}
                    for kind in ("in", "nin") for group in (values[:3], values[5:9], [True, 1], [])]
    compounds = [{"type": rng.choice(["and", "or"]), "filters": rng.sample(comparisons, 3)} for _ in range(60)]
    compounds += [{"type": "and", "filters": [c, {"type": "or", "filters": rng.sample(comparisons, 2)}]}
                  for c in rng.sample(comparisons, 20)]
    conn = sqlite3.connect(tmp_path / CATALOG)
    try:
        for flt in comparisons + compounds:
            where = filter_sql(flt)
            assert where is not None, flt
            by_sql = {row[0] for row in conn.execute(f"SELECT id FROM files WHERE {where[0]}", where[1])}
            by_rules = {f for f, e in files.items() if matches(flt, e["attributes"])}
            assert by_sql == by_rules, flt
    finally:
        conn.close()
    year = {"type": "gte", "key": "year", "value": 2020}
    assert set(folder.committed()["files"].passing(year)) == {
        e["vscli"]["serial"] for e in files.values() if matches(year, e["attributes"])}


def test_a_whole_state_written_over_a_catalog_replaces_it_in_place(tmp_path: Path) -> None:
    """Written whole (not from `state()`), a state goes into the existing catalog in one transaction: a
    reader holding the catalog sees the new state at its next look, and the file is the same file."""
    folder = _folder(tmp_path, 5)
    inode = (tmp_path / CATALOG).stat().st_ino
    assert len(folder.committed()["files"]) == 5
    folder.write_state({"next_serial": 9, "files": {"file-x": _entry("file-x", serial=8)}})
    assert (tmp_path / CATALOG).stat().st_ino == inode
    assert list(folder.committed()["files"]) == ["file-x"] and folder.committed()["next_serial"] == 9
    assert read_state(tmp_path) == {"next_serial": 9, "files": {"file-x": _entry("file-x", serial=8)}}


def test_a_streamed_listing_is_the_page_it_replaces(capsys, tmp_path: Path) -> None:
    """`files --json` writes its page as entries come; the text is byte for byte `emit_json(list_page())`
    (empty, one, several; nested values, text beyond ASCII, newlines inside strings)."""
    from vscli.cli import render

    items = [{"id": f"file-{i}", "attributes": {"city": "Zürich", "note": "two\nlines", "n": [1, {"x": None}]},
              "last_error": None, "usage_bytes": i} for i in range(3)]
    for objs in ([], items[:1], items):
        render.emit_json(render.list_page(list(objs)))
        whole = capsys.readouterr().out
        render.emit_list_page(iter(objs))
        assert capsys.readouterr().out == whole


def test_a_listing_reads_the_catalog_a_page_at_a_time(tmp_path: Path, monkeypatch) -> None:
    from vscli.catalog import entries as catalog_entries

    monkeypatch.setattr(catalog_entries, "STREAM_PAGE", 7)
    folder = _folder(tmp_path, 50)
    stream = folder.committed()["files"].stream()
    assert next(stream)["id"] == "file-0000"
    assert len(folder.committed()["files"]._cache) == 0  # nothing kept: read, handed out, let go
    assert [e["id"] for e in stream] == [f"file-{i:04d}" for i in range(1, 50)]


def _recounted(folder: StoreFolder) -> dict:
    """The totals the triggers keep, and the same counted from the rows: equal unless they drifted."""
    conn = sqlite3.connect(folder.catalog_path)
    try:
        kept = {(s, live): (f, v, u) for s, live, f, v, u in conn.execute("SELECT * FROM totals") if f}
        counted = {(s, live): (f, v, u) for s, live, f, v, u in conn.execute(
            "SELECT status, serial IS NOT NULL, count(*), sum(vectors), sum(usage_bytes) FROM files "
            "GROUP BY 1, 2")}
    finally:
        conn.close()
    assert kept == counted
    return kept


def test_totals_kept_by_the_catalog_follow_every_change(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 50)
    assert _recounted(folder) == {("completed", 1): (50, 100, 500)}
    rng = random.Random(7)
    for step in range(40):  # rows added, changed (status, serial, vectors, bytes), deleted; some rolled back
        state = folder.state()
        entries = state["files"]
        ids = list(entries)
        for file_id in rng.sample(ids, 3):
            entry = entries[file_id]
            entry["status"], entry["vscli"]["serial"] = rng.choice(
                [("completed", step + 100), ("failed", None), ("cancelled", None)])
            entry["vscli"]["vectors"] = rng.randint(0, 9)
            entry["usage_bytes"] = rng.randint(0, 99)
        del entries[rng.choice(ids)]
        entries[f"file-new{step}"] = _entry(f"file-new{step}", serial=step + 1000)
        if step % 5 == 4:
            folder.abandon(state)
            continue
        folder.write_state(state)
        _recounted(folder)
    counts, usage = folder.committed()["files"].counts()
    rows = read_state(tmp_path)["files"].values()
    assert counts["total"] == len(rows) and counts["failed"] == sum(e["status"] == "failed" for e in rows)
    assert usage == sum(e["usage_bytes"] for e in rows if e["status"] == "completed")
    assert folder.committed()["files"].live_vectors() == sum(
        e["vscli"]["vectors"] for e in rows if e["status"] == "completed" and e["vscli"]["serial"] is not None)


def test_a_catalog_of_schema_1_is_read_as_it_is_and_upgraded_by_its_first_writer(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 30)
    make_schema_1(tmp_path)
    reader = StoreFolder(tmp_path, tmp_path / "lock")
    assert reader.committed()["files"].counts()[0]["completed"] == 30  # counted from the rows
    assert reader.committed()["files"].live_vectors() == 60
    assert [e["id"] for e in reader.committed()["files"].page(5, "asc")[0]] == [f"file-{i:04d}" for i in range(5)]
    assert schema_of(tmp_path) == 1  # a reader never writes
    state = folder.state()  # a writer upgrades when it connects
    assert schema_of(tmp_path) == 2
    state["files"]["file-0003"]["status"] = "failed"
    folder.write_state(state)
    assert _recounted(folder)[("failed", 1)] == (1, 2, 10)
    assert StoreFolder(tmp_path, tmp_path / "lock").committed()["files"].counts()[0]["failed"] == 1


def test_a_page_of_files_from_the_catalog_is_the_page_listed_in_memory(tmp_path: Path) -> None:
    (tmp_path / "store.json").write_text("{}")
    folder = StoreFolder(tmp_path, tmp_path / "lock")
    rng = random.Random(3)
    files = {}
    for i in range(40):  # many share a second (ties keep attach order), some were attached out of time order
        entry = _entry(f"file-{i:04d}", status=rng.choice(["completed", "failed", "cancelled"]), serial=i + 1)
        entry["created_at"] = 1000 + rng.randint(0, 8)
        files[entry["id"]] = entry
    folder.write_state({"next_serial": 41, "generation": 0, "segments": [], "files": files})
    entries = folder.committed()["files"]
    in_memory = JsonEntries(files)
    statements: list[str] = []
    cursors = [None, "file-0000", "file-0017", "file-0039", "file-0021"]
    for status in (None, "completed", "failed"):
        assert_same_pages(partial(entries.page, status=status), partial(in_memory.page, status=status), cursors,
                          (1, 3, 7, 100))
    # A page is read through the index, not by sorting every row.
    entries._conn.set_trace_callback(statements.append)
    entries.page(3, "desc", after="file-0017")
    conn = sqlite3.connect(folder.catalog_path)
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + statements[-1]))
    conn.close()
    assert "files_created" in plan and "TEMP B-TREE" not in plan, plan
