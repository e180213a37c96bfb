"""`Store`: one vector store — its `vector_store` object, its files, processing, the commit protocol,
removal and search (`vscli.store` says how its state is kept)."""

from __future__ import annotations

import copy
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from vscli import liveness
from vscli.errors import CorruptData, InvalidInput, NotFound, StoreExpired, VscliError, WaitTimeout
from vscli.files import FileRegistry
from vscli.folder import StoreFolder
from vscli.store.rules import (
    BATCH_CHUNKS,
    BATCH_CHUNKS_ENV,
    check_environment,
    check_store_name,
    validate_attributes,
    validate_metadata,
)
from vscli.workspace import (
    Workspace,
    delete_quietly,
    env_positive_int,
    locked,
    new_id,
    os_error,
    read_json,
    write_json,
)

if TYPE_CHECKING:
    from vscli.backends.base import Backend, Writer
    from vscli.ingest import Job, Prepared
    from vscli.reader import Snapshot

DAY = 86400
QUEUED_GRACE_SECONDS = 60  # a queued file whose worker has not started after this is taken as orphaned
ACTIVE_WRITE_INTERVAL = 60  # last_active_at is rewritten at most once a minute
READ_RETRIES = 5

# (event, amount): "batch" (files about to be chunked and embedded together), "chunks" (their chunks),
# "embedded" (windows embedded so far, per slice), "files" (files committed)
ProgressHook = Callable[[str, int], None]


def _upload_facts(upload: dict[str, Any]) -> dict[str, str]:
    """What a store entry keeps of its upload (`FileRegistry` object): uploads never change."""
    return {"sha256": upload.get("sha256", ""), "filename": upload["filename"]}


def _public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "vscli"}


class Change:
    """One change to a store's contents, made under its lock by `Store.changing`: ``writer`` opens the
    backend's writer on first use (a commit of failures only never loads an index); ``garbage`` collects
    the files to delete once the change is committed, and ``dropped`` the serials whose chunk texts go
    then (`Store.finish`)."""

    def __init__(self, open_writer: Callable[[], Writer]) -> None:
        self._open_writer = open_writer
        self.opened: Writer | None = None
        self.garbage: list[Path | None] = []
        self.dropped: list[int] = []

    @property
    def writer(self) -> Writer:
        return self.open()

    def open(self) -> Writer:
        if self.opened is None:
            self.opened = self._open_writer()
        return self.opened


class Store:
    """One vector store in a workspace. Cheap to construct; reads its manifests on demand."""

    def __init__(self, ws: Workspace, store_id: str) -> None:
        self.ws = ws
        self.id = store_id
        self.dir = ws.store_dir(store_id)
        self.folder = StoreFolder(self.dir, ws.lock_path(store_id), store_id)

    # ---- manifests (the folder on disk: `vscli.folder`) ------------------------------------------

    def config(self) -> dict[str, Any]:
        """store.json: the `vector_store` object and its settings."""
        return self.folder.config()

    # ---- the vector_store object -------------------------------------------------------------------

    def model(self) -> str:
        return self.config()["vscli"]["model"]

    def expires_at(self, config: dict[str, Any] | None = None) -> int | None:
        config = config or self.config()
        policy = config.get("expires_after")
        if not policy:
            return None
        return int(config["last_active_at"]) + int(policy["days"]) * DAY

    def is_expired(self, config: dict[str, Any] | None = None) -> bool:
        expires = self.expires_at(config)
        return expires is not None and time.time() >= expires

    def obj(self) -> dict[str, Any]:
        """The OpenAI `vector_store` object, with counts and status computed from the manifests."""
        config = self.config()
        counts, usage = self.folder.committed()["files"].counts()
        if self.is_expired(config):
            status = "expired"
        elif counts["in_progress"]:
            status = "in_progress"
        else:
            status = "completed"
        public = {k: v for k, v in config.items() if k != "vscli"}
        public.update(
            {
                "bytes": usage,  # OpenAI's older name for usage_bytes; both are sent
                "usage_bytes": usage,
                "file_counts": counts,
                "status": status,
                "expires_at": self.expires_at(config),
            }
        )
        return public

    def settings(self) -> dict[str, Any]:
        """vscli's own settings for the store: model, dimension, chunking, index (shown by `status`)."""
        settings = dict(self.config()["vscli"])
        settings["index"] = self.backend().describe(self.folder.committed())
        settings["backend"] = settings.get("backend", {"kind": "faiss"})["kind"]
        return settings

    def touch(self) -> None:
        """Record activity (OpenAI's `last_active_at`), at most once a minute; best effort, and never
        waiting: a query does not wait for a writer's commit to note that it ran (the next one will)."""
        config = self.config()
        now = int(time.time())
        if now - int(config.get("last_active_at") or 0) < ACTIVE_WRITE_INTERVAL:
            return
        try:
            with locked(self.folder.lock, timeout=0):
                config = self.config()
                config["last_active_at"] = now
                write_json(self.dir / "store.json", config)
        except (OSError, VscliError):
            pass  # a read-only workspace can still be queried

    # ---- files -----------------------------------------------------------------------------------------

    def files(self, reap: bool = True) -> list[dict[str, Any]]:
        """The store's `vector_store.file` objects, in the order they were attached."""
        return list(self.iter_files(reap))

    def iter_files(self, reap: bool = True) -> Iterator[dict[str, Any]]:
        """The same, read a page at a time and not kept (a listing of any size holds one page)."""
        if reap:
            self.reap_orphans()
        return (_public_entry(e) for e in self.folder.committed()["files"].stream())

    def files_page(self, limit: int, order: str = "desc", after: str | None = None, before: str | None = None,
                   status: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """One page of the store's `vector_store.file` objects as OpenAI lists them (by ``created_at``,
        ``asc`` or ``desc``, ``after``/``before`` a file id, only ``status`` if given), and whether more
        follow: read from the catalog's index, whatever the store's size."""
        self.reap_orphans()
        chosen, more = self.folder.committed()["files"].page(limit, order, after, before, status)
        return [_public_entry(copy.deepcopy(e)) for e in chosen], more

    def file(self, file_id: str) -> dict[str, Any]:
        return self.entries([file_id])[0]

    def entries(self, file_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The `vector_store.file` objects of these files, in the order given (each once), from one read
        of the manifest; NotFound names the first that is not in the store."""
        files = self.folder.committed()["files"]
        wanted = list(dict.fromkeys(file_ids))
        missing = [f for f in wanted if f not in files]
        if missing:
            raise NotFound(f"file {missing[0]} is not in vector store {self.id}")
        return [_public_entry(copy.deepcopy(files[f])) for f in wanted]

    def holding(self, digests: Iterable[str]) -> dict[str, str]:
        """Content sha256 -> the file of the store that has it (the first attached), for these digests:
        a lookup in the catalog, not a pass over every file."""
        return self._holding(self.folder.committed(), digests)

    def upload_facts(self) -> dict[str, dict[str, str]]:
        """Each file's upload ``sha256`` and ``filename``, by file id (kept in the store's entries: no
        upload manifest read per file)."""
        return self._uploads(self.folder.committed()["files"])

    def _holding(self, state: dict[str, Any], digests: Iterable[str]) -> dict[str, str]:
        entries = state["files"]
        self._uploads({e["id"]: e for e in entries.without_upload_facts()})  # entries of an older vscli
        return entries.holding(d for d in digests if d)  # no hash, no match

    def _uploads(self, entries: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
        """File id -> its upload's ``sha256`` and ``filename``. Each entry keeps them (``vscli.sha256``,
        ``vscli.filename``: uploads never change); an entry from an older vscli has them looked up in the
        uploads registry (one file read each) and filled in, so the caller's next write of the state
        saves those reads from then on (in `StoreFolder.committed`'s shared state too: facts that never
        change, which the next write records anyway)."""
        registry = FileRegistry(self.ws)
        uploads: dict[str, dict[str, str]] = {}
        for file_id, entry in entries.items():
            private = entry["vscli"]
            if not (isinstance(private.get("sha256"), str) and isinstance(private.get("filename"), str)):
                try:
                    obj = registry.get(file_id)
                except NotFound:
                    continue
                private.update(_upload_facts(obj))
            uploads[file_id] = {"sha256": private["sha256"], "filename": private["filename"]}
        return uploads

    def attach(
        self,
        file_ids: list[str],
        attributes: dict[str, Any] | None = None,
        worker: dict[str, Any] | None = None,
        chunking_strategy: dict[str, Any] | None = None,
    ) -> list[str]:
        """Add files to the store and mark them in progress; returns the ids that need processing.

        Files already completed keep their chunks (their attributes are updated if given); files whose
        processing failed or was orphaned get a fresh attempt. ``worker`` names the process that will do
        the work (None: a background worker that is yet to start). ``chunking_strategy`` (OpenAI's
        shape, validated by the caller) applies to newly attached files instead of the store's.
        """
        return self._attach(file_ids, attributes, worker, chunking_strategy, by_content=False)[1]

    def attach_content(
        self,
        file_ids: list[str],
        attributes: dict[str, Any] | None = None,
        worker: dict[str, Any] | None = None,
        own_attributes: list[dict[str, Any]] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Like `attach`, but a file whose bytes the store already has (under another id, or earlier in
        ``file_ids``) is not added again: the stored file stands for it. Decided under the store's lock,
        so concurrent uploads of the same bytes land once. ``own_attributes`` (one dict per file id, e.g.
        its `path`) are set under ``attributes``, which win. Returns the ids that stand for ``file_ids``
        (same order) and the ids that need processing."""
        return self._attach(file_ids, attributes, worker, None, by_content=True, own_attributes=own_attributes)

    def new_entry(self, file_id: str, strategy: dict[str, Any], attributes: dict[str, Any] | None = None,
                  created_at: int | None = None) -> dict[str, Any]:
        """A `vector_store.file` entry for the catalog, not yet processed (status is the caller's to set)."""
        return {
            "id": file_id,
            "object": "vector_store.file",
            "created_at": int(time.time()) if created_at is None else created_at,
            "vector_store_id": self.id,
            "usage_bytes": 0,
            "chunking_strategy": strategy,
            "attributes": dict(attributes or {}),
            "vscli": {"serial": None, "chunks": 0, "vectors": 0},
            "status": "failed",
            "last_error": None,
        }

    def _attach(self, file_ids: list[str], attributes: dict[str, Any] | None, worker: dict[str, Any] | None,
                chunking_strategy: dict[str, Any] | None, by_content: bool,
                own_attributes: list[dict[str, Any]] | None = None) -> tuple[list[str], list[str]]:
        import uuid

        from vscli import chunking

        if own_attributes is not None and len(own_attributes) != len(file_ids):
            raise ValueError("own_attributes needs one dict per file id")
        per_file = [{**own, **(attributes or {})} for own in own_attributes or [{}] * len(file_ids)]
        for each in per_file:
            validate_attributes(each)
        check_environment()  # a bad setting fails here, before anything changes
        self.backend().check()  # and so does a Milvus server that cannot be reached
        registry = FileRegistry(self.ws)
        uploads = {file_id: registry.get(file_id) for file_id in file_ids}  # unknown ids fail before anything changes
        self.reap_orphans()
        config = self.config()
        strategy = chunking.resolved(chunking_strategy or config["vscli"]["chunking_strategy"])
        todo: list[str] = []
        with locked(self.folder.lock):
            state = self.folder.state()
            standing = list(file_ids)
            if by_content:
                held = self._holding(state, (u.get("sha256", "") for f, u in uploads.items()
                                             if f not in state["files"]))
                for i, file_id in enumerate(file_ids):
                    if file_id not in state["files"]:
                        digest = uploads[file_id].get("sha256")
                        standing[i] = held.setdefault(digest, file_id) if digest else file_id
            now = int(time.time())
            changed: list[dict[str, Any]] = []
            first: dict[str, int] = {}  # each file once, in input order, with its first mention's attributes
            for at, file_id in enumerate(standing):
                first.setdefault(file_id, at)
            for file_id, at in first.items():
                wanted = per_file[at]
                entry = state["files"].get(file_id)
                if entry is not None:
                    if wanted and {**entry["attributes"], **wanted} != entry["attributes"]:
                        merged = {**entry["attributes"], **wanted}
                        validate_attributes(merged)
                        entry["attributes"] = merged
                        changed.append(entry)
                    if entry["status"] in ("completed", "in_progress"):
                        continue
                else:
                    entry = self.new_entry(file_id, strategy, wanted, now)
                    entry["vscli"].update(_upload_facts(uploads[file_id]))
                    state["files"][file_id] = entry
                entry["status"] = "in_progress"
                entry["last_error"] = None
                entry["vscli"].update({"attempt": uuid.uuid4().hex, "queued_at": now, "worker": worker})
                todo.append(file_id)
            self._sync_attributes(changed)
            if changed or todo:
                self.folder.write_state(state)
        return standing, todo

    def update(self, name: str | None = None, metadata: dict[str, str] | None = None,
               expires_after_days: int | None | bool = False) -> dict[str, Any]:
        """Change the name, metadata or expiry policy (``expires_after_days=None`` removes it);
        returns the `vector_store` object."""
        if name is not None:
            check_store_name(name)
        if metadata is not None:
            validate_metadata(metadata)
        if expires_after_days not in (False, None) and not 1 <= int(expires_after_days) <= 365:
            raise InvalidInput(f"expires_after days must be between 1 and 365, got {expires_after_days}")
        with locked(self.folder.lock):
            config = self.config()
            if name is not None:
                config["name"] = name
            if metadata is not None:
                config["metadata"] = metadata
            if expires_after_days is not False:
                config["expires_after"] = ({"anchor": "last_active_at", "days": int(expires_after_days)}
                                           if expires_after_days is not None else None)
                config["last_active_at"] = int(time.time())
            write_json(self.dir / "store.json", config)
        return self.obj()

    def set_attributes(self, file_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Replace a file's attributes (OpenAI's update); returns the `vector_store.file` object."""
        validate_attributes(attributes)
        with locked(self.folder.lock):
            state = self.folder.state()
            entry = state["files"].get(file_id)
            if entry is None:
                raise NotFound(f"file {file_id} is not in vector store {self.id}")
            entry["attributes"] = dict(attributes)
            self._sync_attributes([entry])
            self.folder.write_state(state)
        return _public_entry(entry)

    def _sync_attributes(self, entries: list[dict[str, Any]]) -> None:
        """Give the backend the new attributes of these files before the manifest records them."""
        indexed = [e for e in entries if e["status"] == "completed" and e["vscli"].get("serial") is not None]
        if indexed:
            backend = self.backend()
            for entry in indexed:
                backend.set_attributes(entry["vscli"]["serial"], entry["attributes"])

    # ---- file batches ------------------------------------------------------------------------------------

    def create_batch(self, file_ids: list[str]) -> dict[str, Any]:
        """Record a `vector_store.files_batch` over files already attached; returns it."""
        batch_id = new_id("vsfb_")
        batch = {"id": batch_id, "created_at": int(time.time()), "file_ids": list(dict.fromkeys(file_ids))}
        write_json(self.dir / "batches" / f"{batch_id}.json", batch)
        return self.batch(batch_id)

    def batch(self, batch_id: str) -> dict[str, Any]:
        """A batch with its file counts and status, computed from its files' current states."""
        try:
            batch = read_json(self.dir / "batches" / f"{batch_id}.json") if "/" not in batch_id else None
        except FileNotFoundError:
            batch = None
        if batch is None:
            raise NotFound(f"no file batch {batch_id} in vector store {self.id}")
        self.reap_orphans()
        files = self.folder.committed()["files"]
        counts = {s: 0 for s in ("in_progress", "completed", "failed", "cancelled")}
        for file_id in batch["file_ids"]:
            status = files[file_id]["status"] if file_id in files else "cancelled"  # removed since
            counts[status] += 1
        counts["total"] = len(batch["file_ids"])
        status = ("in_progress" if counts["in_progress"] else "cancelled" if batch.get("cancelled_at")
                  else "failed" if counts["failed"] else "completed")
        return {"id": batch["id"], "object": "vector_store.files_batch", "created_at": batch["created_at"],
                "vector_store_id": self.id, "status": status, "file_counts": counts}

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Cancel what of a batch is not processed yet: its in-progress files become `cancelled` (a result
        being computed for one now is dropped at commit, its attempt no longer matching); completed files
        stay. Attaching a cancelled file again processes it."""
        file_ids = self.batch_file_ids(batch_id)
        with locked(self.folder.lock):
            state = self.folder.state()
            for file_id in file_ids:
                entry = state["files"].get(file_id)
                if entry is not None and entry["status"] == "in_progress":
                    entry["status"] = "cancelled"
                    entry["vscli"].update({"attempt": None, "worker": None})
            self.folder.write_state(state)
            path = self.dir / "batches" / f"{batch_id}.json"
            write_json(path, {**read_json(path), "cancelled_at": int(time.time())})
        return self.batch(batch_id)

    def batch_file_ids(self, batch_id: str) -> list[str]:
        self.batch(batch_id)
        return read_json(self.dir / "batches" / f"{batch_id}.json")["file_ids"]

    def set_worker(self, file_ids: Iterable[str], worker: dict[str, Any]) -> None:
        """Record which process is processing these in-progress files."""
        with locked(self.folder.lock):
            state = self.folder.state()
            for file_id in file_ids:
                entry = state["files"].get(file_id)
                if entry is not None and entry["status"] == "in_progress":
                    entry["vscli"]["worker"] = worker
            self.folder.write_state(state)

    def reap_orphans(self) -> list[str]:
        """Mark in-progress files whose worker died as failed, so nothing waits on them forever."""
        state = self.folder.committed()
        if not any(self.orphaned(e) for e in state["files"].with_status("in_progress")):
            return []
        reaped = []
        try:
            with locked(self.folder.lock, timeout=10):
                state = self.folder.state()
                for entry in state["files"].with_status("in_progress"):
                    if self.orphaned(entry):
                        entry["status"] = "failed"
                        entry["last_error"] = {
                            "code": "server_error",
                            "message": "processing was interrupted (the vscli process doing it exited); "
                            "run `vscli attach` for this file again to retry",
                        }
                        reaped.append(entry["id"])
                if reaped:
                    self.folder.write_state(state)
        except (OSError, VscliError):
            return []  # read-only workspace: report the state as it is
        return reaped

    @staticmethod
    def orphaned(entry: dict[str, Any]) -> bool:
        """Whether an in-progress file's worker is gone, or was queued and never started (reaped)."""
        if entry["status"] != "in_progress":
            return False
        worker = entry["vscli"].get("worker")
        if worker is None:
            return time.time() - entry["vscli"].get("queued_at", 0) > QUEUED_GRACE_SECONDS
        return not liveness.is_alive(worker)

    def pending_jobs(self, file_ids: Iterable[str]) -> list[Job]:
        """Processing jobs for in-progress files, with the attempt that was recorded for each."""
        from vscli.ingest import Job

        state = self.folder.committed()
        registry = FileRegistry(self.ws)
        jobs = []
        for file_id in file_ids:
            entry = state["files"].get(file_id)
            if entry is None or entry["status"] != "in_progress":
                continue
            static = entry["chunking_strategy"]["static"]
            obj = registry.get(file_id)
            jobs.append(
                Job(
                    file_id=file_id,
                    attempt=entry["vscli"]["attempt"],
                    filename=obj["filename"],
                    path=registry.content_path(file_id),
                    size=int(obj["bytes"]),
                    max_tokens=static["max_chunk_size_tokens"],
                    overlap=static["chunk_overlap_tokens"],
                    encoding=obj.get("encoding"),
                )
            )
        return jobs

    def process(self, file_ids: list[str], progress: ProgressHook | None = None) -> None:
        """Extract, chunk and embed the given in-progress files, committing in batches."""
        jobs = self.pending_jobs(file_ids)
        if not jobs:
            return
        from vscli.embedding import load_embedder
        from vscli.ingest import prepare

        try:
            embedder = load_embedder(self.model())  # exports the model on first use: fast from then on
        except VscliError as exc:
            self._fail(jobs, {"code": "server_error", "message": exc.message})
            raise
        hook = progress or (lambda event, amount: None)
        try:
            for batch in _batches(jobs):
                hook("batch", len(batch))
                results = prepare(
                    batch,
                    embedder,
                    on_chunked=lambda n: hook("chunks", n),
                    on_embedded=lambda n: hook("embedded", n),
                )
                self._commit(results)
                self._record_usage(results)
                hook("files", len(batch))
        except BaseException as exc:  # disk full, Ctrl-C, ...: say why on the files not yet committed
            message = exc.message if isinstance(exc, VscliError) else (str(exc) or type(exc).__name__)
            try:
                self._fail(jobs, {"code": "server_error", "message": f"processing stopped: {message}"})
            except BaseException:
                pass  # e.g. the disk is still full: the next `status` marks them failed instead
            raise

    def _record_usage(self, results: list[Prepared]) -> None:
        """One line in the workspace's usage log for a committed batch (`vscli usage` sums them)."""
        from vscli import usage

        embedded = [r for r in results if r.error is None]
        usage.record(self.ws, {
            "kind": "ingest", "store": self.id, "files": len(embedded), "failed": len(results) - len(embedded),
            "chunks": sum(len(r.chunks) for r in embedded),
            "vectors": sum(len(r.owners) for r in embedded if r.owners is not None),
            "tokens": sum(c.tokens for r in embedded for c in r.chunks),
            "bytes": sum(r.job.size for r in embedded),
        })

    def _fail(self, jobs: list[Job], error: dict[str, str]) -> None:
        from vscli.ingest import Prepared

        self._commit([Prepared(job, error=error) for job in jobs])

    def _commit(self, results: list[Prepared]) -> None:
        """Write the chunk texts and the vectors through the store's backend, then commit the catalog."""
        with locked(self.folder.lock):
            state = self.folder.state()
            chunks: list[tuple[int, dict[str, Any]]] = []
            with self.changing(state) as change:
                for result in results:
                    entry = state["files"].get(result.job.file_id)
                    if entry is None or entry["vscli"].get("attempt") != result.job.attempt:
                        continue  # removed or re-attached while we worked: drop this result
                    if result.error:
                        if entry["status"] != "in_progress":
                            continue  # already committed: an error for the rest of its batch does not apply
                        entry["status"] = "failed"
                        entry["last_error"] = result.error
                        continue
                    old_serial = entry["vscli"].get("serial")
                    if old_serial is not None:
                        change.writer.remove(old_serial)
                        change.dropped.append(old_serial)
                    serial = int(state.get("next_serial", 1))
                    state["next_serial"] = serial + 1
                    chunks.append((serial, {
                        "file_id": entry["id"],
                        "chunks": [{"text": c.text, "start": c.start, "end": c.end, "tokens": c.tokens,
                                    **({"pages": result.pages[i]} if result.pages else {})}
                                   for i, c in enumerate(result.chunks)],
                    }))
                    assert result.vectors is not None and result.owners is not None  # no error: embedded
                    change.writer.add(serial, entry, [c.text for c in result.chunks], result.vectors,
                                      result.owners)
                    entry["status"] = "completed"
                    entry["last_error"] = None
                    entry["usage_bytes"] = result.job.size
                    entry["vscli"].update({"serial": serial, "chunks": len(result.chunks),
                                           "vectors": len(result.owners), "worker": None})
                self.folder.write_chunks(chunks)  # durable before the catalog names their serials
        self.finish(change)

    @contextmanager
    def changing(self, state: dict[str, Any], backend: Backend | None = None,
                  fresh: bool = False) -> Iterator[Change]:
        """Apply the block's changes (the caller holds the lock): what it wrote through the backend's
        writer is made durable, then the catalog commits (the commit point), then the writer
        finishes (its deletes come after the commit). If anything fails, the writer is abandoned and
        the catalog is left as it was. ``fresh``: a writer over nothing, for a migration or a lost index."""
        change = Change(lambda: (backend or self.backend()).writer(state, fresh))
        self.folder.adopt_chunk_files(state)  # a store of vscli 0.3 or older: once
        try:
            if fresh:
                change.open()  # a fresh index is written even when nothing is added to it
            yield change
            if change.opened is not None:
                change.garbage += change.opened.commit(state)
            self.folder.write_state(state)
        except BaseException:
            self.folder.abandon(state)
            if change.opened is not None:
                change.opened.abandon()
            raise
        if change.opened is not None:
            change.opened.finish()

    def finish(self, change: Change) -> None:
        """After a change committed: delete what it made garbage and the chunk texts it dropped."""
        delete_quietly(change.garbage)
        self.folder.drop_chunks(change.dropped)

    def backend(self, spec: dict[str, Any] | None = None) -> Backend:
        """Where the store's vectors and keyword index live (`vscli.backends`)."""
        from vscli.backends import open_backend

        return open_backend(self.folder, spec)

    @contextmanager
    def opened(self, config: dict[str, Any] | None = None) -> Iterator[None]:
        """Keep the backend's connection open across several operations (a batch of queries); a Milvus
        Lite file is otherwise opened and released by each one. ``config``: store.json, if already read."""
        from vscli.backends import spec_of

        spec = spec_of(config or self.config())
        if spec["kind"] != "milvus":
            yield
            return
        from vscli.backends.milvus_connection import connect

        with connect(spec["uri"]):
            yield

    def remove(self, file_ids: list[str]) -> list[str]:
        """Remove files from the store: their chunks and vectors leave every later query."""
        with locked(self.folder.lock):
            state = self.folder.state()
            missing = [f for f in file_ids if f not in state["files"]]
            if missing:
                raise NotFound(f"file {missing[0]} is not in vector store {self.id}")
            serials = []
            for file_id in dict.fromkeys(file_ids):
                entry = state["files"].pop(file_id)
                if entry["vscli"].get("serial") is not None:
                    serials.append(entry["vscli"]["serial"])
            with self.changing(state) as change:
                for serial in serials:
                    change.writer.remove(serial)
                change.dropped += serials
        self.finish(change)
        return list(dict.fromkeys(file_ids))

    def wait_for(self, file_ids: Iterable[str], poll: float = 0.25) -> None:
        """Block while any of these files is being processed by another live process."""
        wanted = set(file_ids)
        while True:
            self.reap_orphans()
            files = self.folder.committed()["files"]
            if not any(files[f]["status"] == "in_progress" for f in wanted if f in files):
                return
            time.sleep(poll)

    def wait(self, timeout: float | None, poll: float = 0.25,
             seen: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Block until no file is in progress; returns the final `vector_store` object. ``seen`` is
        handed the object at every look (a front end shows the counts moving)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.reap_orphans()
            obj = self.obj()
            if seen is not None:
                seen(obj)
            if obj["file_counts"]["in_progress"] == 0:
                return obj
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"timed out after {timeout:g}s with {obj['file_counts']['in_progress']} "
                    f"file(s) still in progress in {self.id}"
                )
            time.sleep(poll)

    # ---- search ------------------------------------------------------------------------------------------

    def check_queryable(self) -> dict[str, Any]:
        config = self.config()
        if self.is_expired(config):
            raise StoreExpired(
                f"vector store {self.id} ({config['name']}) expired at "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(self.expires_at(config)))}"
            )
        return config

    def snapshot(self, previous: Snapshot | None = None) -> Snapshot:
        """A read-only view of the store as of now (``previous`` again when nothing has changed)."""
        from vscli.reader import Snapshot

        if previous is not None and previous.current():
            return previous
        return Snapshot(self)

    def migrate(self, spec: dict[str, Any], progress: ProgressHook | None = None) -> None:
        """Move the store's vectors to another backend without embedding anything again.

        The target is filled from the current backend's vectors and the chunk texts, then ``store.json``
        names it (the commit point); only then is the old backend's copy dropped. A failure before the
        switch leaves the store on its old backend, unchanged."""
        hook = progress or (lambda event, amount: None)
        with locked(self.folder.lock):
            config = self.config()
            current = self.backend()
            now = current.spec()
            if all(spec.get(key) == now.get(key) for key in ("kind", "uri", "collection")):
                raise InvalidInput(
                    f"store {self.id} is already on that backend ({current.describe(self.folder.state())})")
            state = self.folder.state()
            busy = [e["id"] for e in state["files"].with_status("in_progress")]
            if busy:
                raise InvalidInput(f"{len(busy)} file(s) of {self.id} are still being processed; "
                                   f"`vscli status {self.id} --wait` first")
            target = self.backend(spec)
            created = target.prepare()
            by_serial = {e["vscli"]["serial"]: e for e in state["files"].completed()}
            if not current.local_keywords:  # a keyword index left by an earlier backend is stale: not kept
                shutil.rmtree(self.folder.raw_keyword_index().path, ignore_errors=True)
            try:
                with self.changing(state, target, fresh=True) as change:
                    moved = set()
                    for serial, vectors, owners in current.vectors(state):
                        entry = by_serial.get(serial)
                        if entry is None:
                            continue  # a leftover of an interrupted write: not part of the store
                        texts = [c["text"] for c in self.folder.chunk_manifest(serial)["chunks"]]
                        change.writer.add(serial, entry, texts, vectors, owners)
                        moved.add(serial)
                        hook("files", 1)
                    lost = [e["id"] for s, e in by_serial.items() if s not in moved and e["vscli"]["vectors"]]
                    if lost:
                        raise CorruptData(f"the current index of {self.id} lacks the vectors of {lost[0]}; "
                                          f"`vscli doctor {self.id} --repair` first")
                config["vscli"]["backend"] = target.spec()  # after prepare(): how keywords are searched
                write_json(self.dir / "store.json", config)  # the switch
            except BaseException:
                if created:  # a retry starts clean instead of finding a half-filled collection
                    drop_quietly(target, keep_keywords=current.local_keywords)
                raise
        self.finish(change)
        # the old copy is no longer referenced: the store is complete on its new backend
        drop_quietly(current, keep_keywords=target.local_keywords)

    def delete(self) -> None:
        """Delete the store: its manifests, chunks and index (a Milvus store's collection first, so a
        server that cannot be reached leaves the store as it was). Uploaded files stay in the workspace."""
        self.config()
        with locked(self.folder.lock):
            if self.backend().kind != "faiss":
                self.backend().drop()
            trash = self.ws.stores_dir / f".deleted-{self.id}"
            try:
                os.replace(self.dir, trash)
            except OSError as exc:
                raise os_error("delete", self.dir, exc) from exc
        shutil.rmtree(trash, ignore_errors=True)


def _batches(jobs: list[Job]) -> Iterable[list[Job]]:
    """Group jobs so each group holds roughly BATCH_CHUNKS chunks (estimated from file sizes).

    Each group is committed on its own, so a crash loses at most the group in flight."""
    limit = env_positive_int(BATCH_CHUNKS_ENV, BATCH_CHUNKS)
    batch: list[Job] = []
    estimate = 0
    for job in jobs:
        batch.append(job)
        estimate += max(1, job.size // (4 * max(1, job.max_tokens - job.overlap)))
        if estimate >= limit:
            yield batch
            batch, estimate = [], 0
    if batch:
        yield batch


def drop_quietly(backend: Backend, keep_keywords: bool = False) -> None:
    try:
        backend.drop(keep_keywords=keep_keywords)
    except VscliError:
        pass  # e.g. a server gone meanwhile: what is left is referenced by nothing

