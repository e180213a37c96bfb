"""Issue 18, a first hour without surprises: destructive commands ask on a terminal and take "no" calmly,
store names are unique. Prompts are answered through a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import EXAMPLES, assert_clean_error
from vscli.errors import ExitCode


def _answer(args: list[str], home: Path, answer: str) -> tuple[int, str, str]:
    """Run vscli with stdin and stderr on a pseudo-terminal, answer its question, and return (exit code,
    what the terminal showed, stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vscli", *args], stdin=slave, stdout=subprocess.PIPE,
                            stderr=slave, env={**os.environ, "VSCLI_HOME": str(home), "COLUMNS": "120"})
    os.close(slave)
    shown, answered, deadline = b"", False, time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
            if not answered and b"[y/N]" in shown:
                os.write(master, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    os.close(master)
    return proc.wait(timeout=60), shown.decode(errors="replace"), out


def test_declining_delete_is_calm(cli, home: Path) -> None:
    """Answering "n" to `delete` printed `Error: interrupted` and exited 130."""
    store_id = cli("create", "notes").stdout.strip()
    code, shown, _ = _answer(["delete", "notes"], home, "n")
    assert code == 0 and "nothing deleted" in shown and "Error" not in shown, shown
    assert (home / "stores" / store_id).is_dir()
    code, shown, _ = _answer(["delete", "notes"], home, "y")
    assert code == 0 and not (home / "stores" / store_id).exists()


def test_delete_file_names_the_stores_and_asks(cli, home: Path) -> None:
    """`delete-file` neither asked nor said that it removes the file from every store (it did: 2)."""
    file_id = cli("upload", str(EXAMPLES / "data_mining.md")).stdout.strip()
    for name in ("notes", "wiki"):
        assert cli("create", name).exit_code == 0
        assert cli("attach", name, file_id, "-q").exit_code == 0
    code, shown, _ = _answer(["delete-file", file_id], home, "n")
    assert code == 0 and "nothing deleted" in shown, shown
    assert "data_mining.md" in shown and "2 store(s)" in shown and "notes" in shown and "wiki" in shown
    assert len(json.loads(cli("files", "wiki", "--json").stdout)["data"]) == 1
    code, shown, _ = _answer(["delete-file", file_id], home, "y")
    assert code == 0 and json.loads(cli("files", "wiki", "--json").stdout)["data"] == []
    other = cli("upload", str(EXAMPLES / "vector_search.md")).stdout.strip()
    assert cli("delete-file", other, "--yes").exit_code == 0  # scripts: no terminal, or --yes


def test_store_names_are_unique(cli) -> None:
    """`create notes` when "notes" existed made a second store; every command using the name then failed
    as ambiguous."""
    first = cli("create", "notes").stdout.strip()
    assert_clean_error(cli("create", "notes"), ExitCode.USAGE, f"exists already ({first})")
    assert [s["id"] for s in json.loads(cli("ls", "--json").stdout)["data"]] == [first]
    assert cli("create", "notes", "--allow-duplicate-name").exit_code == 0
    assert_clean_error(cli("status", "notes"), ExitCode.USAGE, "matches 2 vector stores")


# ---- every example pastes into a shell as it is written ------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&", "2>", "2>&1"}


def _help_examples() -> list[str]:
    import typer.main

    from vscli.cli import commands

    def texts(command) -> list[str]:
        found = [command.help or ""]
        for sub in getattr(command, "commands", {}).values():
            found += texts(sub)
        return found

    return [line.split("Example:", 1)[1].strip() for text in texts(typer.main.get_command(commands()))
            for line in text.splitlines() if "Example:" in line]


def _readme_examples() -> list[str]:
    lines, block = [], ""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            block = line.strip()[3:]
            continue
        if block == "console" and not line.startswith("$ "):
            continue  # a command's output
        command = line.removeprefix("$ ").split("  #")[0].strip()
        if block in ("sh", "bash", "console") and command.startswith("vscli "):
            lines.append(command)
    return lines


def _invocations(example: str) -> list[list[str]]:
    """The argument lists of the vscli commands in a shell line, split as bash would split them."""
    import shlex

    lexer = shlex.shlex(example, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens, segments, current = list(lexer), [], []
    for token in tokens:
        if token in OPERATORS or set(token) <= set("|&;<>"):
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    return [segment[1:] for segment in segments if segment[:1] == ["vscli"]]


def test_every_example_parses_as_written() -> None:
    """`--where year>=2020` in --help, docs/cli.md and the README, pasted into bash, made a file named
    `=2020`. Each example is split as a shell splits it and parsed by vscli's own parser; the values of
    --where, --attr and --metadata must parse too."""
    import typer.main

    from vscli.cli import commands
    from vscli.cli.options import parse_attributes, parse_metadata, parse_where

    examples = _help_examples() + _readme_examples()
    assert len(examples) > 50
    parsed = 0
    for example in examples:
        for args in _invocations(example):
            command, context = typer.main.get_command(commands()), None
            while hasattr(command, "commands") and args and not args[0].startswith("-"):
                context = command.make_context(args[0], [], parent=context, resilient_parsing=True)
                command, args = command.commands[args[0]], args[1:]
            params = command.make_context("vscli", list(args), parent=context).params
            parsed += 1
            parse_where(params.get("where"))
            parse_attributes(params.get("attr"))
            parse_metadata(params.get("metadata"))
    assert parsed >= len(examples)


# ---- output that says what happened, and nothing more ------------------------------------------------


def test_small_output_surprises(cli, tmp_path: Path) -> None:
    """`files` always showed an empty LAST ERROR column; `sync --dry-run` exited 4 for a plan; sync said
    `failed: empty.md: empty.md: file is empty`; `upload --no-wait` ended `0 file(s) completed`."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text("Spring tides come with the full and the new moon.")
    (folder / "empty.md").write_text("")
    assert cli("create", "docs").exit_code == 0
    dry = cli("sync", str(folder), "--store", "docs", "--dry-run")
    assert dry.exit_code == 0 and "failed: empty.md: file is empty" in dry.stderr, dry.stderr
    result = cli("sync", str(folder), "--store", "docs")
    assert result.exit_code == ExitCode.FILES_FAILED
    assert "failed: empty.md: file is empty" in result.stderr and "empty.md: empty.md" not in result.stderr
    header = cli("files", "docs").stdout.splitlines()[0].split("\t")
    assert header == ["FILE ID", "FILENAME", "STATUS", "SIZE", "ATTACHED"]
    result = cli("upload", str(EXAMPLES / "data_mining.md"), "--store", "docs", "--no-wait")
    assert result.exit_code == 0 and "completed" not in result.stderr, result.stderr
    assert "in the background" in result.stderr
    assert cli("status", "docs", "--wait", "--timeout", "120").exit_code == 0


def test_interrupted_prompt_ends_its_line(cli, home: Path) -> None:
    """`^CError: interrupted` landed on the prompt's line."""
    import signal

    assert cli("create", "notes").exit_code == 0
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vscli", "delete", "notes"], stdin=slave, stderr=slave,
                            stdout=subprocess.PIPE, env={**os.environ, "VSCLI_HOME": str(home)})
    os.close(slave)
    shown = b""
    while b"[y/N]" not in shown:
        shown += os.read(master, 4096)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == ExitCode.INTERRUPTED
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert re.search(rb"\[y/N\]: ?\r?\nError: interrupted", shown), shown


# ---- slow work is announced on a terminal, and silent when piped --------------------------------------


def test_a_first_query_on_a_new_install_says_what_it_waits_for(cli, home: Path, tmp_path: Path) -> None:
    """A first query with no ONNX export yet was silent for 16-50 s (loading the model, then exporting);
    now the export is built in a few seconds, and says so."""
    from tests.test_terminal import _run_with_tty

    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(EXAMPLES / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    piped = subprocess.run([sys.executable, "-m", "vscli", "query", "docs", "data mining", "-k", "1"],
                           capture_output=True, timeout=300,
                           env={**os.environ, "VSCLI_HOME": str(home), "VSCLI_CACHE_DIR": str(tmp_path / "a")})
    assert piped.returncode == 0 and piped.stderr == b"", piped.stderr  # piped: not a word
    code, shown, out = _run_with_tty(["query", "docs", "data mining", "-k", "1"], home, "stderr",
                                     {"VSCLI_CACHE_DIR": str(tmp_path / "b")})
    assert code == 0 and b"data_mining.md" in out
    assert b"preparing the model for fast queries and ingest" in shown, shown  # built without torch


def test_status_wait_shows_the_counts_moving(cli, home: Path) -> None:
    """`status --wait` showed nothing while it waited (46 s of blank screen)."""
    from tests.test_terminal import _run_with_tty

    assert cli("create", "docs").exit_code == 0
    paths = [str(p) for p in sorted(EXAMPLES.glob("*.md"))]
    assert cli("upload", *paths, "--store", "docs", "--no-wait", "-q").exit_code == 0
    code, shown, out = _run_with_tty(["status", "docs", "--wait"], home, "stderr")
    assert code == 0 and b"completed" in out
    assert b"waiting" in shown and b"in progress" in shown, shown


def test_ids_are_never_split_at_80_columns(cli, home: Path) -> None:
    """At 80 columns, `ls`, `files` and `info` split ids across lines (not copy-pastable)."""
    from tests.test_terminal import _run_with_tty

    store_id = cli("create", "a store with a rather long name for a narrow terminal").stdout.strip()
    paths = [str(p) for p in sorted(EXAMPLES.glob("*.md"))[:2]]
    file_ids = cli("upload", *paths, "--store", store_id, "-q").stdout.split()
    for args, ids in ((["ls"], [store_id]), (["files", store_id], file_ids), (["info"], [store_id]),
                      (["uploads"], file_ids)):
        code, shown, _ = _run_with_tty(args, home, "stdout", {"COLUMNS": "80", "NO_COLOR": "1"})
        assert code == 0, shown
        for found in ids:
            assert found.encode() in shown, (args, found, shown.decode())


def test_query_output_keeps_its_indent_and_is_short_on_a_terminal(cli, home: Path) -> None:
    """Human `query` output wrapped long lines back to column 0, and a default query printed 232 lines."""
    from tests.test_terminal import _run_with_tty

    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(EXAMPLES), "-r", "--store", "docs", "-q").exit_code == 0
    code, shown, _ = _run_with_tty(["query", "docs", "data mining"], home, "stdout",
                                   {"COLUMNS": "60", "NO_COLOR": "1"})
    lines = shown.decode().replace("\r", "").splitlines()
    assert code == 0 and "more line(s); --full prints the whole chunk" in shown.decode()
    body = [line for line in lines if line and not line[0].isdigit()]
    assert body and all(line.startswith("   ") and len(line) <= 60 for line in body), body
    assert len(lines) <= 10 * 9
    code, whole, _ = _run_with_tty(["query", "docs", "data mining", "--full"], home, "stdout", {"COLUMNS": "60"})
    assert code == 0 and b"more line(s)" not in whole and len(whole.splitlines()) > len(lines)
    piped = cli("query", "docs", "data mining", "-k", "1").stdout  # data: the chunk as it is
    chunk = json.loads(cli("query", "docs", "data mining", "-k", "1", "--json").stdout)["data"][0]
    assert chunk["content"][0]["text"].strip().splitlines()[2] in piped


def test_upload_recursive_keeps_each_files_path(cli, tmp_path: Path) -> None:
    """`upload DIR --recursive` kept only base names: nine different README.md in one store,
    indistinguishable in results. Each file now records its path in DIR, as `sync` does."""
    from tests.chat_server import ChatServer

    folder = tmp_path / "wiki"
    for rel, topic in [("README.md", "data mining"), ("otters/README.md", "river otters"),
                       ("ice/glaciers/README.md", "glaciers")]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"# About {topic}\n\nThis readme is about {topic} and nothing else.\n")
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(folder), "-r", "--store", "docs", "-q").exit_code == 0
    files = json.loads(cli("files", "docs", "--json").stdout)["data"]
    assert sorted(f["attributes"]["path"] for f in files) == ["README.md", "ice/glaciers/README.md",
                                                              "otters/README.md"]
    shown = cli("query", "docs", "readme about river otters", "-k", "3").stdout
    assert shown.startswith("1. otters/README.md  file-") and "ice/glaciers/README.md  file-" in shown
    with ChatServer() as chat:
        asked = cli("ask", "docs", "what about otters?", "--base-url", chat.base_url, "--api-key", "k",
                    "--model", "test-model", "--no-stream", "-k", "2")
        assert asked.exit_code == 0, asked.stderr
        assert "  [1] otters/README.md  file-" in asked.stdout.partition("\nSources:\n")[2]
        prompt = "\n".join(m["content"] for m in chat.requests[0]["body"]["messages"])
        assert "[1] otters/README.md" in prompt  # the model sees it too
    plan = cli("sync", str(folder), "--store", "docs", "--dry-run")  # sync recognises the files it would add
    assert plan.exit_code == 0 and "unchanged 3" in plan.stderr + plan.stdout
    (folder / "extra.md").write_text("# Extra\n\nAn extra note.\n")
    assert cli("upload", str(folder), "-r", "--store", "docs", "-q", "--attr", "path=elsewhere.md").exit_code == 0
    paths = {f["attributes"]["path"] for f in json.loads(cli("files", "docs", "--json").stdout)["data"]}
    assert "elsewhere.md" in paths  # an explicit --attr path= wins
