"""Hybrid search's score fusion: scores that mean relevance, identifiers found first, and `ask` refusing
to call the model when nothing is relevant (real model, FAISS and tantivy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chat_server import ChatServer
from tests.conftest import assert_clean_error
from vscli.cli import complete
from vscli.errors import ExitCode
from vscli.index.keyword import identifier_share, query_words
from vscli.search import FUSIONS, MODES, RELEVANT, fuse_scores, relevance

ON_TOPIC = [  # questions the example documents answer
    "what is data mining?",
    "how do I bake sourdough bread",
    "how does a neural network learn",
    "clustering without labels",
    "approximate nearest neighbour search",
    "supervised learning with labelled examples",
]
OFF_TOPIC = [  # questions they do not
    "what is the capital of Peru?",
    "recipe for a margarita cocktail",
    "what does the free command report about memory",
    "who won the football world cup in 2014",
    "how to change a flat tyre on a bicycle",
    "tax rules for selling a house",
]

CVE = "CVE-2022-24765"
ADVISORIES = {  # four files name the CVE; six near-identical ones name other git vulnerabilities
    "advisory.md": f"Security advisory {CVE}: git for Windows may run commands from a .git directory owned "
                   "by another user when it walks up the directory tree. Upgrade git to 2.35.2.",
    "release-notes.md": f"Release 4.1 of the build image upgrades git to 2.35.2, which fixes {CVE} "
                        "(uncontrolled search path). No other change.",
    "scan-report.md": f"Weekly container scan: one finding, {CVE} in the git package of the runner image, "
                      "severity high. Owner: platform team.",
    "chat-log.md": f"mei: is the CI runner still exposed to {CVE}? raj: no, the new image ships a fixed git.",
    "other-1.md": "Security advisory CVE-2022-29187: git may run commands from a .git directory owned by "
                  "another user when it walks up the directory tree. Upgrade git to 2.37.1.",
    "other-2.md": "Security advisory CVE-2023-22490: git may leak local files through a crafted repository "
                  "clone over the local transport. Upgrade git to 2.39.2.",
    "other-3.md": "Security advisory CVE-2022-23521: git attributes parsing may overflow an integer. "
                  "Upgrade git to 2.39.1.",
    "other-4.md": "Release 4.2 of the build image upgrades git to 2.39.2, which fixes CVE-2023-22490 "
                  "(local clone exposure). No other change.",
    "other-5.md": "Weekly container scan: one finding, CVE-2022-41903 in the git package of the runner "
                  "image, severity high. Owner: platform team.",
    "other-6.md": "mei: is the CI runner still exposed to CVE-2022-29187? raj: no, the image ships a "
                  "fixed git.",
}


def _upload(cli, tmp_path: Path, files: dict[str, str]) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text + "\n")
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(folder), "-r", "--store", "docs", "-q").exit_code == 0


def _query(cli, text: str, *args: str) -> list[dict]:
    result = cli("query", "docs", text, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["data"]


@pytest.fixture
def examples(cli, dataset: Path) -> str:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset), "-r", "--store", "docs", "-q").exit_code == 0
    return "docs"


# ---- the fusion itself (no model) ----------------------------------------------------------------------


def test_relevance_is_a_convex_combination_on_a_fixed_scale() -> None:
    assert relevance(0.6, 0.0, 10.0, 0.5) == pytest.approx(0.6 / 1.5)
    assert relevance(0.6, 5.0, 10.0, 0.5) == pytest.approx((0.6 + 0.5 * 0.5) / 1.5)
    assert relevance(1.0, 30.0, 10.0, 0.5) == 1.0  # the keyword share is capped at 1
    assert relevance(-0.2, 0.0, 10.0, 0.5) == 0.0  # a negative cosine counts as no evidence
    assert relevance(0.5, 3.0, 0.0, 0.5) == pytest.approx(0.5 / 1.5)  # no scale (no query term): cosine only


def test_fuse_scores_fills_the_missing_side_with_each_lists_floor() -> None:
    vector = [(1, 0.8), (2, 0.6), (3, 0.4)]
    keyword = [(2, 9.0), (4, 6.0)]  # shorter than the depth: every chunk sharing a word is in it
    fused = dict(fuse_scores(vector, keyword, depth=3, scale=10.0, weight=0.5))
    assert set(fused) == {1, 2, 3, 4}
    assert fused[1] == pytest.approx(relevance(0.8, 0.0, 10.0, 0.5))  # no shared word: keyword share 0
    assert fused[4] == pytest.approx(relevance(0.4, 6.0, 10.0, 0.5))  # not in the vector list: its floor
    full = dict(fuse_scores(vector, [(2, 9.0), (4, 6.0), (5, 5.0)], depth=3, scale=10.0, weight=0.5))
    assert full[1] == pytest.approx(relevance(0.8, 5.0, 10.0, 0.5))  # a full list: at most its last score
    order = [cid for cid, _ in fuse_scores(vector, keyword, 3, 10.0, 0.5)]
    assert order[0] == 2  # good on both sides beats best on one


def test_identifiers_in_queries() -> None:
    assert identifier_share("CVE-2022-24765") == 1.0
    assert identifier_share("what changed in 2.3.0") == 0.25
    assert identifier_share("how does a neural network learn") == 0.0
    assert identifier_share("1 in 5 million in UK") == 0.0  # numbers and acronyms are ordinary words
    assert [w for w, ident in query_words("is getUserName or snake_case (E-4012)?") if ident] == \
        ["getUserName", "snake_case", "E-4012"]


def test_completion_knows_the_modes_and_fusions() -> None:
    assert complete.MODES == MODES and complete.FUSIONS == FUSIONS


# ---- real model ----------------------------------------------------------------------------------------


def test_best_score_separates_on_topic_from_off_topic(cli, examples) -> None:
    best = {q: _query(cli, q, "-k", "1")[0]["score"] for q in ON_TOPIC + OFF_TOPIC}
    lowest_on = min(best[q] for q in ON_TOPIC)
    highest_off = max(best[q] for q in OFF_TOPIC)
    assert lowest_on > highest_off, best
    assert lowest_on >= RELEVANT > highest_off, best  # the documented floor falls between them
    for q in OFF_TOPIC:
        assert _query(cli, q, "--min-score", "auto") == []
    assert _query(cli, ON_TOPIC[0], "--min-score", "auto")[0]["filename"] == "data_mining.md"


def test_rank_fusion_scores_do_not_separate(cli, examples) -> None:
    """Why the default changed: RRF gives an off-topic question's best chunk a near-perfect score."""
    assert _query(cli, OFF_TOPIC[0], "-k", "1", "--fusion", "rrf")[0]["score"] > 0.9


def test_min_score_auto_in_each_mode(cli, examples) -> None:
    for mode in ("vector", "keyword"):
        kept = _query(cli, ON_TOPIC[0], "--mode", mode, "--min-score", "auto")
        assert kept and kept[0]["filename"] == "data_mining.md"
    assert _query(cli, OFF_TOPIC[0], "--mode", "vector", "--min-score", "auto") == []
    everything = _query(cli, OFF_TOPIC[0], "--mode", "keyword")
    assert everything and _query(cli, OFF_TOPIC[0], "--mode", "keyword", "--min-score", "auto") == []


def test_an_exact_identifier_finds_every_file_that_names_it(cli, tmp_path: Path) -> None:
    _upload(cli, tmp_path, ADVISORIES)
    named = {name for name, text in ADVISORIES.items() if CVE in text}
    top = [r["filename"] for r in _query(cli, CVE, "-k", "4")]
    assert set(top) == named, top
    # keyword search matches the whole code: no file that names only other CVEs of 2022
    assert {r["filename"] for r in _query(cli, CVE, "--mode", "keyword")} == named


def test_versions_match_whole(cli, tmp_path: Path) -> None:
    notes = {  # every note holds the digits 2, 3 and 0; one holds the version 2.3.0
        "1.0.0": "the first release, in 2 editions, with 3 themes and 0 known bugs",
        "2.0.0": "a new editor in 3 languages, 2 themes and 0 plugins",
        "2.3.0": "export to CSV in every report, and a dark theme",
        "2.3.1": "a fix for the crash when exporting an empty table in 3 of 20 reports",
        "3.2.0": "the report builder, in 2 sizes, with 30 templates",
        "3.3.0": "faster search in 2 out of 3 cases, and 0 downtime upgrades",
    }
    _upload(cli, tmp_path, {f"release-{v}.md": f"# Release {v}\n\nWhat changed: {text}." for v, text in notes.items()})
    for mode in ("keyword", "hybrid"):
        top = _query(cli, "what changed in 2.3.0", "-k", "1", "--mode", mode)
        assert top[0]["filename"] == "release-2.3.0.md", (mode, top)


def test_bad_fusion_and_min_score_are_clean_errors(cli, examples) -> None:
    assert_clean_error(cli("query", "docs", "x", "--fusion", "max"), ExitCode.USAGE, "--fusion must be one of")
    assert_clean_error(cli("query", "docs", "x", "--min-score", "high"), ExitCode.USAGE,
                       "--min-score must be a number, auto or none")
    assert_clean_error(cli("query", "docs", "x", "--fusion", "rrf", "--min-score", "auto"), ExitCode.USAGE,
                       "rank fusion")


def test_ask_does_not_call_the_model_when_nothing_is_relevant(cli, examples) -> None:
    with ChatServer() as server:
        args = ["--base-url", server.base_url, "--model", "m", "--no-stream"]
        result = cli("ask", "docs", OFF_TOPIC[0], *args)
        assert_clean_error(result, ExitCode.NO_CONTEXT, "below the relevance floor")
        assert server.requests == []
        # the floor can be lowered or switched off, and then the model is asked
        assert cli("ask", "docs", OFF_TOPIC[0], "--min-score", "none", *args).exit_code == 0
        assert cli("ask", "docs", ON_TOPIC[0], *args).exit_code == 0
        assert len(server.requests) == 2
