"""A store's file entries as a mapping (file id -> `vector_store.file` entry, in attach order) with the
questions asked of all of them: `CatalogEntries` loads catalog rows as they are asked for and answers in
SQL, `JsonEntries` is the same over a parsed files.json of vscli 0.1."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, Iterable

from vscli import filters as vfilters
from vscli.catalog.database import (
    COMPLETED,
    CREATED_AT,
    RECOUNT,
    RECOUNTED,
    UPSERT,
    damaged,
    dumps,
    failed_write,
    parse_rows,
    read_version,
    row,
    write_meta,
)
from vscli.catalog.filter_sql import filter_sql
from vscli.paging import page_of, sql_page
from vscli.sqlitedb import split_script

STATUSES = ("in_progress", "completed", "failed", "cancelled")
STREAM_PAGE = 2000  # rows a listing reads at a time


def _completed(entry: dict[str, Any]) -> bool:
    return entry["status"] == "completed" and entry["vscli"].get("serial") is not None


class Entries(MutableMapping[str, dict[str, Any]]):
    """File id -> `vector_store.file` entry, in the order files were attached, with the questions asked
    of all of them."""

    def counts(self) -> tuple[dict[str, int], int]:
        """Files per status (and ``total``), and the bytes of the completed ones."""
        raise NotImplementedError

    def stream(self) -> Iterator[dict[str, Any]]:
        """Every entry in attach order, to read once: a catalog's are read a page at a time and not kept,
        so listing a store of any size holds one page in memory."""
        return iter(self.values())

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

    def totals_agree(self) -> bool:
        """Whether the counts kept for `counts` and `live_vectors` are those of the files (`doctor`)."""
        return True

    def recount(self) -> None:
        """Count the kept totals again from the files, in a writer's transaction (`doctor --repair`)."""

    def page(self, limit: int, order: str = "desc", after: str | None = None, before: str | None = None,
             status: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """One page of entries as OpenAI lists them, and whether the list goes on: ordered by
        ``created_at`` (then attach order) ``asc`` or ``desc``, only those with ``status`` if given,
        after and/or before the entries with those ids (which must be in the list: InvalidInput names
        the field otherwise); ``before`` alone gives the last ``limit`` before it."""
        return page_of((e for e in self.values() if status is None or e["status"] == status), limit, order,
                       after, before)


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
        self._kept_totals: bool | None = None

    @property
    def where(self) -> Path:
        return self._where

    def commit(self, state: dict[str, Any]) -> None:
        """Store the changed entries and the state's other keys, and commit: the store's commit point.
        The WAL is then copied into the catalog file as far as no reader holds it back (never waiting
        for one), so the file alone is whole for a reader on a read-only file system."""
        self.flush()
        write_meta(self._conn, state, read_version(self._conn) + 1)
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
        return parse_rows(self._where, [(file_id, text)])[0]

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
        """The entries of many rows read: those not handed out yet parsed in one go, each checked."""
        fresh = [(file_id, text) for file_id, text in rows if file_id not in self._cache]
        for (file_id, text), entry in zip(fresh, parse_rows(self._where, fresh), strict=True):
            self._cache[file_id] = entry
            self._stored[file_id] = text
        return [self._cache[file_id] for file_id, _ in rows]

    def stream(self) -> Iterator[dict[str, Any]]:
        if self._writable:
            yield from self.values()  # a writer's changes are in its entries
            return
        try:
            cursor = self._conn.execute("SELECT id, entry FROM files ORDER BY position")
            while rows := cursor.fetchmany(STREAM_PAGE):
                yield from parse_rows(self._where, rows)
        except sqlite3.DatabaseError as exc:
            raise damaged(self._where, exc) from exc

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
        if file_id in self._deleted:
            self._deleted.discard(file_id)  # deleted and set again: its row stays, changed
        elif self._lookup(file_id) is None:
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
            text = dumps(entry)
            if text == self._stored.get(file_id):
                continue
            if self._stored.get(file_id) is None:  # a new row goes last, as a new key in a dict
                if position is None:
                    position = int(self._query("SELECT coalesce(max(position), 0) FROM files")[0][0])
                position += 1
                changed.append(row(file_id, position, entry))
            else:
                changed.append(row(file_id, 0, entry))  # the upsert keeps the row's position
            self._stored[file_id] = text
        try:
            if self._deleted:
                self._conn.executemany("DELETE FROM files WHERE id = ?", [(f,) for f in self._deleted])
                for file_id in self._deleted:
                    self._stored[file_id] = None
                self._deleted.clear()
            if changed:
                self._conn.executemany(UPSERT, changed)
        except sqlite3.DatabaseError as exc:
            raise failed_write(self._where, exc) from exc
        self._added.clear()

    # ---- questions about all files, in SQL (after a writer's changes are flushed) ------------------------

    def _keeps_totals(self) -> bool:
        """Whether the catalog's triggers keep `totals` (schema 2; a catalog of schema 1 not written since
        has none)."""
        if self._kept_totals is None:
            self._kept_totals = int(self._query("PRAGMA user_version")[0][0]) >= 2
        return self._kept_totals

    def _totals(self) -> str:
        """Where the files per status and their sums are read: the few rows kept, or the files themselves."""
        return "SELECT status, live, files, vectors, usage_bytes FROM totals" if self._keeps_totals() else RECOUNTED

    def totals_agree(self) -> bool:
        if not self._keeps_totals():
            return True
        kept = {tuple(r[:2]): tuple(r[2:])
                for r in self._query("SELECT * FROM totals WHERE files OR vectors OR usage_bytes")}
        counted = {tuple(r[:2]): tuple(r[2:]) for r in self._query(RECOUNTED)}
        return kept == counted

    def recount(self) -> None:
        self._require_writable()
        self.flush()
        try:
            for statement in split_script(RECOUNT):
                self._conn.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise failed_write(self._where, exc) from exc

    def counts(self) -> tuple[dict[str, int], int]:
        self.flush()
        counts = dict.fromkeys(STATUSES, 0)
        usage = 0
        for status, _, files, _, size in self._query(self._totals()):
            counts[status] = counts.get(status, 0) + int(files)
            usage += int(size or 0) if status == "completed" else 0
        counts["total"] = sum(counts.values())
        return counts, usage

    def completed(self) -> Iterator[dict[str, Any]]:
        self.flush()
        return iter(self._adopt_all(self._query(f"SELECT id, entry FROM files WHERE {COMPLETED} ORDER BY position")))

    def live_vectors(self) -> int:
        self.flush()
        return sum(int(vectors or 0) for status, live, _, vectors, _ in self._query(self._totals())
                   if status == "completed" and live)

    def has_completed(self) -> bool:
        self.flush()
        return bool(self._query(f"SELECT 1 FROM files WHERE {COMPLETED} LIMIT 1"))

    def live_serials(self) -> list[int]:
        self.flush()
        return [s for (s,) in self._query(f"SELECT serial FROM files WHERE {COMPLETED} ORDER BY serial")]

    def by_serials(self, serials: Iterable[int]) -> dict[int, dict[str, Any]]:
        self.flush()
        rows = self._rows_in(f"SELECT id, serial, entry FROM files WHERE {COMPLETED} AND serial IN", serials)
        return {serial: self._adopt(file_id, text) for file_id, serial, text in rows}

    def _rows_in(self, select: str, values: Iterable[Any], then: str = "") -> list[Any]:
        """The rows of ``select ... IN (values) then``, asked in parts (SQLite takes so many parameters)."""
        rows: list[Any] = []
        wanted = sorted(set(values))
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            rows += self._query(f"{select} ({','.join('?' * len(part))}) {then}", part)
        return rows

    def with_status(self, status: str) -> list[dict[str, Any]]:
        self.flush()
        return self._adopt_all(self._query("SELECT id, entry FROM files WHERE status = ? ORDER BY position", (status,)))

    def holding(self, digests: Iterable[str]) -> dict[str, str]:
        self.flush()
        found: dict[str, str] = {}
        for digest, file_id in self._rows_in("SELECT sha256, id FROM files WHERE sha256 IN", digests,
                                             "ORDER BY position"):
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
        rows = self._query(f"SELECT id, serial, entry FROM files WHERE {COMPLETED} AND ({sql})", params)
        found = {serial: self._adopt(file_id, text) for file_id, serial, text in rows}
        return {serial: e for serial, e in found.items() if vfilters.matches(flt, e["attributes"])}

    def page(self, limit: int, order: str = "desc", after: str | None = None, before: str | None = None,
             status: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Read from the index on (created_at, position) (`vscli.paging.sql_page`)."""
        self.flush()
        where, params = (["status = ?"], [status]) if status is not None else ([], [])
        rows, more = sql_page(self._query, "files", "id, entry", [CREATED_AT, "position"], where, params, limit,
                              order, after, before)
        return self._adopt_all(rows), more
