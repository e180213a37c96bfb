"""The embedded default: FAISS index generations and a tantivy keyword index in the store's directory.

Each commit writes a whole new ``index-<g+1>.faiss`` (the old generation stays readable until
``files.json`` switches to the new one); the keyword index is updated in place by tantivy's commits.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vscli import index as vindex

if TYPE_CHECKING:
    import numpy as np

    from vscli.backends.base import Hits
    from vscli.folder import StoreFolder
    from vscli.index.keyword import KeywordIndex, KeywordWriter
    from vscli.reader import Snapshot


class FaissBackend:
    kind = "faiss"
    local_keywords = True
    deletes_after_commit = False

    def __init__(self, folder: StoreFolder) -> None:
        self.folder = folder

    def spec(self) -> dict[str, Any]:
        return {"kind": "faiss"}

    def prepare(self) -> bool:
        return True  # the store's directory is all it needs; its files are written by the writer

    def check(self) -> None:
        pass  # problems with the files surface as CorruptData where they are read

    def writer(self, state: dict[str, Any], fresh: bool = False) -> FaissWriter:
        return FaissWriter(self.folder, state, fresh)

    def reader(self, snapshot: Snapshot) -> FaissReader:
        return FaissReader(snapshot)

    def set_attributes(self, serial: int, attributes: dict[str, Any]) -> None:
        pass  # filters are applied from the manifest's attributes

    def vectors(self, state: dict[str, Any]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        import numpy as np

        generation = int(state.get("generation", 0))
        if not generation:
            return
        index = self.folder.load_index(generation, self.folder.config()["vscli"]["dimension"])
        vectors, ids = index.vectors_and_ids()
        order = np.argsort(ids, kind="stable")  # a chunk's windows keep their order
        vectors, ids = vectors[order], ids[order]
        serials = ids >> vindex.CHUNK_BITS
        bounds = np.flatnonzero(np.diff(serials)) + 1
        for part in np.split(np.arange(len(ids)), bounds):
            if len(part):
                yield int(serials[part[0]]), vectors[part], ids[part] & ((1 << vindex.CHUNK_BITS) - 1)

    def serial_counts(self, state: dict[str, Any]) -> dict[int, int]:
        import numpy as np

        index = self.folder.load_index(int(state.get("generation", 0)), self.folder.config()["vscli"]["dimension"])
        serials, counts = np.unique(index.ids() >> vindex.CHUNK_BITS, return_counts=True)
        return dict(zip(serials.tolist(), counts.tolist(), strict=False))

    def describe(self, state: dict[str, Any]) -> str:
        return state.get("index", "faiss flat (exact), 0 vectors")

    def drop(self, keep_keywords: bool = False) -> None:
        for path in self.folder.dir.glob("index-*.faiss"):
            path.unlink(missing_ok=True)
        if not keep_keywords:
            shutil.rmtree(self.folder.raw_keyword_index().path, ignore_errors=True)


class FaissWriter:
    def __init__(self, folder: StoreFolder, state: dict[str, Any], fresh: bool) -> None:
        self.folder = folder
        self.generation = int(state.get("generation", 0))
        dimension = folder.config()["vscli"]["dimension"]
        self.index = vindex.open_index(None, dimension) if fresh else folder.load_index(self.generation, dimension)
        self.fresh = fresh
        self.state = state
        self.keyword: KeywordWriter | None = None
        self.removed: list[int] = []
        # A migration between two backends that both use vscli's keyword index keeps it as it is (it
        # holds the same chunks), rather than rebuilding it.
        self.adopt_keywords = fresh and folder.raw_keyword_index().exists()

    def remove(self, serial: int) -> None:
        self.index.remove_range(*vindex.file_id_range(serial))
        self.removed.append(serial)

    def add(self, serial: int, entry: dict[str, Any], texts: list[str], vectors: np.ndarray,
            owners: np.ndarray) -> None:
        import numpy as np

        self.index.add(vectors, np.asarray([vindex.chunk_id(serial, int(p)) for p in owners.tolist()], np.int64))
        if self.adopt_keywords:
            return
        if self.keyword is None:
            self.keyword = self.folder.fresh_keyword_writer() if self.fresh else self.folder.keyword_writer(self.state)
        self.keyword.replace(serial, [vindex.chunk_id(serial, i) for i in range(len(texts))], texts)

    def commit(self, state: dict[str, Any]) -> list[Path]:
        garbage = [self.folder.save_index(state, self.index, self.generation)]
        if self.keyword is not None:
            self.keyword.commit()  # before files.json: a file the manifest calls completed is searchable
        elif self.fresh and not self.adopt_keywords:
            self.folder.fresh_keyword_writer().commit()  # an empty store still gets an (empty) keyword index
        return [p for p in garbage if p is not None]

    def finish(self) -> None:
        if self.removed:
            self.folder.forget_keywords(self.removed)

    def abandon(self) -> None:
        if self.keyword is not None:
            self.keyword.abandon()  # release tantivy's writer lock now, not when the writer is collected


class FaissReader:
    """Hits from the snapshot's index generation (memory-mapped) and the keyword index."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._vectors: vindex.VectorIndex | None = None
        self._keyword: KeywordIndex | None = None

    def open_vectors(self) -> None:
        snap = self.snapshot
        if snap.generation and self._vectors is None:
            self._vectors = vindex.open_index(snap.folder.index_file(snap.generation),
                                              snap.config["vscli"]["dimension"], read_only=True)

    def vector_hits(self, query: np.ndarray, k: int, flt: dict[str, Any] | None) -> Hits:
        snap = self.snapshot
        if not snap.generation:
            return []
        self.open_vectors()
        assert self._vectors is not None
        return self._vectors.search(query, k, snap.allowed_ids(flt) if flt is not None else None)

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> Hits:
        return self._keywords().search(text, k, self.snapshot.serials(flt))

    def keyword_scale(self, text: str) -> float:
        return self._keywords().scale(text)

    def _keywords(self) -> KeywordIndex:
        if self._keyword is None:
            self._keyword = self.snapshot.folder.keyword_index()
        return self._keyword
