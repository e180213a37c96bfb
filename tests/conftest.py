"""Shared fixtures: every test gets its own workspace (VSCLI_HOME under tmp_path) and a CLI runner."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner, Result

from vscli.cli import commands

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "dataset"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export cache for the whole session: the model is exported once, as on a user's machine."""
    return tmp_path_factory.mktemp("vscli-cache")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> Path:
    """Point the workspace at a fresh directory for every test."""
    path = tmp_path / "home"
    for name in list(os.environ):
        if name.startswith(("VSCLI_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VSCLI_HOME", str(path))
    monkeypatch.setenv("VSCLI_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("VSCLI_CACHE_DIR", str(model_cache))
    return path


BACKENDS = ["faiss", "milvus"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per backend: `vscli create` makes FAISS stores, then stores in a Milvus Lite file
    (through VSCLI_BACKEND and VSCLI_MILVUS_URI, as a user would set them). Modules of the shared suite
    use it with ``pytestmark = pytest.mark.usefixtures("backend")``."""
    if request.param == "milvus":
        monkeypatch.setenv("VSCLI_BACKEND", "milvus")
        monkeypatch.setenv("VSCLI_MILVUS_URI", str(tmp_path / "milvus.db"))
    return request.param


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run a vscli command in-process: cli("query", "docs", "text", input=...)."""
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(commands(), list(args), input=input)

    return run


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A private copy of the example documents."""
    target = tmp_path / "dataset"
    shutil.copytree(EXAMPLES, target)
    return target


def run_vscli(*args: str, home: Path, input: bytes | None = None, timeout: float = 300,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run vscli in a real subprocess (`python -m vscli`)."""
    full_env = {**os.environ, "VSCLI_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "vscli", *args], input=input, capture_output=True,
                          timeout=timeout, env=full_env)


def kill_9_when_marked(script: str, marker: Path, *args: str, home: Path,
                      env: dict[str, str] | None = None) -> None:
    """Run ``script`` (vscli with a step patched to write ``marker`` and then wait) with ``args``, and
    SIGKILL it once the marker appears: a crash at exactly that step."""
    import signal
    import time

    child = subprocess.Popen([sys.executable, "-c", script, str(marker), *args],
                             env={**os.environ, "VSCLI_HOME": str(home), **(env or {})},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes (lock files excluded: they are empty markers)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".lock"
    }


def assert_clean_error(result: Result, code: int, fragment: str = "") -> None:
    """One `Error: ...` line on stderr, the exit code, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


def assert_same_pages(read: Callable[..., tuple[list, bool]], listed: Callable[..., tuple[list, bool]],
                      cursors: list[str | None], limits: tuple[int, ...]) -> None:
    """A page read through an index in SQL is the page listed in memory, for both orders, these limits
    and every pair of cursors (a cursor not in the list: the same error). Each is called with
    ``(limit, order, after, before)``."""
    from vscli.errors import InvalidInput

    for order in ("asc", "desc"):
        for limit in limits:
            for after in cursors:
                for before in cursors:
                    try:
                        expected = listed(limit, order, after, before)
                    except InvalidInput as exc:
                        with pytest.raises(InvalidInput, match=str(exc).split(":")[0]):
                            read(limit, order, after, before)
                        continue
                    got = read(limit, order, after, before)
                    assert ([o["id"] for o in got[0]], got[1]) == ([o["id"] for o in expected[0]], expected[1])
