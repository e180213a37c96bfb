"""Announcements of slow work the user did not ask for by name: loading a model, the one-time export.

The library never prints. Where it starts something that takes seconds with nothing else to show, it
calls `announce`; a front end that wants the user told (the CLI, on a terminal) listens with
`listening`. Only the innermost listener hears it, so a progress bar can show the news in its own line
instead of a message breaking through it. Without a listener an announcement costs nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

Listener = Callable[[str], None]
_listeners: list[Listener] = []


def announce(text: str) -> None:
    """Tell the innermost listener, if any, about slow work starting now."""
    if _listeners:
        _listeners[-1](text)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Hear announcements for the duration of the block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
