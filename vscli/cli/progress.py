"""Progress for long work: a Rich bar on stderr when it is a terminal, nothing when piped or --quiet."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

Hook = Callable[[str, int], None]


@contextmanager
def ingest_progress(total_files: int, quiet: bool = False) -> Iterator[Hook]:
    """Yields a hook for `Store.process`: ("files"|"chunks"|"embedded", amount)."""
    if quiet or not sys.stderr.isatty() or total_files == 0:
        yield lambda event, amount: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=sys.stderr)
    counts = {"chunks": 0, "embedded": 0}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[embedded]} windows embedded"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("processing", total=total_files, chunks=0, embedded=0)

        def hook(event: str, amount: int) -> None:
            if event == "files":
                bar.advance(task, amount)
            else:
                counts[event] += amount
                bar.update(task, **counts)

        yield hook


@contextmanager
def count_progress(total: int, description: str, unit: str, quiet: bool = False) -> Iterator[Callable[[], None]]:
    """Yields a callable that advances a bar of ``total`` items by one (nothing when piped or quiet)."""
    if quiet or not sys.stderr.isatty() or total == 0:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task, 1)
