"""The usage log: what each request and each ingest cost, one JSON line per event, in the workspace.

`vscli serve` writes a line per request under /v1/ (time, method, path, status, latency, store, bytes
stored, the request's `user`, whether it carried the server's key). Whichever process embeds files — the
CLI, a background worker, the server's processing thread — writes a line per committed batch (files,
chunks, vectors, tokens embedded, bytes). `vscli usage` sums both per store and UTC day.

The log is `logs/usage.jsonl` in the workspace, rotated by size (`VSCLI_USAGE_LOG_BYTES`, default 10 MB;
the five newest rotated files are kept). Writing it never fails the work it records: on a read-only or
full disk the line is lost, not the upload.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from vscli.errors import InvalidInput, VscliError
from vscli.workspace import Workspace, locked

LOG_NAME = "usage.jsonl"
KEEP = 5  # rotated files kept: usage.jsonl.1 (newest) .. usage.jsonl.5
SIZE_ENV = "VSCLI_USAGE_LOG_BYTES"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
COUNTS = ("requests", "errors", "files", "failed", "chunks", "vectors", "tokens", "bytes")

_source = "cli"


def set_source(name: str) -> None:
    """Who this process writes lines as: "cli" (the default) or "serve"."""
    global _source
    _source = name


def log_path(ws: Workspace) -> Path:
    return ws.root / "logs" / LOG_NAME


def max_bytes() -> int:
    raw = os.environ.get(SIZE_ENV, "")
    try:
        return max(int(raw), 1024) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        return DEFAULT_MAX_BYTES


def record(ws: Workspace, event: dict[str, Any]) -> None:
    """Append one event; rotate the log first when it would pass its size. Never raises."""
    line = json.dumps({"time": round(time.time(), 3), "source": _source, **event}, separators=(",", ":")) + "\n"
    path = log_path(ws)
    try:
        if not ws.root.is_dir():
            return  # no workspace yet: nothing was stored, nothing to count
        path.parent.mkdir(exist_ok=True)
        (ws.root / "locks").mkdir(exist_ok=True)
        with locked(ws.lock_path("usage")):
            if path.exists() and path.stat().st_size + len(line) > max_bytes():
                _rotate(path)
            with open(path, "a", encoding="utf-8") as log:
                log.write(line)
    except (OSError, VscliError):
        pass


def _rotate(path: Path) -> None:
    for number in range(KEEP - 1, 0, -1):
        older = path.with_name(f"{path.name}.{number}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{number + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))


def events(ws: Workspace) -> Iterator[dict[str, Any]]:
    """Every event still on disk, oldest first; lines that do not parse (a torn write) are skipped."""
    path = log_path(ws)
    for file in [path.with_name(f"{path.name}.{n}") for n in range(KEEP, 0, -1)] + [path]:
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise VscliError(f"cannot read the usage log {file}: {exc.strerror or exc}") from exc
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("time"), (int, float)):
                yield event


def parse_since(text: str) -> float:
    """A day (2026-12-01) or an ISO date and time, read as UTC unless it names its zone -> epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"since must be a date such as 2026-12-01 (or an ISO date and time), "
                           f"got {text!r}", field="since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def summarize(ws: Workspace, store: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
    """Sums per UTC day and store, oldest first: requests (and how many failed), and what was embedded
    (files, failed files, chunks, vectors, tokens, bytes of the files). Requests that name no store count
    under store null; a request's own `bytes` (an upload's size) is in its line, not summed, so that an
    upload that is then embedded is not counted twice."""
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}
    for event in events(ws):
        if since is not None and event["time"] < since:
            continue
        if store is not None and event.get("store") != store:
            continue
        day = datetime.fromtimestamp(event["time"], timezone.utc).strftime("%Y-%m-%d")
        key = (day, event.get("store") if isinstance(event.get("store"), str) else None)
        row = rows.setdefault(key, {"day": day, "store": key[1], **{name: 0 for name in COUNTS}})
        if event.get("kind") == "request":
            row["requests"] += 1
            row["errors"] += 1 if isinstance(event.get("status"), int) and event["status"] >= 400 else 0
        elif event.get("kind") == "ingest":
            for name in ("files", "failed", "chunks", "vectors", "tokens", "bytes"):
                row[name] += _count(event.get(name))
    return [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or ""))]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
