"""The embedded default: FAISS segments and a tantivy keyword index in the store's directory.

Each commit writes only the vectors it adds, as a new immutable segment ``index-<n>.faiss``; a removal
only takes the file out of the catalog (readers return chunks of files the manifest names, so its
vectors are never returned again) and the next merge drops them. Segments are merged by the size-tiered
policy of `vscli.index.segments`, in a commit under the store's lock; readers keep searching the segments
their snapshot names until they take a new one. The keyword index is updated in place by tantivy's
commits, in the same commit.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vscli import index as vindex
from vscli.index import segments as vsegments

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
    keeps_removed_vectors = True  # until a merge: vectors of files the manifest no longer names are normal

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

    def _segments(self, state: dict[str, Any]) -> Iterator[vindex.VectorIndex]:
        dimension = self.folder.config()["vscli"]["dimension"]
        for segment in self.folder.segments(state):
            yield self.folder.load_segment(segment["n"], dimension)

    def vectors(self, state: dict[str, Any]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        import numpy as np

        for index in self._segments(state):  # a file's vectors are all in one segment
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

        counts: dict[int, int] = {}
        for index in self._segments(state):
            serials, found = np.unique(index.ids() >> vindex.CHUNK_BITS, return_counts=True)
            for serial, count in zip(serials.tolist(), found.tolist(), strict=False):
                counts[serial] = counts.get(serial, 0) + count
        return counts

    def describe(self, state: dict[str, Any]) -> str:
        return state.get("index", "faiss flat (exact), 0 vectors")

    def drop(self, keep_keywords: bool = False) -> None:
        for path in self.folder.dir.glob("index-*.faiss"):
            path.unlink(missing_ok=True)
        if not keep_keywords:
            shutil.rmtree(self.folder.raw_keyword_index().path, ignore_errors=True)


class FaissWriter:
    """A commit's vectors go to one new segment; then segments are merged as the policy says."""

    def __init__(self, folder: StoreFolder, state: dict[str, Any], fresh: bool) -> None:
        self.folder = folder
        self.dimension = folder.config()["vscli"]["dimension"]
        self.added: vindex.VectorIndex | None = None  # this commit's vectors: its new segment
        self.fresh = fresh
        self.state = state
        self.keyword: KeywordWriter | None = None
        self.removed: list[int] = []
        self.compacting = False
        # A migration between two backends that both use vscli's keyword index keeps it as it is (it
        # holds the same chunks), rather than rebuilding it.
        self.adopt_keywords = fresh and folder.raw_keyword_index().exists()

    def remove(self, serial: int) -> None:
        self.removed.append(serial)  # its vectors stay in their segment, never returned, until a merge

    def compact(self) -> None:
        self.compacting = True

    def add(self, serial: int, entry: dict[str, Any], texts: list[str], vectors: np.ndarray,
            owners: np.ndarray) -> None:
        import numpy as np

        if self.added is None:
            self.added = vindex.open_index(None, self.dimension)
        self.added.add(vectors, np.asarray([vindex.chunk_id(serial, int(p)) for p in owners.tolist()], np.int64))
        if self.adopt_keywords:
            return
        if self.keyword is None:
            self.keyword = self.folder.fresh_keyword_writer() if self.fresh else self.folder.keyword_writer(self.state)
        self.keyword.replace(serial, [vindex.chunk_id(serial, i) for i in range(len(texts))], texts)

    def commit(self, state: dict[str, Any]) -> list[Path]:
        """Write the new segment and any merges, and name them in ``state`` (the catalog, committed next)."""
        previous = self.folder.segments(state)
        segments = [] if self.fresh else [self._known(s) for s in previous]
        garbage = [self.folder.index_file(s["n"]) for s in previous] if self.fresh else []
        number = int(state.get("generation", 0))  # the last segment number committed
        if self.added is not None and self.added.size:
            number += 1
            segments.append(self.folder.save_segment(self.added, number))
        live = state["files"].live_vectors()  # kept by the catalog: not a sum over every file
        live_serials: np.ndarray | None = None  # worked out at the first merge, if there is one
        group = list(range(len(segments))) if self.compacting else []
        while group or (group := vsegments.plan_merge([s["vectors"] for s in segments], _dead(segments, live))):
            number += 1
            if live_serials is None:
                import numpy as np

                live_serials = np.asarray(state["files"].live_serials(), np.int64)
            merged = self._merge([segments[at] for at in group], live_serials, number)
            garbage += [self.folder.index_file(segments[at]["n"]) for at in group]
            segments = [s for at, s in enumerate(segments) if at not in group] + ([merged] if merged else [])
            group = []
        state["generation"] = number
        state["segments"] = segments
        state["index"] = vsegments.describe(segments, _dead(segments, live))
        if self.keyword is not None:
            self.keyword.commit()  # before the catalog: a file the manifest calls completed is searchable
        elif self.fresh and not self.adopt_keywords:
            self.folder.fresh_keyword_writer().commit()  # an empty store still gets an (empty) keyword index
        return garbage

    def _known(self, segment: dict[str, Any]) -> dict[str, Any]:
        """A segment's record with its size and type (a store from before segments lacks them)."""
        if "vectors" in segment and "kind" in segment:
            return segment
        return vsegments.record(segment["n"], self.folder.load_segment(segment["n"], self.dimension))

    def _merge(self, group: list[dict[str, Any]], live: np.ndarray, number: int) -> dict[str, Any] | None:
        """One segment holding the live vectors of ``group`` (None when none is left). The largest IVF
        segment of the group, if any, is the base the others are added to: its training is kept until
        the merged index outgrows it (`FaissIndex.fit_to_size`), instead of training a large index anew
        at every merge."""
        import numpy as np

        ivf = [s for s in group if not s["kind"].startswith("flat")]
        base = max(ivf, key=lambda s: s["vectors"]) if ivf else None
        if base is None:
            merged = vindex.open_index(None, self.dimension)
        else:
            merged = self.folder.load_segment(base["n"], self.dimension, to_change=True)
            ids = merged.ids()
            merged.remove(np.unique(ids[~np.isin(ids >> vindex.CHUNK_BITS, live)]))
        for segment in group:
            if segment is not base:
                vectors, ids = self.folder.load_segment(segment["n"], self.dimension).vectors_and_ids()
                keep = np.isin(ids >> vindex.CHUNK_BITS, live)
                merged.add(vectors[keep], ids[keep])
        return self.folder.save_segment(merged, number) if merged.size else None

    def finish(self) -> None:
        if self.removed:
            self.folder.forget_keywords(self.removed)

    def abandon(self) -> None:
        if self.keyword is not None:
            self.keyword.abandon()  # release tantivy's writer lock now, not when the writer is collected


def _dead(segments: list[dict[str, Any]], live: int) -> int:
    """How many vectors the segments hold for files no longer in the store."""
    return max(0, sum(s["vectors"] for s in segments) - live)


class FaissReader:
    """Hits from the snapshot's segments (memory-mapped), merged, and from the keyword index."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._vectors: list[vindex.SearchableIndex] | None = None
        self._keyword: KeywordIndex | None = None

    def open_vectors(self) -> None:
        snap = self.snapshot
        if self._vectors is None:
            dimension = snap.config["vscli"]["dimension"]
            self._vectors = [snap.folder.open_segment(s["n"], dimension) for s in snap.folder.segments(snap.state)]

    def vector_hits(self, query: np.ndarray, k: int, flt: dict[str, Any] | None) -> Hits:
        self.open_vectors()
        assert self._vectors is not None
        allowed = self.snapshot.allowed_ids(flt) if flt is not None else None
        if len(self._vectors) == 1:
            return self._vectors[0].search(query, k, allowed)
        hits = [hit for index in self._vectors for hit in index.search(query, k, allowed)]
        return sorted(hits, key=lambda hit: -hit[1])[:k]  # a chunk's vectors are all in one segment

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> Hits:
        return self._keywords().search(text, k, self.snapshot.serials(flt))

    def keyword_scale(self, text: str) -> float:
        return self._keywords().scale(text)

    def _keywords(self) -> KeywordIndex:
        if self._keyword is None:
            self._keyword = self.snapshot.folder.keyword_index()
        return self._keyword
