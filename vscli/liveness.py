"""Is the process that claimed a file still alive? (pid plus start time, so a reused pid does not count)."""

from __future__ import annotations

import os
from typing import Any


def this_process() -> dict[str, Any]:
    import psutil

    return {"pid": os.getpid(), "started": psutil.Process().create_time()}


def describe(pid: int) -> dict[str, Any] | None:
    import psutil

    try:
        return {"pid": pid, "started": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def is_alive(worker: dict[str, Any]) -> bool:
    import psutil

    try:
        proc = psutil.Process(int(worker["pid"]))
        if abs(proc.create_time() - float(worker["started"])) > 0.5:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
