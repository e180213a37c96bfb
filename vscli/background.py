"""A call run in a daemon thread, whose result or exception is handed to the thread that waits for it.

Used where vscli overlaps work that releases the GIL (an onnxruntime session build, the query's encoder)
with work of its own, and where a deadline must be able to leave a blocking call behind (`ask`).
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class Background:
    def __init__(self, call: Callable[[], Any] | None, name: str = "vscli-background") -> None:
        self._outcome: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        if call is not None:
            self._thread = threading.Thread(target=self._run, args=(call,), name=name, daemon=True)
            self._thread.start()

    @classmethod
    def done(cls, value: Any) -> Background:
        """A result that is already there (no thread)."""
        finished = cls(None)
        finished._outcome["value"] = value
        return finished

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self._outcome["value"] = call()
        except BaseException as exc:  # handed to the thread that waits for the result
            self._outcome["error"] = exc

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the call to end (at most ``timeout`` seconds); whether it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def result(self) -> Any:
        """What the call returned, once it has; raises what it raised."""
        self.wait()
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]
