"""Where a store's vectors and keyword index live: the seam between a `Store` and a search engine.

The workspace always holds a store's manifests and chunk texts; a backend holds what is searched:

- ``faiss`` (the default): immutable segments ``index-<n>.faiss`` in the store's directory plus a tantivy
  keyword index beside them (`vscli.backends.faiss_backend`);
- ``milvus``: one Milvus collection per store, on a Milvus Lite file or a Milvus server, with Milvus's
  own BM25 full-text search where the server has it (`vscli.backends.milvus_backend`).

A commit writes through a `Writer` and is made durable by ``commit`` *before* the catalog names the
new state; what it removes is dropped by ``finish`` *after* (a crash in between leaves rows no query
returns, because readers only return chunks of files the manifest knows, and `doctor --repair` purges
them). Chunk ids (file serial << 24 | position) are the same in both backends, so a store moves between
them without re-embedding (`Store.migrate`). The protocols are in `vscli.backends.base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vscli.errors import InvalidInput

if TYPE_CHECKING:
    from vscli.backends.base import Backend
    from vscli.folder import StoreFolder

KINDS = ("faiss", "milvus")
def spec_of(config: dict[str, Any]) -> dict[str, Any]:
    return config["vscli"].get("backend") or {"kind": "faiss"}


def open_backend(folder: StoreFolder, spec: dict[str, Any] | None = None) -> Backend:
    """The backend a spec names (the store's own when None), on the store's folder."""
    spec = spec or spec_of(folder.config())
    if spec["kind"] == "faiss":
        from vscli.backends.faiss_backend import FaissBackend

        return FaissBackend(folder)
    if spec["kind"] == "milvus":
        from vscli.backends.milvus_backend import MilvusBackend

        return MilvusBackend(folder, spec)
    raise InvalidInput(f"unknown backend {spec['kind']!r} (expected {' or '.join(KINDS)})")


def new_spec(kind: str, uri: str | None, collection: str | None, store_id: str) -> dict[str, Any]:
    """The spec for ``create --backend`` / ``migrate --to``, checked before anything is written."""
    if kind not in KINDS:
        raise InvalidInput(f"the backend must be one of {', '.join(KINDS)}, got {kind!r}")
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
