"""Documentation generated from the command definitions stays current and complete: the man page, the CLI
reference, the completion scripts and the README's tables. And the completions really complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vscli.cli import reference
from vscli.errors import ExitCode


def test_generated_files_are_current() -> None:
    """Fails when a command, option, variable or exit code changed without `python scripts/generate_docs.py`."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _visible_commands() -> list[reference.Command]:
    return list(reference.commands())[1:]


def test_man_page_renders_and_covers_everything(tmp_path: Path) -> None:
    page = ROOT / "man" / "vscli.1"
    if not shutil.which("man") or not shutil.which("groff"):
        pytest.fail("this test needs man and groff (Debian: man-db, groff-base)")
    lint = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr  # no roff warnings
    rendered = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                              env={**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": "0"})
    assert rendered.returncode == 0, rendered.stderr
    text = re.sub(r".\x08", "", rendered.stdout)  # drop overstrike bold, if any
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "COMMANDS", "ENVIRONMENT", "FILES",
                    "EXIT STATUS"):
        assert re.search(rf"^{section}$", text, re.M), section
    for command in _visible_commands():
        assert command.path in text, command.path
        for param in command.params:
            assert param.names.split(",")[0] in text, (command.path, param.names)
    for name, _ in reference.ENVIRONMENT:
        assert name in text, name
    for code in ExitCode:
        assert re.search(rf"^\s+{int(code)}\s", text, re.M), code
    for path, _ in reference.FILES:
        assert path in text, path


def test_cli_reference_covers_every_command_and_option() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in _visible_commands():
        assert f"`{command.path}`" in text, command.path
        for param in command.params:
            assert f"`{param.names}" in text, (command.path, param.names)


def test_every_environment_variable_is_documented() -> None:
    """Any VSCLI_* name the code reads must be in the reference list (and so in the README and man page)."""
    documented = {name for name, _ in reference.ENVIRONMENT}
    used = set()
    for path in (ROOT / "vscli").rglob("*.py"):
        used |= set(re.findall(r"(?<![_A-Z])VSCLI_[A-Z][A-Z_]*[A-Z]", path.read_text()))
    assert used - documented == set()
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in documented)


def test_completion_scripts_name_the_program() -> None:
    for shell, name in reference.SHELLS.items():
        script = (ROOT / "completions" / name).read_text()
        assert "_VSCLI_COMPLETE=complete_" + shell in script and "vscli" in script


def _bash_complete(words: str, home: Path) -> list[str]:
    """Source completions/vscli.bash in a real bash and press Tab after `words`."""
    bindir = Path(sys.executable).parent
    script = f"""
        source {ROOT / 'completions' / 'vscli.bash'}
        COMP_WORDS=({words})
        COMP_CWORD={len(words.split()) - (0 if words.endswith(' ') else 1)}
        [[ "{words}" == *" " ]] && COMP_WORDS+=("")
        _vscli_completion vscli
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    env = {**os.environ, "VSCLI_HOME": str(home), "PATH": f"{bindir}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completion_of_commands_stores_files_and_choices(cli, home: Path, dataset: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    file_id = cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").stdout.strip()
    assert _bash_complete("vscli qu", home) == ["query"]
    assert set(_bash_complete("vscli que", home)) == {"query"}
    stores = _bash_complete("vscli query ", home)
    assert "docs" in stores and any(s.startswith("vs_") for s in stores)
    assert _bash_complete("vscli query docs x --mode k", home) == ["keyword"]
    assert _bash_complete("vscli rm docs file-", home) == [file_id]
    assert _bash_complete("vscli cat file-", home) == [file_id]
    assert "--max-results" in _bash_complete("vscli query docs x --max", home)
    assert _bash_complete("vscli config set base", home) == ["base_url"]


@pytest.mark.parametrize("shell,env", [
    ("zsh", {"_TYPER_COMPLETE_ARGS": "vscli query "}),
    ("fish", {"_TYPER_COMPLETE_ARGS": "vscli query ", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}),
])
def test_zsh_and_fish_get_store_names(cli, home: Path, shell: str, env: dict[str, str]) -> None:
    """The calls the zsh and fish scripts make (those shells are not installed here)."""
    assert cli("create", "docs").exit_code == 0
    result = subprocess.run([sys.executable, "-m", "vscli"], capture_output=True, text=True,
                            env={**os.environ, **env, "VSCLI_HOME": str(home), "_VSCLI_COMPLETE": f"complete_{shell}"})
    assert result.returncode == 0 and "docs" in result.stdout, (result.stdout, result.stderr)
