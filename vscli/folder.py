"""A store's folder on disk: which file holds what, and reading and writing them.

- ``store.json``: the `vector_store` object and its settings (name, metadata, expiry, model, chunking,
  backend);
- ``files.json``: the `vector_store.file` entries, the index generation that matches them and the next
  file serial; replacing it in one rename is a commit's commit point;
- ``chunks/<serial>.json``: a processed file's chunk texts and offsets;
- ``index-<generation>.faiss``: the FAISS backend's vectors (generation 0, the empty store, has none);
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
        return state

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

    # ---- FAISS index generations -----------------------------------------------------------------

    def index_file(self, generation: int) -> Path:
        """The FAISS index file of a generation (generation 0 is the empty store: it has none)."""
        return self.dir / f"index-{generation}.faiss"

    def save_index(self, state: dict[str, Any], index: vindex.VectorIndex, generation: int) -> Path | None:
        """Write the next index generation (after fitting its type to its size) and record it in
        ``state``; returns the file it supersedes, to delete after the commit."""
        index.fit_to_size()
        state["generation"] = generation + 1
        state["index"] = index.describe()
        index.save(self.index_file(generation + 1))
        return self.index_file(generation) if generation else None

    def load_index(self, generation: int, dim: int) -> vindex.VectorIndex:
        path = self.index_file(generation) if generation else None
        if path is not None and not path.exists():
            raise CorruptData(f"store {self.id} is missing its index file {path}")
        return vindex.open_index(path, dim)

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
