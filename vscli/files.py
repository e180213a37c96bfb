"""Uploaded files: the workspace's `file` objects and their bytes, kept unchanged.

Each upload has a folder, ``files/<id>/``, with its bytes (``content``) and its `file` object
(``file.json``), written in a temporary folder and renamed into place. The registry
(``files/registry.sqlite``) indexes them: one row per upload, so an upload is found by id, by content
hash and name, or in a page of the list, without reading a folder per upload; its commit is the upload's
commit point (a folder it does not name is a leftover of a killed upload or delete, which `doctor
--repair` removes). Every upload has its own id (as OpenAI's API has it); the CLI's `upload` returns the
existing file for the same bytes under the same name, and identical bytes share their storage (a hard
link: deleting one upload never touches another's bytes).

A workspace of vscli 0.2 or older has the folders and no registry: the registry is built from their
``file.json`` at the first look (in memory where the workspace cannot be written).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vscli import notices, sqlitedb
from vscli.errors import CorruptData, InvalidInput, NotFound, VscliError
from vscli.manifests import check_file_object
from vscli.paging import sql_page
from vscli.workspace import (
    Workspace,
    env_positive_int,
    locked,
    new_id,
    os_error,
    read_json,
    write_json,
)

MAX_FILE_BYTES_ENV = "VSCLI_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024  # OpenAI's limit for one file

REGISTRY = "registry.sqlite"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    object TEXT NOT NULL  -- the `file` object as JSON, with vscli's private fields
);
CREATE INDEX uploads_identity ON uploads(sha256, filename);
CREATE INDEX uploads_created ON uploads(created_at, created_ns, id);
"""
INSERT = ("INSERT OR REPLACE INTO uploads (id, created_at, created_ns, purpose, filename, sha256, object) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)")
ORDER = ("created_at", "created_ns", "id")  # the list's order: oldest first


def max_file_bytes() -> int:
    return env_positive_int(MAX_FILE_BYTES_ENV, DEFAULT_MAX_FILE_BYTES)


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI `file` object, without vscli's private fields (content hash, text encoding, creation
    time in nanoseconds)."""
    return {k: v for k, v in obj.items() if k not in ("sha256", "encoding", "created_ns")}


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (uploads can be large)."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _row(obj: dict[str, Any]) -> tuple[Any, ...]:
    return (obj["id"], obj["created_at"], int(obj.get("created_ns") or 0), str(obj.get("purpose") or ""),
            obj["filename"], str(obj.get("sha256") or ""), json.dumps(obj, ensure_ascii=False))


class FileRegistry:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        return self.ws.files_dir / REGISTRY

    # ---- reading -----------------------------------------------------------------------------------

    def get(self, file_id: str) -> dict[str, Any]:
        self.ws.file_dir(file_id)  # an id that is not one vscli makes is no file
        found = self._select("SELECT object FROM uploads WHERE id = ?", (file_id,))
        if not found:
            raise NotFound(f"no such file: {file_id}")
        return self._object(file_id, found[0][0])

    def content_path(self, file_id: str) -> Path:
        self.get(file_id)
        return self.ws.file_dir(file_id) / "content"

    def read(self, file_id: str) -> bytes:
        path = self.content_path(file_id)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise os_error("read", path, exc) from exc

    def page(self, limit: int, order: str = "desc", after: str | None = None, before: str | None = None,
             purpose: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """One page of uploads as OpenAI lists them (by creation time, ``after``/``before`` a file id,
        only ``purpose`` if given), and whether more follow: read from the registry's index."""
        where, params = (["purpose = ?"], [purpose]) if purpose is not None else ([], [])
        rows, more = sql_page(self._select, "uploads", "id, object", list(ORDER), where, params, limit, order,
                              after, before)
        return [self._object(file_id, text) for file_id, text in rows], more

    def _find(self, digest: str, filename: str) -> dict[str, Any] | None:
        """The first upload of these bytes under this name."""
        rows = self._select("SELECT id, object FROM uploads WHERE sha256 = ? AND filename = ? "
                            f"ORDER BY {', '.join(ORDER)} LIMIT 1", (digest, filename))
        return self._object(*rows[0]) if rows else None

    def _object(self, file_id: str, text: str) -> dict[str, Any]:
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        try:
            return check_file_object(obj, self.path)
        except CorruptData:
            raise CorruptData(f"corrupted upload registry {self.path}: the row of {file_id} is not a file object; "
                              "`vscli doctor <store> --repair` writes it again") from None

    def _select(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        conn = self._reader()
        if conn is None:
            return []  # nothing uploaded yet
        with self._damage():
            return conn.execute(sql, tuple(params)).fetchall()

    def _reader(self) -> sqlite3.Connection | None:
        if self._conn is not None and sqlitedb.is_open(self._conn):
            return self._conn
        if not self.path.exists():
            if not self._old_uploads():
                return None
            try:
                with locked(self.ws.lock_path("files")):
                    if not self.path.exists():
                        self._build(self.path)
            except (OSError, VscliError):  # a workspace of vscli 0.2 that cannot be written: indexed in memory
                self._conn = sqlitedb.open_connection(":memory:")
                self._conn.executescript(SCHEMA)
                self._conn.executemany(INSERT, (_row(obj) for obj in self._folders(repair=False)))
                return self._conn
        with self._damage():
            self._conn = sqlitedb.connect(self.path, write=False, probe="SELECT 1 FROM uploads LIMIT 1")
        return self._conn

    @contextmanager
    def _damage(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise CorruptData(f"corrupted upload registry {self.path}: {exc}; `vscli doctor <store> --repair` "
                              "indexes the uploads again") from exc

    # ---- writing (each under the files lock) --------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The registry's one transaction of a change (the caller holds the files lock): committed when
        the block ends, rolled back if it raises."""
        if not self.path.exists():
            self._build(self.path)  # a new workspace, or one of vscli 0.2
        with self._damage():
            conn = sqlitedb.connect(self.path, write=True, probe="")
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:  # a full disk, a read-only file system, or damage
                raise _failed_write(self.path, exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def add(self, data: bytes, filename: str, purpose: str = "assistants",
            encoding: str | None = None) -> tuple[dict[str, Any], bool]:
        """Store bytes; returns the file object and whether it is new (False: same bytes and name)."""
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        self.ws.ensure()
        with locked(self.ws.lock_path("files")):
            existing = self._find(digest, filename)
            if existing is not None:
                return existing, False
            obj = self._new_object(len(data), filename, purpose, digest, encoding)
            self._install(obj, data)
            return obj, True

    def add_path(self, source: Path, filename: str, purpose: str = "assistants",
                 digest: str | None = None, encoding: str | None = None,
                 reuse: bool = True) -> tuple[dict[str, Any], bool]:
        """Store the bytes of ``source`` (a temporary file in the files directory, moved into place, so
        large uploads are never held in memory); like `add`, returns the object and whether it is new.
        ``digest`` is the bytes' sha256 when the caller computed it while writing them. ``reuse`` False:
        a new file even when the same bytes and name are stored (OpenAI's API: every upload is its own)."""
        digest = digest or file_sha256(source)
        with locked(self.ws.lock_path("files")):
            existing = self._find(digest, filename) if reuse else None
            if existing is not None:
                source.unlink(missing_ok=True)
                return existing, False
            obj = self._new_object(source.stat().st_size, filename, purpose, digest, encoding)
            self._install(obj, source)
            return obj, True

    def adopt(self, obj: dict[str, Any], content: Path) -> bool:
        """Install a file under its own id (an imported store's upload); ``content`` is moved into place.

        Returns False when the workspace already has this id with the same bytes (nothing changes)."""
        file_id = obj["id"]
        with locked(self.ws.lock_path("files")):
            try:
                existing = self.get(file_id)
            except NotFound:
                existing = None
            if existing is not None:
                if existing.get("sha256") != obj.get("sha256"):
                    raise InvalidInput(f"file {file_id} already exists in this workspace with other content")
                return False
            if content.stat().st_size != obj.get("bytes"):
                raise CorruptData(f"the archive's content of {file_id} has {content.stat().st_size} bytes, "
                                  f"its file object says {obj.get('bytes')}")
            self._install(obj, content)
            return True

    @staticmethod
    def _new_object(size: int, filename: str, purpose: str, digest: str, encoding: str | None = None
                    ) -> dict[str, Any]:
        obj = {"id": new_id("file-"), "object": "file", "bytes": size, "created_at": int(time.time()),
               "filename": filename, "purpose": purpose, "status": "processed", "sha256": digest,
               "created_ns": time.time_ns()}
        if encoding:
            obj["encoding"] = encoding
        return obj

    def _install(self, obj: dict[str, Any], content: bytes | Path) -> None:
        """Put a file's folder (its object and bytes, given or a file to move) in place in one rename,
        then commit its row. The caller holds the files lock. Bytes another upload already has are
        linked to, not stored again."""
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=self.ws.files_dir))
        except OSError as exc:
            raise os_error("write to", self.ws.files_dir, exc) from exc
        folder = self.ws.file_dir(obj["id"])
        try:
            if self._link_twin(obj, tmp / "content"):
                if isinstance(content, Path):
                    content.unlink(missing_ok=True)  # the twin's bytes serve: these are not kept
            elif isinstance(content, Path):
                os.replace(content, tmp / "content")
            else:
                (tmp / "content").write_bytes(content)
            write_json(tmp / "file.json", obj)
            os.replace(tmp, folder)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise os_error("store", self.ws.files_dir / obj["filename"], exc) from exc
        try:
            with self._writing() as conn:
                conn.execute(INSERT, _row(obj))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # not named by the registry: never was
            raise

    def _link_twin(self, obj: dict[str, Any], target: Path) -> bool:
        """Hard-link the bytes of an upload with the same content to ``target``; False when there is none
        (or the file system cannot link). Its bytes are checked first: a damaged twin is not shared."""
        rows = self._select("SELECT id FROM uploads WHERE sha256 = ? LIMIT 1", (obj.get("sha256", ""),))
        if not rows:
            return False
        twin = self.ws.files_dir / rows[0][0] / "content"
        try:
            if twin.stat().st_size != obj["bytes"] or file_sha256(twin) != obj.get("sha256"):
                return False
            os.link(twin, target)
        except OSError:
            return False
        return True

    def delete(self, file_id: str) -> None:
        """Remove an upload: its row first (the commit point), then its folder (its own link to the
        bytes: an upload sharing them keeps them)."""
        with locked(self.ws.lock_path("files")):
            self.get(file_id)
            with self._writing() as conn:
                conn.execute("DELETE FROM uploads WHERE id = ?", (file_id,))
        folder = self.ws.file_dir(file_id)
        trash = self.ws.files_dir / f".deleted-{file_id}"
        try:
            os.replace(folder, trash)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise os_error("delete", folder, exc) from exc
        shutil.rmtree(trash, ignore_errors=True)

    # ---- the registry built from the folders (an old workspace, a repair) ------------------------------

    def _old_uploads(self) -> bool:
        try:
            return any(d.name.startswith("file-") for d in self.ws.files_dir.iterdir())
        except OSError:
            return False

    def _folders(self, repair: bool) -> Iterator[dict[str, Any]]:
        """The `file` object of every upload folder with its bytes; one whose file.json is damaged or
        missing gets one made from its bytes (``repair``: written, the damaged one kept beside it)."""
        if not self._old_uploads():
            return
        notices.announce("indexing the workspace's uploads (once, for this version of vscli)")
        for folder in sorted(self.ws.files_dir.iterdir()):
            if not folder.name.startswith("file-") or not (folder / "content").is_file():
                continue
            try:
                yield check_file_object(read_json(folder / "file.json"), folder / "file.json")
            except (FileNotFoundError, CorruptData):
                yield self._object_from_bytes(folder, write=repair)

    def _build(self, path: Path) -> None:
        """Index every upload folder in a new registry at ``path`` (the caller holds the files lock);
        the de-duplication records of vscli 0.2 (``.index/``) then go."""
        self.ws.ensure()
        try:
            sqlitedb.build(path, SCHEMA, SCHEMA_VERSION, self._index_folders)
        except sqlite3.DatabaseError as exc:
            raise _failed_write(path, exc) from exc
        shutil.rmtree(self.ws.files_dir / ".index", ignore_errors=True)

    def damaged_rows(self) -> Iterator[tuple[str, CorruptData]]:
        """The uploads whose row is damaged, with what reading it says (`doctor`)."""
        for file_id, text in self._select("SELECT id, object FROM uploads"):
            try:
                self._object(file_id, text)
            except CorruptData as exc:
                yield file_id, exc

    def leftovers(self) -> list[Path]:
        """Upload folders the registry does not name (an upload or a delete killed between its folder
        and its row; the user never got, or no longer has, its id), and the temporary folders of such
        uploads and deletes. Looked at under the files lock, so no upload in flight is among them."""
        if not self.ws.files_dir.is_dir():
            return []
        with locked(self.ws.lock_path("files")):
            named = {file_id for (file_id,) in self._select("SELECT id FROM uploads")}
            return sorted(p for p in self.ws.files_dir.iterdir() if p.is_dir() and (
                (p.name.startswith("file-") and p.name not in named)
                or p.name.startswith((".upload-", ".deleted-"))))

    def remove_leftovers(self) -> int:
        """Delete what `leftovers` finds; returns how many folders went."""
        found = self.leftovers()
        for folder in found:
            shutil.rmtree(folder, ignore_errors=True)
        return len(found)

    def _index_folders(self, conn: sqlite3.Connection) -> None:
        conn.executemany(INSERT, (_row(obj) for obj in self._folders(repair=True)))

    def problem(self) -> str | None:
        """Why the registry cannot be read (`doctor`), or None."""
        if not self.path.exists():
            return None
        try:
            with self._damage():
                conn = self._reader()
                if conn is not None:
                    verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                    if verdict != "ok":
                        raise CorruptData(f"corrupted upload registry {self.path}: {verdict}")
        except CorruptData as exc:
            return str(exc)
        return None

    def reindex(self) -> None:
        """Set a damaged registry aside (``registry.sqlite.damaged-<time>``, with its WAL) and index the
        upload folders again."""
        with locked(self.ws.lock_path("files")):
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            sqlitedb.set_aside(self.path)
            self._build(self.path)

    def rebuild(self, file_id: str) -> dict[str, Any]:
        """Write an upload's row again, whose row is damaged: from its file.json, or where that is
        damaged too from its bytes (size, sha256, time) and what of file.json can be read (the filename;
        else the file id), the damaged file.json kept as file.json.damaged."""
        folder = self.ws.file_dir(file_id)
        with locked(self.ws.lock_path("files")):
            try:
                obj = check_file_object(read_json(folder / "file.json"), folder / "file.json")
            except (FileNotFoundError, CorruptData):
                obj = self._object_from_bytes(folder, write=True)
            with self._writing() as conn:
                conn.execute(INSERT, _row(obj))
        return obj

    def _object_from_bytes(self, folder: Path, write: bool) -> dict[str, Any]:
        import re

        file_id = folder.name
        content = folder / "content"
        try:
            raw = (folder / "file.json").read_bytes()
        except FileNotFoundError:
            raw = b""
        named = re.search(rb'"filename"\s*:\s*"((?:[^"\\]|\\.)*)"', raw)
        try:
            filename = json.loads(b'"' + named.group(1) + b'"') if named else file_id
        except ValueError:
            filename = file_id
        stat = content.stat()
        obj = {"id": file_id, "object": "file", "bytes": stat.st_size, "created_at": int(stat.st_mtime),
               "filename": filename if isinstance(filename, str) and filename else file_id,
               "purpose": "assistants", "status": "processed", "sha256": file_sha256(content),
               "created_ns": stat.st_mtime_ns}
        if write:
            if raw:
                (folder / "file.json.damaged").write_bytes(raw)
            write_json(folder / "file.json", obj)
        return obj


    # last: below it, `list` in an annotation would be this method
    def list(self) -> list[dict[str, Any]]:
        """All uploaded files, oldest first."""
        rows = self._select(f"SELECT id, object FROM uploads ORDER BY {', '.join(ORDER)}")
        return [self._object(file_id, text) for file_id, text in rows]


def _failed_write(path: Path, exc: sqlite3.Error) -> VscliError:
    """A write the registry refused (`vscli.sqlitedb.refused_write`), or its damage."""
    return sqlitedb.refused_write(path, exc) or CorruptData(f"corrupted upload registry {path}: {exc}")
