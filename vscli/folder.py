"""A store's folder on disk: which file holds what, and reading and writing them.

- ``store.json``: the `vector_store` object and its settings (name, metadata, expiry, model, chunking,
  backend);
- ``files.json``: the `vector_store.file` entries, the FAISS segments that hold their vectors and the
  next file serial; replacing it in one rename is a commit's commit point;
- ``chunks/<serial>.json``: a processed file's chunk texts and offsets;
- ``index-<n>.faiss``: the FAISS backend's vectors, in immutable segments (one per commit, merged as
  they multiply: `vscli.index.segments`);
- ``keyword/``: the BM25 index (tantivy).

This is the floor the `Store` API stands on: the `Store` decides what to write and when (the commit
protocol, processing, validation); backends and readers get the folder, never the `Store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vscli import index as vindex
from vscli.errors import CorruptData, NotFound, VscliError
from vscli.index import segments as vsegments
from vscli.manifests import check_chunks, check_config, check_state
from vscli.workspace import locked, os_error, parse_json, read_json, write_json

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
        self._shared: tuple[tuple[int, int, int, int], dict[str, Any]] | None = None

    # ---- manifests -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """store.json, checked."""
        try:
            return check_config(read_json(self.dir / "store.json"), self.dir / "store.json")
        except FileNotFoundError:
            raise NotFound(f"no such vector store: {self.id}") from None

    def state(self) -> dict[str, Any]:
        """files.json, checked: the committed state (a writer holds the lock while it reads and replaces
        it). Each call parses the file anew (callers change what they get); checking its shape, which
        took longer than parsing (0.57 s vs 0.22 s at 50,000 files), is done once per version of the file
        in a process: a commit replaces the file, so its inode, mtime and size name the version read."""
        return self._read()[1]

    def committed(self) -> dict[str, Any]:
        """The committed state, to read only: parsed once per version of files.json in this object's life
        (a command's, or a server request's), so a command that looks several times (`status`: counts,
        orphans, the index) parses a 58 MB files.json once. Never change what it returns: `state()`
        gives a copy of one's own to change."""
        try:
            current = self.state_version()
        except OSError:
            return self.state()  # gone or unreadable: state() says which, in the words of the error
        if self._shared is None or self._shared[0] != current:
            self._shared = self._read()
        return self._shared[1]

    def _read(self) -> tuple[tuple[int, int, int, int], dict[str, Any]]:
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
        return version, state

    def state_version(self) -> tuple[int, int, int, int]:
        """Which version of files.json is there now (OSError when it is not): each commit replaces the
        file, so a reader compares this with the version it read to know whether the store changed."""
        return _version(os.stat(self.dir / "files.json"))

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace files.json in one rename: the commit point (compact: a store of 50,000 files has a
        35 MB one, rewritten on every commit)."""
        try:
            write_json(self.dir / "files.json", state, compact=True)
        except OSError as exc:
            raise os_error("write", self.dir / "files.json", exc) from exc

    def chunks_path(self, serial: int) -> Path:
        """A processed file's chunk manifest."""
        return self.dir / "chunks" / f"{serial}.json"

    def chunk_manifest(self, serial: int) -> dict[str, Any]:
        """The chunk texts and offsets of one processed file (FileNotFoundError when missing)."""
        path = self.chunks_path(serial)
        return check_chunks(read_json(path), path)

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

    def open_segment(self, number: int, dim: int) -> vindex.VectorIndex:
        """A segment memory-mapped for searching (FileNotFoundError when a merge deleted it meanwhile:
        the reader then starts again from the manifest)."""
        return vindex.open_index(self.index_file(number), dim, read_only=True)

    def load_segment(self, number: int, dim: int, to_change: bool = False) -> vindex.VectorIndex:
        """A segment the manifest names, to read all of it (a merge, a migration, `doctor`): memory-mapped,
        or ``to_change`` read into memory (the base a merge adds to; the file itself never changes)."""
        try:
            if to_change:
                return vindex.open_index(self.index_file(number), dim)
            return self.open_segment(number, dim)
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
        """The store's BM25 index; built from the chunk manifests first if the store has none yet
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
        """Index every completed file's chunks from its manifest (the caller holds the lock)."""
        writer = self.fresh_keyword_writer()
        count = 0
        for entry in state["files"].values():
            serial = entry["vscli"].get("serial")
            if entry["status"] != "completed" or serial is None:
                continue
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
