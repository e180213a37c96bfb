"""The catalog's SQLite file: its schema, connections, a whole state written or salvaged, and rows parsed
and checked (`vscli.catalog` says what the catalog is for)."""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vscli.errors import CorruptData, VscliError
from vscli.manifests import check_state, entry_problem

FILENAME = "catalog.sqlite"
SCHEMA_VERSION = 2  # PRAGMA user_version: what a later vscli upgrades from (`MIGRATIONS`)

# Version 2: the files per status, their vectors and bytes are kept in ``totals`` by triggers, so `status`
# and the merge policy read a few rows, not a sum over every file; and an index orders the files by their
# ``created_at`` (then attach order), so a page of the server's listing is read without the rest. Both
# live in the file: a vscli that knows only version 1 keeps them true when it writes. (No INSERT OR IGNORE
# in a trigger: the upsert that fires it would decide its conflicts.)
TOTALS = """
CREATE TABLE totals (
    status TEXT NOT NULL,
    live INTEGER NOT NULL,  -- 1: has a serial (a completed file's chunks and vectors are in the indexes)
    files INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    usage_bytes INTEGER NOT NULL,
    PRIMARY KEY (status, live)
) WITHOUT ROWID;
CREATE TRIGGER files_added AFTER INSERT ON files BEGIN
    INSERT INTO totals SELECT new.status, new.serial IS NOT NULL, 0, 0, 0 WHERE NOT EXISTS (
        SELECT 1 FROM totals WHERE status = new.status AND live = (new.serial IS NOT NULL));
    UPDATE totals SET files = files + 1, vectors = vectors + new.vectors,
        usage_bytes = usage_bytes + new.usage_bytes
        WHERE status = new.status AND live = (new.serial IS NOT NULL);
END;
CREATE TRIGGER files_removed AFTER DELETE ON files BEGIN
    UPDATE totals SET files = files - 1, vectors = vectors - old.vectors,
        usage_bytes = usage_bytes - old.usage_bytes
        WHERE status = old.status AND live = (old.serial IS NOT NULL);
END;
CREATE TRIGGER files_changed AFTER UPDATE OF status, serial, vectors, usage_bytes ON files BEGIN
    UPDATE totals SET files = files - 1, vectors = vectors - old.vectors,
        usage_bytes = usage_bytes - old.usage_bytes
        WHERE status = old.status AND live = (old.serial IS NOT NULL);
    INSERT INTO totals SELECT new.status, new.serial IS NOT NULL, 0, 0, 0 WHERE NOT EXISTS (
        SELECT 1 FROM totals WHERE status = new.status AND live = (new.serial IS NOT NULL));
    UPDATE totals SET files = files + 1, vectors = vectors + new.vectors,
        usage_bytes = usage_bytes + new.usage_bytes
        WHERE status = new.status AND live = (new.serial IS NOT NULL);
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


class _Connection(sqlite3.Connection):
    """A connection `close_all` can find (sqlite3's own cannot be weakly referenced)."""


_OPEN: weakref.WeakSet[_Connection] = weakref.WeakSet()


def close_all() -> None:
    """Close every catalog connection of this process, at the end of a command: the last to close folds
    the WAL into the catalog and deletes it (and its shared-memory file), leaving the store's folder as
    the commit left it. A connection that outlived its command would leave them until the process ends."""
    for conn in list(_OPEN):
        try:
            conn.close()
        except sqlite3.Error:
            pass


atexit.register(close_all)  # a process that runs no CLI command (a background worker) closes them too


def is_open(conn: sqlite3.Connection) -> bool:
    """False once `close_all` (or anything) closed it: whoever kept it opens another."""
    try:
        return conn.total_changes >= 0
    except sqlite3.ProgrammingError:
        return False


def _open(target: str | Path, **options: Any) -> sqlite3.Connection:
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, factory=_Connection, **options)
    _OPEN.add(conn)
    return conn


def connect(path: Path, write: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly). A reader's may not write
    (``query_only``) but is opened read-write all the same: the last connection to close folds the WAL
    into the catalog file and deletes it, which a read-only one cannot. Where the file cannot be opened
    so (a read-only file system, without the WAL's shared-memory file) it is opened as immutable: every
    commit copies its WAL into the file, so the file alone is whole."""
    conn = _open(path, timeout=60)
    if write:
        conn.execute("PRAGMA synchronous = FULL")
        try:
            upgrade(conn)
        except sqlite3.OperationalError:
            pass  # read-only, full or busy: read as it is, and a write says why it cannot be made
        return conn
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise
        conn.close()
        conn = _open(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring a catalog of an older vscli to this one's schema, in one transaction per step: a writer does
    it when it connects (a reader never waits for the write lock; it reads an older catalog as it is).
    A catalog of a newer vscli is left as it is."""
    if schema_version(conn) >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)  # another writer may have upgraded it meanwhile
        while version < SCHEMA_VERSION:
            for statement in split_script(MIGRATIONS[version]):
                conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def split_script(script: str) -> list[str]:
    """The statements of a script, one by one (`executescript` would commit the open transaction)."""
    statements: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):  # not a ";" inside a trigger's body, a string or a comment
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements


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
    """A write the catalog refused, in the words `os_error` uses for files (a full disk, a read-only
    file system), or as damage."""
    text = str(exc).lower()
    reason = ("no space left on device" if "full" in text else "read-only file system" if "readonly" in text
              else None)
    if reason is None:
        return damaged(path, exc)
    return VscliError(f"cannot write {path}: {reason}")


def read_version(conn: sqlite3.Connection) -> int:
    """How many commits the catalog has had (what tells a reader that it changed)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return int(row[0]) if row else 0


def create(path: Path, state: dict[str, Any]) -> None:
    """Write a whole state as a new catalog at ``path``, where there is none (an upgrade from files.json,
    a new or imported store, a rebuild once the damaged one is set aside): built in a temporary file
    beside it and renamed into place, so a kill at any moment leaves no catalog or a whole one. Refuses
    nothing: ``state`` is checked by the caller."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            conn.executemany(UPSERT, (row(file_id, position, entry) for position, (file_id, entry)
                                       in enumerate(state["files"].items(), start=1)))
            write_meta(conn, state, version=1)
            conn.execute("COMMIT")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("PRAGMA journal_mode = WAL")  # kept in the file: every later connection uses it
        finally:
            conn.close()
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        for leftover in ("-wal", "-shm"):  # of a catalog set aside earlier: never to be read with this one
            Path(f"{path}{leftover}").unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace(path: Path, state: dict[str, Any]) -> None:
    """Write a whole state over an existing catalog, in one transaction (renaming a new file over it
    could let a WAL another process still holds be read with it)."""
    conn = connect(path, write=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = read_version(conn)
        conn.execute("DELETE FROM files")
        conn.executemany(UPSERT, (row(file_id, position, entry) for position, (file_id, entry)
                                   in enumerate(state["files"].items(), start=1)))
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
