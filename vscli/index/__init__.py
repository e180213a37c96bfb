"""Vector indexes. A `VectorIndex` stores vectors under 64-bit chunk ids; several vectors may share an
id (a chunk embedded as several windows), and search returns each id once with its best score.

Chunk ids pack the file's serial number in the store and the chunk's position in that file, so a hit
leads straight to its chunk's row, and a merge tells a removed file's vectors by their serial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from pathlib import Path
from typing import Protocol

CHUNK_BITS = 24  # up to 16.7M chunks per file


def chunk_id(serial: int, position: int) -> int:
    return (serial << CHUNK_BITS) | position


def split_chunk_id(cid: int) -> tuple[int, int]:
    return cid >> CHUNK_BITS, cid & ((1 << CHUNK_BITS) - 1)


class SearchableIndex(Protocol):
    """What a query needs of a segment (`open_for_search`)."""

    dimension: int

    @property
    def size(self) -> int:
        """Number of vectors held."""

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to k distinct ids with their best score (cosine similarity), best first; only ids in
        ``allowed`` when given (filtered inside the search, so k results come back when k exist)."""

    def kind(self) -> str:
        """What kind of index this is (exact, or approximate with its parameters)."""


class VectorIndex(SearchableIndex, Protocol):
    """An index a commit writes: a segment being made, or one read whole by a merge or a migration."""

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int:
        """Drop every vector with one of these ids; returns how many went."""

    def ids(self) -> "np.ndarray":
        """The chunk id of every vector (with repeats: one per window)."""

    def vectors_and_ids(self) -> tuple["np.ndarray", "np.ndarray"]:
        """Every vector and its chunk id, in matching order (to move a store to another backend)."""

    def fit_to_size(self) -> None:
        """Change the index's type, or train it anew, when its size calls for it."""

    def save(self, path: Path) -> None: ...


def dimension_of(path: Path) -> int:
    """The dimension of the vectors in the index at ``path`` (memory-mapped: nothing is loaded)."""
    from vscli.index.faiss_index import FaissIndex

    return FaissIndex.dimension_of(path)


def open_index(path: Path | None, dimension: int, read_only: bool = False) -> VectorIndex:
    """Load the index at ``path`` (memory-mapped when read_only), or a new empty one when ``path`` is None."""
    from vscli.index.faiss_index import FaissIndex

    return FaissIndex.load(path, dimension, read_only) if path else FaissIndex.empty(dimension)


def open_for_search(path: Path, dimension: int) -> SearchableIndex:
    """The index at ``path`` to search: an exact one read by numpy (`flat_file`: no FAISS import on a
    cold query), any other memory-mapped by FAISS."""
    from vscli.index.flat_file import FlatFile

    return FlatFile.open(path, dimension) or open_index(path, dimension, read_only=True)
