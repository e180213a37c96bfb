"""The eval command: retrieval quality of a store on the user's own judged queries (BEIR format)."""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vscli.cli import complete, render
from vscli.cli.app import app, workspace
from vscli.cli.progress import count_progress
from vscli.cli.stores import StoreArg
from vscli.search import DEFAULT_MODE, MODES, check_mode

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
        help="Ranking to measure, or all three.")] = DEFAULT_MODE,
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

    modes = list(MODES) if mode == "all" else [check_mode(mode)]
    if not 10 <= k <= 1000:
        raise InvalidInput(f"-k must be between 10 and 1000 documents, got {k}")
    data = evaluation.judged(evaluation.read_queries(queries), evaluation.read_qrels(qrels))
    s = resolve_store(workspace(), store)
    judged_docs = {doc for grades in data.qrels.values() for doc in grades}
    with s.opened():  # one connection for every query (a Milvus Lite file is opened once)
        runs = _runs(s, modes, data, k, per_query, quiet, judged_docs)
    if as_json:
        render.emit_json({"object": "vscli.eval", "vector_store_id": s.id, "queries": len(data.queries),
                          "depth": k, "runs": runs})
        return
    render.table(["mode", *evaluation.METRICS],
                 [[r["mode"], *(f"{r['metrics'][m]:.4f}" for m in evaluation.METRICS)] for r in runs])
    render.message(f"{len(data.queries)} judged queries; documents ranked per query: {k}")


def _runs(s: "Store", modes: list[str], data: Any, k: int, per_query: bool, quiet: bool,
          judged_docs: set[str]) -> list[dict[str, Any]]:
    from vscli import evaluation
    from vscli.search import Searcher

    runs = []
    for m in modes:
        searcher = Searcher(s, m)
        chunks = k * evaluation.CHUNKS_PER_DOCUMENT
        with count_progress(len(data.queries), f"eval {m}", "queries", quiet) as advance:
            metrics, records = evaluation.evaluate(
                lambda text: searcher.results(text, chunks), data, k, advance
            )
        runs.append({"mode": m, "metrics": metrics, **({"per_query": records} if per_query else {})})
        if m == modes[0] and not any(doc in judged_docs for r in records for doc in r["top"]):
            render.message("warning: no result is a judged document; do the filenames (without extension) "
                           "or doc_id attributes match the qrels' corpus ids?")
    return runs
