"""The command-line interface: parses arguments, calls the library, renders output. No behaviour of
its own. One module per command group; `app.py` holds the app and the error boundary."""

from __future__ import annotations

from vscli.cli import ask, config_cmd, eval_cmd, files, query, serve_cmd, stores, workspace_cmd  # noqa: F401  (registers the commands)
from vscli.cli.app import app

COMPLETE_VAR = "_VSCLI_COMPLETE"  # set by the shell completion scripts in completions/


def main() -> None:
    """Console-script entry point."""
    import os

    from typer.main import get_command

    if COMPLETE_VAR in os.environ:  # a shell asks for completions: load the shells' protocol only then
        from typer._completion_classes import completion_init

        completion_init()
    get_command(app).main(prog_name="vscli", complete_var=COMPLETE_VAR)
