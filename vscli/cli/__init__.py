"""The command-line interface: parses arguments, calls the library, renders output. No behaviour of
its own. One module per command group; `app.py` holds the app and the error boundary."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import typer

from vscli.cli.app import app

COMPLETE_VAR = "_VSCLI_COMPLETE"  # set by the shell completion scripts in completions/

# The module that defines each command (importing it registers its commands on `app`), in the order
# `vscli --help` lists them. A command line imports only its command's module: the others and the
# library they pull in are a third of start-up (tests/test_help.py keeps this map true).
MODULES = ("stores", "query", "ask", "eval_cmd", "files", "serve_cmd", "workspace_cmd", "config_cmd")
COMMAND_MODULES = {
    **dict.fromkeys(("create", "ls", "status", "migrate", "delete", "doctor"), "stores"),
    "query": "query", "ask": "ask", "eval": "eval_cmd",
    **dict.fromkeys(("upload", "attach", "_work", "files", "rm", "cat", "uploads", "delete-file", "sync"), "files"),
    "serve": "serve_cmd",
    **dict.fromkeys(("info", "usage", "export", "import"), "workspace_cmd"),
    "config": "config_cmd",
}


def commands() -> typer.Typer:
    """The app with every command registered (help, completions, the generated docs, tests)."""
    for module in MODULES:
        importlib.import_module(f"vscli.cli.{module}")
    return app


def main() -> None:
    """Console-script entry point. The process ends with the command (`_end_process`): code that calls
    this and has something to do after it uses try/finally (an exit handler registered before the call
    is skipped)."""
    import atexit
    import os
    import sys

    from typer.main import get_command

    atexit.register(_end_process)  # before any of vscli's: the last to run
    if COMPLETE_VAR in os.environ:  # a shell asks for completions: load the shells' protocol only then
        from typer._completion_classes import completion_init

        completion_init()
        target = commands()  # completions may be asked for any command
    else:
        target = only(command_named(sys.argv[1:]))
    try:
        get_command(target).main(prog_name="vscli", complete_var=COMPLETE_VAR)
    except SystemExit as leaving:  # every command ends so (`app.VscliGroup.main`)
        code = leaving.code
        _exit_status.append(code if isinstance(code, int) else 0 if code is None else 1)
        raise


_exit_status: list[int] = []


def _end_process() -> None:
    """The last exit handler: flush stdout and stderr and end the process with the command's status,
    skipping the interpreter's teardown. Freeing every module and object one by one, just before the OS
    frees the whole process at once, cost a cold query 40-45 ms here (15% of it: onnxruntime's session,
    numpy, tokenizers) and a light command about 10 ms. By now the command has returned, the threads not
    marked daemon have been joined and the other exit handlers (vscli's closing of its SQLite files among
    them) have run. After an uncaught exception (not a status), Python's own exit."""
    import os
    import sys

    if not _exit_status:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a stream already closed
            pass
    os._exit(_exit_status[0])


def command_named(args: list[str]) -> str | None:
    """The command a command line runs: its first word after the root's own options (None when an
    option the root does not have comes first, or no command is named)."""
    words = iter(args)
    for word in words:
        if word == "--home":
            next(words, None)
        elif word == "--debug" or word.startswith("--home="):
            continue
        else:
            return None if word.startswith("-") else word
    return None


def only(name: str | None) -> typer.Typer:
    """The app with just the named command, its module alone imported. Typer builds every command's
    parameters from its signature before it runs one; a command line needs only its own. The root's
    help gets `listing()`, a misspelt command the whole app."""
    from copy import copy

    if name is None:
        return listing()
    if name not in COMMAND_MODULES:
        return commands()  # a misspelt command: click suggests the nearest of all
    importlib.import_module(f"vscli.cli.{COMMAND_MODULES[name]}")
    narrowed = copy(app)
    narrowed.registered_commands = [c for c in app.registered_commands if _command_name(c) == name]
    narrowed.registered_groups = [g for g in app.registered_groups if g.name == name]
    return narrowed


def listing() -> typer.Typer:
    """The whole app as the root's help shows it (``vscli``, ``vscli --help``, ``--version``): every
    command's name and help, none of its parameters, which the root's help never shows and which are
    most of the cost of building a command (tests/test_help.py: the same help as the whole app's)."""
    from copy import copy

    def named_only(info: Any) -> Any:
        callback = info.callback

        def command() -> None:  # never run: a command line that names a command gets only(name)
            raise AssertionError("a listed command ran")

        shown = copy(info)
        shown.name = _command_name(info)
        shown.help = info.help if info.help is not None else inspect.getdoc(callback)
        shown.callback = command
        return shown

    whole = commands()
    listed = copy(whole)
    listed.registered_commands = [named_only(info) for info in whole.registered_commands]
    return listed


def _command_name(info: Any) -> str:
    """A registered command's name as typer gives it: its own, else its function's name with dashes."""
    from typer.main import get_command_name

    return info.name or get_command_name(getattr(info.callback, "__name__", ""))
