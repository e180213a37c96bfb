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

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, Iterable

from vscli import filters as vfilters
from vscli.errors import CorruptData, VscliError
from vscli.manifests import check_state, entry_problem

FILENAME = "catalog.sqlite"
SCHEMA_VERSION = 1  # PRAGMA user_version: what a later vscli upgrades from
STATUSES = ("in_progress", "completed", "failed", "cancelled")

_SCHEMA = """
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
"""
_COLUMNS = "id, position, status, serial, vectors, usage_bytes, sha256, entry"
_UPSERT = (f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
           "status = excluded.status, serial = excluded.serial, vectors = excluded.vectors, "
           "usage_bytes = excluded.usage_bytes, sha256 = excluded.sha256, entry = excluded.entry")
_COMPLETED = "status = 'completed' AND serial IS NOT NULL"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row(file_id: str, position: int, entry: dict[str, Any]) -> tuple[Any, ...]:
    private = entry.get("vscli") or {}
    return (file_id, position, entry["status"], private.get("serial"), int(private.get("vectors", 0)),
            int(entry.get("usage_bytes") or 0), private.get("sha256"), _dumps(entry))


def _completed(entry: dict[str, Any]) -> bool:
    return entry["status"] == "completed" and entry["vscli"].get("serial") is not None


# ---- connections -----------------------------------------------------------------------------------------


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


def damaged(path: Path, exc: sqlite3.Error) -> CorruptData:
    return CorruptData(f"corrupted catalog {path}: {exc}")


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
    """Write a whole state as a new catalog at ``path`` (an upgrade from files.json, a new or imported
    store, a rebuild): built in a temporary file beside it and renamed into place, so a kill at any
    moment leaves the old state or the new one. Refuses nothing: ``state`` is checked by the caller."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            conn.executemany(_UPSERT, (_row(file_id, position, entry) for position, (file_id, entry)
                                       in enumerate(state["files"].items(), start=1)))
            _write_meta(conn, state, version=1)
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


def _write_meta(conn: sqlite3.Connection, state: dict[str, Any], version: int) -> None:
    meta = {key: _dumps(value) for key, value in state.items() if key != "files"}
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


# ---- the state's file entries ------------------------------------------------------------------------------


class Entries(MutableMapping[str, dict[str, Any]]):
    """File id -> `vector_store.file` entry, in the order files were attached, with the questions asked
    of all of them."""

    def counts(self) -> tuple[dict[str, int], int]:
        """Files per status (and ``total``), and the bytes of the completed ones."""
        raise NotImplementedError

    def completed(self) -> Iterator[dict[str, Any]]:
        """The entries of the completed files (those with chunks and vectors)."""
        raise NotImplementedError

    def live_vectors(self) -> int:
        """How many vectors the completed files have."""
        raise NotImplementedError

    def has_completed(self) -> bool:
        raise NotImplementedError

    def live_serials(self) -> list[int]:
        """The serials of the completed files, ascending."""
        raise NotImplementedError

    def by_serials(self, serials: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The completed files' entries among these serials."""
        raise NotImplementedError

    def with_status(self, status: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def holding(self, digests: Iterable[str]) -> dict[str, str]:
        """Content sha256 -> the first file (in attach order) whose upload has it, for these digests."""
        raise NotImplementedError

    def without_upload_facts(self) -> list[dict[str, Any]]:
        """Entries of an older vscli, which do not keep their upload's sha256 and filename."""
        raise NotImplementedError

    def passing(self, flt: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """Serial -> entry of the completed files whose attributes pass a (validated) filter."""
        raise NotImplementedError


class JsonEntries(dict[str, dict[str, Any]], Entries):
    """The entries of a files.json, in memory: the same questions, answered by looking at each."""

    def counts(self) -> tuple[dict[str, int], int]:
        counts = dict.fromkeys(STATUSES, 0)
        for entry in self.values():
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        counts["total"] = len(self)
        return counts, sum(e["usage_bytes"] for e in self.values() if e["status"] == "completed")

    def completed(self) -> Iterator[dict[str, Any]]:
        return (e for e in self.values() if _completed(e))

    def live_vectors(self) -> int:
        return sum(e["vscli"].get("vectors", 0) for e in self.completed())

    def has_completed(self) -> bool:
        return any(True for _ in self.completed())

    def live_serials(self) -> list[int]:
        return sorted(e["vscli"]["serial"] for e in self.completed())

    def by_serials(self, serials: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = set(serials)
        return {e["vscli"]["serial"]: e for e in self.completed() if e["vscli"]["serial"] in wanted}

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return [e for e in self.values() if e["status"] == status]

    def without_upload_facts(self) -> list[dict[str, Any]]:
        return [e for e in self.values() if not isinstance(e["vscli"].get("sha256"), str)]

    def passing(self, flt: dict[str, Any]) -> dict[int, dict[str, Any]]:
        return {e["vscli"]["serial"]: e for e in self.completed() if vfilters.matches(flt, e["attributes"])}

    def holding(self, digests: Iterable[str]) -> dict[str, str]:
        wanted = set(digests)
        found: dict[str, str] = {}
        for file_id, entry in self.items():
            digest = entry["vscli"].get("sha256")
            if digest in wanted:
                found.setdefault(digest, file_id)
        return found


class CatalogEntries(Entries):
    """The entries in a catalog, loaded as they are asked for. A writer's (``writable``) remembers each
    entry it handed out, as it was in the catalog: `flush` stores the ones the caller changed, added or
    deleted, inside the writer's transaction (before a question about all files, and at the commit)."""

    def __init__(self, conn: sqlite3.Connection, where: Path, writable: bool) -> None:
        self._conn = conn
        self._where = where
        self._writable = writable
        self._cache: dict[str, dict[str, Any]] = {}
        self._stored: dict[str, str | None] = {}  # id -> its row's JSON as read (None: no row)
        self._deleted: set[str] = set()
        self._added: list[str] = []

    @property
    def where(self) -> Path:
        return self._where

    def commit(self, state: dict[str, Any]) -> None:
        """Store the changed entries and the state's other keys, and commit: the store's commit point.
        The WAL is then copied into the catalog file as far as no reader holds it back (never waiting
        for one), so the file alone is whole for a reader on a read-only file system."""
        self.flush()
        _write_meta(self._conn, state, read_version(self._conn) + 1)
        self._conn.execute("COMMIT")
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # committed all the same: the WAL is checkpointed later
        self._conn.execute("BEGIN")  # the state stays usable for another change and commit

    def abandon(self) -> None:
        """Roll back what was flushed and not committed, and let go of the catalog."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # closing rolls back too
        self._conn.close()

    def _parse(self, file_id: str, text: str) -> dict[str, Any]:
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptData(f"corrupted catalog {self._where}: the entry of {file_id} is not JSON") from exc
        problem = entry_problem(file_id, entry)
        if problem:
            raise CorruptData(f"corrupted catalog {self._where}: {problem}")
        return entry

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise damaged(self._where, exc) from exc

    def _adopt(self, file_id: str, text: str) -> dict[str, Any]:
        """The entry of a row read, the one already handed out if it was."""
        if file_id not in self._cache:
            self._cache[file_id] = self._parse(file_id, text)
            self._stored[file_id] = text
        return self._cache[file_id]

    def _adopt_all(self, rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The entries of many rows read: those not handed out yet parsed in one go (one JSON array: a
        third faster than one parse per row), each checked."""
        fresh = [(file_id, text) for file_id, text in rows if file_id not in self._cache]
        if len(fresh) > 1:
            try:
                parsed = json.loads("[" + ",".join(text for _, text in fresh) + "]")
            except json.JSONDecodeError:
                parsed = None  # a damaged row: `_parse` names it
            if parsed is not None and len(parsed) == len(fresh):
                for (file_id, text), entry in zip(fresh, parsed, strict=True):
                    problem = entry_problem(file_id, entry)
                    if problem:
                        raise CorruptData(f"corrupted catalog {self._where}: {problem}")
                    self._cache[file_id] = entry
                    self._stored[file_id] = text
        return [self._adopt(file_id, text) for file_id, text in rows]

    def _lookup(self, file_id: str) -> dict[str, Any] | None:
        if file_id in self._cache:
            return self._cache[file_id]
        if file_id in self._deleted or (file_id in self._stored and self._stored[file_id] is None):
            return None
        rows = self._query("SELECT entry FROM files WHERE id = ?", (file_id,))
        if not rows:
            self._stored[file_id] = None
            return None
        return self._adopt(file_id, rows[0][0])

    def __getitem__(self, file_id: str) -> dict[str, Any]:
        entry = self._lookup(file_id)
        if entry is None:
            raise KeyError(file_id)
        return entry

    def __contains__(self, file_id: object) -> bool:
        return isinstance(file_id, str) and self._lookup(file_id) is not None

    def __setitem__(self, file_id: str, entry: dict[str, Any]) -> None:
        self._require_writable()
        if self._lookup(file_id) is None:
            self._deleted.discard(file_id)
            self._added.append(file_id)
        self._cache[file_id] = entry

    def __delitem__(self, file_id: str) -> None:
        self._require_writable()
        if self._lookup(file_id) is None:
            raise KeyError(file_id)
        del self._cache[file_id]
        if file_id in self._added:
            self._added.remove(file_id)
        if self._stored.get(file_id) is not None:
            self._deleted.add(file_id)

    def __iter__(self) -> Iterator[str]:
        rows = [row for row in self._query("SELECT id, entry FROM files ORDER BY position")
                if row[0] not in self._deleted]
        self._adopt_all(rows)
        yield from [file_id for file_id, _ in rows]
        yield from list(self._added)

    def __len__(self) -> int:
        return int(self._query("SELECT count(*) FROM files")[0][0]) + len(self._added) - len(self._deleted)

    def _require_writable(self) -> None:
        if not self._writable:
            raise TypeError("a committed state is read only: take StoreFolder.state() to change it")

    def flush(self) -> None:
        """Store what changed since the last flush, in the writer's open transaction."""
        if not self._writable:
            return
        changed: list[tuple[Any, ...]] = []
        position = None
        for file_id, entry in self._cache.items():
            text = _dumps(entry)
            if text == self._stored.get(file_id):
                continue
            if self._stored.get(file_id) is None:  # a new row goes last, as a new key in a dict
                if position is None:
                    position = int(self._query("SELECT coalesce(max(position), 0) FROM files")[0][0])
                position += 1
                changed.append(_row(file_id, position, entry))
            else:
                changed.append(_row(file_id, 0, entry))  # the upsert keeps the row's position
            self._stored[file_id] = text
        try:
            if self._deleted:
                self._conn.executemany("DELETE FROM files WHERE id = ?", [(f,) for f in self._deleted])
                for file_id in self._deleted:
                    self._stored[file_id] = None
                self._deleted.clear()
            if changed:
                self._conn.executemany(_UPSERT, changed)
        except sqlite3.DatabaseError as exc:
            raise damaged(self._where, exc) from exc
        self._added.clear()

    # ---- questions about all files, in SQL (after a writer's changes are flushed) ------------------------

    def counts(self) -> tuple[dict[str, int], int]:
        self.flush()
        counts = dict.fromkeys(STATUSES, 0)
        usage = 0
        for status, count, size in self._query(
                "SELECT status, count(*), sum(usage_bytes) FROM files GROUP BY status"):
            counts[status] = count
            usage += int(size or 0) if status == "completed" else 0
        counts["total"] = sum(counts.values())
        return counts, usage

    def completed(self) -> Iterator[dict[str, Any]]:
        self.flush()
        return iter(self._adopt_all(self._query(f"SELECT id, entry FROM files WHERE {_COMPLETED} ORDER BY position")))

    def live_vectors(self) -> int:
        self.flush()
        return int(self._query(f"SELECT coalesce(sum(vectors), 0) FROM files WHERE {_COMPLETED}")[0][0])

    def has_completed(self) -> bool:
        self.flush()
        return bool(self._query(f"SELECT 1 FROM files WHERE {_COMPLETED} LIMIT 1"))

    def live_serials(self) -> list[int]:
        self.flush()
        return [s for (s,) in self._query(f"SELECT serial FROM files WHERE {_COMPLETED} ORDER BY serial")]

    def by_serials(self, serials: Iterable[int]) -> dict[int, dict[str, Any]]:
        self.flush()
        found: dict[int, dict[str, Any]] = {}
        wanted = sorted(set(serials))
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            for file_id, serial, text in self._query(
                    f"SELECT id, serial, entry FROM files WHERE {_COMPLETED} AND serial IN "
                    f"({','.join('?' * len(part))})", part):
                found[serial] = self._adopt(file_id, text)
        return found

    def with_status(self, status: str) -> list[dict[str, Any]]:
        self.flush()
        return self._adopt_all(self._query("SELECT id, entry FROM files WHERE status = ? ORDER BY position", (status,)))

    def holding(self, digests: Iterable[str]) -> dict[str, str]:
        self.flush()
        found: dict[str, str] = {}
        wanted = sorted(set(digests))
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            for digest, file_id in self._query(
                    "SELECT sha256, id FROM files WHERE sha256 IN (%s) ORDER BY position" % ",".join("?" * len(part)),
                    part):
                found.setdefault(digest, file_id)
        return found

    def without_upload_facts(self) -> list[dict[str, Any]]:
        self.flush()
        rows = self._query("SELECT id, entry FROM files WHERE sha256 IS NULL ORDER BY position")
        entries = [self._adopt(file_id, text) for file_id, text in rows]
        return [e for e in entries if not isinstance(e["vscli"].get("sha256"), str)]

    def passing(self, flt: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """The filter is evaluated by SQLite over the rows' attributes (`filter_sql`), so only the rows
        that pass are read; each is checked again by `vscli.filters.matches`, the rules' one definition."""
        where = filter_sql(flt)
        if where is None:  # a key or value SQL cannot say exactly: every completed file, in Python
            return {e["vscli"]["serial"]: e for e in self.completed() if vfilters.matches(flt, e["attributes"])}
        self.flush()
        sql, params = where
        rows = self._query(f"SELECT id, serial, entry FROM files WHERE {_COMPLETED} AND ({sql})", params)
        found = {serial: self._adopt(file_id, text) for file_id, serial, text in rows}
        return {serial: e for serial, e in found.items() if vfilters.matches(flt, e["attributes"])}


# ---- filters in SQL ----------------------------------------------------------------------------------------

_SAFE_INT = 1 << 53  # numbers SQLite and Python compare alike (beyond, SQLite may round through a double)
_ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def filter_sql(node: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """A validated filter as an SQL condition on a row's ``entry`` (its attributes), following
    `vscli.filters`' rules exactly (types never mix: the string "2020" is not the number 2020), or None
    where SQL cannot say it exactly (a key with a double quote, an integer past 2**53)."""
    kind = node["type"]
    if kind in ("and", "or"):
        parts = [filter_sql(child) for child in node["filters"]]
        if any(part is None for part in parts):
            return None
        joiner = " AND " if kind == "and" else " OR "
        return joiner.join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]  # type: ignore[misc]
    key, value = node["key"], node["value"]
    if '"' in key or any(_unsafe(v) for v in (value if isinstance(value, list) else [value])):
        return None
    path = f'$.attributes."{key}"'
    if kind in ("eq", "ne", "in", "nin"):
        values = value if kind in ("in", "nin") else [value]
        tests = [_equals(path, v) for v in values]
        sql = " OR ".join(f"({t})" for t, _ in tests) or "0"
        params = [p for _, ps in tests for p in ps]
        return (sql, params) if kind in ("eq", "in") else (f"NOT coalesce(({sql}), 0)", params)
    if isinstance(value, bool):
        return "0", []  # booleans have no order: nothing passes
    types = "'text'" if isinstance(value, str) else "'integer', 'real'"
    return (f"json_type(entry, ?) IN ({types}) AND json_extract(entry, ?) {_ORDER[kind]} ?", [path, path, value])


def _equals(path: str, value: Any) -> tuple[str, list[Any]]:
    if isinstance(value, bool):
        return "json_type(entry, ?) = ?", [path, "true" if value else "false"]
    types = "'text'" if isinstance(value, str) else "'integer', 'real'"
    return f"json_type(entry, ?) IN ({types}) AND json_extract(entry, ?) = ?", [path, path, value]


def _unsafe(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT
