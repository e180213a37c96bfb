"""Hostile inputs (issue 20): ids that try to become paths, and store names that pose as ids. Each test is
a reproduction from the adversarial pass that failed before the fix."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from tests.conftest import EXAMPLES, assert_clean_error, run_vscli
from tests.test_archive import _rewrite
from tests.test_serve import KEY, Server
from vscli.errors import ExitCode
from vscli.workspace import Workspace


def test_a_store_named_like_an_id_is_refused(cli) -> None:
    """`A=$(vscli create alpha); vscli create "$A"; vscli delete "$A" --yes` twice deleted the other store."""
    alpha = cli("create", "alpha").stdout.strip()
    assert_clean_error(cli("create", alpha), ExitCode.USAGE, "looks like an id")
    assert_clean_error(cli("create", "file-abc123"), ExitCode.USAGE, "looks like an id")
    assert cli("delete", alpha, "--yes").exit_code == 0
    assert_clean_error(cli("delete", alpha, "--yes"), ExitCode.NOT_FOUND)
    assert cli("create", "vs notes").exit_code == 0  # only the id grammar is refused, not the prefix


def test_ids_never_become_paths(cli, home: Path, tmp_path: Path) -> None:
    ws = Workspace(home)
    for bad in ("../../etc", "/tmp/x", "file-../x", "file-a/b", "", "file-a\nb"):
        with pytest.raises(Exception, match="no such file"):
            ws.file_dir(bad)
    for bad in ("../x", "/tmp/x", "vs_a/../../b"):
        with pytest.raises(Exception, match="no such vector store"):
            ws.store_dir(bad)
    assert_clean_error(cli("cat", "../../etc/passwd"), ExitCode.NOT_FOUND, "no such file")


@pytest.mark.parametrize("store_id", ["/tmp/vscli-escaped-store", "../../../vscli-escaped-store"])
def test_import_refuses_a_store_id_that_is_a_path(cli, dataset: Path, home: Path, tmp_path: Path,
                                                  store_id: str) -> None:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    archive, evil = tmp_path / "docs.tar.gz", tmp_path / "evil.tar.gz"
    assert cli("export", "docs", str(archive)).exit_code == 0

    def with_id(name: str, blob: bytes) -> bytes:
        if name != "store/store.json":
            return blob
        return json.dumps({**json.loads(blob), "id": store_id}).encode()

    _rewrite(archive, evil, with_id)
    target = tmp_path / "target"
    assert_clean_error(cli("--home", str(target), "import", str(evil)), ExitCode.CORRUPT, "not a vscli store id")
    assert not Path("/tmp/vscli-escaped-store").exists()
    assert not (target / "stores" / store_id).resolve().exists()
    assert not [p for p in (target / "stores").iterdir() if not p.name.startswith(".")]


def test_server_refuses_file_ids_that_are_paths(home: Path, tmp_path: Path) -> None:
    """A file id in a JSON body was used as a path: another workspace's upload was read and embedded."""
    other = tmp_path / "other"
    upload = run_vscli("upload", str(EXAMPLES / "data_mining.md"), home=other)
    assert upload.returncode == 0, upload.stderr
    stolen = other / "files" / upload.stdout.decode().strip()
    relative = f"../../{other.name}/files/{stolen.name}"
    srv = Server(home, "--api-key", KEY)
    try:
        client = srv.client()
        for bad in (str(stolen), relative):
            with pytest.raises(openai.NotFoundError):
                client.vector_stores.create(name="x", file_ids=[bad])
        target = client.vector_stores.create(name="target")
        for bad in (str(stolen), relative):
            with pytest.raises(openai.NotFoundError):
                client.vector_stores.files.create(vector_store_id=target.id, file_id=bad)
            with pytest.raises(openai.NotFoundError):
                client.vector_stores.file_batches.create(vector_store_id=target.id, file_ids=[bad])
            with pytest.raises(openai.NotFoundError):
                client.files.retrieve(bad)
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.create(name=target.id)  # a name that poses as an id
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.update(target.id, name=target.id)
        assert [s.name for s in client.vector_stores.list()] == ["target"]
        assert client.vector_stores.files.list(vector_store_id=target.id).data == []
    finally:
        srv.stop()
