"""A consistent read-only view of one store, opened once and reused while the store does not change.

A `Snapshot` reads ``files.json`` once and opens the index generation it names (memory-mapped) and the
keyword index on first use; chunk manifests are read as hits need them. Batch queries and `eval` reuse
one snapshot for as long as ``files.json`` is the same file (a commit replaces it by rename, so its inode
changes), instead of parsing the manifest and reopening the index for every query.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from vscli import filters as vfilters, index as vindex
from vscli.files import FileRegistry
from vscli.workspace import read_json

if TYPE_CHECKING:
    import numpy as np

    from vscli.index.keyword import KeywordIndex
    from vscli.store import Store


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


class Snapshot:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.stamp = _stamp(store.dir / "files.json")
        self.state = store._state()
        self.config = store.config()
        self.generation = int(self.state.get("generation", 0))
        self.by_serial: dict[int, dict[str, Any]] = {
            e["vscli"]["serial"]: e
            for e in self.state["files"].values()
            if e["status"] == "completed" and e["vscli"].get("serial") is not None
        }
        self._vectors: vindex.VectorIndex | None = None
        self._keyword: KeywordIndex | None = None
        self._manifests: dict[int, dict[str, Any]] = {}
        self._filtered: dict[str, set[int]] = {}  # filter (as JSON) -> serials of the files it passes
        self._allowed: dict[str, np.ndarray] = {}  # filter (as JSON) -> their chunk ids
        self._filenames: dict[str, str] = {}

    def current(self) -> bool:
        """Whether the store is still in the state this snapshot was taken from."""
        try:
            return _stamp(self.store.dir / "files.json") == self.stamp
        except OSError:
            return False

    def serials(self, flt: dict[str, Any] | None) -> set[int] | None:
        """The serials of the completed files that pass the filter (None: no filter, every file).
        Worked out once per filter for the snapshot's life: a batch of queries shares it."""
        if flt is None:
            return None
        key = json.dumps(flt, sort_keys=True)
        if key not in self._filtered:
            self._filtered[key] = {s for s, e in self.by_serial.items() if vfilters.matches(flt, e["attributes"])}
        return self._filtered[key]

    def _allowed_ids(self, flt: dict[str, Any]) -> np.ndarray:
        """The chunk ids of the files that pass the filter, for the vector index's selector (memoised)."""
        import numpy as np

        key = json.dumps(flt, sort_keys=True)
        if key not in self._allowed:
            serials = self.serials(flt) or set()
            self._allowed[key] = np.concatenate([np.zeros(0, np.int64)] + [
                np.arange(vindex.chunk_id(s, 0), vindex.chunk_id(s, self.by_serial[s]["vscli"]["chunks"]))
                for s in sorted(serials)
            ]).astype(np.int64)
        return self._allowed[key]

    # ---- the two rankings ---------------------------------------------------------------------------

    def vector_hits(self, query_vector: np.ndarray, k: int, flt: dict[str, Any] | None) -> list[tuple[int, float]]:
        """Cosine hits among the files that pass the filter (all files without one)."""
        serials = self.serials(flt)
        if not self.generation or serials is not None and not serials:
            return []
        if self._vectors is None:
            self._vectors = vindex.open_index(
                self.store._index_path(self.generation), self.config["vscli"]["dimension"], read_only=True
            )
        return self._vectors.search(query_vector, k, self._allowed_ids(flt) if flt is not None else None)

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> list[tuple[int, float]]:
        """BM25 hits among the files that pass the filter, over the files this snapshot knows (the keyword
        index may be a commit ahead)."""
        serials = self.serials(flt)
        if not self.by_serial or serials is not None and not serials:
            return []
        if self._keyword is None:
            self._keyword = self.store.keyword_index()
        if serials is not None:
            return self._keyword.search(text, k, serials)
        fetch = k
        while True:  # without a filter, drop hits of files this snapshot does not know, and fetch again
            hits = self._keyword.search(text, fetch)
            known = [(cid, score) for cid, score in hits if vindex.split_chunk_id(cid)[0] in self.by_serial]
            if len(known) >= k or len(hits) < fetch:
                return known[:k]
            fetch *= 4

    # ---- hits -> OpenAI's search result items ----------------------------------------------------------

    def result(self, cid: int, score: float) -> dict[str, Any] | None:
        serial, position = vindex.split_chunk_id(cid)
        entry = self.by_serial.get(serial)
        if entry is None:
            return None
        if serial not in self._manifests:
            self._manifests[serial] = read_json(self.store._chunks_path(serial))
        chunk = self._manifests[serial]["chunks"][position]
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
