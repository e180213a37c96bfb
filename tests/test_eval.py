"""`vscli eval`: the metrics against hand-computed values, the BEIR readers, and a run on the labelled
collection in bench/collection whose figures the README quotes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_clean_error
from vscli import evaluation as ev
from vscli.errors import ExitCode, InvalidInput

COLLECTION = ROOT / "bench" / "collection"


def test_metrics_by_hand() -> None:
    ranked = ["d3", "d1", "d2"]
    grades = {"d1": 2, "d2": 1, "d4": 1}
    # DCG = 0/log2(2) + 2/log2(3) + 1/log2(4) = 1.26186 + 0.5; ideal = 2/1 + 1/log2(3) + 1/log2(4) = 3.13093
    assert ev.ndcg(ranked, grades) == pytest.approx(1.761860 / 3.130930, abs=1e-6)
    assert ev.recall(ranked, grades, 10) == pytest.approx(2 / 3)
    assert ev.mrr(ranked, grades) == 0.5
    # the only relevant document at rank 11: outside every @10 metric, inside recall@100
    ranked = [f"x{i}" for i in range(10)] + ["hit"]
    assert ev.score_query(ranked, {"hit": 1}) == {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 1.0,
                                                  "mrr@10": 0.0}
    # grade 0 is judged but not relevant
    assert ev.score_query(["a", "b"], {"a": 0, "b": 1}) == pytest.approx(
        {"ndcg@10": 0.630930, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 0.5}, abs=1e-6)
    assert ev.mean([{"ndcg@10": 1.0, "recall@10": 0.5, "recall@100": 1.0, "mrr@10": 1.0},
                    {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.5, "mrr@10": 0.25}]) == {
        "ndcg@10": 0.5, "recall@10": 0.25, "recall@100": 0.75, "mrr@10": 0.625}


def test_results_become_documents() -> None:
    results = [
        {"filename": "intro.v2.md", "attributes": {}},
        {"filename": "other.txt", "attributes": {"doc_id": "D-7"}},
        {"filename": "intro.v2.md", "attributes": {}},  # a second chunk of the same document
        {"filename": "n.md", "attributes": {"doc_id": 42}},
    ]
    assert ev.documents(results) == ["intro.v2", "D-7", "42"]
    assert ev.documents(results, depth=2) == ["intro.v2", "D-7"]


def test_beir_readers(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": 1, "text": "first", "metadata": {}}\n\n{"_id": "q2", "text": "second"}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\nq2\td3\t0\nq9\td1\t2\n")
    data = ev.judged(ev.read_queries(queries), ev.read_qrels(qrels))
    assert data.queries == {"1": "first"}  # q2 has no relevant document, q9 no query text
    assert data.qrels == {"1": {"d1": 1, "d2": 0}}
    qrels.write_text("query-id\tcorpus-id\tscore\n1\td1\thigh\n")
    with pytest.raises(InvalidInput, match=r"qrels.tsv:2: the score must be an integer"):
        ev.read_qrels(qrels)
    queries.write_text('{"_id": 1}\n')
    with pytest.raises(InvalidInput, match=r'queries.jsonl:1: each line needs "_id" and a string "text"'):
        ev.read_queries(queries)
    with pytest.raises(InvalidInput, match="no query in the queries file has a relevant judgment"):
        ev.judged({"a": "text"}, {"b": {"d": 1}})


def test_eval_errors(cli, tmp_path: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    q, r = str(COLLECTION / "queries.jsonl"), str(COLLECTION / "qrels.tsv")
    assert_clean_error(cli("eval", "docs", "--queries", str(tmp_path / "none.jsonl"), "--qrels", r),
                       ExitCode.USAGE, "no such file")
    assert_clean_error(cli("eval", "docs", "--queries", q, "--qrels", r, "-k", "5"), ExitCode.USAGE,
                       "between 10 and 1000")
    assert_clean_error(cli("eval", "docs", "--queries", q, "--qrels", r, "--mode", "best"), ExitCode.USAGE,
                       "--mode must be one of")
    assert_clean_error(cli("eval", "docs", "--queries", q, "--qrels", r, "--fusion", "max"), ExitCode.USAGE,
                       "--fusion must be one of")
    assert_clean_error(cli("eval", "nope", "--queries", q, "--qrels", r), ExitCode.NOT_FOUND)
    # a store whose documents are not the judged ones: zeros, and a hint why
    result = cli("eval", "docs", "--queries", q, "--qrels", r, "--mode", "keyword")
    assert result.exit_code == 0 and "no result is a judged document" in result.stderr


def _readme_figures() -> dict[str, dict[str, float]]:
    """The README's table of eval figures on the collection: | mode | ndcg@10 | recall@10 | ... |"""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("<!-- eval-figures -->"):text.index("<!-- /eval-figures -->")]
    figures = {}
    for mode, *values in re.findall(r"^\| (hybrid-rrf|hybrid|vector|keyword) +\| ([\d.]+) +\| ([\d.]+) +\| "
                                    r"([\d.]+) +\| ([\d.]+) +\|", section, re.M):
        figures[mode] = dict(zip(ev.METRICS, map(float, values), strict=False))
    return figures


def test_eval_on_the_labelled_collection(cli) -> None:
    """60 documents, 50 judged queries (exact terms and paraphrases): the figures the README shows, and
    the reason hybrid is the default."""
    assert cli("create", "collection").exit_code == 0
    docs = sorted(str(p) for p in (COLLECTION / "corpus").glob("*.md"))
    assert len(docs) >= 60
    assert cli("upload", *docs, "--store", "collection", "-q").exit_code == 0
    result = cli("eval", "collection", "--queries", str(COLLECTION / "queries.jsonl"),
                 "--qrels", str(COLLECTION / "qrels.tsv"), "--mode", "all", "--json", "--per-query")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 50 and report["depth"] == 100
    label = {("hybrid", "score"): "hybrid", ("hybrid", "rrf"): "hybrid-rrf", ("vector", None): "vector",
             ("keyword", None): "keyword"}
    runs = {label[run["mode"], run["fusion"]]: run for run in report["runs"]}
    assert list(runs) == ["hybrid", "hybrid-rrf", "vector", "keyword"]  # every mode, hybrid with each fusion
    metrics = {mode: run["metrics"] for mode, run in runs.items()}
    # score fusion beats both halves and rank fusion
    assert metrics["hybrid"]["ndcg@10"] > max(metrics[m]["ndcg@10"] for m in ("vector", "keyword", "hybrid-rrf"))
    kinds = {json.loads(line)["_id"]: json.loads(line)["metadata"]["kind"]
             for line in (COLLECTION / "queries.jsonl").read_text().splitlines()}

    def mean_ndcg(mode: str, kind: str) -> float:
        scores = [q["ndcg@10"] for q in runs[mode]["per_query"] if kinds[q["query_id"]] == kind]
        return sum(scores) / len(scores)

    # each index is there for a reason: keyword for identifiers, vectors for paraphrases
    assert mean_ndcg("keyword", "exact") > mean_ndcg("vector", "exact") + 0.1
    assert mean_ndcg("vector", "paraphrase") > mean_ndcg("keyword", "paraphrase") + 0.1
    readme = _readme_figures()
    assert set(readme) == set(runs)
    for mode in readme:
        for metric, value in readme[mode].items():
            assert metrics[mode][metric] == pytest.approx(value, abs=0.005), (mode, metric, metrics[mode])
    # the human table
    table = cli("eval", "collection", "--queries", str(COLLECTION / "queries.jsonl"),
                "--qrels", str(COLLECTION / "qrels.tsv"), "--mode", "keyword")
    assert table.stdout.splitlines()[0].split("\t") == ["mode", *ev.METRICS]
    assert table.stdout.splitlines()[1].startswith("keyword\t")
    table = cli("eval", "collection", "--queries", str(COLLECTION / "queries.jsonl"),
                "--qrels", str(COLLECTION / "qrels.tsv"), "--fusion", "all")
    assert [line.split("\t")[0] for line in table.stdout.splitlines()[1:]] == ["hybrid", "hybrid-rrf"]
