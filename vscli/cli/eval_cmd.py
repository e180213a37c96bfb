"""The eval command: retrieval quality of a store on the user's own judged queries (BEIR format)."""


from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from vscli.cli import complete, render
from vscli.cli.app import app, workspace
from vscli.cli.progress import count_progress
from vscli.cli.stores import StoreArg
from vscli.search import DEFAULT_FUSION, DEFAULT_MODE, FUSIONS, MODES, check_fusion, check_mode

if TYPE_CHECKING:
    from vscli.store import Store


@app.command(name="eval")
def eval_(
    store: StoreArg,
    queries: Annotated[Path, typer.Option("--queries", metavar="Q.jsonl", help='BEIR queries: one '
                                          '{"_id": ..., "text": ...} per line.')],
    qrels: Annotated[Path, typer.Option("--qrels", metavar="QRELS.tsv", help="BEIR judgments: query-id, "
                                        "corpus-id, score (tab-separated, after a header line).")],
    mode: Annotated[str, typer.Option(
        "--mode", metavar="hybrid|vector|keyword|all", autocompletion=complete.eval_modes,
        help="Ranking to measure, or all three (hybrid with each fusion).")] = DEFAULT_MODE,
    fusion: Annotated[Optional[str], typer.Option(
        "--fusion", metavar="score|rrf|all", autocompletion=complete.eval_fusions,
        help="Hybrid's fusion to measure (default: score; all with --mode all).")] = None,
    k: Annotated[int, typer.Option("-k", "--depth", help="Documents ranked per query (10-1000).")] = 100,
    per_query: Annotated[bool, typer.Option(
        "--per-query", help="With --json: add each query's metrics and its top 10 document ids.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
) -> None:
    """Measure retrieval quality: nDCG@10, Recall@10, Recall@100 and MRR@10 over judged queries.

    A result's document is its doc_id attribute, or else its filename without the extension.

    \b
    Example: vscli eval docs --queries queries.jsonl --qrels qrels/test.tsv --mode all
    """
    from vscli import evaluation
    from vscli.errors import InvalidInput
    from vscli.store import resolve_store

    rankings = _rankings(mode, fusion)
    if not 10 <= k <= 1000:
        raise InvalidInput(f"-k must be between 10 and 1000 documents, got {k}")
    data = evaluation.judged(evaluation.read_queries(queries), evaluation.read_qrels(qrels))
    s = resolve_store(workspace(), store)
    judged_docs = {doc for grades in data.qrels.values() for doc in grades}
    with s.opened():  # one connection for every query (a Milvus Lite file is opened once)
        runs = _runs(s, rankings, data, k, per_query, quiet, judged_docs)
    if as_json:
        render.emit_json({"object": "vscli.eval", "vector_store_id": s.id, "queries": len(data.queries),
                          "depth": k, "runs": runs})
        return
    render.table(["mode", *evaluation.METRICS],
                 [[_label(r), *(f"{r['metrics'][m]:.4f}" for m in evaluation.METRICS)] for r in runs])
    render.message(f"{len(data.queries)} judged queries; documents ranked per query: {k}")


def _rankings(mode: str, fusion: Optional[str]) -> list[tuple[str, Optional[str]]]:
    """The (mode, fusion) pairs to measure; fusion is None for the modes that fuse nothing."""
    modes = list(MODES) if mode == "all" else [check_mode(mode)]
    fusion = fusion or ("all" if mode == "all" else DEFAULT_FUSION)
    fusions = list(FUSIONS) if fusion == "all" else [check_fusion(fusion)]
    return [(m, f) for m in modes for f in (fusions if m == "hybrid" else [None])]


def _label(run: dict[str, Any]) -> str:
    return run["mode"] if run.get("fusion") in (None, DEFAULT_FUSION) else f"{run['mode']}-{run['fusion']}"


def _runs(s: "Store", rankings: list[tuple[str, Optional[str]]], data: Any, k: int, per_query: bool, quiet: bool,
          judged_docs: set[str]) -> list[dict[str, Any]]:
    from vscli import evaluation
    from vscli.search import Searcher

    runs: list[dict[str, Any]] = []
    for m, f in rankings:
        searcher = Searcher(s, m, fusion=f or DEFAULT_FUSION)
        chunks = k * evaluation.CHUNKS_PER_DOCUMENT
        run = {"mode": m, "fusion": f}
        with count_progress(len(data.queries), f"eval {_label(run)}", "queries", quiet) as advance:
            metrics, records = evaluation.evaluate(partial(searcher.results, k=chunks), data, k, advance)
        runs.append({**run, "metrics": metrics, **({"per_query": records} if per_query else {})})
        if not runs[1:] and not any(doc in judged_docs for r in records for doc in r["top"]):
            render.message("warning: no result is a judged document; do the filenames (without extension) "
                           "or doc_id attributes match the qrels' corpus ids?")
    return runs
