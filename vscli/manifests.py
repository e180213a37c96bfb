"""The shapes of the JSON manifests vscli reads from disk or an archive, checked before anything uses them.

A manifest can be damaged by hand, by a disk, or forged in an archive: an entry that is a number, a serial
that is a path, a generation that is a word. Each reader calls one of these checks right after parsing,
so a bad manifest is `CorruptData` (exit 7, "run doctor --repair") instead of a KeyError deep inside.
Each check returns the parsed value unchanged, or raises naming the first field that is wrong.
"""

from __future__ import annotations

from typing import Any

from vscli.errors import CorruptData
from vscli.workspace import is_file_id, is_store_id

STATUSES = ("in_progress", "completed", "failed", "cancelled")


def _int(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _fail(where: object, what: str) -> CorruptData:
    return CorruptData(f"corrupted manifest {where}: {what}")


def check_state(state: Any, where: object) -> dict[str, Any]:
    """files.json: ``{"files": {file id: entry}, "generation": int, "next_serial": int, "segments":
    [{"n": int, "vectors": int, ...}], ...}``."""
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise _fail(where, "no table of files")
    for key in ("generation", "next_serial"):
        if key in state and not _int(state[key]):
            raise _fail(where, f"{key} is {state[key]!r}, not a count")
    segments = state.get("segments", [])
    if not isinstance(segments, list) or not all(
            isinstance(s, dict) and _int(s.get("n"), 1) and _int(s.get("vectors", 0))
            and isinstance(s.get("kind", ""), str) for s in segments):
        raise _fail(where, "the list of index segments is damaged")
    for file_id, entry in state["files"].items():
        problem = entry_problem(file_id, entry)
        if problem:
            raise _fail(where, problem)
    return state


def entry_problem(file_id: str, entry: Any) -> str | None:
    """What is wrong with one `vector_store.file` entry of files.json, or None."""
    if not is_file_id(file_id):
        return f"{file_id[:60]!r} is not a file id"
    if not isinstance(entry, dict) or entry.get("id") != file_id:
        return f"the entry of {file_id} is not a file entry"
    if entry.get("status") not in STATUSES:
        return f"{file_id} has status {entry.get('status')!r}"
    if not isinstance(entry.get("attributes"), dict):
        return f"{file_id} has no attributes table"
    strategy = entry.get("chunking_strategy")
    static = strategy.get("static") if isinstance(strategy, dict) else None
    if entry["status"] == "in_progress" and (not isinstance(static, dict) or not _int(
            static.get("max_chunk_size_tokens"), 1) or not _int(static.get("chunk_overlap_tokens"))):
        return f"{file_id} has no valid chunking_strategy"  # what processing it would read
    private = entry.get("vscli")
    if not isinstance(private, dict):
        return f"{file_id} lacks vscli's fields"
    serial = private.get("serial")
    if serial is not None and not _int(serial, 1):
        return f"{file_id} has serial {serial!r}, not a positive integer"
    for key in ("chunks", "vectors"):
        if not _int(private.get(key, 0)):
            return f"{file_id} has {key} {private.get(key)!r}, not a count"
    if entry["status"] == "completed" and serial is None:
        return f"{file_id} is completed without chunks"
    return None


def check_config(config: Any, where: object) -> dict[str, Any]:
    """store.json: the `vector_store` object with vscli's settings under "vscli"."""
    if not isinstance(config, dict) or not is_store_id(config.get("id")):
        raise _fail(where, "no vector store id")
    if not isinstance(config.get("name"), str):
        raise _fail(where, "the name is not text")
    if not isinstance(config.get("metadata", {}), dict):
        raise _fail(where, "metadata is not a table")
    settings = config.get("vscli")
    if not isinstance(settings, dict) or not isinstance(settings.get("model"), str):
        raise _fail(where, "no embedding model")
    if not _int(settings.get("dimension"), 1):
        raise _fail(where, f"dimension {settings.get('dimension')!r} is not a positive integer")
    strategy = settings.get("chunking_strategy")
    if not isinstance(strategy, dict):
        raise _fail(where, "no chunking_strategy")
    backend = settings.get("backend", {"kind": "faiss"})
    if not isinstance(backend, dict) or not isinstance(backend.get("kind"), str):
        raise _fail(where, "the backend is not described")
    return config


def check_chunks(doc: Any, where: object) -> dict[str, Any]:
    """chunks/<serial>.json: ``{"file_id", "chunks": [{"text", "start", "end", "tokens", ...}]}``."""
    if not isinstance(doc, dict) or not is_file_id(doc.get("file_id")) or not isinstance(doc.get("chunks"), list):
        raise _fail(where, "not a chunk manifest")
    for chunk in doc["chunks"]:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            raise _fail(where, "a chunk without text")
    return doc


def check_file_object(obj: Any, where: object) -> dict[str, Any]:
    """files/<id>/file.json: OpenAI's `file` object with vscli's sha256."""
    if not isinstance(obj, dict) or not is_file_id(obj.get("id")):
        raise _fail(where, "no file id")
    if not isinstance(obj.get("filename"), str) or not _int(obj.get("bytes")) or not _int(obj.get("created_at")):
        raise _fail(where, "no filename, size or creation time")
    if not isinstance(obj.get("sha256", ""), str):
        raise _fail(where, "the checksum is not text")
    return obj
