"""Background processing for `attach --no-wait`: a detached `vscli _work` process per request."""

from __future__ import annotations

import subprocess
import sys

from vscli import liveness
from vscli.store import Store


def spawn(store: Store, file_ids: list[str]) -> None:
    """Start a detached worker for these files and record it, so `status` can tell if it dies."""
    log_dir = store.ws.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vscli", "--home", str(store.ws.root), "_work", store.id, *file_ids],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    worker = liveness.describe(proc.pid)
    if worker is not None:
        store.set_worker(file_ids, worker)


def run(store: Store, file_ids: list[str]) -> None:
    """The worker's side: claim the files, then process them."""
    store.set_worker(file_ids, liveness.this_process())
    store.process(file_ids)
