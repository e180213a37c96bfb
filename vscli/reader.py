"""A consistent read-only view of one store, opened once and reused while the store does not change.

A `Snapshot` holds one read of the store's state (a catalog transaction: later commits are not seen) and
opens the index segments it names (memory-mapped) and the keyword index on first use; the catalog rows of
files and the rows of their chunks are read as hits need them, so a query costs what it returns, not the
size of the store. Batch queries and `eval` reuse one snapshot for as long as the store has not changed,
instead of reading the state and reopening the index for every query.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Iterable

from vscli import index as vindex
from vscli.backends import open_backend, spec_of
from vscli.files import FileRegistry

if TYPE_CHECKING:
    import numpy as np

    from vscli.backends.base import Hits, Reader
    from vscli.store import Store

MAX_FETCH = 16384  # the most hits asked of an index while looking for k that this snapshot knows


class Snapshot:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.folder = store.folder  # what backends' readers read: the folder, not the Store
        self.stamp, self.state = store.folder.read_view()
        self.config = store.config()
        self.entries = self.state["files"]
        self._by_serial: dict[int, dict[str, Any] | None] = {}  # the completed files' entries, as asked for
        self._reader: Reader | None = None
        # filter (as JSON) -> the files it passes, and their serials
        self._filtered: dict[str, tuple[dict[int, dict[str, Any]], set[int]]] = {}
        self._allowed: dict[str, np.ndarray] = {}  # filter (as JSON) -> their chunk ids
        self._filenames: dict[str, str] = {}

    def current(self) -> bool:
        """Whether the store is still in the state this snapshot was taken from."""
        try:
            return self.folder.state_version() == self.stamp
        except OSError:
            return False

    def serials(self, flt: dict[str, Any] | None) -> set[int] | None:
        """The serials of the completed files that pass the filter (None: no filter, every file).
        Worked out once per filter for the snapshot's life: a batch of queries shares it."""
        if flt is None:
            return None
        key = json.dumps(flt, sort_keys=True)
        if key not in self._filtered:
            passing = self.entries.passing(flt)
            self._by_serial.update(passing)
            self._filtered[key] = passing, set(passing)
        return self._filtered[key][1]

    def known(self, serials: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The entries of the completed files among these serials (read from the catalog once each)."""
        wanted = set(serials)
        missing = wanted.difference(self._by_serial)
        if missing:
            found = self.entries.by_serials(missing)
            self._by_serial.update({s: found.get(s) for s in missing})
        return {s: e for s in wanted if (e := self._by_serial[s]) is not None}

    def allowed_ids(self, flt: dict[str, Any]) -> np.ndarray:
        """The chunk ids of the files that pass the filter, for the vector index's selector (memoised)."""
        import numpy as np

        key = json.dumps(flt, sort_keys=True)
        if key not in self._allowed:
            self.serials(flt)
            passing = self._filtered[key][0]
            self._allowed[key] = np.concatenate([np.zeros(0, np.int64)] + [
                np.arange(vindex.chunk_id(s, 0), vindex.chunk_id(s, passing[s]["vscli"]["chunks"]))
                for s in sorted(passing)
            ]).astype(np.int64)
        return self._allowed[key]

    # ---- the two rankings ---------------------------------------------------------------------------

    def vector_hits(self, query_vector: np.ndarray, k: int, flt: dict[str, Any] | None) -> Hits:
        """Cosine hits among the files that pass the filter (all files without one)."""
        return self._hits(lambda n: self.reader().vector_hits(query_vector, n, flt), k, flt)

    def open_vectors(self) -> None:
        """Open the vector index ahead of the search (while the query's vector is being made)."""
        self.reader().open_vectors()

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> Hits:
        """BM25 hits among the files that pass the filter."""
        return self._hits(lambda n: self.reader().keyword_hits(text, n, flt), k, flt)

    def keyword_scale(self, text: str) -> float:
        """What BM25 gives a chunk of average length holding each query term once (score fusion's unit)."""
        return self.reader().keyword_scale(text)

    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = open_backend(self.folder, spec_of(self.config)).reader(self)
        return self._reader

    def _hits(self, search: Callable[[int], Hits], k: int, flt: dict[str, Any] | None) -> Hits:
        """The first k hits of files this snapshot knows and the filter passes. An index may hold chunks
        the manifest does not name (a commit ahead of this snapshot, or a removal not yet purged), and a
        backend's own filter may be looser than OpenAI's rules: such hits are dropped and more fetched."""
        serials = self.serials(flt)
        if not serials if serials is not None else not self.entries.has_completed():
            return []
        fetch = k
        while True:
            hits = search(fetch)
            wanted = self.known(vindex.split_chunk_id(cid)[0] for cid, _ in hits) if serials is None else serials
            known = [(cid, score) for cid, score in hits if vindex.split_chunk_id(cid)[0] in wanted]
            if len(known) >= k or len(hits) < fetch or fetch >= MAX_FETCH:
                return known[:k]
            fetch = min(fetch * 4, MAX_FETCH)

    # ---- hits -> OpenAI's search result items ----------------------------------------------------------

    def result(self, cid: int, score: float) -> dict[str, Any] | None:
        serial, position = vindex.split_chunk_id(cid)
        entry = self.known([serial]).get(serial)
        if entry is None:
            return None
        chunk = self.folder.chunk(serial, position)
        if chunk is None:
            return None  # a leftover of an interrupted write under a serial since reused
        item = {
            "file_id": entry["id"],
            "filename": self.filename(entry["id"]),
            "score": round(float(score), 6),
            "attributes": entry["attributes"],
            "content": [{"type": "text", "text": chunk["text"]}],
        }
        if chunk.get("pages"):
            item["pages"] = chunk["pages"]  # PDF only: the pages the chunk came from
        return item

    def filename(self, file_id: str) -> str:
        if file_id not in self._filenames:
            self._filenames[file_id] = FileRegistry(self.store.ws).get(file_id)["filename"]
        return self._filenames[file_id]

    def results(self, hits: Iterable[tuple[int, float]]) -> list[dict[str, Any]]:
        return [item for cid, score in hits if (item := self.result(cid, score)) is not None]
