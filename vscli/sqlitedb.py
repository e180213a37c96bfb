"""The SQLite files vscli keeps (a store's catalog, the workspace's upload registry): connections that
close at the end of every command, schema versions and their upgrades, and a file built whole beside
its place and renamed in."""

from __future__ import annotations

import atexit
import os
import sqlite3
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vscli.errors import VscliError


class _Connection(sqlite3.Connection):
    """A connection `close_all` can find (sqlite3's own cannot be weakly referenced)."""


_OPEN: weakref.WeakSet[_Connection] = weakref.WeakSet()


def close_all() -> None:
    """Close every connection of this process, at the end of a command: the last to close folds the WAL
    into its database and deletes it (and its shared-memory file), leaving the folder as the commit left
    it. A connection that outlived its command would leave them until the process ends."""
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


def open_connection(target: str | Path, **options: Any) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly), closed by `close_all`."""
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, factory=_Connection, **options)
    _OPEN.add(conn)
    return conn


def connect(path: Path, write: bool, probe: str) -> sqlite3.Connection:
    """A writer's connection (``synchronous=FULL``), or a reader's that may not write (``query_only``)
    but is opened read-write all the same: the last connection to close folds the WAL into the file and
    deletes it, which a read-only one cannot. Where the file cannot be opened so (a read-only file
    system, without the WAL's shared-memory file), a reader's is opened as immutable: every commit
    copies its WAL into the file, so the file alone is whole. ``probe``: a query a reader runs first."""
    conn = open_connection(path, timeout=60)
    if write:
        conn.execute("PRAGMA synchronous = FULL")
        return conn
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute(probe).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise
        conn.close()
        conn = open_connection(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    return conn


def refused_write(path: Path, exc: sqlite3.Error) -> VscliError | None:
    """A write SQLite refused for a reason outside the file, in the words `os_error` uses for files (a
    full disk, a read-only file system) or a lock held too long; None: the file itself is at fault (the
    caller says it is damaged)."""
    text = str(exc).lower()
    reason = ("no space left on device" if "full" in text else "read-only file system" if "readonly" in text
              else "another process held it too long" if "locked" in text or "busy" in text else None)
    return VscliError(f"cannot write {path}: {reason}") if reason else None


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade(conn: sqlite3.Connection, current: int, migrations: dict[int, str]) -> None:
    """Bring a database of an older vscli to schema ``current``, in one transaction: ``migrations[n]``
    goes from version n to n + 1. Read-only, full or busy: left as it is (readers read an older schema;
    a write says why it cannot be made). A database of a newer vscli is left as it is."""
    if schema_version(conn) >= current:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return
    try:
        version = schema_version(conn)  # another writer may have upgraded it meanwhile
        while version < current:
            for statement in split_script(migrations[version]):
                conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except sqlite3.OperationalError:
        conn.execute("ROLLBACK")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def set_aside(path: Path, stamp: str | None = None) -> Path:
    """Move a damaged database out of the way, with its WAL and shared-memory file (they are read
    together), as ``<name>.damaged-<time>``: kept, never deleted. Returns where it went."""
    kept = path.with_name(f"{path.name}.damaged-{stamp or time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{kept}{suffix}"))
    return kept


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


def build(path: Path, schema: str, version: int, fill: Callable[[sqlite3.Connection], None]) -> None:
    """Write a new database at ``path``, where there is none: built in a temporary file beside it (its
    ``schema`` at ``version``, then ``fill`` in one transaction) and renamed into place, so a kill at any
    moment leaves no database or a whole one. The file is left in WAL mode."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.executescript(schema)
            conn.execute("BEGIN")
            fill(conn)
            conn.execute("COMMIT")
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("PRAGMA journal_mode = WAL")  # kept in the file: every later connection uses it
        finally:
            conn.close()
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        for leftover in ("-wal", "-shm"):  # of a database set aside earlier: never to be read with this one
            Path(f"{path}{leftover}").unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
