"""Processing for the server: one background thread embeds the files clients attach, in order.

Files are attached with this server process as their worker, so if the server dies mid-way the next
reader marks them failed (as for any dead worker) instead of leaving them in progress forever.
"""

from __future__ import annotations

import logging
import queue
import threading

from vscli.store import Store
from vscli.workspace import Workspace

log = logging.getLogger("vscli.server")


class Processor:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._queue: queue.Queue[tuple[str, list[str]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vscli-processing", daemon=True)
        self._thread.start()

    def submit(self, store_id: str, file_ids: list[str]) -> None:
        if file_ids:
            self._queue.put((store_id, list(file_ids)))

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            store_id, file_ids = job
            try:
                Store(self.ws, store_id).process(file_ids)
            except Exception as exc:  # recorded on the files as last_error; the thread keeps serving
                log.warning("processing %s in %s stopped: %s", ", ".join(file_ids), store_id, exc)
