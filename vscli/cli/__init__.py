"""The command-line interface: parses arguments, calls the library, renders output. No behaviour of
its own. One module per command group; `app.py` holds the app and the error boundary."""

from __future__ import annotations

from vscli.cli import ask, config_cmd, eval_cmd, files, query, stores  # noqa: F401  (registers the commands)
from vscli.cli.app import app


def main() -> None:
    """Console-script entry point."""
    from typer.main import get_command

    get_command(app).main(prog_name="vscli")
