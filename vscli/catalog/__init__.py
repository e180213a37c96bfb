"""A store's catalog: its `vector_store.file` entries and index state in SQLite (``catalog.sqlite``).

The committed state of a store is one object, ``{"files": {file id: entry}, "next_serial", "generation",
"segments", "index"}``. vscli 0.1 kept it in ``files.json``, parsed whole by every command and rewritten
whole by every commit (58 MB at 100,000 files). The catalog keeps one row per file and one per top-level
key, so a commit writes the rows it changed and a read loads the rows it asks for; SQLite's commit
(WAL mode: readers never wait for a writer) is the commit point.

The state is handed out as a `dict` whose ``"files"`` is an `Entries` mapping: a `CatalogEntries` loads
rows as they are asked for, and a writer's remembers what it handed out, so ``write`` stores only the
entries that changed; `JsonEntries` is the same interface over a parsed files.json (a store not upgraded
yet). Both answer the questions commands ask of all files (counts, live serials, a content hash) without
the caller iterating: SQL over indexed columns for the catalog.

A store written by vscli 0.1 is read from files.json until its first write, which builds the catalog
beside it (a temporary file renamed into place: a kill leaves either no catalog or a whole one), then
deletes files.json. When both exist, the catalog is the store's state.
"""

from vscli.catalog.database import (
    FILENAME,
    connect,
    create,
    damaged,
    failed_write,
    read_meta,
    read_version,
    reading,
    replace,
    salvage,
)
from vscli.catalog.entries import CatalogEntries, Entries, JsonEntries
from vscli.catalog.filter_sql import filter_sql
from vscli.sqlitedb import close_all, is_open

__all__ = ["FILENAME", "CatalogEntries", "Entries", "JsonEntries", "close_all", "connect", "create", "damaged",
           "failed_write", "filter_sql", "is_open", "read_meta", "read_version", "reading", "replace", "salvage"]
