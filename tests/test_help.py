"""Every command explains itself and is documented in the README."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from tests.conftest import ROOT, run_vscli
from vscli.cli import COMMAND_MODULES, MODULES, command_named, commands, listing, only
from vscli.errors import ExitCode

app = commands()
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


@pytest.mark.parametrize("args, name", [
    (["status", "docs"], "status"), (["--home", "/tmp/x", "ls"], "ls"), (["--home=/tmp/x", "--debug", "cat"], "cat"),
    (["config", "get", "top_k"], "config"), (["--version"], None), (["--help"], None), ([], None),
    (["-x", "ls"], None), (["--home"], None),
])
def test_the_command_a_command_line_names(args: list[str], name: str | None) -> None:
    assert command_named(args) == name


def test_every_command_is_found_in_its_module() -> None:
    """main() imports only the module of the command it runs: the map must name every command's own."""
    registered = {**{name: cmd.callback.__module__ for name, cmd in get_command(app).commands.items()  # type: ignore[attr-defined]
                     if not hasattr(cmd, "commands")},
                  **{group.name: group.typer_instance.registered_commands[0].callback.__module__
                     for group in app.registered_groups}}
    assert {name: f"vscli.cli.{module}" for name, module in COMMAND_MODULES.items()} == registered
    assert set(COMMAND_MODULES.values()) == set(MODULES)


def test_a_command_runs_with_its_module_alone() -> None:
    """`vscli status` imports the stores commands, not the query, upload or server ones (nor what they
    import from the library)."""
    probe = ("import sys\nfrom vscli.cli import only\nonly('status')\n"
             "print(sorted(m for m in sys.modules if m.startswith('vscli.cli.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "vscli.cli.stores" in loaded and "vscli.cli.app" in loaded
    for other in ("query", "ask", "files", "serve_cmd", "workspace_cmd", "eval_cmd", "config_cmd"):
        assert f"vscli.cli.{other}'" not in loaded, loaded


@pytest.mark.parametrize("name", COMMANDS + ["_work"])
def test_a_command_built_alone_is_the_command_of_the_whole_app(name: str) -> None:
    """main() builds only the command a command line names (typer builds every command's parameters
    before running one): alone it must take exactly the options it takes in the whole app."""
    def shape(command) -> list:
        return [(p.name, p.opts, p.secondary_opts, p.required, p.multiple, p.nargs, p.envvar, p.default)
                for p in command.params]

    whole, alone = get_command(app), get_command(only(name))
    assert set(alone.commands) == {name}  # type: ignore[attr-defined]
    assert shape(alone.commands[name]) == shape(whole.commands[name])  # type: ignore[attr-defined]
    assert shape(alone) == shape(whole)  # the root's own options: --home, --debug, --version
    assert only("stauts") is app


def test_a_misspelt_command_is_named_from_the_whole_app(home) -> None:
    result = run_vscli("stauts", home=home)
    assert result.returncode == ExitCode.USAGE
    assert b"No such command 'stauts'. Did you mean 'status'?" in result.stderr


@pytest.mark.parametrize("args", [["--help"], []])
def test_the_root_help_lists_what_the_whole_app_would(args: list[str]) -> None:
    """`vscli --help` (and `vscli`) is built from the commands' names and help alone, not their
    parameters: it must print exactly what the whole app prints."""
    runner = CliRunner()
    listed, whole = runner.invoke(listing(), args, prog_name="vscli"), runner.invoke(app, args, prog_name="vscli")
    assert listed.exit_code == whole.exit_code == 0
    assert listed.output == whole.output and "delete-file" in listed.output and "_work" not in listed.output
