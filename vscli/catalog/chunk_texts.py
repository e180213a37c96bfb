"""A store's chunk texts and offsets in SQLite (``chunks.sqlite``): one row per chunk, keyed by the file's
serial and the chunk's position, so a query reads the rows of its hits and nothing else.

Why a file of its own beside the catalog rather than a table in it: a commit writes a file's chunks
before its catalog row names the serial (as it wrote chunk manifests before), so a kill in between leaves
rows no file names, never a file without its chunks; and the two fail apart. A catalog lost or damaged is
rebuilt by `doctor` from the chunk texts (every file with chunks comes back completed, only attributes
lost), which it could not be if they went down together.

vscli up to 0.3 kept one JSON manifest per processed file (``chunks/<serial>.json``). A store that still
has them is read from them until its next write adopts them here (`StoreFolder.adopt_chunk_files`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vscli import sqlitedb
from vscli.errors import CorruptData

FILENAME = "chunks.sqlite"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE owners (
    serial INTEGER PRIMARY KEY,
    file_id TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    written_at INTEGER NOT NULL
);
CREATE TABLE chunks (
    serial INTEGER NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    pages TEXT,  -- JSON: the PDF pages the chunk came from
    PRIMARY KEY (serial, position)
) WITHOUT ROWID;
"""
PROBE = "SELECT 1 FROM owners LIMIT 1"
SELECT_CHUNK = "SELECT text, start_char, end_char, tokens, pages FROM chunks"


class ChunkTexts:
    """The chunk texts of one store. Readers use one connection for the object's life (each statement
    sees the latest commit); every write opens its own, commits it durably and closes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def damaged(self, exc: sqlite3.Error) -> CorruptData:
        return CorruptData(f"corrupted chunk texts {self.path}: {exc}")

    # ---- reading -------------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of a query, [] where there is no file yet."""
        try:
            if self._reader is None or not sqlitedb.is_open(self._reader):
                if not self.exists():
                    return []
                self._reader = sqlitedb.connect(self.path, write=False, probe=PROBE)
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from exc

    def has(self, serial: int) -> bool:
        """Whether the chunks of this serial are here (a file with no chunks has them: none)."""
        return bool(self._read("SELECT 1 FROM owners WHERE serial = ?", (serial,)))

    def doc(self, serial: int) -> dict[str, Any] | None:
        """``{"file_id", "chunks": [{"text", "start", "end", "tokens", "pages"?}]}`` as a chunk manifest
        has it, or None when the serial has no chunks here."""
        owner = self._read("SELECT file_id, chunks FROM owners WHERE serial = ?", (serial,))
        if not owner:
            return None
        rows = self._read(f"{SELECT_CHUNK} WHERE serial = ? ORDER BY position", (serial,))
        if len(rows) != owner[0][1]:
            raise CorruptData(f"corrupted chunk texts {self.path}: serial {serial} has {len(rows)} of its "
                              f"{owner[0][1]} chunks")
        return {"file_id": owner[0][0], "chunks": [self._chunk(serial, row) for row in rows]}

    def chunk(self, serial: int, position: int) -> dict[str, Any] | None:
        """One chunk, or None when it is not here."""
        rows = self._read(f"{SELECT_CHUNK} WHERE serial = ? AND position = ?", (serial, position))
        return self._chunk(serial, rows[0]) if rows else None

    def _chunk(self, serial: int, row: tuple[Any, ...]) -> dict[str, Any]:
        text, start, end, tokens, pages = row
        chunk = {"text": text, "start": start, "end": end, "tokens": tokens}
        if pages is not None:
            try:
                chunk["pages"] = json.loads(pages)
            except ValueError:
                raise CorruptData(f"corrupted chunk texts {self.path}: the pages of a chunk of serial "
                                  f"{serial} are not JSON") from None
        return chunk

    def owners(self) -> dict[int, tuple[str, int, int]]:
        """Serial -> (file id, chunks, written at) for every serial here: what `doctor` rebuilds a lost
        catalog from, and how it finds chunks no file names."""
        return {serial: (file_id, count, written) for serial, file_id, count, written
                in self._read("SELECT serial, file_id, chunks, written_at FROM owners")}

    def check(self) -> None:
        """Raise CorruptData if SQLite finds the file damaged."""
        problems = self._read("PRAGMA quick_check")
        if problems and problems[0][0] != "ok":
            raise CorruptData(f"corrupted chunk texts {self.path}: {problems[0][0]}")

    # ---- writing -------------------------------------------------------------------------------------

    def write(self, docs: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Store the chunks of these serials (``(serial, {"file_id", "chunks"})``), replacing whatever
        an interrupted write left under them, in one transaction that is durable when this returns."""
        now = int(time.time())

        def fill(conn: sqlite3.Connection) -> None:
            for serial, doc in docs:
                conn.execute("DELETE FROM chunks WHERE serial = ?", (serial,))
                conn.execute("INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
                             (serial, doc["file_id"], len(doc["chunks"]), now))
                conn.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", [
                    (serial, position, c["text"], c["start"], c["end"], c["tokens"],
                     json.dumps(c["pages"]) if c.get("pages") else None)
                    for position, c in enumerate(doc["chunks"])])

        self._write(fill)

    def delete(self, serials: Iterable[int]) -> None:
        """Drop the chunks of removed files."""
        gone = [(serial,) for serial in serials]
        if not gone or not self.exists():
            return

        def drop(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM chunks WHERE serial = ?", gone)
            conn.executemany("DELETE FROM owners WHERE serial = ?", gone)

        self._write(drop)

    def _write(self, change: Callable[[sqlite3.Connection], None]) -> None:
        try:
            if not self.exists():
                sqlitedb.build(self.path, SCHEMA, SCHEMA_VERSION, lambda conn: None)
            conn = sqlitedb.connect(self.path, write=True, probe=PROBE)
            try:
                conn.execute("BEGIN IMMEDIATE")
                change(conn)
                conn.execute("COMMIT")
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the file alone whole, for read-only readers
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise (sqlitedb.refused_write(self.path, exc) or self.damaged(exc)) from exc

    def set_aside(self) -> Path | None:
        """Move a damaged file out of the way (kept as ``chunks.sqlite.damaged-<time>``, with its WAL)."""
        self.close()
        return sqlitedb.set_aside(self.path) if self.exists() else None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

