"""A store's folder on disk: which file holds what, and reading and writing them.

- ``store.json``: the `vector_store` object and its settings (name, metadata, expiry, model, chunking,
  backend);
- ``catalog.sqlite``: the `vector_store.file` entries, the FAISS segments that hold their vectors and the
  next file serial (`vscli.catalog`); its SQLite commit is a commit's commit point. A store of vscli 0.1
  has ``files.json`` instead, read until its first write builds the catalog;
- ``chunks.sqlite``: the processed files' chunk texts and offsets, a row per chunk (`vscli.catalog.chunk_texts`);
  a store of vscli 0.3 or older has ``chunks/<serial>.json`` instead, one manifest per file, read until its
  next write adopts them;
- ``index-<n>.faiss``: the FAISS backend's vectors, in immutable segments (one per commit, merged as
  they multiply: `vscli.index.segments`);
- ``keyword/``: the BM25 index (tantivy).

This is the floor the `Store` API stands on: the `Store` decides what to write and when (the commit
protocol, processing, validation); backends and readers get the folder, never the `Store`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vscli import catalog as vcatalog
from vscli import index as vindex
from vscli import sqlitedb
from vscli.catalog.chunk_texts import FILENAME as CHUNKS_FILENAME
from vscli.catalog.chunk_texts import ChunkTexts
from vscli.errors import CorruptData, NotFound, VscliError
from vscli.index import segments as vsegments
from vscli.manifests import check_chunks, check_config, check_state
from vscli.notices import announce
from vscli.workspace import delete_quietly, locked, os_error, parse_json, read_json

if TYPE_CHECKING:
    from vscli.index.keyword import KeywordIndex, KeywordWriter

_CHECKED: dict[Path, tuple[int, int, int, int]] = {}  # files.json -> the version of it last checked here


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


class StoreFolder:
    """One store's directory and the lock file its commits hold (``store_id``: the directory's name,
    unless the store is being made in a staging directory)."""

    def __init__(self, directory: Path, lock: Path, store_id: str | None = None) -> None:
        self.dir = directory
        self.id = store_id or directory.name
        self.lock = lock
        self._shared: tuple[Any, dict[str, Any]] | None = None  # a files.json's version, and its state
        self._reader: tuple[tuple[int, int], sqlite3.Connection] | None = None  # for committed()
        self._shared_catalog: tuple[int, dict[str, Any]] | None = None
        self._probe: tuple[tuple[int, int], sqlite3.Connection] | None = None  # for state_version()
        self._chunk_texts: ChunkTexts | None = None

    # ---- manifests -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """store.json, checked."""
        try:
            return check_config(read_json(self.dir / "store.json"), self.dir / "store.json")
        except FileNotFoundError:
            raise NotFound(f"no such vector store: {self.id}") from None

    @property
    def catalog_path(self) -> Path:
        return self.dir / vcatalog.FILENAME

    def has_catalog(self) -> bool:
        """Whether the store keeps its state in a catalog (False: a files.json of vscli 0.1, upgraded at
        the store's next write)."""
        return self.catalog_path.exists()

    def state(self) -> dict[str, Any]:
        """The committed state, for a writer (who holds the lock) to change and hand to `write_state`:
        ``{"files": entries, "next_serial", "generation", "segments", "index"}``. From a catalog, the
        entries are loaded as they are asked for, in one transaction that `write_state` commits."""
        if self.has_catalog():
            return self._catalog_state(writable=True)
        try:
            return self._read()[1]
        except CorruptData:
            if self.has_catalog():  # upgraded meanwhile: files.json went after the catalog came
                return self._catalog_state(writable=True)
            raise

    def committed(self) -> dict[str, Any]:
        """The committed state, to read only, shared by every look in this object's life (a command's,
        or a server request's) while the store does not change: `status` counts, checks for orphans and
        describes the index from one read. Never change what it returns: `state()` gives a copy of one's
        own to change. From a catalog, entries are loaded as they are asked for."""
        if self.has_catalog():
            return self._shared_catalog_state()
        try:
            current = self.state_version()
        except OSError:
            return self.state()  # gone, unreadable or upgraded: state() says which
        if self._shared is None or self._shared[0] != current:
            self._shared = self._read()
        return self._shared[1]

    def read_view(self) -> tuple[Any, dict[str, Any]]:
        """A state of one's own to read only, kept consistent for as long as it is used (a `Snapshot`),
        and the version it is of (for `state_version`)."""
        if self.has_catalog():
            conn = self._connect(write=False)
            version, state = self._open_catalog_state(conn, writable=False)
            return (self._catalog_identity(), version), state
        try:
            return self._read()
        except CorruptData:
            if self.has_catalog():
                return self.read_view()
            raise

    def _connect(self, write: bool) -> sqlite3.Connection:
        with vcatalog.reading(self.catalog_path):
            return vcatalog.connect(self.catalog_path, write)

    def _open_catalog_state(self, conn: sqlite3.Connection, writable: bool) -> tuple[int, dict[str, Any]]:
        with vcatalog.reading(self.catalog_path):
            conn.execute("BEGIN")  # one snapshot for all the rows this state will load
            version, meta = vcatalog.read_meta(conn, self.catalog_path)
        return version, {**meta, "files": vcatalog.CatalogEntries(conn, self.catalog_path, writable)}

    def _catalog_state(self, writable: bool) -> dict[str, Any]:
        return self._open_catalog_state(self._connect(write=writable), writable)[1]

    def _catalog_identity(self) -> tuple[int, int]:
        st = os.stat(self.catalog_path)
        return st.st_dev, st.st_ino

    def _shared_catalog_state(self) -> dict[str, Any]:
        identity = self._catalog_identity()
        if self._reader is None or self._reader[0] != identity or not vcatalog.is_open(self._reader[1]):
            self._reader = (identity, self._connect(write=False))
            self._shared_catalog = None
        conn = self._reader[1]
        if conn.in_transaction:
            conn.execute("COMMIT")  # end the last look's snapshot: this one sees the latest commit
        with vcatalog.reading(self.catalog_path):
            conn.execute("BEGIN")
            version = vcatalog.read_version(conn)
            if self._shared_catalog is None or self._shared_catalog[0] != version:
                _, meta = vcatalog.read_meta(conn, self.catalog_path)
                self._shared_catalog = (version, {**meta, "files": vcatalog.CatalogEntries(
                    conn, self.catalog_path, writable=False)})
        return self._shared_catalog[1]

    def _read(self) -> tuple[Any, dict[str, Any]]:
        path = self.dir / "files.json"
        try:
            with path.open("rb") as handle:
                version = _version(os.fstat(handle.fileno()))  # of the very file read, not of its path
                raw = handle.read()
        except FileNotFoundError:
            if not (self.dir / "store.json").exists():
                raise NotFound(f"no such vector store: {self.id}") from None
            raise CorruptData(f"store {self.id} is missing its manifest {path}") from None
        except OSError as exc:
            raise os_error("read", path, exc) from exc
        state = parse_json(raw, path)
        if _CHECKED.get(path) != version:
            check_state(state, path)
            _CHECKED[path] = version
        state["files"] = vcatalog.JsonEntries(state["files"])
        return version, state

    def state_version(self) -> Any:
        """Which version of the state is there now (OSError when there is none): a reader compares this
        with the version it read to know whether the store changed. A catalog counts its commits; a
        files.json is replaced by each commit, so its inode, mtime and size name the version."""
        if self.has_catalog():
            identity = self._catalog_identity()
            if self._probe is None or self._probe[0] != identity or not vcatalog.is_open(self._probe[1]):
                self._probe = (identity, self._connect(write=False))
            with vcatalog.reading(self.catalog_path):
                return identity, vcatalog.read_version(self._probe[1])
        return _version(os.stat(self.dir / "files.json"))

    def write_state(self, state: dict[str, Any]) -> None:
        """Commit a changed state: the commit point. A state from `state()` stores the entries that
        changed in its own transaction and commits it. Any other (a new store, an import, a rebuild, a
        files.json store's first write) is written whole: into the catalog in one transaction, or where
        there is none yet as a new catalog built beside and renamed into place; then a files.json left
        from vscli 0.1 goes."""
        entries = state["files"]
        try:
            if isinstance(entries, vcatalog.CatalogEntries) and entries.where == self.catalog_path:
                entries.commit(state)
                return
            if self.has_catalog():
                vcatalog.replace(self.catalog_path, state)
            else:
                vcatalog.create(self.catalog_path, state)
        except OSError as exc:
            raise os_error("write", self.catalog_path, exc) from exc
        except sqlite3.DatabaseError as exc:
            raise vcatalog.failed_write(self.catalog_path, exc) from exc
        self._shared = None
        (self.dir / "files.json").unlink(missing_ok=True)

    def salvage(self) -> dict[str, Any]:
        """What can be read of a damaged state, unchecked: the top-level keys and the entries that parse
        (`doctor` keeps the sound ones). Empty when nothing can be read."""
        if self.has_catalog():
            return vcatalog.salvage(self.catalog_path)
        try:
            raw = json.loads((self.dir / "files.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def set_aside_damaged(self) -> None:
        """Move a damaged catalog or files.json out of the way of its rebuild, as ``<name>.damaged-<time>``
        (never deleted: it may hold attributes someone wants back)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for path in (self.catalog_path, self.dir / "files.json"):
            if path.exists():
                sqlitedb.set_aside(path, stamp)  # a files.json has no WAL: the same move
        self._shared = self._reader = self._probe = self._shared_catalog = None

    @staticmethod
    def abandon(state: dict[str, Any]) -> None:
        """Drop a writer's uncommitted changes now (they would be when the state is collected)."""
        entries = state.get("files")
        if isinstance(entries, vcatalog.CatalogEntries):
            entries.abandon()

    @property
    def chunk_texts(self) -> ChunkTexts:
        """The chunk texts (``chunks.sqlite``), one object (and reader connection) per folder."""
        if self._chunk_texts is None:
            self._chunk_texts = ChunkTexts(self.dir / CHUNKS_FILENAME)
        return self._chunk_texts

    def chunks_path(self, serial: int) -> Path:
        """A processed file's chunk manifest, as vscli 0.3 and older kept it (and archives carry it)."""
        return self.dir / "chunks" / f"{serial}.json"

    def chunk_manifest(self, serial: int) -> dict[str, Any]:
        """The chunk texts and offsets of one processed file, ``{"file_id", "chunks"}``: from the chunk
        texts, or from the manifest of a store not written since vscli 0.3 (FileNotFoundError when
        neither has them)."""
        doc = self.chunk_texts.doc(serial)
        if doc is not None:
            return doc
        path = self.chunks_path(serial)
        try:
            return check_chunks(read_json(path), path)
        except FileNotFoundError:
            doc = self.chunk_texts.doc(serial)  # adopted by a writer between our two looks
            if doc is None:
                raise
            return doc

    def chunk(self, serial: int, position: int) -> dict[str, Any] | None:
        """One chunk of a processed file (a query's hit): its row alone where the chunk texts have the
        file; else from its manifest. None: no such chunk (a leftover of an interrupted write)."""
        found = self.chunk_texts.chunk(serial, position)
        if found is not None or self.chunk_texts.has(serial):
            return found
        chunks = self.chunk_manifest(serial)["chunks"]
        return chunks[position] if position < len(chunks) else None

    def write_chunks(self, docs: list[tuple[int, dict[str, Any]]]) -> None:
        """Store processed files' chunks (``(serial, {"file_id", "chunks"})``) before the catalog commit
        names their serials (the caller holds the lock)."""
        if docs:
            self.chunk_texts.write(docs)

    def drop_chunks(self, serials: list[int]) -> None:
        """Forget the chunks of removed files, after the commit that removed them; best effort, as queries
        never return them anyway (`doctor --repair` purges what is left)."""
        try:
            self.chunk_texts.delete(serials)
        except (VscliError, OSError):
            pass
        delete_quietly([self.chunks_path(serial) for serial in serials])

    def adopt_chunk_files(self, state: dict[str, Any]) -> int:
        """Move the chunk manifests of a store written by vscli 0.3 or older into the chunk texts, in one
        transaction, then delete them (the caller holds the lock; ``state``: the writer's, whose
        completed files' manifests are moved). A kill at any moment leaves each file's chunks in one
        place or both; a manifest that cannot be read, or of no file, stays for `doctor` to report.
        Returns how many were adopted."""
        folder = self.dir / "chunks"
        if not folder.is_dir():
            return 0
        files = state["files"]
        wanted = set(files.live_serials() if isinstance(files, vcatalog.Entries) else
                     (e["vscli"]["serial"] for e in files.values() if e["status"] == "completed"))
        manifests = [p for p in folder.glob("*.json") if p.stem.isdigit() and int(p.stem) in wanted]
        adopted: list[Path] = []  # the rest: leftovers of interrupted writes or of files being removed

        def readable() -> Iterator[tuple[int, dict[str, Any]]]:
            for path in manifests:  # read as the transaction writes them: one file's chunks in memory
                try:
                    doc = check_chunks(read_json(path), path)
                except (VscliError, OSError):
                    continue  # unreadable: doctor reports it
                adopted.append(path)
                yield int(path.stem), doc

        if manifests:
            announce(f"moving the chunks of {len(manifests)} file(s) into chunks.sqlite (once, for this "
                     "version of vscli)")
            self.chunk_texts.write(readable())
        delete_quietly(adopted)
        try:
            folder.rmdir()  # only when nothing is left in it
        except OSError:
            pass
        return len(adopted)

    # ---- FAISS segments ----------------------------------------------------------------------------

    def index_file(self, number: int) -> Path:
        """The FAISS file of one segment (a number, once committed, is never used for another)."""
        return self.dir / f"index-{number}.faiss"

    @staticmethod
    def segments(state: dict[str, Any]) -> list[dict[str, Any]]:
        """The live FAISS segments, oldest first: ``{"n": file number, "vectors": count, "kind": index
        type}``. A store written before segments names one index generation instead: that is its one
        segment, whose size and type are read from the file when a commit needs them."""
        if "segments" in state:
            return [dict(segment) for segment in state["segments"]]
        generation = int(state.get("generation", 0))
        return [{"n": generation}] if generation else []

    def open_segment(self, number: int, dim: int) -> vindex.SearchableIndex:
        """A segment opened for searching (FileNotFoundError when a merge deleted it meanwhile: the reader
        then starts again from the manifest)."""
        return vindex.open_for_search(self.index_file(number), dim)

    def load_segment(self, number: int, dim: int, to_change: bool = False) -> vindex.VectorIndex:
        """A segment the manifest names, to read all of it (a merge, a migration, `doctor`): memory-mapped,
        or ``to_change`` read into memory (the base a merge adds to; the file itself never changes)."""
        try:
            return vindex.open_index(self.index_file(number), dim, read_only=not to_change)
        except FileNotFoundError:
            raise CorruptData(f"store {self.id} is missing its index file {self.index_file(number)}") from None

    def save_segment(self, index: vindex.VectorIndex, number: int) -> dict[str, Any]:
        """Write a new segment (its index type fitted to its size first); returns its manifest record."""
        index.fit_to_size()
        index.save(self.index_file(number))
        return vsegments.record(number, index)

    # ---- the keyword index -----------------------------------------------------------------------

    def raw_keyword_index(self) -> KeywordIndex:
        """The store's BM25 index where it lies (``keyword/``), whether or not it exists yet."""
        from vscli.index.keyword import KeywordIndex

        return KeywordIndex(self.dir / "keyword")

    def keyword_index(self) -> KeywordIndex:
        """The store's BM25 index; built from the chunk texts first if the store has none yet
        (stores made before vscli had one, or after `doctor --repair` threw a damaged one away)."""
        keyword = self.raw_keyword_index()
        if not keyword.exists():
            try:
                with locked(self.lock):
                    if not keyword.exists():
                        self.rebuild_keyword_index(self.state())
            except OSError as exc:
                raise VscliError(f"store {self.id} has no keyword index yet and it cannot be built here "
                                 f"({os_error('write', keyword.path, exc).message})") from exc
        return keyword

    def keyword_writer(self, state: dict[str, Any]) -> KeywordWriter:
        """A writer on the keyword index, built first if missing (the caller holds the lock)."""
        keyword = self.raw_keyword_index()
        if not keyword.exists():
            self.rebuild_keyword_index(state)
        return keyword.writer()

    def fresh_keyword_writer(self) -> KeywordWriter:
        """A writer over a new, empty keyword index (a rebuild, or a migration, fills it)."""
        keyword = self.raw_keyword_index()
        keyword.reset()
        return keyword.writer()

    def rebuild_keyword_index(self, state: dict[str, Any]) -> int:
        """Index every completed file's chunks from the chunk texts (the caller holds the lock)."""
        writer = self.fresh_keyword_writer()
        count = 0
        for entry in state["files"].completed():
            serial = entry["vscli"]["serial"]
            chunks = self.chunk_manifest(serial)["chunks"]
            writer.replace(serial, [vindex.chunk_id(serial, i) for i in range(len(chunks))],
                           [c["text"] for c in chunks])
            count += len(chunks)
        writer.commit()
        return count

    def forget_keywords(self, serials: list[int]) -> None:
        """Drop removed files from the keyword index; best effort, as queries never return them anyway."""
        keyword = self.raw_keyword_index()
        if not keyword.exists():
            return
        try:
            writer = keyword.writer()
            writer.delete(serials)
            writer.commit()
        except VscliError:
            pass  # `doctor --repair` purges what is left
