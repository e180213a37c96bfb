"""The three search modes on a real store, and the keyword (BM25) index kept in step with the files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vscli.index.keyword import KeywordIndex
from vscli.search import fuse
from vscli.store import resolve_store
from vscli.workspace import Workspace

RUNBOOKS = {  # near-identical wording: only the code tells them apart
    "e4012.md": "Runbook for error E-4012: the ingest service rejects uploads; check usage and quotas.",
    "e4013.md": "Runbook for error E-4013: the ingest service rejects uploads; check the client and proxy.",
    "e5001.md": "Runbook for error E-5001: the API rejects requests; check the database connection pool.",
}


def _store(cli, tmp_path: Path, files: dict[str, str]) -> dict[str, str]:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    assert cli("create", "docs").exit_code == 0
    ids = {}
    for name, text in files.items():
        (folder / name).write_text(text + "\n")
        result = cli("upload", str(folder / name), "--store", "docs", "-q")
        assert result.exit_code == 0, result.output
        ids[name] = result.stdout.strip()
    return ids


def _query(cli, *args: str) -> list[dict]:
    result = cli("query", "docs", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["data"]


def _keyword(home: Path) -> KeywordIndex:
    return KeywordIndex(next((home / "stores").glob("vs_*")) / "keyword")


def test_scores_and_ranking_in_each_mode(cli, tmp_path: Path) -> None:
    _store(cli, tmp_path, RUNBOOKS)
    keyword = _query(cli, "E-4013", "--mode", "keyword")
    assert [r["filename"] for r in keyword] == ["e4013.md"]  # the code matches whole: not E-4012's "e"
    keyword = _query(cli, "rejects uploads over quotas", "--mode", "keyword")
    assert keyword[0]["filename"] == "e4012.md" and keyword[0]["score"] > 1 and len(keyword) > 1  # BM25: unbounded
    vector = _query(cli, "E-4013", "--mode", "vector")
    assert len(vector) == 3 and all(-1 <= r["score"] <= 1 for r in vector)
    hybrid = _query(cli, "E-4013")  # the default mode
    assert hybrid[0]["filename"] == "e4013.md" and all(0 < r["score"] <= 1 for r in hybrid)
    assert [r["score"] for r in hybrid] == sorted((r["score"] for r in hybrid), reverse=True)
    # --min-score cuts on each mode's own scale
    assert len(_query(cli, "rejects uploads over quotas", "--mode", "keyword", "--min-score",
                      str(keyword[0]["score"]))) == 1
    assert _query(cli, "E-4013", "--mode", "vector", "--min-score", "1.01") == []
    assert len(_query(cli, "E-4013", "--min-score", str(hybrid[1]["score"]))) == 2
    result = cli("query", "docs", "zebra crossing", "--mode", "keyword")  # no shared word: no results
    assert result.exit_code == 0 and result.stdout == "" and "no results" in result.stderr


def test_fusion_is_reciprocal_rank_scaled_to_one() -> None:
    fused = dict(fuse([[(1, 0.9), (2, 0.8)], [(1, 7.0), (3, 5.0)]]))
    assert fused[1] == 1.0  # first in both
    assert abs(fused[2] - (1 / 62) / (2 / 61)) < 1e-12 and fused[2] == fused[3]
    # a tie in rank is broken by the scores relative to each list's best: 0.8/0.9 > 5/7, then 0.5/0.9 < 6/7
    assert [cid for cid, _ in fuse([[(1, 0.9), (2, 0.8)], [(1, 7.0), (3, 5.0)]])] == [1, 2, 3]
    assert [cid for cid, _ in fuse([[(1, 0.9), (2, 0.5)], [(1, 7.0), (3, 6.0)]])] == [1, 3, 2]


def test_keyword_index_stays_in_step_with_rm_and_reupload(cli, tmp_path: Path, home: Path) -> None:
    ids = _store(cli, tmp_path, RUNBOOKS)
    store = resolve_store(Workspace(home), "docs")
    serial = {e["id"]: e["vscli"]["serial"] for e in store.folder.state()["files"].values()}
    assert _keyword(home).size == 3
    assert cli("rm", "docs", ids["e4013.md"]).exit_code == 0
    index = _keyword(home)
    assert index.count(serial[ids["e4013.md"]]) == 0 and index.size == 2  # deleted, not just hidden
    assert "e4013.md" not in {r["filename"] for r in _query(cli, "E-4013", "--mode", "keyword")}
    assert cli("doctor", "docs").exit_code == 0
    # attach the same upload again: it comes back once, under a new serial
    assert cli("attach", "docs", ids["e4013.md"]).exit_code == 0
    again = resolve_store(Workspace(home), "docs").file(ids["e4013.md"])
    index = _keyword(home)
    assert index.size == 3 and index.count(serial[ids["e4013.md"]]) == 0
    assert _query(cli, "E-4013", "--mode", "keyword")[0]["file_id"] == again["id"]
    # deleting the upload takes it out of every store, keyword index included
    assert cli("delete-file", ids["e5001.md"]).exit_code == 0
    assert _keyword(home).size == 2 and cli("doctor", "docs").exit_code == 0


def test_store_without_keyword_index_gets_one(cli, tmp_path: Path, home: Path) -> None:
    """Stores made before the keyword index existed (or whose index was thrown away) build it on demand."""
    _store(cli, tmp_path, RUNBOOKS)
    shutil.rmtree(_keyword(home).path)
    assert cli("doctor", "docs").exit_code != 0  # reported ...
    assert _query(cli, "E-5001", "--mode", "keyword")[0]["filename"] == "e5001.md"  # ... and rebuilt
    assert _keyword(home).size == 3 and cli("doctor", "docs").exit_code == 0


def test_doctor_repairs_a_keyword_index_out_of_step(cli, tmp_path: Path, home: Path) -> None:
    _store(cli, tmp_path, RUNBOOKS)
    writer = _keyword(home).writer()
    writer.replace(999, [999 << 24], ["a stray chunk left by a crash"])  # a serial no file has
    writer.commit()
    report = json.loads(cli("doctor", "docs", "--json").stdout)  # harmless: no query returns it
    assert report["healthy"] and "keyword index: holds 1 chunk(s)" in report["findings"][0]["problem"]
    assert cli("doctor", "docs", "--repair").exit_code == 0
    assert _keyword(home).size == 3 and cli("doctor", "docs").exit_code == 0


def test_batch_queries_in_keyword_mode(cli, tmp_path: Path) -> None:
    _store(cli, tmp_path, RUNBOOKS)
    result = cli("query", "docs", "-", "--mode", "keyword", "-k", "1", input="E-4012\nE-5001\n")
    pages = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["data"][0]["filename"] for p in pages] == ["e4012.md", "e5001.md"]
