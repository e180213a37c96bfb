"""Where a store's vectors and keyword index live: the seam between a `Store` and a search engine.

The workspace always holds a store's manifests and chunk texts; a backend holds what is searched:

- ``faiss`` (the default): index generations ``index-<g>.faiss`` in the store's directory plus a tantivy
  keyword index beside them (`vscli.backends.faiss_backend`);
- ``milvus``: one Milvus collection per store, on a Milvus Lite file or a Milvus server, with Milvus's
  own BM25 full-text search where the server has it (`vscli.backends.milvus_backend`).

A commit writes through a `Writer` and is made durable by ``commit`` *before* ``files.json`` names the
new state; what it removes is dropped by ``finish`` *after* (a crash in between leaves rows no query
returns, because readers only return chunks of files the manifest knows, and `doctor --repair` purges
them). Chunk ids (file serial << 24 | position) are the same in both backends, so a store moves between
them without re-embedding (`Store.migrate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from vscli.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

    from vscli.reader import Snapshot
    from vscli.store import Store

KINDS = ("faiss", "milvus")
Hits = list[tuple[int, float]]  # (chunk id, score), best first


class Writer(Protocol):
    def remove(self, serial: int) -> None:
        """Drop a file's chunks (applied by ``finish``, after the manifest no longer names it)."""

    def add(self, serial: int, entry: dict[str, Any], texts: list[str], vectors: np.ndarray,
            owners: np.ndarray) -> None:
        """A processed file: its chunk texts, and its vectors with the chunk position each belongs to."""

    def commit(self, state: dict[str, Any]) -> list[Path]:
        """Make the additions durable before ``files.json`` is written; returns files to delete after."""

    def finish(self) -> None:
        """After ``files.json`` is written: drop what ``remove`` named (best effort)."""

    def abandon(self) -> None:
        """The commit failed: release what the writer holds."""


class Reader(Protocol):
    def vector_hits(self, query: np.ndarray, k: int, flt: dict[str, Any] | None) -> Hits: ...

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> Hits: ...


class Backend(Protocol):
    kind: str
    local_keywords: bool  # whether keyword search uses vscli's tantivy index in the store's directory
    deletes_after_commit: bool  # removed rows go after files.json is written (a kill may leave strays)

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


def spec_of(config: dict[str, Any]) -> dict[str, Any]:
    return config["vscli"].get("backend") or {"kind": "faiss"}


def open_backend(store: Store, spec: dict[str, Any] | None = None) -> Backend:
    """The backend a spec names (the store's own when None)."""
    spec = spec or spec_of(store.config())
    if spec["kind"] == "faiss":
        from vscli.backends.faiss_backend import FaissBackend

        return FaissBackend(store)
    if spec["kind"] == "milvus":
        from vscli.backends.milvus_backend import MilvusBackend

        return MilvusBackend(store, spec)
    raise InvalidInput(f"unknown backend {spec['kind']!r} (expected {' or '.join(KINDS)})")


def new_spec(kind: str, uri: str | None, collection: str | None, store_id: str) -> dict[str, Any]:
    """The spec for ``create --backend`` / ``migrate --to``, checked before anything is written."""
    if kind not in KINDS:
        raise InvalidInput(f"--backend must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "faiss":
        if uri or collection:
            raise InvalidInput("--uri and --collection apply to the milvus backend only")
        return {"kind": "faiss"}
    from vscli.backends.milvus_backend import collection_name
    from vscli.backends.milvus_connection import normalise_uri

    if not uri:
        raise InvalidInput("the milvus backend needs --uri: a Milvus Lite file (./vectors.db) or a server "
                           "(http://localhost:19530); VSCLI_MILVUS_URI sets a default")
    return {"kind": "milvus", "uri": normalise_uri(uri), "collection": collection_name(collection, store_id)}
