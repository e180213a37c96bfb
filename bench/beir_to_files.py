"""Turn a BEIR dataset's corpus into one text file per document, for `vscli upload` and `vscli eval`.

    python bench/beir_to_files.py scifact/ scifact-files/
    vscli create scifact && vscli upload scifact-files/ -r --store scifact -q
    vscli eval scifact --queries scifact/queries.jsonl --qrels scifact/qrels/test.tsv --mode all

Each line of DATASET/corpus.jsonl ({"_id", "title", "text"}) becomes OUT/<_id>.txt holding the title, a
blank line and the text; `vscli eval` maps a result back to the document id by its filename (without
the .txt). Ids that cannot be file names (a slash, a leading dot) are rejected rather than changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="a BEIR dataset directory (holding corpus.jsonl)")
    parser.add_argument("out", type=Path, help="where to write the files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    count = 0
    with (args.dataset / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for number, line in enumerate(corpus, 1):
            if not line.strip():
                continue
            doc = json.loads(line)
            doc_id = str(doc["_id"])
            if not doc_id or doc_id.startswith(".") or any(c in doc_id for c in "/\\\0") or len(doc_id.encode()) > 200:
                sys.exit(f"corpus.jsonl:{number}: document id {doc_id!r} is not a safe file name")
            text = "\n\n".join(part for part in (doc.get("title", "").strip(), doc.get("text", "").strip()) if part)
            if text:
                (args.out / f"{doc_id}.txt").write_text(text + "\n", encoding="utf-8")
                count += 1
    print(f"wrote {count} files to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
