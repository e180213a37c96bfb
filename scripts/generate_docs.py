"""Regenerate the documentation that comes from the command definitions.

    python scripts/generate_docs.py          # write completions/, man/vscli.1, docs/cli.md, README tables
    python scripts/generate_docs.py --check  # exit 1 and name the stale files, changing nothing

Run it after changing a command, an option, an environment variable or an exit code; a test runs
--check, so a stale copy fails the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    from vscli.cli import reference

    wanted = reference.generated()
    readme = ROOT / "README.md"
    wanted["README.md"] = reference.update_readme(readme.read_text(encoding="utf-8"))
    stale = []
    for relative, text in wanted.items():
        path = ROOT / relative
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("stale (run python scripts/generate_docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    for relative in stale:
        print(f"wrote {relative}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
