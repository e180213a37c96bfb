"""Uploaded files: the workspace's `file` objects and their bytes, kept unchanged.

A file is written into a temporary directory and renamed into place, so it either exists whole or not at
all. Uploading the same bytes under the same name again returns the existing file (content hash), which
makes repeated uploads idempotent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vscli.errors import NotFound
from vscli.manifests import check_file_object
from vscli.workspace import (
    Workspace,
    atomic_write_bytes,
    env_positive_int,
    locked,
    new_id,
    os_error,
    read_json,
    write_json,
)

MAX_FILE_BYTES_ENV = "VSCLI_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024  # OpenAI's limit for one file


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


class FileRegistry:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def add(self, data: bytes, filename: str, purpose: str = "assistants",
            encoding: str | None = None) -> tuple[dict[str, Any], bool]:
        """Store bytes; returns the file object and whether it is new (False: same bytes and name)."""
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        self.ws.ensure()
        key = self._index_key(digest, filename)
        with locked(self.ws.lock_path("files")):
            try:
                return self.get(key.read_text().strip()), False
            except (FileNotFoundError, NotFound):
                pass  # new content, or an index entry left by a deleted file
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
        key = self._index_key(digest, filename)
        with locked(self.ws.lock_path("files")):
            try:
                if not reuse:
                    raise NotFound("a new file is wanted")
                existing = self.get(key.read_text().strip())
                source.unlink(missing_ok=True)
                return existing, False
            except (FileNotFoundError, NotFound):
                pass
            obj = self._new_object(source.stat().st_size, filename, purpose, digest, encoding)
            self._install(obj, source)
            return obj, True

    def adopt(self, obj: dict[str, Any], content: Path) -> bool:
        """Install a file under its own id (an imported store's upload); ``content`` is moved into place.

        Returns False when the workspace already has this id with the same bytes (nothing changes)."""
        from vscli.errors import CorruptData, InvalidInput

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
        """Put a file object and its bytes (given, or a file to move) in place in one rename, and record
        it for de-duplication. The caller holds the files lock."""
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=self.ws.files_dir))
        except OSError as exc:
            raise os_error("write to", self.ws.files_dir, exc) from exc
        try:
            if isinstance(content, Path):
                os.replace(content, tmp / "content")
            else:
                (tmp / "content").write_bytes(content)
            write_json(tmp / "file.json", obj)
            # The de-duplication record first: killed between the two steps, it names a file that does not
            # exist (`add` then stores the bytes again), never a stored file it cannot find (a duplicate).
            atomic_write_bytes(self._index_key(obj.get("sha256", ""), obj["filename"]), obj["id"].encode())
            os.replace(tmp, self.ws.file_dir(obj["id"]))
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise os_error("store", self.ws.files_dir / obj["filename"], exc) from exc

    def _index_key(self, digest: str, filename: str) -> Path:
        """Where the id of the file with this content and name is recorded (O(1) de-duplication)."""
        import hashlib

        name = hashlib.sha256(filename.encode()).hexdigest()[:16]
        return self.ws.files_dir / ".index" / f"{digest}.{name}"

    def get(self, file_id: str) -> dict[str, Any]:
        try:
            path = self.ws.file_dir(file_id) / "file.json"
            return check_file_object(read_json(path), path)
        except FileNotFoundError:
            raise NotFound(f"no such file: {file_id}") from None

    def rebuild(self, file_id: str) -> dict[str, Any]:
        """Write a new file.json for an upload whose file.json is damaged, from its bytes (size, sha256,
        time) and whatever of the old one can still be read (the filename; else the file id). The damaged
        file is kept beside it as file.json.damaged. The caller has seen `get` raise CorruptData."""
        import re

        folder = self.ws.file_dir(file_id)
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
        name = filename if isinstance(filename, str) and filename else file_id
        sha256 = file_sha256(content)
        obj = {"id": file_id, "object": "file", "bytes": stat.st_size, "created_at": int(stat.st_mtime),
               "filename": name,
               "purpose": "assistants", "status": "processed", "sha256": sha256,
               "created_ns": stat.st_mtime_ns}
        with locked(self.ws.lock_path("files")):
            if raw:
                atomic_write_bytes(folder / "file.json.damaged", raw)
            write_json(folder / "file.json", obj)
            atomic_write_bytes(self._index_key(sha256, name), file_id.encode())
        return obj

    def content_path(self, file_id: str) -> Path:
        self.get(file_id)
        return self.ws.file_dir(file_id) / "content"

    def read(self, file_id: str) -> bytes:
        path = self.content_path(file_id)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise os_error("read", path, exc) from exc

    def list(self) -> list[dict[str, Any]]:
        """All uploaded files, oldest first. Directories still being written (".upload-*") are skipped."""
        if not self.ws.files_dir.is_dir():
            return []
        found = []
        for d in self.ws.files_dir.iterdir():
            if d.name.startswith("file-"):
                try:
                    found.append(check_file_object(read_json(d / "file.json"), d / "file.json"))
                except FileNotFoundError:
                    continue  # deleted while we listed
        return sorted(found, key=lambda f: (f["created_at"], f.get("created_ns", 0), f["id"]))

    def delete(self, file_id: str) -> None:
        obj = self.get(file_id)
        self._index_key(obj.get("sha256", ""), obj["filename"]).unlink(missing_ok=True)
        d = self.ws.file_dir(file_id)
        # Rename first so the file vanishes atomically, then remove the bytes.
        trash = self.ws.files_dir / f".deleted-{file_id}"
        try:
            os.replace(d, trash)
        except OSError as exc:
            raise os_error("delete", d, exc) from exc
        shutil.rmtree(trash, ignore_errors=True)
