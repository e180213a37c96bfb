"""Progress for long work: a Rich bar on stderr when it is a terminal, nothing when piped or --quiet."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

Hook = Callable[[str, int], None]
Advance = Callable[..., None]  # advance(total=None): one more item done, and the total if now known


def _shown(total: int, quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty() and total != 0


def _bar(detail: str) -> Any:
    """A transient bar on stderr: description, bar, done/total, ``detail``, time left."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(detail),
                    TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True)


def _rate(count: int, started: float, digits: int) -> str:
    """Items per second so far ("-" until there is half a second of history to go on)."""
    elapsed = time.monotonic() - started
    return f"{count / elapsed:.{digits}f}" if elapsed > 0.5 and count else "-"


@contextmanager
def ingest_progress(total_files: int, quiet: bool = False) -> Iterator[Hook]:
    """Yields a hook for `Store.process` (see `vscli.store.ProgressHook`). The bar counts files, and moves
    within a batch of files as its windows are embedded (a batch is committed at once, every ~256
    chunks); slow set-up (loading the model, the one-time export) shows as the bar's description."""
    from vscli import notices

    if not _shown(total_files, quiet):
        with notices.listening(lambda text: None):  # --quiet, or piped: not a word
            yield lambda event, amount: None
        return
    counts = {"chunks": 0, "embedded": 0}
    batch = {"files": 0, "chunks": 0, "embedded": 0, "shown": 0.0}
    started = time.monotonic()
    with _bar("files · {task.fields[chunks]} chunks · {task.fields[embedded]} windows embedded "
              "({task.fields[rate]}/s)") as bar:
        task = bar.add_task("processing", total=total_files, chunks=0, embedded=0, rate="-")

        def hook(event: str, amount: int) -> None:
            if event == "batch":
                batch.update(files=amount, chunks=0, embedded=0, shown=0.0)
                return
            if event == "files":  # committed: the batch's whole share, less what was shown already
                bar.update(task, advance=amount - batch["shown"], description="processing")
                batch["shown"] = 0.0
                return
            counts[event] += amount
            batch[event] += amount
            share = batch["files"] * min(1.0, batch["embedded"] / batch["chunks"]) if batch["chunks"] else 0.0
            share = min(share, batch["files"] - 0.5)  # the last of it waits for the commit
            bar.update(task, advance=max(0.0, share - batch["shown"]), description="processing",
                       rate=_rate(counts["embedded"], started, 0), **counts)
            batch["shown"] = max(batch["shown"], share)

        with notices.listening(lambda text: bar.update(task, description=text.split(" (")[0] + " …")):
            yield hook


@contextmanager
def wait_progress(quiet: bool = False) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Yields ``seen(vector_store)`` for `Store.wait`: a bar of files done (completed, failed or cancelled)
    out of all, with the counts, on a terminal; nothing when piped."""
    if not _shown(1, quiet):
        yield lambda obj: None
        return
    with _bar("files done · {task.fields[counts]}") as bar:
        task = bar.add_task("waiting", total=None, counts="")

        def seen(obj: dict[str, Any]) -> None:
            counts = obj["file_counts"]
            bar.update(task, total=counts["total"], completed=counts["total"] - counts["in_progress"],
                       counts=f"{counts['in_progress']} in progress, {counts['completed']} completed, "
                              f"{counts['failed']} failed")

        yield seen


@contextmanager
def count_progress(total: int | None, description: str, unit: str, quiet: bool = False) -> Iterator[Advance]:
    """Yields ``advance(total=None)``, which moves a bar of ``total`` items on by one; pass the total to
    it when it is only known once the work has begun (None here). Nothing when piped or quiet."""
    if not _shown(total if total is not None else 1, quiet):
        yield lambda total=None: None
        return
    started = time.monotonic()
    with _bar(unit + " ({task.fields[rate]}/s)") as bar:
        task = bar.add_task(description, total=total, rate="-")
        done = 0

        def advance(total: int | None = None) -> None:
            nonlocal done
            done += 1
            bar.update(task, advance=1, rate=_rate(done, started, 1), **({"total": total} if total else {}))

        yield advance
