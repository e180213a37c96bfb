"""Search quality per mode and fusion, and how well the relevance floor (`--min-score auto`) separates
on-topic from off-topic queries: the figures the README's "Search quality" section shows.

    python bench/quality.py                      # bench/collection, the examples, SciFact's train split
    python bench/quality.py --home /tmp/quality  # keep the stores there and reuse them on the next run
    python bench/quality.py --no-scifact         # skip SciFact (its store takes ~16 minutes to build)

Everything goes through the vscli CLI (upload, eval --mode all, query - -k 1), so the figures are what a
user gets. SciFact (BEIR's packaging, train queries; see ../shared/datasets/README.md) is turned into one
file per abstract with bench/beir_to_files.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from eval_collection import vscli

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = ROOT / "bench" / "collection"
EXAMPLES = ROOT / "examples" / "dataset"
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact-train"
RELEVANT = 0.3  # vscli.search.RELEVANT, the documented floor
EXAMPLE_QUERIES = {  # the examples answer the first six and not the last six (tests/test_relevance.py)
    "on": ["what is data mining?", "how do I bake sourdough bread", "how does a neural network learn",
           "clustering without labels", "approximate nearest neighbour search",
           "supervised learning with labelled examples"],
    "off": ["what is the capital of Peru?", "recipe for a margarita cocktail",
            "what does the free command report about memory", "who won the football world cup in 2014",
            "how to change a flat tyre on a bicycle", "tax rules for selling a house"],
}


def build(home: str, name: str, files: list[str]) -> None:
    """Create the store and upload the files, unless an earlier run left it complete in ``home``."""
    listed = subprocess.run([sys.executable, "-m", "vscli", "--home", home, "ls", "--json"], capture_output=True,
                            text=True)
    if listed.returncode == 0 and any(s["name"] == name and s["file_counts"]["completed"] == len(files)
                                      for s in json.loads(listed.stdout)["data"]):
        return
    print(f"building {name} ({len(files)} files) ...", file=sys.stderr)
    vscli("create", name, home=home)
    vscli("upload", *files, "--store", name, "-q", home=home)


def quality(home: str, store: str, queries: Path, qrels: Path) -> list[tuple[str, dict[str, float]]]:
    report = json.loads(vscli("eval", store, "--queries", str(queries), "--qrels", str(qrels), "--mode", "all",
                              "--json", "-q", home=home))
    return [(run["mode"] + ("-rrf" if run["fusion"] == "rrf" else ""), run["metrics"]) for run in report["runs"]]


def best_scores(home: str, store: str, queries: list[str]) -> list[float]:
    """The hybrid score of each query's best chunk (0 when nothing matches)."""
    out = subprocess.run([sys.executable, "-m", "vscli", "--home", home, "query", store, "-", "-k", "1"],
                         input="\n".join(queries) + "\n", capture_output=True, text=True, check=True).stdout
    return [page["data"][0]["score"] if page["data"] else 0.0 for page in map(json.loads, out.splitlines())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="workspace to build the stores in and reuse (default: a scratch one)")
    parser.add_argument("--no-scifact", action="store_true", help="skip SciFact")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="the BEIR scifact-train directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vscli-quality-") as scratch:
        home = args.home or scratch
        build(home, "collection", sorted(str(p) for p in (COLLECTION / "corpus").glob("*.md")))
        build(home, "examples", sorted(str(p) for p in EXAMPLES.glob("*.md")))
        tables = {"bench/collection": quality(home, "collection", COLLECTION / "queries.jsonl",
                                              COLLECTION / "qrels.tsv")}
        collection_queries = [json.loads(line)["text"] for line in (COLLECTION / "queries.jsonl").open()]
        separation = {
            "on: bench/collection queries, own store": best_scores(home, "collection", collection_queries),
            "on: examples, questions they answer": best_scores(home, "examples", EXAMPLE_QUERIES["on"]),
            "off: examples, questions they do not answer": best_scores(home, "examples", EXAMPLE_QUERIES["off"]),
        }
        if not args.no_scifact:
            files = Path(home) / "scifact-files"
            if not files.is_dir():
                subprocess.run([sys.executable, str(ROOT / "bench" / "beir_to_files.py"), str(args.scifact),
                                str(files)], check=True)
            build(home, "scifact", sorted(str(p) for p in files.glob("*.txt")))
            tables["SciFact train (809 queries)"] = quality(home, "scifact", args.scifact / "queries.jsonl",
                                                             args.scifact / "qrels" / "train.tsv")
            scifact_queries = [json.loads(line)["text"] for line in (args.scifact / "queries.jsonl").open()]
            separation["on: SciFact queries, own store"] = best_scores(home, "scifact", scifact_queries)
            separation["off: SciFact queries, bench/collection's store"] = best_scores(home, "collection",
                                                                                      scifact_queries[:300])
            separation["off: SciFact queries, the examples' store"] = best_scores(home, "examples",
                                                                                 scifact_queries[:300])
            separation["(mixed) bench/collection queries, SciFact's store"] = best_scores(home, "scifact",
                                                                                         collection_queries)
    for name, runs in tables.items():
        print(f"\n{name}\n\n| mode | nDCG@10 | Recall@10 | Recall@100 | MRR@10 |\n|---|---|---|---|---|")
        for label, m in runs:
            print(f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | "
                  f"{m['mrr@10']:.4f} |")
    print(f"\nBest hybrid score per query, against the floor {RELEVANT} (`--min-score auto`)\n")
    print("| queries | n | median | at or above the floor |\n|---|---|---|---|")
    for name, scores in separation.items():
        above = sum(s >= RELEVANT for s in scores) / len(scores)
        print(f"| {name} | {len(scores)} | {statistics.median(scores):.3f} | {above:.1%} |")


if __name__ == "__main__":
    main()
