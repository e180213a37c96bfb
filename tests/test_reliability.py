"""Concurrency, crashes and hostile environments, with real processes, signals and mounts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import run_vscli, snapshot
from tests.corpus import phrase, write_corpus
from tests.states import read_state
from vscli.errors import ExitCode

pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("backend")]  # shared suite: FAISS and Milvus


def popen_vscli(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "vscli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "VSCLI_HOME": str(home), **(env or {})})


def doctor(home: Path) -> dict:
    result = run_vscli("doctor", "docs", "--json", home=home)
    assert result.returncode in (0, ExitCode.CORRUPT), result.stderr
    return json.loads(result.stdout)


def assert_consistent(home: Path) -> dict:
    """The store opens, nothing is stuck in progress, and the index agrees with the manifests."""
    status = run_vscli("status", "docs", "--json", home=home)
    assert status.returncode in (0, ExitCode.FILES_FAILED), status.stderr
    counts = json.loads(status.stdout)["file_counts"]
    assert counts["in_progress"] == 0
    report = doctor(home)
    assert report["healthy"], report
    return counts


def completed_files(home: Path) -> dict[str, str]:
    """file id -> filename for every completed file of the store."""
    listing = json.loads(run_vscli("files", "docs", "--json", home=home).stdout)["data"]
    uploads = {f["id"]: f["filename"] for f in json.loads(run_vscli("uploads", "--json", home=home).stdout)["data"]}
    return {f["id"]: uploads[f["id"]] for f in listing if f["status"] == "completed"}


def assert_all_searchable(home: Path, files: dict[str, str]) -> None:
    """Each completed doc-NNN.md is the top hit for its own phrase (one batch query process)."""
    if not files:
        return
    wanted = {name: int(name[4:7]) for name in files.values()}
    queries = "".join(phrase(i) + "\n" for i in wanted.values())
    result = run_vscli("query", "docs", "-", "-k", "1", home=home, input=queries.encode())
    assert result.returncode == 0, result.stderr
    pages = [json.loads(line) for line in result.stdout.decode().splitlines()]
    for (name, _), page in zip(wanted.items(), pages, strict=False):
        assert page["data"][0]["filename"] == name, (name, page["data"][0]["filename"])


def test_parallel_uploads_to_one_store(tmp_path: Path, home: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 24)
    shared = [str(p) for p in corpus[:3]]  # every process uploads these three as well
    assert run_vscli("create", "docs", home=home).returncode == 0
    procs = [popen_vscli("upload", *shared, *[str(p) for p in corpus[3 + 5 * i: 8 + 5 * i]], "--store", "docs",
                         "--quiet", home=home) for i in range(4)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1] for o in outputs]
    ids = [o[0].decode().split() for o in outputs]
    assert all(len(i) == 8 for i in ids)
    assert len({tuple(i[:3]) for i in ids}) == 1  # the shared files got one id each, in every process
    counts = assert_consistent(home)
    assert counts == {"in_progress": 0, "completed": 23, "failed": 0, "cancelled": 0, "total": 23}
    files = completed_files(home)
    assert sorted(files.values()) == sorted(p.name for p in corpus[:23])
    assert_all_searchable(home, files)


def test_queries_during_an_ingest_see_whole_states(tmp_path: Path, home: Path) -> None:
    from vscli.search import MODES, Searcher
    from vscli.store import resolve_store
    from vscli.workspace import Workspace

    corpus = write_corpus(tmp_path / "corpus", 40)
    assert run_vscli("create", "docs", home=home).returncode == 0
    store = resolve_store(Workspace(home), "docs")
    query = "an animal seen at dawn near the water"
    searchers = {mode: Searcher(store, mode) for mode in MODES}
    contents = {p.name: p.read_text() for p in corpus}
    ingest = popen_vscli("upload", str(tmp_path / "corpus"), "-r", "--store", "docs", "--quiet", home=home,
                         env={"VSCLI_BATCH_CHUNKS": "4"})
    seen_sizes: dict[str, set[int]] = {mode: set() for mode in MODES}
    searches = 0
    while ingest.poll() is None:
        for mode, searcher in searchers.items():  # the vector and the keyword index, alone and fused
            results = searcher.results(query, 50)
            seen_sizes[mode].add(len(results))
            for r in results:  # every hit is a real chunk of the file it names
                assert r["content"][0]["text"] in contents[r["filename"]]
        searches += 1
    assert ingest.returncode == 0, ingest.stderr.read()
    assert searches > 5 and all(len(sizes) > 2 for sizes in seen_sizes.values()), (searches, seen_sizes)
    assert len(searchers["vector"].results(query, 50)) == 40 == len(searchers["hybrid"].results(query, 50))
    assert 0 < len(searchers["keyword"].results(query, 50)) <= 40


def _completed_on_disk(home: Path) -> int:
    """Completed files according to the manifest, read directly (cheap enough to poll)."""
    try:
        catalog = next((home / "stores").glob("vs_*/catalog.sqlite"))
        return sum(e["status"] == "completed" for e in read_state(catalog.parent)["files"].values())
    except (StopIteration, OSError, ValueError, sqlite3.Error):
        return 0


def test_kill_9_during_upload_then_rerun(tmp_path: Path, home: Path) -> None:
    write_corpus(tmp_path / "corpus", 30)
    assert run_vscli("create", "docs", home=home).returncode == 0
    upload = ["upload", str(tmp_path / "corpus"), "-r", "--store", "docs", "--quiet"]
    env = {"VSCLI_BATCH_CHUNKS": "3"}  # commit every ~3 files: many commits to land in
    completed_before = 0
    partial_states = 0
    # Kill twice while uploads are being stored and the model loads, then three times right after a
    # commit lands, i.e. in the middle of processing the rest.
    for moment in (0.3, 0.8, "commit", "commit", "commit"):
        proc = popen_vscli(*upload, home=home, env=env)
        if moment == "commit":
            while _completed_on_disk(home) <= completed_before and proc.poll() is None:
                time.sleep(0.01)
        else:
            time.sleep(float(moment))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert_consistent(home)
        files = completed_files(home)
        assert len(files) >= completed_before  # nothing completed is ever lost
        partial_states += 0 < len(files) < 30 and len(files) > completed_before
        completed_before = len(files)
        assert_all_searchable(home, files)
    assert partial_states >= 2, "the kills should land while files are being committed"
    final = run_vscli(*upload, home=home, env=env)
    assert final.returncode == 0, final.stderr
    counts = assert_consistent(home)
    assert counts["completed"] == counts["total"] == 30
    assert len(json.loads(run_vscli("uploads", "--json", home=home).stdout)["data"]) == 30  # no duplicates
    report = doctor(home)
    assert report["vectors_checked"] == 30  # one vector per one-chunk document: no duplicate chunks
    assert_all_searchable(home, completed_files(home))


def test_kill_9_during_rm(tmp_path: Path, home: Path) -> None:
    write_corpus(tmp_path / "corpus", 12)
    assert run_vscli("create", "docs", home=home).returncode == 0
    up = run_vscli("upload", str(tmp_path / "corpus"), "-r", "--store", "docs", home=home)
    ids = up.stdout.decode().split()
    # Milvus's client adds start-up time; the long last delays let one rm finish on a slow machine
    for delay in (0.35, 0.45, 0.55, 0.7, 1.0, 1.5, 2.5, 6.0, 15.0):
        present = set(completed_files(home))
        victims = sorted(present)[:3]
        if not victims:
            break
        proc = popen_vscli("rm", "docs", *victims, home=home)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = set(completed_files(home))
        gone = present - after
        assert gone in (set(), set(victims)), gone  # one commit: all three or none
        assert_consistent(home)
        assert_all_searchable(home, completed_files(home))
    assert set(completed_files(home)) < set(ids)


def _in_mount_namespace(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a shell script as root in a private mount namespace (mounts vanish when it ends)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.fail("this test needs root and unshare(1) to mount a read-only or full file system")
    path = tmp_path / "script.sh"
    path.write_text("set -u\n" + textwrap.dedent(script))
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", str(path)],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("uploads", ["registry", "folders only"])
def test_read_only_workspace(tmp_path: Path, home: Path, dataset: Path, uploads: str) -> None:
    """Readers work and nothing changes; "folders only": uploads as vscli 0.2 kept them (no registry),
    indexed in memory since the registry cannot be written."""
    assert run_vscli("create", "docs", home=home).returncode == 0
    file_id = run_vscli("upload", str(dataset / "data_mining.md"), "--store", "docs",
                        home=home).stdout.decode().strip()
    if uploads == "folders only":
        (home / "files" / "registry.sqlite").unlink()
    before = snapshot(home)
    out = tmp_path / "out"
    out.mkdir()
    result = _in_mount_namespace(f"""
        export VSCLI_HOME={home}
        mount --bind "$VSCLI_HOME" "$VSCLI_HOME" && mount -o remount,bind,ro "$VSCLI_HOME" || exit 99
        run() {{ name=$1; shift
                 "$PYTHON" -m vscli "$@" > {out}/$name.out 2> {out}/$name.err; echo $? > {out}/$name.rc; }}
        run query query docs "what is data mining?" --json
        run keyword query docs "data mining" --mode keyword --json
        run vector query docs "data mining" --mode vector --json
        run status status docs --json
        run ls ls
        run cat cat {file_id}
        run files files docs
        run uploads uploads --json
        run create create other
        run upload upload {dataset / "neural_networks.md"} --store docs
        run rm rm docs {file_id}
        run delete delete docs --yes
    """, tmp_path)
    assert result.returncode == 0, result.stderr

    def rc(name: str) -> int:
        return int((out / f"{name}.rc").read_text())

    for reader in ("query", "keyword", "vector", "status", "ls", "cat", "files", "uploads"):
        assert rc(reader) == 0, (reader, (out / f"{reader}.err").read_text())
    assert [u["id"] for u in json.loads((out / "uploads.out").read_text())["data"]] == [file_id]
    assert (out / "cat.out").read_bytes() == (dataset / "data_mining.md").read_bytes()
    for query in ("query", "keyword", "vector"):  # hybrid (the default), and each index alone
        assert json.loads((out / f"{query}.out").read_text())["data"][0]["file_id"] == file_id
    for writer in ("create", "upload", "rm", "delete"):
        err = (out / f"{writer}.err").read_text()
        assert rc(writer) != 0 and err.startswith("Error: ") and "read-only file system" in err.lower(), (writer, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert snapshot(home) == before


def test_full_disk_keeps_the_old_state(tmp_path: Path, dataset: Path, backend: str) -> None:
    """A store on a tiny file system: writes fail with a clear error and the old state survives. On
    Milvus, the Milvus Lite file is on the small file system too."""
    seed_home = tmp_path / "seed"
    mnt = tmp_path / "small"
    mnt.mkdir()
    env = {"VSCLI_MILVUS_URI": str(mnt / "milvus.db")}  # used when the backend is milvus
    assert run_vscli("create", "docs", home=seed_home, env=env).returncode == 0
    assert run_vscli("upload", str(dataset / "data_mining.md"), "--store", "docs", home=seed_home).returncode == 0
    big = tmp_path / "big.md"
    big.write_text("\n\n".join(f"Paragraph {i} about {phrase(i)} and its habits." for i in range(1500)))
    out = tmp_path / "out"
    out.mkdir()
    result = _in_mount_namespace(f"""
        cp -a {mnt} {tmp_path}/small-seed
        mount -t tmpfs -o size=4m tmpfs {mnt} || exit 99
        cp -a {tmp_path}/small-seed/. {mnt}/
        cp -a {seed_home} {mnt}/home
        export VSCLI_HOME={mnt}/home
        # Fill the disk, leaving a little room: enough for the upload's bytes, not for its index.
        dd if=/dev/zero of={mnt}/filler bs=64k 2>/dev/null
        rm -f {mnt}/filler; head -c $(( $(df --output=avail -B1 {mnt} | tail -1) - 300000 )) /dev/zero > {mnt}/filler
        "$PYTHON" -m vscli upload {big} --store docs > {out}/upload.out 2> {out}/upload.err; echo $? > {out}/upload.rc
        "$PYTHON" -m vscli status docs --json > {out}/status.out 2> {out}/status.err
        "$PYTHON" -m vscli query docs "what is data mining?" --json > {out}/query.out 2> {out}/query.err
        echo $? > {out}/query.rc
        "$PYTHON" -m vscli doctor docs --json > {out}/doctor.out 2> {out}/doctor.err
        rm -f {mnt}/filler
        "$PYTHON" -m vscli upload {big} --store docs > {out}/retry.out 2> {out}/retry.err; echo $? > {out}/retry.rc
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    err = (out / "upload.err").read_text()
    assert int((out / "upload.rc").read_text()) != 0
    assert "no space left on device" in err.lower() and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("Error: ")
    assert int((out / "query.rc").read_text()) == 0, (out / "query.err").read_text()
    assert json.loads((out / "query.out").read_text())["data"][0]["filename"] == "data_mining.md"
    assert json.loads((out / "doctor.out").read_text())["healthy"], (out / "doctor.out").read_text()
    assert json.loads((out / "status.out").read_text())["file_counts"]["completed"] == 1
    # With room again, the same upload completes.
    assert int((out / "retry.rc").read_text()) == 0, (out / "retry.err").read_text()
