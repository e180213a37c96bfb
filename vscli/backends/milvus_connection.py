"""Connections to Milvus, and Milvus's failures as vscli errors.

One client per URI per process. A Milvus Lite file (``*.db``) is an embedded engine that one process at a
time may open (it holds a lock file while open), so vscli opens it only for the duration of an operation
and releases it afterwards; a process that finds it busy waits for it, like vscli's own locks. A server
URI (``http://host:19530``) keeps its client for the life of the process.

The token comes from ``--token`` where a command offers it, then ``VSCLI_MILVUS_TOKEN``, then the config
file's ``milvus_token``; it is never written into a store's manifest.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from vscli.errors import BackendError, InvalidInput, VscliError
from vscli.workspace import env_positive_int

REMOTE_SCHEMES = ("http://", "https://", "tcp://", "grpc://")
CONNECT_TIMEOUT = 10.0  # seconds to reach a server before giving up
LITE_WAIT_ENV = "VSCLI_MILVUS_LITE_WAIT"
LITE_WAIT = 120  # seconds to wait for another process to release a Milvus Lite file
_LOG_NUMBER = re.compile(r"wal_(?:data|delta)_(\d+)\.arrow")
_CLIENTS: dict[tuple[str, str], list[Any]] = {}  # (uri, token) -> [client, users]
_GUARD = threading.RLock()
_token_flag: str | None = None


def is_lite(uri: str) -> bool:
    return not uri.startswith(REMOTE_SCHEMES)


def normalise_uri(uri: str) -> str:
    """A server URI as given, a Milvus Lite file as an absolute path (commands may run from anywhere)."""
    uri = uri.strip()
    if not uri:
        raise InvalidInput("uri must not be empty", field="uri")
    if not is_lite(uri):
        return uri.rstrip("/")
    if not uri.endswith(".db"):
        raise InvalidInput(f"uri must be a Milvus Lite file ending in .db or a server address such as "
                           f"http://localhost:19530, got {uri!r}", field="uri")
    return str(Path(uri).expanduser().resolve())


@contextmanager
def token_flag(token: str | None) -> Iterator[None]:
    """Use a command's ``--token`` inside the block, ahead of the environment and the config file."""
    global _token_flag
    previous, _token_flag = _token_flag, token or None
    try:
        yield
    finally:
        _token_flag = previous


def _token() -> str:
    from vscli import config

    return config.value("milvus_token", _token_flag) or ""


@contextmanager
def connect(uri: str) -> Iterator[Any]:
    """A `pymilvus.MilvusClient` for the URI; Milvus errors inside the block become `BackendError`."""
    key = (uri, "" if is_lite(uri) else _token())
    with _GUARD:
        entry = _CLIENTS.get(key)
        if entry is None:
            entry = _CLIENTS[key] = [_open(uri, key[1]), 0]
        entry[1] += 1
    try:
        with translated(uri):
            yield entry[0]
    finally:
        with _GUARD:
            entry[1] -= 1
            if entry[1] == 0 and is_lite(uri):
                del _CLIENTS[key]
                _release(uri, entry[0])


@contextmanager
def translated(uri: str) -> Iterator[None]:
    """Milvus's exceptions inside the block as `BackendError` (vscli's own pass through)."""
    try:
        yield
    except VscliError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith(("pymilvus", "grpc", "milvus_lite")):
            raise translate(exc, uri) from exc
        raise


def _open(uri: str, token: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise BackendError("the milvus backend needs pymilvus and milvus-lite: pip install 'vscli[milvus]'") from None

    _quiet_logs()  # after the import: pymilvus configures its loggers when it is imported

    if not is_lite(uri):
        try:
            return MilvusClient(uri=uri, token=token, timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            raise translate(exc, uri) from exc
    wait = env_positive_int(LITE_WAIT_ENV, LITE_WAIT)
    deadline = time.monotonic() + wait
    failed_while_free = 0
    while True:
        _drop_flushed_logs(uri)
        try:
            client = MilvusClient(uri=uri)
        except Exception as exc:
            # The other process may release the lock between our failed open and this look at it (seen
            # in CI under load): only failures with the lock free three times running are the file's own.
            failed_while_free = 0 if _lite_busy(uri) else failed_while_free + 1
            if failed_while_free >= 3:
                raise BackendError(f"cannot open the Milvus Lite database {uri}: {_message(exc)}") from exc
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"the Milvus Lite database {uri} stayed in use by another process for {wait}s "
                    "(Milvus Lite serves one process at a time; use a Milvus server for concurrent use)"
                ) from exc
            time.sleep(0.2)
            continue
        return client


@contextmanager
def _lite_lock(uri: str) -> Iterator[bool | None]:
    """Hold the Milvus Lite file's lock for the block: yields True when held, False when another
    process has the file open, None when there is no file to lock (not made yet, or not writable)."""
    import fcntl

    try:
        handle = open(Path(uri) / "LOCK", "a")
    except OSError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lite_busy(uri: str) -> bool:
    """Whether another process holds the Milvus Lite file's lock."""
    with _lite_lock(uri) as held:
        return held is False


def _drop_flushed_logs(uri: str) -> None:
    """Delete the write-ahead logs a killed process left after their rows were flushed.

    Milvus Lite (3.2) flushes a log by writing its rows to a data file, recording that file in the
    collection's manifest together with the number of the next log, and only then deleting the log. A
    kill between the last two steps leaves a log whose rows are already on disk; the next open replays it
    with the same sequence numbers, which Milvus Lite does not tell apart, so those rows count twice (seen
    as a file with doubled vectors after a kill -9 in CI). A log numbered below the manifest's active one
    has been flushed, so it is deleted before the file is opened, with its lock held."""
    collections = sorted(Path(uri).glob("collections/*/manifest.json"))
    if not collections:
        return
    with _lite_lock(uri) as held:
        if not held:
            return  # open in another process, which has replayed its logs already
        for manifest in collections:
            try:
                active = json.loads(manifest.read_text(encoding="utf-8")).get("active_wal_number")
            except (OSError, ValueError, AttributeError):
                continue  # Milvus Lite reports a manifest it cannot read itself
            if not isinstance(active, int):
                continue
            for log in manifest.parent.glob("wal/wal_*.arrow"):
                number = _LOG_NUMBER.fullmatch(log.name)
                if number and int(number.group(1)) < active:
                    log.unlink(missing_ok=True)


def drop_index_files(uri: str, collection: str) -> bool:
    """Delete the index files Milvus Lite builds for a collection's data files (it builds them again
    when it loads the collection). It writes them in place, so a kill while one is written leaves it torn,
    and every later load fails ("File is too small: 0"). Returns whether there were any."""
    found = list(Path(uri).glob(f"collections/{collection}/partitions/*/indexes/*"))
    for index_file in found:
        index_file.unlink(missing_ok=True)
    return bool(found)


def _release(uri: str, client: Any) -> None:
    """Close the client and stop the in-process Milvus Lite server, which lets go of the file's lock."""
    try:
        client.close()
    finally:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def _quiet_logs() -> None:
    """pymilvus and Milvus Lite log failures with tracebacks; vscli reports them itself (unless --debug)."""
    if os.environ.get("VSCLI_DEBUG") in ("1", "true"):
        return
    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _message(exc: Exception) -> str:
    raw = getattr(exc, "message", None)
    if raw is None and callable(getattr(exc, "details", None)):
        raw = exc.details()  # type: ignore[attr-defined]  # a grpc.RpcError
    text = str(raw or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: Exception, uri: str) -> BackendError:
    """A Milvus failure as one line a user can act on. pymilvus reports a refused token while connecting
    as "Fail connecting ... illegal connection params or server unavailable"; the gRPC status it
    chains tells a refused token (UNAUTHENTICATED, PERMISSION_DENIED) from a server that is not there."""
    status = _grpc_status(exc)
    text = _message(exc)
    lowered = text.lower()
    if status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "auth check failure" in lowered:
        return BackendError(f"Milvus at {uri} refused the token: set VSCLI_MILVUS_TOKEN or `vscli config set "
                            "milvus_token USER:PASSWORD` (or an API key), or pass --token where offered")
    if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED") or "fail connecting" in lowered:
        return BackendError(f"cannot reach Milvus at {uri} (is the server running, and is the address right?)")
    return BackendError(f"Milvus at {uri}: {text}")


def _grpc_status(exc: BaseException | None) -> str | None:
    """The gRPC status code name in the exception or the ones it was raised from."""
    seen = 0
    while exc is not None and seen < 8:
        code = getattr(exc, "code", None)
        if callable(code):
            try:
                return str(getattr(code(), "name", code()))
            except Exception:
                pass
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
