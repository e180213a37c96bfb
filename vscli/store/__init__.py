"""The `Store` API: vector stores, their files, processing, removal and search.

State of one store lives in two places. ``store.json`` is the `vector_store` object and its settings
(name, metadata, expiry, model, chunking). Its catalog (``catalog.sqlite``, `vscli.catalog`) holds its
`vector_store.file` entries, the index segments that hold their vectors and the next file serial. A
commit writes the new chunk texts and its vectors (on FAISS: a new segment ``index-<n>.faiss``, and
any merge) first, then commits the catalog rows it changed: that SQLite commit is the commit point, so
readers see either the old or the new state. Superseded segments and removed files' chunks are deleted
after the commit; a reader that raced with the deletion retries from the catalog.

Slow work (extracting, chunking, embedding) runs outside the store's lock; only the commit holds it.
The files themselves are read and written by `vscli.folder.StoreFolder` (``Store.folder``), which is
also all a backend or a reader is given.
"""

from vscli.store.rules import (
    BATCH_CHUNKS,
    BATCH_CHUNKS_ENV,
    MAX_RESULTS,
    check_environment,
    check_store_name,
    validate_attributes,
    validate_metadata,
)
from vscli.store.stores import (
    create_store,
    delete_uploads,
    list_stores,
    resolve_store,
    store_objects,
    stores_holding,
    stores_named,
)
from vscli.store.vector_store import READ_RETRIES, ProgressHook, Store

__all__ = ["BATCH_CHUNKS", "BATCH_CHUNKS_ENV", "MAX_RESULTS", "READ_RETRIES", "ProgressHook", "Store",
           "check_environment", "check_store_name", "create_store", "delete_uploads",
           "list_stores", "resolve_store", "store_objects", "stores_holding", "stores_named",
           "validate_attributes", "validate_metadata"]
