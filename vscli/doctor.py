"""`vscli doctor`: check a store's manifests against its index and the files on disk, and repair.

What is checked, and what a repair does:

- files stuck `in_progress` whose worker died -> marked failed (attach them again to resume);
- the current index generation is missing or unreadable -> a new empty index; every completed file is
  marked failed (attach again re-embeds it);
- a completed file whose upload, chunk manifest or vectors are missing or do not match its counts ->
  its vectors are removed and it is marked failed;
- vectors in the index that belong to no completed file -> removed;
- the keyword (BM25) index is missing, unreadable, or out of step with the completed files -> rebuilt
  from the chunk manifests;
- leftovers of interrupted writes (old index generations, unreferenced chunk manifests, temp files) ->
  deleted.

The same checks apply to a store on Milvus (`vscli.backends`): the collection's rows per file are compared
with the manifest, rows of files the manifest no longer names (a kill between the commit and the delete)
are removed, and a collection dropped outside vscli is created again with its files marked failed.

Nothing a user stored is deleted: uploads are never touched, and a failed file keeps its entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vscli.errors import CorruptData, VscliError
from vscli.store import Store, _delete_quietly
from vscli.workspace import locked, read_json


@dataclass
class Finding:
    problem: str
    repair: str  # what --repair does (or did) about it
    damage: bool = True  # False: harmless leftovers; the store is consistent without the clean-up


@dataclass
class Report:
    store_id: str
    findings: list[Finding]
    repaired: bool
    files_checked: int
    vectors_checked: int

    @property
    def healthy(self) -> bool:
        return self.repaired or not any(f.damage for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "vector_store_id": self.store_id,
            "healthy": self.healthy,
            "repaired": self.repaired,
            "files_checked": self.files_checked,
            "vectors_checked": self.vectors_checked,
            "findings": [{"problem": f.problem, "repair": f.repair, "damage": f.damage}
                         for f in self.findings],
        }


def _mark_failed(entry: dict[str, Any], message: str) -> None:
    entry["status"] = "failed"
    entry["last_error"] = {"code": "server_error", "message": message + "; run `vscli attach` for it again"}
    entry["vscli"].update({"serial": None, "chunks": 0, "vectors": 0, "worker": None})


def check(store: Store, repair: bool = False) -> Report:
    """Examine the store (under its lock, so the picture is consistent) and optionally repair it."""
    findings: list[Finding] = []
    if repair:
        for file_id in store.reap_orphans():
            findings.append(Finding(f"{file_id} was stuck in progress (its worker died)", "marked failed"))
    backend = store.backend()
    with locked(store._lock):
        state = store._state()
        files = state["files"]
        lost = False
        try:
            serial_counts = backend.serial_counts(state)
        except CorruptData as exc:
            findings.append(Finding(str(exc), "start a new empty index; completed files marked failed"))
            serial_counts, lost = {}, True
            for entry in files.values():
                if entry["status"] == "completed":
                    _mark_failed(entry, "the store's index was lost")
        remove: set[int] = set()
        live_serials: set[int] = set()
        handled: set[int] = set()
        for entry in files.values():
            if entry["status"] == "in_progress" and not repair and store._orphaned(entry):
                findings.append(Finding(f"{entry['id']} is stuck in progress (its worker died)", "mark it failed"))
            if entry["status"] != "completed":
                continue
            serial = entry["vscli"].get("serial")
            problem = _entry_problem(store, entry, serial, serial_counts)
            if problem is None:
                live_serials.add(serial)
                continue
            findings.append(Finding(f"{entry['id']}: {problem}", "remove its vectors; mark it failed"))
            if serial is not None:
                handled.add(serial)
                if serial_counts.get(serial):
                    remove.add(serial)
            _mark_failed(entry, problem)

        for serial in sorted(set(serial_counts) - live_serials - handled):
            # a backend that deletes after the manifest commit leaves such rows when killed in between:
            # harmless (no query returns them), unlike vectors in a FAISS generation the manifest names
            findings.append(Finding(f"{serial_counts[serial]} vectors belong to no file (serial {serial})",
                                    "remove them", damage=not backend.deletes_after_commit))
            remove.add(serial)

        referenced = {store._chunks_path(e["vscli"]["serial"]) for e in files.values()
                      if e["vscli"].get("serial") is not None}
        current = store._index_path(int(state.get("generation", 0))) if backend.kind == "faiss" else None
        leftovers = [p for p in store.dir.glob("index-*.faiss") if p != current]
        leftovers += [p for p in (store.dir / "chunks").glob("*.json") if p not in referenced]
        leftovers += list(store.dir.glob(".*.tmp")) + list((store.dir / "chunks").glob(".*.tmp"))
        if leftovers:
            findings.append(Finding(f"{len(leftovers)} leftover file(s) from interrupted writes: "
                                    + ", ".join(sorted(p.name for p in leftovers)[:5])
                                    + (" ..." if len(leftovers) > 5 else ""), "delete them", damage=False))

        keyword_problem, keyword_damage = (_keyword_problem(store, files, live_serials)
                                           if backend.local_keywords else (None, False))
        if keyword_problem:
            findings.append(Finding(f"keyword index: {keyword_problem}", "rebuild it from the chunk manifests",
                                    damage=keyword_damage))

        if repair and findings:
            if lost:
                backend.prepare()  # a new empty index, or the collection made again
            with store._changing(state, backend, fresh=lost) as change:
                change.garbage += leftovers
                for serial in sorted(remove):
                    change.writer.remove(serial)
            if backend.local_keywords and (keyword_problem or change.opened is not None):
                store.rebuild_keyword_index(state)
            _delete_quietly(change.garbage)
    return Report(store.id, findings, repaired=repair and bool(findings), files_checked=len(files),
                  vectors_checked=sum(serial_counts.values()))


def _entry_problem(store: Store, entry: dict[str, Any], serial: int | None,
                   serial_counts: dict[int, int]) -> str | None:
    """Why a completed entry is inconsistent, or None when its upload, chunks and vectors agree."""
    if not (store.ws.file_dir(entry["id"]) / "content").exists():
        return "its uploaded file is missing from the workspace"
    if serial is None:
        return "it is marked completed but has no chunks"
    try:
        chunks = read_json(store._chunks_path(serial))["chunks"]
    except FileNotFoundError:
        return "its chunk manifest is missing"
    except (VscliError, KeyError, TypeError):
        return "its chunk manifest is corrupted"
    if len(chunks) != entry["vscli"]["chunks"]:
        return f"its chunk manifest holds {len(chunks)} chunks, the store expects {entry['vscli']['chunks']}"
    found = serial_counts.get(serial, 0)
    if found != entry["vscli"]["vectors"]:
        return f"the index holds {found} of its vectors, the store expects {entry['vscli']['vectors']}"
    return None


def _keyword_problem(store: Store, files: dict[str, Any], live_serials: set[int]) -> tuple[str | None, bool]:
    """Why the keyword index does not hold exactly the chunks of the completed files (or None), and
    whether that hurts: chunks of files the store no longer has are never returned, so they do not."""
    from vscli.index.keyword import KeywordIndex

    keyword = KeywordIndex(store.dir / "keyword")
    if not keyword.exists():
        return ("missing", True) if live_serials else (None, False)
    expected = {e["vscli"]["serial"]: e["vscli"]["chunks"] for e in files.values()
                if e["vscli"].get("serial") in live_serials}
    try:
        for serial, chunks in expected.items():
            found = keyword.count(serial)
            if found != chunks:
                return f"holds {found} chunks of serial {serial}, the store has {chunks}", True
        extra = keyword.size - sum(expected.values())
    except (VscliError, FileNotFoundError) as exc:
        return f"unreadable ({exc})", True
    if extra:
        return f"holds {extra} chunk(s) of files no longer in the store (left by an interrupted write)", False
    return None, False
