"""The catalog's SQLite file: its schema, connections, a whole state written or salvaged, and rows parsed
and checked (`vscli.catalog` says what the catalog is for)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vscli import sqlitedb
from vscli.errors import CorruptData, VscliError
from vscli.manifests import check_state, entry_problem

FILENAME = "catalog.sqlite"
SCHEMA_VERSION = 2  # PRAGMA user_version: what a later vscli upgrades from (`MIGRATIONS`)


def _count(row: str, sign: str) -> str:
    """The statements that add (``+``) or take (``-``) a ``new`` or ``old`` row to or from its totals."""
    where = f"WHERE status = {row}.status AND live = ({row}.serial IS NOT NULL)"
    made = (f"INSERT INTO totals SELECT {row}.status, {row}.serial IS NOT NULL, 0, 0, 0 "
            f"WHERE NOT EXISTS (SELECT 1 FROM totals {where});\n") if sign == "+" else ""
    return (made + f"UPDATE totals SET files = files {sign} 1, vectors = vectors {sign} {row}.vectors, "
            f"usage_bytes = usage_bytes {sign} {row}.usage_bytes {where};")


# Version 2: the files per status, their vectors and bytes are kept in ``totals`` by triggers, so `status`
# and the merge policy read a few rows, not a sum over every file; and an index orders the files by their
# ``created_at`` (then attach order), so a page of the server's listing is read without the rest. Both
# live in the file: a vscli that knows only version 1 keeps them true when it writes. (No INSERT OR IGNORE
# in a trigger: the upsert that fires it would decide its conflicts.)
TOTALS = f"""
CREATE TABLE totals (
    status TEXT NOT NULL,
    live INTEGER NOT NULL,  -- 1: has a serial (a completed file's chunks and vectors are in the indexes)
    files INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    usage_bytes INTEGER NOT NULL,
    PRIMARY KEY (status, live)
) WITHOUT ROWID;
CREATE TRIGGER files_added AFTER INSERT ON files BEGIN {_count("new", "+")} END;
CREATE TRIGGER files_removed AFTER DELETE ON files BEGIN {_count("old", "-")} END;
CREATE TRIGGER files_changed AFTER UPDATE OF status, serial, vectors, usage_bytes ON files BEGIN
    {_count("old", "-")} {_count("new", "+")}
END;
CREATE INDEX files_created ON files(coalesce(json_extract(entry, '$.created_at'), 0), position);
"""
RECOUNTED = ("SELECT status, serial IS NOT NULL, count(*), sum(vectors), sum(usage_bytes) FROM files "
             "GROUP BY status, serial IS NOT NULL")
RECOUNT = f"DELETE FROM totals; INSERT INTO totals {RECOUNTED};"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    serial INTEGER,
    vectors INTEGER NOT NULL,
    usage_bytes INTEGER NOT NULL,
    sha256 TEXT,
    entry TEXT NOT NULL
);
CREATE INDEX files_position ON files(position);
CREATE INDEX files_status ON files(status, serial, vectors, usage_bytes);  -- counts and sums from it alone
CREATE INDEX files_serial ON files(serial);
CREATE INDEX files_sha256 ON files(sha256);
""" + TOTALS
MIGRATIONS = {1: TOTALS + RECOUNT}  # from user_version N to N + 1
CREATED_AT = "coalesce(json_extract(entry, '$.created_at'), 0)"  # files_created orders by it, then position
COLUMNS = "id, position, status, serial, vectors, usage_bytes, sha256, entry"
UPSERT = (f"INSERT INTO files ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
           "status = excluded.status, serial = excluded.serial, vectors = excluded.vectors, "
           "usage_bytes = excluded.usage_bytes, sha256 = excluded.sha256, entry = excluded.entry")
COMPLETED = "status = 'completed' AND serial IS NOT NULL"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def row(file_id: str, position: int, entry: dict[str, Any]) -> tuple[Any, ...]:
    private = entry.get("vscli") or {}
    return (file_id, position, entry["status"], private.get("serial"), int(private.get("vectors", 0)),
            int(entry.get("usage_bytes") or 0), private.get("sha256"), dumps(entry))


def _rows(state: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of a whole state's entries, in attach order."""
    return (row(file_id, position, entry) for position, (file_id, entry) in enumerate(state["files"].items(), start=1))


def connect(path: Path, write: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (`vscli.sqlitedb.connect`: a reader's may not write); a writer's
    first upgrades a catalog of an older vscli (a reader never waits for the write lock: it reads an
    older catalog as it is)."""
    conn = sqlitedb.connect(path, write, probe="SELECT 1 FROM meta LIMIT 1")
    if write:
        sqlitedb.upgrade(conn, SCHEMA_VERSION, MIGRATIONS)
    return conn


def damaged(path: Path, exc: sqlite3.Error) -> CorruptData:
    return CorruptData(f"corrupted catalog {path}: {exc}")


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """What SQLite says of a damaged catalog while it is read, as CorruptData naming the file."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc


def failed_write(path: Path, exc: sqlite3.Error) -> VscliError:
    """A write the catalog refused (`vscli.sqlitedb.refused_write`), or its damage."""
    return sqlitedb.refused_write(path, exc) or damaged(path, exc)


def read_version(conn: sqlite3.Connection) -> int:
    """How many commits the catalog has had (what tells a reader that it changed)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return int(row[0]) if row else 0


def create(path: Path, state: dict[str, Any]) -> None:
    """Write a whole state as a new catalog at ``path``, where there is none (an upgrade from files.json,
    a new or imported store, a rebuild once the damaged one is set aside): built beside it and renamed
    into place (`vscli.sqlitedb.build`), so a kill at any moment leaves no catalog or a whole one.
    Refuses nothing: ``state`` is checked by the caller."""
    def fill(conn: sqlite3.Connection) -> None:
        conn.executemany(UPSERT, _rows(state))
        write_meta(conn, state, version=1)

    sqlitedb.build(path, SCHEMA, SCHEMA_VERSION, fill)


def replace(path: Path, state: dict[str, Any]) -> None:
    """Write a whole state over an existing catalog, in one transaction (renaming a new file over it
    could let a WAL another process still holds be read with it)."""
    conn = connect(path, write=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = read_version(conn)
        conn.execute("DELETE FROM files")
        conn.executemany(UPSERT, _rows(state))
        write_meta(conn, state, version + 1)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


def salvage(path: Path) -> dict[str, Any]:
    """What can be read of a damaged catalog, unchecked: ``{"files": {id: parsed entry}, key: value}``
    for every row that parses (rows after a damaged page may be lost)."""
    raw: dict[str, Any] = {}
    files: dict[str, Any] = {}
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        for query, into in (("SELECT key, value FROM meta", raw), ("SELECT id, entry FROM files ORDER BY position",
                                                                   files)):
            try:
                for key, value in conn.execute(query):
                    try:
                        into[key] = json.loads(value)
                    except (TypeError, ValueError):
                        continue
            except sqlite3.Error:
                continue
    finally:
        conn.close()
    raw.pop("version", None)
    raw["files"] = files
    return raw


def write_meta(conn: sqlite3.Connection, state: dict[str, Any], version: int) -> None:
    meta = {key: dumps(value) for key, value in state.items() if key != "files"}
    meta["version"] = str(version)
    conn.execute("DELETE FROM meta WHERE key NOT IN (%s)" % ",".join("?" * len(meta)), list(meta))
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                     "value = excluded.value", meta.items())


def read_meta(conn: sqlite3.Connection, where: Path) -> tuple[int, dict[str, Any]]:
    """The catalog's version (a count of its commits) and its top-level keys, checked."""
    meta: dict[str, Any] = {}
    version = 0
    for key, value in conn.execute("SELECT key, value FROM meta"):
        if key == "version":
            version = int(value)
            continue
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CorruptData(f"corrupted catalog {where}: {key} is not JSON ({exc})") from exc
    check_state({**meta, "files": {}}, where)
    return version, meta


def parse_rows(where: Path, rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The checked entries of rows read, parsed as one JSON array (a third faster than one parse per
    row); a row that does not parse or check is named."""
    try:
        entries = json.loads("[" + ",".join(text for _, text in rows) + "]")
    except json.JSONDecodeError:
        entries = None
    if not isinstance(entries, list) or len(entries) != len(rows):  # a damaged row: found one by one
        entries = []
        for file_id, text in rows:
            try:
                entries.append(json.loads(text))
            except json.JSONDecodeError as exc:
                raise CorruptData(f"corrupted catalog {where}: the entry of {file_id} is not JSON") from exc
    for (file_id, _), entry in zip(rows, entries, strict=True):
        problem = entry_problem(file_id, entry)
        if problem:
            raise CorruptData(f"corrupted catalog {where}: {problem}")
    return entries
