"""Workspace location, ids and atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vscli.workspace import atomic_write_bytes, new_id, user_dir, write_json, read_json
from vscli.errors import CorruptData


def test_user_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSCLI_HOME", str(tmp_path / "env"))
    assert user_dir(tmp_path / "flag") == tmp_path / "flag"
    assert user_dir() == tmp_path / "env"
    monkeypatch.delenv("VSCLI_HOME")
    assert user_dir().name == "vscli"


def test_ids_have_openai_shape() -> None:
    assert re.fullmatch(r"vs_[A-Za-z0-9]{24}", new_id("vs_"))
    assert re.fullmatch(r"file-[A-Za-z0-9]{24}", new_id("file-"))
    assert len({new_id("vs_") for _ in range(1000)}) == 1000


def test_failed_atomic_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    write_json(target, {"version": 1})

    def crash_half_way(tmp: Path) -> None:
        tmp.write_bytes(b'{"version": 2, "trunc')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_bytes(target, crash_half_way)
    assert read_json(target) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left behind


def test_corrupted_manifest_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "files.json"
    target.write_text('{"files": {')
    with pytest.raises(CorruptData, match="corrupted manifest"):
        read_json(target)
