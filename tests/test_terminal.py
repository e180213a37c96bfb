"""What a terminal sees and what a pipe sees: progress bars only on a terminal's stderr, never with
--quiet or when piped; no colour or control codes on stdout unless it is a terminal without NO_COLOR."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_vscli
from tests.corpus import write_corpus

ESC = b"\x1b["


def _run_with_tty(args: list[str], home: Path, tty: str, extra_env: dict[str, str] | None = None
                  ) -> tuple[int, bytes, bytes]:
    """Run vscli with `tty` ("stdout" or "stderr") attached to a pseudo-terminal and the other piped;
    returns (exit code, what the terminal showed, what the pipe got)."""
    master, slave = pty.openpty()
    env = {**os.environ, "VSCLI_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120",
           **(extra_env or {})}
    env.pop("NO_COLOR", None) if "NO_COLOR" not in (extra_env or {}) else None
    streams = {"stdout": slave, "stderr": subprocess.PIPE} if tty == "stdout" else {"stdout": subprocess.PIPE,
                                                                                      "stderr": slave}
    proc = subprocess.Popen([sys.executable, "-m", "vscli", *args], stdin=subprocess.DEVNULL, env=env, **streams)
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process is done with it
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    piped = (proc.stderr if tty == "stdout" else proc.stdout).read()  # type: ignore[union-attr]
    os.close(master)
    return proc.wait(timeout=120), shown, piped


def test_progress_bar_on_a_terminal_only(tmp_path: Path, home: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 30, paragraphs=6)
    assert run_vscli("create", "docs", home=home).returncode == 0
    rc, shown, piped = _run_with_tty(["upload", str(corpus[0].parent), "-r", "--store", "docs"], home, "stderr",
                                     {"VSCLI_BATCH_CHUNKS": "8", "VSCLI_CACHE_DIR": str(tmp_path / "new-install")})
    assert rc == 0, shown
    assert b"processing" in shown and b"files" in shown and b"chunks" in shown  # the bar, on stderr
    # A new install's first upload: the silent 5-20 s before the first file moved (now a few seconds of
    # building the bundled model's graph), said.
    assert b"preparing the model for fast queries and ingest" in shown, shown
    assert len(piped.split()) == 30 and ESC not in piped  # ids only on stdout, no control codes
    # --quiet: nothing on the terminal at all
    more = write_corpus(tmp_path / "more", 3)
    rc, shown, piped = _run_with_tty(["upload", *map(str, more), "--store", "docs", "--quiet", "--attr", "a=1"],
                                     home, "stderr")
    assert rc == 0 and shown == b"" and len(piped.split()) == 3
    # piped stderr: no bar, no control codes
    result = run_vscli("attach", "docs", *piped.decode().split(), "--attr", "a=2", home=home)
    assert result.returncode == 0 and ESC not in result.stderr and b"processing" not in result.stderr


def test_tables_colour_only_on_a_terminal_without_no_color(home: Path) -> None:
    assert run_vscli("create", "docs", home=home).returncode == 0
    rc, shown, _ = _run_with_tty(["ls"], home, "stdout")
    assert rc == 0 and b"docs" in shown and ESC in shown  # a styled table on a terminal
    rc, shown, _ = _run_with_tty(["ls"], home, "stdout", {"NO_COLOR": "1"})
    assert rc == 0 and b"docs" in shown and ESC not in shown
    piped = run_vscli("ls", home=home)
    assert piped.stdout.startswith(b"ID\tNAME\t") and ESC not in piped.stdout


def test_indexing_an_older_workspaces_uploads_is_said_on_a_terminal(tmp_path: Path, home: Path) -> None:
    """A workspace of vscli 0.2 has upload folders and no registry: the first command indexes them (a
    large workspace: seconds), and says so on a terminal, never on a pipe."""
    source = tmp_path / "note.txt"
    source.write_text("a note\n")
    file_id = run_vscli("upload", str(source), home=home).stdout.decode().strip()
    (home / "files" / "registry.sqlite").unlink()
    rc, shown, piped = _run_with_tty(["cat", file_id], home, "stderr")
    assert rc == 0 and b"indexing the workspace's uploads" in shown and piped == b"a note\n"
    (home / "files" / "registry.sqlite").unlink()
    piped_run = run_vscli("cat", file_id, home=home)
    assert piped_run.returncode == 0 and piped_run.stderr == b"" and piped_run.stdout == b"a note\n"
