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

    import time

    console = Console(file=sys.stderr)
    counts = {"chunks": 0, "embedded": 0}
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[embedded]} windows embedded "
                   "({task.fields[rate]}/s)"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("processing", total=total_files, chunks=0, embedded=0, rate="-")

        def hook(event: str, amount: int) -> None:
            if event == "files":
                bar.advance(task, amount)
            else:
                counts[event] += amount
                elapsed = time.monotonic() - started
                rate = f"{counts['embedded'] / elapsed:.0f}" if elapsed > 0.5 and counts["embedded"] else "-"
                bar.update(task, rate=rate, **counts)

        yield hook


@contextmanager
def count_progress(total: int, description: str, unit: str, quiet: bool = False) -> Iterator[Callable[[], None]]:
    """Yields a callable that advances a bar of ``total`` items by one (nothing when piped or quiet)."""
    if quiet or not sys.stderr.isatty() or total == 0:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import time

    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit + " ({task.fields[rate]}/s)"),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total, rate="-")
        done = [0]

        def advance() -> None:
            done[0] += 1
            elapsed = time.monotonic() - started
            bar.update(task, advance=1, rate=f"{done[0] / elapsed:.1f}" if elapsed > 0.5 else "-")

        yield advance
