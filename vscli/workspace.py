"""Where things live on disk, how ids are made, and how files are written safely.

Layout of a workspace (``VSCLI_HOME``, else ``--home``, else the platformdirs user data dir)::

    files/<file-id>/file.json      the OpenAI `file` object plus its sha256
    files/<file-id>/content        the uploaded bytes, unchanged
    stores/<vs-id>/store.json      the `vector_store` object, its model and chunking settings
    stores/<vs-id>/catalog.sqlite  the store's `vector_store.file` entries and its FAISS segments
    stores/<vs-id>/chunks.sqlite   chunk texts and offsets, a row per chunk (vscli 0.3: chunks/<n>.json)
    stores/<vs-id>/index-<n>.faiss a FAISS segment (immutable once written)
    locks/                         lock files (filelock)

Every JSON manifest and index is written to a temporary file in the same directory, flushed to disk and
renamed over the old one, so a reader sees the old state or the new one, never half of either.
"""

from __future__ import annotations

import errno
import json
import os
import re
import string
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from vscli.errors import CorruptData, InvalidInput, NotFound, VscliError

HOME_ENV = "VSCLI_HOME"
_ID_ALPHABET = string.ascii_letters + string.digits
LOCK_TIMEOUT_SECONDS = 120.0


def user_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The workspace root: an explicit path, else $VSCLI_HOME, else the platform's user data dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("vscli", appauthor=False))


def env_positive_int(name: str, default: int) -> int:
    """A positive whole number from an environment variable, or the default when it is unset."""
    from vscli.errors import InvalidInput

    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput(f"{name} must be positive, got {value}")
    return value


_STORE_ID = re.compile(r"vs_[A-Za-z0-9]{1,64}")
_FILE_ID = re.compile(r"file-[A-Za-z0-9]{1,64}")


def is_store_id(value: object) -> bool:
    """Whether ``value`` is a vector store id as vscli makes them (``vs_`` and letters and digits)."""
    return isinstance(value, str) and _STORE_ID.fullmatch(value) is not None


def is_file_id(value: object) -> bool:
    """Whether ``value`` is a file id as vscli makes them (``file-`` and letters and digits)."""
    return isinstance(value, str) and _FILE_ID.fullmatch(value) is not None


def shown(value: object, limit: int = 60) -> str:
    """A value from outside, quoted and cut short, for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_text(value: str, field: str) -> None:
    """Refuse text that is not valid UTF-8: an argument with such bytes reaches Python as surrogate
    escapes (JSON's ``\\udcff`` does too), which no manifest, index or terminal can take."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} is not valid UTF-8 text: {name_text(value)[:60]!r}") from None


def name_text(name: str | os.PathLike[str]) -> str:
    """A file name or path as valid text. Bytes of a name that are not UTF-8 reach Python as surrogate
    escapes, which cannot be hashed, written to JSON for other tools, or printed; they become ``\\xNN``
    (distinct names stay distinct, and the same name always gives the same text)."""
    return os.fspath(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def new_id(prefix: str) -> str:
    """An OpenAI-style id: the prefix and 24 random alphanumerics (e.g. ``vs_`` or ``file-``).

    Drawn from os.urandom with rejection sampling (unbiased); `secrets` would cost 11 ms of imports."""
    chars: list[str] = []
    while len(chars) < 24:
        chars.extend(_ID_ALPHABET[b % 62] for b in os.urandom(32) if b < 248)  # 248 = 4 * 62
    return prefix + "".join(chars[:24])


def os_error(action: str, path: Path, exc: OSError) -> VscliError:
    """A user-facing error for a failed read or write, naming the path and the cause."""
    reason = {
        errno.ENOSPC: "no space left on device",
        errno.EACCES: "permission denied",
        errno.EROFS: "read-only file system",
        errno.EDQUOT: "disk quota exceeded",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return VscliError(f"cannot {action} {name_text(path)}: {reason}")


def sweep_temporaries(path: Path) -> int:
    """Delete what writers of ``path`` killed mid-write left beside it (`atomic_write_bytes`'s temporary
    files whose process is gone); returns how many. Temporaries of live processes are left alone."""
    import psutil

    swept = 0
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)\.[^/]*\.tmp")
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return 0
    for leftover in candidates:
        match = pattern.fullmatch(leftover.name)
        if match and int(match.group(1)) != os.getpid() and not psutil.pid_exists(int(match.group(1))):
            try:
                leftover.unlink()
                swept += 1
            except OSError:
                pass
    return swept


def atomic_write_bytes(path: Path, data: bytes | Callable[[Path], None]) -> None:
    """Write ``data`` (bytes, or a function that writes a given temp path) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets `sweep_temporaries` tell a killed writer's leftover from a live one's.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def delete_quietly(paths: Iterable[Path | None]) -> None:
    """Delete what a commit made garbage, after it: a file that cannot be deleted is left for `doctor`
    (never fails a commit that already happened)."""
    for path in paths:
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass


def write_json(path: Path, obj: Any, compact: bool = False) -> None:
    """Atomically write ``obj`` as pretty JSON, or ``compact`` (for large manifests: json's C encoder
    runs only without indentation, and was 10x faster on a 35 MB files.json)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if compact else json.dumps(
        obj, indent=2, ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    """Read a JSON manifest; a damaged one is reported as such instead of crashing."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise os_error("read", path, exc) from exc
    return parse_json(raw, path)


def parse_json(raw: bytes, path: Path) -> Any:
    """A manifest's bytes, parsed; damaged ones are `CorruptData` naming ``path``."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptData(f"corrupted manifest {path}: {exc}") from exc


@contextmanager
def locked(lock_path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold an exclusive inter-process lock (filelock) on ``lock_path`` for the block."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path), timeout=timeout)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout as exc:
        raise VscliError(f"timed out after {timeout:.0f}s waiting for the lock {lock_path}") from exc
    except OSError as exc:
        raise os_error("lock", lock_path, exc) from exc
    try:
        yield
    finally:
        lock.release()


class Workspace:
    """Paths inside one workspace root; creates nothing until something is written."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def stores_dir(self) -> Path:
        return self.root / "stores"

    def file_dir(self, file_id: str) -> Path:
        """Where an upload lives. The id must be one vscli makes: an id from a request, an archive or a
        damaged manifest never becomes a path outside the workspace (``../``, ``/abs``)."""
        if not is_file_id(file_id):
            raise NotFound(f"no such file: {shown(file_id)}")
        return self.files_dir / file_id

    def store_dir(self, store_id: str) -> Path:
        """Where a store lives; the id is checked as `file_dir` checks a file id."""
        if not is_store_id(store_id):
            raise NotFound(f"no such vector store: {shown(store_id)}")
        return self.stores_dir / store_id

    def lock_path(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"

    def ensure(self) -> None:
        """Create the workspace directories, with a clear error when that is impossible."""
        for d in (self.root, self.files_dir, self.stores_dir, self.root / "locks"):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise os_error("create the workspace directory", d, exc) from exc
