"""The keyword index: BM25 over chunk texts, kept by tantivy (an inverted index with segments and deletes).

One tantivy document per chunk: its chunk id (stored), its file serial (indexed, to delete or filter a
whole file) and its text (English stemming, lower case). The index lives in ``<store>/keyword/`` and is
updated in place by tantivy's own commits, which the store makes before its ``files.json`` commit:

- adding a file deletes its serial first, so a retry after a crash never duplicates a chunk;
- removing a file is done after ``files.json`` no longer names it. If a crash comes in between, the
  chunks stay in the keyword index, but no query returns them (results are limited to the serials the
  manifest knows, and serials are never reused); `vscli doctor --repair` purges them.

tantivy creates lock files even to read, so on a read-only file system the index is opened through a
private directory of symbolic links to its files.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from vscli.errors import CorruptData, VscliError

WRITER_HEAP_BYTES = 32_000_000  # tantivy's memory budget before it flushes a segment
_QUERY_SYNTAX = re.compile(r"[^\w\s]+")


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("cid", stored=True)
    builder.add_unsigned_field("serial", indexed=True)
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    return builder.build()


class KeywordIndex:
    """BM25 search over a store's chunks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: Any = None
        self._searcher: Any = None
        self._links: tempfile.TemporaryDirectory | None = None

    def exists(self) -> bool:
        return (self.path / "meta.json").exists()

    # ---- writing (the caller holds the store's lock) ------------------------------------------------

    def writer(self) -> "KeywordWriter":
        import tantivy

        try:
            self.path.mkdir(parents=True, exist_ok=True)
            index = tantivy.Index(_schema(), path=str(self.path), reuse=True)
            return KeywordWriter(index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1), index.schema)
        except OSError as exc:
            raise VscliError(f"cannot write the keyword index {self.path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise _error("open", self.path, exc) from exc

    def reset(self) -> None:
        """Throw the index away (to rebuild it from the chunk manifests)."""
        shutil.rmtree(self.path, ignore_errors=True)

    # ---- reading -------------------------------------------------------------------------------------

    def _open(self) -> Any:
        if self._searcher is not None:
            return self._searcher
        import tantivy

        if not self.exists():
            raise FileNotFoundError(errno.ENOENT, "no keyword index", str(self.path))
        try:
            self._index = tantivy.Index.open(str(self.path))
        except ValueError as exc:
            if "read-only file system" not in str(exc).lower():
                raise _error("open", self.path, exc) from exc
            self._index = tantivy.Index.open(self._linked_copy())
        self._searcher = self._index.searcher()
        return self._searcher

    def _linked_copy(self) -> str:
        """A writable directory whose entries link to the index's files, for tantivy's lock files."""
        self._links = tempfile.TemporaryDirectory(prefix="vscli-keyword-")
        for name in os.listdir(self.path):
            if not name.startswith(".tantivy-"):
                os.symlink(self.path / name, os.path.join(self._links.name, name))
        return self._links.name

    def search(self, text: str, k: int, serials: Iterable[int] | None = None) -> list[tuple[int, float]]:
        """Up to k (chunk id, BM25 score) pairs, best first; only chunks of these serials when given."""
        import tantivy

        words = _QUERY_SYNTAX.sub(" ", text).lower().split()
        if not words or k <= 0:
            return []
        searcher = self._open()
        query = self._index.parse_query(" ".join(words), ["text"])
        if serials is not None:
            allowed = tantivy.Query.term_set_query(self._index.schema, "serial", sorted(serials))
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, tantivy.Query.const_score_query(allowed, 0.0))]
            )
        hits = searcher.search(query, k).hits
        return [(int(searcher.doc(address)["cid"][0]), float(score)) for score, address in hits]

    @property
    def size(self) -> int:
        return int(self._open().num_docs)

    def count(self, serial: int) -> int:
        """How many chunks of the file with this serial the index holds."""
        import tantivy

        searcher = self._open()
        return int(searcher.search(tantivy.Query.term_query(self._index.schema, "serial", serial), 1).count)


class KeywordWriter:
    """Batched changes to the keyword index; nothing is visible until `commit`."""

    def __init__(self, writer: Any, schema: Any) -> None:
        self._writer = writer
        self._schema = schema

    def replace(self, serial: int, chunk_ids: list[int], texts: list[str]) -> None:
        import tantivy

        self.delete([serial])
        for cid, text in zip(chunk_ids, texts):
            doc = tantivy.Document()
            doc.add_unsigned("cid", cid)
            doc.add_unsigned("serial", serial)
            doc.add_text("text", text)
            self._writer.add_document(doc)

    def delete(self, serials: Iterable[int]) -> None:
        import tantivy

        for serial in serials:  # a term query knows the field is unsigned; a bare term would be signed
            self._writer.delete_documents_by_query(tantivy.Query.term_query(self._schema, "serial", serial))

    def commit(self) -> None:
        try:
            self._writer.commit()
            self._writer.wait_merging_threads()
        except ValueError as exc:
            raise _error("write", Path("keyword index"), exc) from exc

    def abandon(self) -> None:
        """Drop uncommitted changes and release tantivy's writer lock."""
        try:
            self._writer.rollback()
            self._writer.wait_merging_threads()  # consumes the writer, which releases its lock
        except (ValueError, RuntimeError):
            pass


def _error(action: str, path: Path, exc: Exception) -> VscliError:
    message = str(exc)
    if "No space left" in message:
        return VscliError(f"cannot {action} the keyword index {path}: no space left on device")
    if "Read-only file system" in message:
        return VscliError(f"cannot {action} the keyword index {path}: read-only file system")
    return CorruptData(f"cannot {action} the keyword index {path}: {message.splitlines()[0] if message else exc}")
