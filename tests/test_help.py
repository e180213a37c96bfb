"""Every command explains itself and is documented in the README."""

from __future__ import annotations

import pytest
from typer.main import get_command

from tests.conftest import ROOT
from vscli.cli import app
from vscli.errors import ExitCode

COMMANDS = sorted(name for name, cmd in get_command(app).commands.items() if not cmd.hidden)


def test_the_commands_we_promise_exist() -> None:
    assert {"create", "upload", "attach", "status", "cat", "rm", "query", "ls", "files", "delete",
            "delete-file", "uploads"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(cli, name: str) -> None:
    result = cli(name, "--help")
    assert result.exit_code == 0
    cmd = get_command(app).commands[name]
    assert cmd.help and len(cmd.help.strip()) > 20
    assert "Example:" in cmd.help


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"vscli {name}" in readme, f"README.md does not document `vscli {name}`"


def test_every_exit_code_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in readme, f"exit code {code.value} ({code.name}) is not in the README"


def test_no_arguments_prints_help(cli) -> None:
    result = cli()
    assert result.exit_code == 0 and "Usage" in result.stdout
