"""vscli as a user runs it: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_vscli
from tests.states import read_state
from vscli.errors import ExitCode

HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "onnxruntime", "openai", "numpy", "pymilvus",
         "milvus_lite", "grpc")


def test_python_m_vscli_and_console_script(home: Path) -> None:
    result = run_vscli("--version", home=home)
    assert result.returncode == 0 and result.stdout.decode().startswith("vscli ")
    script = Path(sys.executable).parent / "vscli"
    assert script.exists(), "the console script is installed with the package"
    out = subprocess.run([str(script), "--version"], capture_output=True, timeout=60)
    assert out.stdout == result.stdout


def _modules_loaded_by(args: list[str], home: Path) -> list[str]:
    code = (
        "import sys\n"
        f"heavy = {HEAVY!r}\n"
        f"sys.argv = ['vscli', *{args!r}]\n"
        "from vscli.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"  # (main() ends the process: an exit handler registered before it would not run)
        "    sys.stderr.write('LOADED=' + ','.join(sorted({m.split('.')[0] "
        "for m in sys.modules if m.split('.')[0] in heavy})) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          env={**os.environ, "VSCLI_HOME": str(home)})
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    line = [x for x in stderr.splitlines() if x.startswith("LOADED=")][-1]
    return [m for m in line[len("LOADED="):].split(",") if m]


def test_light_commands_load_no_heavy_module(cli, dataset: Path, home: Path, backend: str) -> None:
    cli("create", "docs")
    file_id = cli("upload", str(dataset / "data_mining.md"), "--store", "docs").stdout.strip()
    for args in (["--help"], ["ls"], ["status", "docs"], ["cat", file_id], ["files", "docs"],
                 ["uploads"], ["create", "--help"], ["query", "--help"], ["ask", "--help"],
                 ["config", "list"]):
        assert _modules_loaded_by(args, home) == [], args


def test_stdout_carries_only_data(home: Path, dataset: Path) -> None:
    created = run_vscli("create", "docs", home=home)
    assert created.stderr == b"" and created.stdout.decode().count("\n") == 1
    up = run_vscli("upload", str(dataset / "data_mining.md"), "--store", "docs", home=home)
    assert up.returncode == 0, up.stderr
    assert up.stdout.decode().strip().startswith("file-") and len(up.stdout.split()) == 1
    assert b"completed" in up.stderr  # the summary goes to stderr


@pytest.mark.timeout(300)
def test_killed_background_worker_never_hangs_status_wait(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    file_id = cli("upload", str(dataset / "supervised_learning.md")).stdout.strip()
    result = run_vscli("attach", "docs", file_id, "--no-wait", home=home)
    assert result.returncode == 0, result.stderr
    store_dir = next((home / "stores").iterdir())
    entry = read_state(store_dir)["files"][file_id]
    assert entry["status"] == "in_progress"
    pid = entry["vscli"]["worker"]["pid"]
    os.kill(pid, signal.SIGKILL)  # the worker is still importing the model: it dies mid-job
    started = time.monotonic()
    waited = run_vscli("status", "docs", "--wait", "--timeout", "120", "--json", home=home)
    assert time.monotonic() - started < 60
    assert waited.returncode == ExitCode.FILES_FAILED, waited.stderr
    counts = json.loads(waited.stdout)["file_counts"]
    assert counts["failed"] == 1 and counts["in_progress"] == 0
    failed = json.loads(cli("files", "docs", "--json").stdout)["data"][0]
    assert "interrupted" in failed["last_error"]["message"]
    # Attaching again resumes the file.
    again = cli("attach", "docs", file_id)
    assert again.exit_code == 0, again.stderr
    page = json.loads(cli("query", "docs", "labelled training examples", "--json").stdout)
    assert page["data"][0]["file_id"] == file_id


def test_status_wait_timeout_exits_5(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    file_id = cli("upload", str(dataset / "supervised_learning.md")).stdout.strip()
    # A file claimed by a live process that never finishes: this test's own process.
    from vscli import liveness
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    store = resolve_store(Workspace(home), "docs")
    store.attach([file_id], worker=liveness.this_process())
    waited = run_vscli("status", "docs", "--wait", "--timeout", "1", home=home)
    assert waited.returncode == ExitCode.TIMEOUT
    assert waited.stderr.decode().strip().splitlines()[-1].startswith("Error: timed out after 1s")
    assert b"in progress" in waited.stdout  # the status is still printed


def test_broken_pipe_is_quiet(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    for i in range(300):
        cli("create", f"store-{i}") if i < 3 else None
    proc = subprocess.run(f"{sys.executable} -m vscli ls | head -c 10", shell=True, capture_output=True,
                          env={**os.environ, "VSCLI_HOME": str(home)}, timeout=60)
    assert b"Traceback" not in proc.stderr and b"Error" not in proc.stderr


TORN_DOWN = """
import sys
class Marker:
    def __del__(self):
        sys.stderr.write("torn down\\n")
marker = Marker()  # freed by the interpreter's teardown, if it runs
sys.argv = ["vscli", *sys.argv[1:]]
from vscli.cli import main
main()
"""


def test_a_command_ends_the_process_without_the_interpreters_teardown(cli, dataset: Path, home: Path) -> None:
    """The teardown cost a cold query 40-45 ms; skipping it keeps everything else: the status (success and
    errors), all of stdout however large, and the exit handlers that close the SQLite files (no WAL left)."""
    cli("create", "docs")
    for i in range(40):
        cli("create", f"a-store-with-a-long-name-to-fill-stdout-{i}")
    env = {**os.environ, "VSCLI_HOME": str(home)}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-c", TORN_DOWN, *args], capture_output=True, env=env, timeout=120)

    listed = run("ls", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["data"]) == 41
    missing = run("status", "no-such-store")
    assert missing.returncode == ExitCode.NOT_FOUND and missing.stderr.decode().startswith("Error: ")
    usage = run("query")
    assert usage.returncode == ExitCode.USAGE
    for proc in (listed, missing, usage):
        assert b"torn down" not in proc.stderr and b"Traceback" not in proc.stderr
    assert not list(home.rglob("*-wal")) and not list(home.rglob("*-shm"))
    assert b"torn down" in subprocess.run([sys.executable, "-c", TORN_DOWN.replace("main()", "")], env=env,
                                          capture_output=True, timeout=60).stderr  # the marker works
