"""Bad input: one `Error: ...` line on stderr, a documented exit code, no traceback, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, snapshot
from vscli.errors import ExitCode


@pytest.fixture
def populated(cli, dataset: Path, home: Path) -> Path:
    """A workspace with one store ("docs") holding one processed file."""
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs").exit_code == 0
    return home


def file_id_of(cli) -> str:
    return json.loads(cli("files", "docs", "--json").stdout)["data"][0]["id"]


@pytest.mark.parametrize("args,code,fragment", [
    (["create", "x", "--chunk-size", "99"], ExitCode.USAGE, "between 100 and 4096"),
    (["create", "x", "--chunk-size", "4097"], ExitCode.USAGE, "between 100 and 4096"),
    (["create", "x", "--chunk-size", "400", "--chunk-overlap", "201"], ExitCode.USAGE, "half the chunk size"),
    (["create", "x", "--chunk-overlap", "-5"], ExitCode.USAGE, "negative"),
    (["create", "x", "--chunk-size", "abc"], ExitCode.USAGE, "is not a valid int"),
    (["create", "x", "--metadata", "novalue"], ExitCode.USAGE, "KEY=VALUE"),
    (["create", "x", "--metadata", "=v"], ExitCode.USAGE, "KEY=VALUE"),
    (["create", "x", *sum([["--metadata", f"k{i}=v"] for i in range(17)], [])], ExitCode.USAGE, "at most 16"),
    (["create", "x", "--metadata", "k" * 65 + "=v"], ExitCode.USAGE, "longer than 64"),
    (["create", "x", "--metadata", "k=" + "v" * 513], ExitCode.USAGE, "longer than 512"),
    (["create", "x", "--expires-after-days", "0"], ExitCode.USAGE, "between 1 and 365"),
    (["create", "x", "--model", "no-such-model-anywhere"], ExitCode.UNAVAILABLE, "cannot load embedding model"),
    (["create", " "], ExitCode.USAGE, "must not be empty"),
    (["create"], ExitCode.USAGE, "missing argument"),
    (["frobnicate"], ExitCode.USAGE, "no such command"),
    (["status", "nope"], ExitCode.NOT_FOUND, "no vector store"),
    (["status", "vs_000000000000000000000000"], ExitCode.NOT_FOUND, "no vector store"),
    (["query", "nope", "text"], ExitCode.NOT_FOUND, "no vector store"),
    (["query", "docs", "text", "-k", "0"], ExitCode.USAGE, "-k must be between 1 and 50"),  # the CLI's name
    (["query", "docs", "text", "-k", "-3"], ExitCode.USAGE, "between 1 and 50"),
    (["query", "docs", "text", "-k", "51"], ExitCode.USAGE, "between 1 and 50"),
    (["query", "docs", "   "], ExitCode.USAGE, "must not be empty"),
    (["cat", "file-doesnotexist0000000000"], ExitCode.NOT_FOUND, "no such file"),
    (["rm", "docs", "file-doesnotexist0000000000"], ExitCode.NOT_FOUND, "not in vector store"),
    (["attach", "docs", "file-doesnotexist0000000000"], ExitCode.NOT_FOUND, "no such file"),
    (["delete-file", "file-doesnotexist0000000000"], ExitCode.NOT_FOUND, "no such file"),
    (["delete", "nope", "--yes"], ExitCode.NOT_FOUND, "no vector store"),
    (["upload", "/no/such/path.md"], ExitCode.NOT_FOUND, "no such file or directory"),
    (["upload", "/no/such/path.md", "--store", "docs"], ExitCode.NOT_FOUND, "no such file or directory"),
    (["upload", "{dataset}/data_mining.md", "--store", "nope"], ExitCode.NOT_FOUND, "no vector store"),
    (["upload", "{dataset}"], ExitCode.USAGE, "is a directory (use --recursive"),
    (["upload", "{dataset}/data_mining.md", "--attr", "oops"], ExitCode.USAGE, "KEY=VALUE"),
    (["upload", "{dataset}/data_mining.md", "{dataset}/neural_networks.md", "--filename", "x.md"],
     ExitCode.USAGE, "single upload"),
])
def test_bad_input_is_one_clean_error_and_changes_nothing(
    cli, populated: Path, dataset: Path, args: list[str], code: int, fragment: str
) -> None:
    before = snapshot(populated)
    result = cli(*[a.replace("{dataset}", str(dataset)) for a in args])
    assert_clean_error(result, code, fragment)
    assert snapshot(populated) == before


@pytest.mark.parametrize("name,content,fragment", [
    ("binary.dat", b"\x00\x01\x02\x03 some unknown binary format \x00\xff", "binary file"),
    ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not valid UTF-8"),
    ("empty.txt", b"", "file is empty"),
    ("blank.txt", b"  \n\n\t ", "no text"),
])
def test_unreadable_files_are_refused_before_anything_is_stored(
    cli, populated: Path, tmp_path: Path, dataset: Path, name: str, content: bytes, fragment: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    before = snapshot(populated)
    # A good file alongside the bad one is not stored either: all or nothing.
    result = cli("upload", str(dataset / "neural_networks.md"), str(bad), "--store", "docs")
    assert_clean_error(result, ExitCode.USAGE, fragment)
    assert name in result.stderr
    assert snapshot(populated) == before


def test_file_over_the_size_limit(cli, populated: Path, tmp_path: Path, monkeypatch) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    monkeypatch.setenv("VSCLI_MAX_FILE_BYTES", "1000")
    before = snapshot(populated)
    assert_clean_error(cli("upload", str(big)), ExitCode.USAGE, "over the limit of 1000 bytes")
    assert snapshot(populated) == before


def test_unreadable_path(cli, populated: Path) -> None:
    """A path that exists but cannot be read (an I/O error even for root) is a clean error."""
    before = snapshot(populated)
    assert_clean_error(cli("upload", "/proc/self/mem"), ExitCode.ERROR, "cannot read /proc/self/mem")
    assert snapshot(populated) == before


def test_ambiguous_store_name(cli, populated: Path) -> None:
    assert cli("create", "docs", "--allow-duplicate-name").exit_code == 0
    before = snapshot(populated)
    assert_clean_error(cli("query", "docs", "data"), ExitCode.USAGE, "matches 2 vector stores")
    assert snapshot(populated) == before


def test_unknown_file_among_known_ones_changes_nothing(cli, populated: Path) -> None:
    known = file_id_of(cli)
    before = snapshot(populated)
    assert_clean_error(cli("rm", "docs", known, "file-doesnotexist0000000000"), ExitCode.NOT_FOUND)
    assert snapshot(populated) == before


def test_corrupted_manifest_is_reported_not_a_crash(cli, populated: Path) -> None:
    store_dir = next((populated / "stores").iterdir())
    (store_dir / "catalog.sqlite").write_text('{"files": {"file-')
    for args in (["status", "docs"], ["query", "docs", "data"], ["files", "docs"]):
        assert_clean_error(cli(*args), ExitCode.CORRUPT, "corrupted catalog")


def test_corrupted_index_is_reported_not_a_crash(cli, populated: Path) -> None:
    store_dir = next((populated / "stores").iterdir())
    index = next(store_dir.glob("index-*.faiss"))
    index.write_bytes(b"not a faiss index at all")
    assert_clean_error(cli("query", "docs", "data"), ExitCode.CORRUPT, "corrupted index")


def test_debug_shows_the_traceback(cli, populated: Path) -> None:
    result = cli("--debug", "status", "nope")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "Traceback" in result.stderr and result.stderr.strip().endswith(
        "Error: no vector store with id or name 'nope' (see `vscli ls`)")


def test_failed_files_exit_4_with_last_error(cli, populated: Path, dataset: Path, home: Path) -> None:
    """A stored file that cannot be processed is marked failed with a last_error (never stuck)."""
    file_id = cli("upload", str(dataset / "neural_networks.md")).stdout.strip()
    # Damage the stored bytes behind vscli's back, as a disk error might.
    (home / "files" / file_id / "content").write_bytes(b"\x00\x01binary now")
    result = cli("attach", "docs", file_id)
    assert result.exit_code == ExitCode.FILES_FAILED
    assert "binary file" in result.stderr and result.stderr.strip().splitlines()[-1].startswith("Error: 1 of 1")
    entry = [f for f in json.loads(cli("files", "docs", "--json").stdout)["data"] if f["id"] == file_id][0]
    assert entry["status"] == "failed"
    assert entry["last_error"]["code"] == "invalid_file" and "binary" in entry["last_error"]["message"]
    status = cli("status", "docs", "--wait")
    assert status.exit_code == ExitCode.FILES_FAILED


@pytest.mark.parametrize("name", ["VSCLI_MAX_FILE_BYTES", "VSCLI_BATCH_CHUNKS", "VSCLI_FLAT_MAX_VECTORS",
                                  "VSCLI_EMBED_THREADS"])
@pytest.mark.parametrize("value,fragment", [("lots", "must be a whole number"), ("0", "must be positive")])
def test_bad_numeric_settings_in_the_environment(cli, populated: Path, dataset: Path, monkeypatch,
                                                 name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    before = snapshot(populated)
    result = cli("upload", str(dataset / "neural_networks.md"), "--store", "docs")
    assert_clean_error(result, ExitCode.USAGE, f"{name} {fragment}")
    assert snapshot(populated) == before
