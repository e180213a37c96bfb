"""`vscli doctor`: check a store's manifests against its index and the files on disk, and repair.

What is checked, and what a repair does:

- files stuck `in_progress` whose worker died -> marked failed (attach them again to resume);
- an index segment the manifest names is missing or unreadable -> a new empty index; every completed
  file is marked failed (attach again re-embeds it);
- a completed file whose upload, chunks or vectors are missing or do not match its counts ->
  its vectors are removed and it is marked failed;
- vectors in the index that belong to no completed file -> removed (on FAISS, a removed file's vectors
  stay in their segment until a merge drops them: that is normal, not a finding);
- the keyword (BM25) index is missing, unreadable, or out of step with the completed files -> rebuilt
  from the chunk texts;
- the chunk texts (``chunks.sqlite``) damaged -> set aside; files whose chunks were in them marked failed;
- leftovers of interrupted writes (segments no manifest names, chunks of no file, temp files) ->
  deleted;
- the catalog (or a vscli 0.1 files.json) missing, unreadable, or with entries of the wrong shape ->
  rebuilt: its sound entries are kept, every file with chunks stored comes back completed (its
  attributes are lost), and the damaged file is kept beside it as <name>.damaged-<time>;
- a store of vscli 0.1 (files.json) -> its catalog is built (`vscli.catalog`), nothing re-embedded;
- store.json names a dimension other than the index's -> the index is believed and store.json fixed;
- an upload's file.json is damaged -> written again from its bytes (file.json.damaged keeps the old).

The same checks apply to a store on Milvus (`vscli.backends`): the collection's rows per file are compared
with the manifest, rows of files the manifest no longer names (a kill between the commit and the delete)
are removed, and a collection dropped outside vscli is created again with its files marked failed.

Nothing a user stored is deleted: uploads are never touched, and a failed file keeps its entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vscli.catalog import JsonEntries
from vscli.errors import CorruptData, VscliError
from vscli.files import FileRegistry
from vscli.index import segments as vsegments
from vscli.manifests import check_state, entry_problem
from vscli.store import Store
from vscli.workspace import is_file_id, locked, write_json


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
        try:
            for file_id in store.reap_orphans():
                findings.append(Finding(f"{file_id} was stuck in progress (its worker died)", "marked failed"))
        except CorruptData:
            pass  # a damaged catalog: rebuilt below, under the lock
    backend = store.backend()
    with locked(store.folder.lock):
        damaged = False
        try:
            state, rebuilt = store.folder.state(), set[str]()
            list(state["files"].values())  # every entry read and checked (a catalog reads them as asked)
        except CorruptData as exc:
            (state, rebuilt), damaged = _rebuilt_state(store, backend.kind), True
            findings.append(Finding(f"{exc}", f"rebuild the catalog from what is on disk ({len(rebuilt)} file(s) "
                                    "from their chunks, attributes lost; the damaged file is kept)"))
        if not damaged and not store.folder.has_catalog():
            findings.append(Finding("the store keeps its files in files.json (vscli 0.1)",
                                    "build its catalog from it", damage=False))
        files = state["files"]
        lost = False
        miscounted = not damaged and not files.totals_agree()
        if miscounted:
            findings.append(Finding("the catalog's counts of files per status disagree with its files",
                                    "count them again"))
        findings += _upload_findings(store, repair)
        misread = _dimension_findings(store, backend.kind, state, repair)
        findings += misread
        if misread and not repair:  # the index cannot be read with the wrong dimension until it is fixed
            return Report(store.id, findings, repaired=False, files_checked=len(files), vectors_checked=0)
        try:
            serial_counts = backend.serial_counts(state)
            for file_id in rebuilt:  # their vector counts are whatever the index holds
                files[file_id]["vscli"]["vectors"] = serial_counts.get(files[file_id]["vscli"]["serial"], 0)
        except CorruptData as exc:
            findings.append(Finding(str(exc), "start a new empty index; completed files marked failed"))
            serial_counts, lost = {}, True
            for entry in files.values():
                if entry["status"] == "completed":
                    _mark_failed(entry, "the store's index was lost")
        chunks_damaged = False
        try:
            store.folder.chunk_texts.check()
        except CorruptData as exc:
            chunks_damaged = True
            findings.append(Finding(str(exc), "set it aside (kept beside it); files whose chunks it held are "
                                    "marked failed"))
        remove: set[int] = set()
        live_serials: set[int] = set()
        handled: set[int] = set()
        for entry in files.values():
            if entry["status"] == "in_progress" and not repair and store.orphaned(entry):
                findings.append(Finding(f"{entry['id']} is stuck in progress (its worker died)", "mark it failed"))
            if entry["status"] != "completed":
                continue
            serial = entry["vscli"].get("serial")
            problem = _entry_problem(store, entry, serial, serial_counts, chunks_damaged)
            if problem is None:
                live_serials.add(serial)
                continue
            findings.append(Finding(f"{entry['id']}: {problem}", "remove its vectors; mark it failed"))
            if serial is not None:
                handled.add(serial)
                if serial_counts.get(serial):
                    remove.add(serial)
            _mark_failed(entry, problem)

        next_serial = int(state.get("next_serial", 1))
        for serial in sorted(set(serial_counts) - live_serials - handled):
            if backend.keeps_removed_vectors and serial < next_serial:
                continue  # a removed file's vectors, never returned, dropped by the next merge
            # a backend that deletes after the manifest commit leaves such rows when killed in between:
            # harmless (no query returns them), unlike FAISS vectors of a serial not yet given to a file
            findings.append(Finding(f"{serial_counts[serial]} vectors belong to no file (serial {serial})",
                                    "remove them", damage=not backend.deletes_after_commit))
            remove.add(serial)

        named = {e["vscli"]["serial"] for e in files.values() if e["vscli"].get("serial") is not None}
        referenced = {store.folder.chunks_path(serial) for serial in named}
        current = ({store.folder.index_file(s["n"]) for s in store.folder.segments(state)}
                   if backend.kind == "faiss" else set())
        leftovers = [p for p in store.dir.glob("index-*.faiss") if p not in current]
        manifests = list((store.dir / "chunks").glob("*.json"))
        leftovers += [p for p in manifests if p not in referenced]
        if any(p in referenced for p in manifests):
            findings.append(Finding("the store keeps chunks in a manifest per file (vscli 0.3)",
                                    "move them into its chunk texts", damage=False))
        leftovers += list(store.dir.glob(".*.tmp")) + list((store.dir / "chunks").glob(".*.tmp"))
        # chunks no file names: a commit killed after the chunk texts and before the catalog committed
        stray_chunks = [] if chunks_damaged else sorted(set(store.folder.chunk_texts.owners()) - named - handled)
        if store.folder.has_catalog() and (store.dir / "files.json").exists():
            leftovers.append(store.dir / "files.json")  # an upgrade killed before it deleted it: not read
        if leftovers or stray_chunks:
            names = sorted(p.name for p in leftovers) + [f"the chunks of serial {s}" for s in stray_chunks]
            findings.append(Finding(f"{len(names)} leftover(s) from interrupted writes: " + ", ".join(names[:5])
                                    + (" ..." if len(names) > 5 else ""), "delete them", damage=False))

        keyword_problem, keyword_damage = (_keyword_problem(store, files, live_serials)
                                           if backend.local_keywords else (None, False))
        if keyword_problem:
            findings.append(Finding(f"keyword index: {keyword_problem}", "rebuild it from the chunk texts",
                                    damage=keyword_damage))

        if repair and findings:
            if damaged:
                store.folder.set_aside_damaged()
            if chunks_damaged:
                store.folder.chunk_texts.set_aside()
            if lost:
                backend.prepare()  # a new empty index, or the collection made again
            if miscounted:
                files.recount()  # committed with the rest
            with store.changing(state, backend, fresh=lost) as change:
                change.garbage += leftovers
                for serial in sorted(remove):
                    change.writer.remove(serial)
                change.dropped += sorted(remove | handled | set(stray_chunks))  # their chunk texts
                if remove:
                    change.writer.compact()
            if backend.local_keywords and (keyword_problem or change.opened is not None):
                store.folder.rebuild_keyword_index(state)
            store.finish(change)
    return Report(store.id, findings, repaired=repair and bool(findings), files_checked=len(files),
                  vectors_checked=sum(serial_counts.values()))


def _entry_problem(store: Store, entry: dict[str, Any], serial: int | None,
                   serial_counts: dict[int, int], chunks_damaged: bool) -> str | None:
    """Why a completed entry is inconsistent, or None when its upload, chunks and vectors agree.
    ``chunks_damaged``: the chunk texts are set aside, so a file has chunks only in a manifest."""
    if not (store.ws.file_dir(entry["id"]) / "content").exists():
        return "its uploaded file is missing from the workspace"
    if serial is None:
        return "it is marked completed but has no chunks"
    try:
        if chunks_damaged and not store.folder.chunks_path(serial).exists():
            raise CorruptData("its chunks were in the damaged chunk texts")
        chunks = store.folder.chunk_manifest(serial)["chunks"]
    except FileNotFoundError:
        return "its chunks are missing"
    except (VscliError, KeyError, TypeError):
        return "its chunks are unreadable"
    if len(chunks) != entry["vscli"]["chunks"]:
        return f"{len(chunks)} of its chunks are stored, the store expects {entry['vscli']['chunks']}"
    found = serial_counts.get(serial, 0)
    if chunks and not found:
        return "its vectors are missing from the index"
    if found != entry["vscli"]["vectors"]:
        return f"the index holds {found} of its vectors, the store expects {entry['vscli']['vectors']}"
    return None


def _keyword_problem(store: Store, files: dict[str, Any], live_serials: set[int]) -> tuple[str | None, bool]:
    """Why the keyword index does not hold exactly the chunks of the completed files (or None), and
    whether that hurts: chunks of files the store no longer has are never returned, so they do not."""
    keyword = store.folder.raw_keyword_index()
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


def _rebuilt_state(store: Store, backend_kind: str) -> tuple[dict[str, Any], set[str]]:
    """The state made again from what survives: the sound entries of the damaged one, and a completed
    entry for every file whose chunks are stored (in the chunk texts, or a manifest of vscli 0.3). Returns it
    and the ids rebuilt from chunks."""
    from vscli import chunking

    raw = store.folder.salvage()
    old: dict[str, Any] = raw["files"] if isinstance(raw.get("files"), dict) else {}
    files = {file_id: entry for file_id, entry in old.items() if entry_problem(file_id, entry) is None}
    newest: dict[str, tuple[int, int, int]] = {}  # file id -> (serial, chunks, written at)
    try:
        owners = store.folder.chunk_texts.owners()
    except CorruptData:
        owners = {}  # set aside by the repair: its files come back failed
    for serial, (file_id, count, written) in owners.items():
        if is_file_id(file_id) and (file_id not in newest or newest[file_id][0] < serial):
            newest[file_id] = (serial, count, written)
    for path in (store.dir / "chunks").glob("*.json"):
        if not path.stem.isdigit():
            continue
        try:
            doc = store.folder.chunk_manifest(int(path.stem))
        except (VscliError, OSError):
            continue
        if doc["file_id"] not in newest or newest[doc["file_id"]][0] < int(path.stem):
            newest[doc["file_id"]] = (int(path.stem), len(doc["chunks"]), int(path.stat().st_mtime))
    strategy = chunking.resolved(store.config()["vscli"]["chunking_strategy"])
    taken = {entry["vscli"]["serial"] for entry in files.values()}
    rebuilt: set[str] = set()
    registry = FileRegistry(store.ws)
    for file_id, (serial, count, written) in newest.items():
        if file_id in files or serial in taken:
            continue
        entry = store.new_entry(file_id, strategy, created_at=written)
        entry["status"] = "completed"
        entry["vscli"].update({"serial": serial, "chunks": count})
        try:
            entry["usage_bytes"] = registry.get(file_id)["bytes"]
        except VscliError:
            pass
        files[file_id] = entry
        rebuilt.add(file_id)
    for file_id in old:
        if file_id not in files and is_file_id(file_id):  # a damaged entry with nothing to rebuild it from
            files[file_id] = store.new_entry(file_id, strategy)
            files[file_id]["last_error"] = {"code": "server_error", "message": "its entry in the catalog was "
                                            "damaged; run `vscli attach` for it again"}
    serials: list[int] = [entry["vscli"]["serial"] or 0 for entry in files.values()]
    next_serial: int = raw["next_serial"] if isinstance(raw.get("next_serial"), int) else 1
    state: dict[str, Any] = {"next_serial": max([next_serial, *(s + 1 for s in serials)]),
                             "files": JsonEntries(files)}
    if backend_kind == "faiss":
        state.update(_rebuilt_segments(store, raw))
    return state, rebuilt


def _rebuilt_segments(store: Store, raw: dict[str, Any]) -> dict[str, Any]:
    """The segments a rebuilt catalog names: the damaged one's, when they are all there; else every
    segment on disk (a store from before segments: its one generation)."""
    from vscli import index as vindex

    try:
        check_state({"files": {}, "segments": raw.get("segments", [])}, "files.json")
        named = [s["n"] for s in store.folder.segments({**raw, "files": {}})]
    except (CorruptData, TypeError, ValueError):
        named = []
    on_disk = sorted(int(p.stem[6:]) for p in store.dir.glob("index-*.faiss") if p.stem[6:].isdigit())
    numbers = named if named and all(n in on_disk for n in named) else on_disk
    records = []
    for number in numbers:
        path = store.folder.index_file(number)
        try:
            index = vindex.open_index(path, vindex.dimension_of(path), read_only=True)
            records.append(vsegments.record(number, index))
        except (VscliError, OSError):
            records.append({"n": number})  # the index check reports it
    known = [r for r in records if "kind" in r]
    return {"generation": max(on_disk, default=0), "segments": records,
            **({"index": vsegments.describe(known, 0)} if known else {})}


def _dimension_findings(store: Store, backend_kind: str, state: dict[str, Any], repair: bool) -> list[Finding]:
    """store.json's dimension against the FAISS index's own: the index is what the vectors are."""
    segments = store.folder.segments(state)
    if backend_kind != "faiss" or not segments:
        return []
    from vscli import index as vindex

    try:
        actual = vindex.dimension_of(store.folder.index_file(segments[0]["n"]))
    except (VscliError, OSError):
        return []  # an unreadable index is the index check's finding
    config = store.config()
    said = config["vscli"]["dimension"]
    if actual == said:
        return []
    if repair:
        config["vscli"]["dimension"] = actual
        write_json(store.dir / "store.json", config)
    return [Finding(f"store.json says the vectors have {said} dimensions; the index's have {actual}",
                    "believe the index: set store.json's dimension to it")]


def _upload_findings(store: Store, repair: bool) -> list[Finding]:
    """A damaged upload registry (indexed again from the upload folders), rows of uploads that are
    damaged (written again from their file.json, or their bytes), and upload folders it does not name.
    Any store's doctor looks at all uploads: they belong to the workspace."""
    registry = FileRegistry(store.ws)
    found = []
    problem = registry.problem()
    if problem is not None:
        if repair:
            registry.reindex()
        found.append(Finding(problem, "index the uploads again from their folders (the damaged registry is kept)"))
        if not repair:
            return found
    stray = registry.leftovers()
    if stray:
        if repair:
            registry.remove_leftovers()
        found.append(Finding(f"{len(stray)} upload folder(s) the upload registry does not name (an upload or "
                             f"delete was interrupted): " + ", ".join(p.name for p in stray[:5])
                             + (" ..." if len(stray) > 5 else ""), "delete them", damage=False))
    for file_id, exc in registry.damaged_rows():
        if repair:
            registry.rebuild(file_id)
        found.append(Finding(f"{exc}", "write it again from the upload's file.json or bytes"))
    return found
