"""The protocols a backend implements (see `vscli.backends` for how a store uses them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

if TYPE_CHECKING:
    import numpy as np

    from vscli.reader import Snapshot

Hits = list[tuple[int, float]]  # (chunk id, score), best first


class Writer(Protocol):
    def remove(self, serial: int) -> None:
        """Drop a file's chunks (applied by ``finish``, after the manifest no longer names it)."""

    def add(self, serial: int, entry: dict[str, Any], texts: list[str], vectors: np.ndarray,
            owners: np.ndarray) -> None:
        """A processed file: its chunk texts, and its vectors with the chunk position each belongs to."""

    def commit(self, state: dict[str, Any]) -> list[Path]:
        """Make the additions durable before the catalog commits, recording in ``state`` what
        holds them (FAISS: its segments); returns files to delete after."""

    def compact(self) -> None:
        """Drop the vectors of every file the manifest does not name in this commit, rather than at some
        later merge (`doctor --repair`)."""

    def finish(self) -> None:
        """After the catalog committed: drop what ``remove`` named (best effort)."""

    def abandon(self) -> None:
        """The commit failed: release what the writer holds."""


class Reader(Protocol):
    def open_vectors(self) -> None:
        """Get ready to search vectors (a query does this while its vector is being made)."""

    def vector_hits(self, query: np.ndarray, k: int, flt: dict[str, Any] | None) -> Hits: ...

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> Hits: ...

    def keyword_scale(self, text: str) -> float:
        """The sum of the query terms' IDFs in this store: the BM25 score of a chunk of average length that
        holds each term once. Score fusion divides BM25 scores by it to put them on a 0..1 scale."""


class Backend(Protocol):
    kind: str
    local_keywords: bool  # whether keyword search uses vscli's tantivy index in the store's directory
    deletes_after_commit: bool  # removed rows go after the catalog commits (a kill may leave strays)
    keeps_removed_vectors: bool  # removed files' vectors stay (never returned) until a merge drops them

    def spec(self) -> dict[str, Any]:
        """How the manifest records this backend (``store.json``'s ``vscli.backend``)."""

    def prepare(self) -> bool:
        """Create (or check) the backend's storage for a new store or a migration; raises if unusable.
        Returns whether it created something (which a failed migration then drops again)."""

    def check(self) -> None:
        """Raise now when the backend cannot be used (server unreachable, token refused, collection gone),
        so a command fails before it changes anything."""

    def writer(self, state: dict[str, Any], fresh: bool = False) -> Writer:
        """A writer over the current contents (``fresh``: over nothing, for a migration)."""

    def reader(self, snapshot: Snapshot) -> Reader: ...

    def set_attributes(self, serial: int, attributes: dict[str, Any]) -> None:
        """A file's attributes changed (backends that filter on their own copy update it)."""

    def vectors(self, state: dict[str, Any]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Every completed file's (serial, vectors, owners), to move the store elsewhere."""

    def serial_counts(self, state: dict[str, Any]) -> dict[int, int]:
        """How many vectors the backend holds for each file serial (`vscli doctor` compares them with the
        manifest); raises CorruptData when the index itself is gone."""

    def describe(self, state: dict[str, Any]) -> str:
        """What holds the vectors and how many (shown by `vscli status`)."""

    def drop(self, keep_keywords: bool = False) -> None:
        """Delete everything the backend holds for the store."""
