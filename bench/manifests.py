"""What checking the shape of files.json on every read costs, next to parsing it (issue 20).

    python bench/manifests.py                  # 1,000 / 10,000 / 50,000 files
    python bench/manifests.py --files 200000

Builds files.json entries as vscli writes them, then times json.loads and `vscli.manifests.check_state`
on the same text (medians of 5). Prints a Markdown table; the one in BENCHMARKS.md comes from here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from vscli.manifests import check_state


def entry(i: int) -> dict:
    file_id = f"file-{i:024d}"
    return {"id": file_id, "object": "vector_store.file", "created_at": 1796339242, "vector_store_id": "vs_x",
            "usage_bytes": 1240, "attributes": {"team": "research", "year": 2024},
            "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 200,
                                                               "chunk_overlap_tokens": 50}},
            "vscli": {"serial": i + 1, "chunks": 2, "vectors": 2, "attempt": "cb3fb4faab7a4a66b2a6d07820c42e90",
                      "queued_at": 1796339242, "worker": None},
            "status": "completed", "last_error": None}


def median_seconds(action, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="*", default=[1000, 10000, 50000])
    args = parser.parse_args()
    print("| files | files.json | json.loads | check_state | check / parse |")
    print("|---|---|---|---|---|")
    for n in args.files:
        text = json.dumps({"generation": 3, "next_serial": n + 1,
                           "files": {f"file-{i:024d}": entry(i) for i in range(n)}}, indent=2)
        state = json.loads(text)
        parse = median_seconds(lambda text=text: json.loads(text))
        check = median_seconds(lambda state=state: check_state(state, "bench"))
        print(f"| {n:,} | {len(text) / 1e6:.1f} MB | {parse * 1000:.0f} ms | {check * 1000:.0f} ms "
              f"| {check / parse:.2f} |")


if __name__ == "__main__":
    main()
