"""What may be uploaded, for every front end (`upload`, `sync`, the server's ``POST /v1/files``): the files
of a directory (hidden ones skipped), the size limit, and bytes spooled into the workspace as they are
read and checked, so what is stored is what was checked even if the source changes meanwhile.

The CLI also checks that each file's text can be extracted before anything is stored (all inputs are
good, or nothing changes); the server, as OpenAI's Files API, accepts any bytes and reports a file it
cannot read when a store processes it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vscli.errors import InvalidInput, TooLarge
from vscli.files import max_file_bytes
from vscli.workspace import Workspace, os_error

BLOCK = 1 << 20


def is_hidden(relative: Path) -> bool:
    """A file under a hidden folder, or hidden itself (``.git/``, ``.env``): never uploaded from a tree."""
    return any(part.startswith(".") for part in relative.parts)


def files_in(directory: Path) -> list[Path]:
    """The files a directory's upload takes, sorted: every regular file under it that is not hidden."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and not is_hidden(p.relative_to(directory)))


@dataclass
class Spooled:
    """Bytes as they were read, in the files directory (moved into place by `FileRegistry.add_path`)."""

    name: str
    path: Path
    digest: str
    size: int
    relative: str | None = None  # its path in a directory given to upload: recorded as the path attribute

    def read(self) -> bytes:
        return self.path.read_bytes()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def spool(ws: Workspace, source: BinaryIO, name: str, limit: int | None = None, where: Path | None = None
          ) -> Spooled:
    """Copy a stream into a spool, in blocks, hashing as it goes: at most ``limit`` bytes (the size limit,
    `max_file_bytes`), so a device or an endless pipe is refused, never read until memory or the disk
    runs out. TooLarge past the limit, InvalidInput when empty; nothing is kept then. ``where``: the
    source's path, named when it cannot be read."""
    import hashlib  # loads OpenSSL: not on `--help`'s path

    limit = max_file_bytes() if limit is None else limit
    ws.ensure()
    try:
        fd, spool_name = tempfile.mkstemp(prefix=".upload-", dir=ws.files_dir)
    except OSError as exc:
        raise os_error("write to", ws.files_dir, exc) from exc
    path = Path(spool_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                try:
                    block = source.read(min(BLOCK, limit + 1 - size))
                except OSError as exc:
                    raise os_error("read", where or Path(name), exc) from exc
                if not block:
                    break
                size += len(block)
                if size > limit:
                    raise TooLarge(f"{name}: file is over the limit of {limit} bytes (VSCLI_MAX_FILE_BYTES sets "
                                   "it)", field="file")
                out.write(block)
                digest.update(block)
        if size == 0:
            raise InvalidInput(f"{name}: file is empty", field="file")
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise os_error("write to", ws.files_dir, exc) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(name, path, digest.hexdigest(), size)
