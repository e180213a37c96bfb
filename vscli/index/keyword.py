"""The keyword index: BM25 over chunk texts, kept by tantivy (an inverted index with segments and deletes).

One tantivy document per chunk: its chunk id (stored), its file serial (indexed, to delete or filter a
whole file) and its text (English stemming, lower case). The index lives in ``<store>/keyword/`` and is
updated in place by tantivy's own commits, which the store makes before its catalog commit:

- adding a file deletes its serial first, so a retry after a crash never duplicates a chunk;
- removing a file is done after the catalog no longer names it. If a crash comes in between, the
  chunks stay in the keyword index, but no query returns them (results are limited to the serials the
  manifest knows, and serials are never reused); `vscli doctor --repair` purges them.

tantivy creates lock files even to read, so on a read-only file system the index is opened through a
private directory of symbolic links to its files.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from vscli.errors import CorruptData, VscliError

WRITER_HEAP_BYTES = 32_000_000  # tantivy's memory budget before it flushes a segment
_QUERY_SYNTAX = re.compile(r"[^\w\s]+")
_EDGE_PUNCTUATION = "?!.,;:()[]{}\"'`"
# An identifier: letters and digits together (E-4012, APOE4, CVE-2022-24765), dotted or dashed numbers
# (2.3.0, 10/20), or code names (snake_case, camelCase). Plain words, acronyms and numbers are not.
_IDENTIFIER = re.compile(
    r"^(?=\D*\d)(?=.*[^\W\d_])\S{2,}$"  # a digit and a letter
    r"|^\d+(?:[.\-/:]\d+)+$"  # 2.3.0, 10/20
    r"|^\w+_\w+$|^[a-z]+[A-Z]\w*$"  # snake_case, camelCase
)


def query_words(text: str) -> list[tuple[str, bool]]:
    """The query's whitespace-separated words without surrounding punctuation, each marked when it is an
    identifier (a code, version or name that should match whole)."""
    words = (raw.strip(_EDGE_PUNCTUATION) for raw in text.split())
    return [(word, bool(_IDENTIFIER.match(word))) for word in words if word]


def identifier_share(text: str) -> float:
    """How much of the query is identifiers (0..1): hybrid search gives the keyword side more weight."""
    words = query_words(text)
    return sum(identifier for _, identifier in words) / len(words) if words else 0.0


def _analyzer() -> Any:
    """The text pipeline of tantivy's ``en_stem`` tokenizer, to see a query's terms as the index does."""
    import tantivy

    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.stemmer("english")).build())


def idf(documents: int, frequency: int) -> float:
    """BM25's inverse document frequency, as tantivy (and Lucene) compute it."""
    return math.log(1.0 + (documents - frequency + 0.5) / (frequency + 0.5))


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
        self._last: tuple[str, Any, float] | None = None  # the last text compiled, its query and scale

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
        """Throw the index away (to rebuild it from the chunk texts)."""
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

        query, _ = self._compiled(text)
        if query is None or k <= 0:
            return []
        searcher = self._open()
        if serials is not None:
            allowed = tantivy.Query.term_set_query(self._index.schema, "serial", sorted(serials))
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, tantivy.Query.const_score_query(allowed, 0.0))]
            )
        hits = searcher.search(query, k).hits
        return [(int(searcher.doc(address)["cid"][0]), float(score)) for score, address in hits]

    def scale(self, text: str) -> float:
        """The BM25 score of a chunk of average length holding each of the query's terms once: the sum of
        their IDFs (an identifier counts as one term). A term no chunk holds counts with the highest IDF,
        so a query whose words are missing from the store cannot reach a high share of its scale
        (`vscli.search` divides scores by it)."""
        return self._compiled(text)[1]

    def _compiled(self, text: str) -> tuple[Any, float]:
        """The query tantivy runs for this text, and its scale (kept for the last text: fusion asks for both).

        Plain words match anywhere. An identifier that tantivy splits into several tokens (E-4012 -> e,
        4012) must match whole, as a phrase, and scores as one term of its own rarity: BM25 would give a
        phrase the sum of its tokens' IDFs, which is next to nothing for digits that every chunk holds."""
        if self._last is not None and self._last[0] == text:
            return self._last[1], self._last[2]
        import tantivy

        searcher = self._open()
        documents = max(int(searcher.num_docs), 1)
        analyzer = _analyzer()

        def term_idf(term: str) -> float:
            return idf(documents, min(int(searcher.doc_freq("text", term)), documents))

        plain: list[str] = []
        clauses: list[tuple[Any, Any]] = []
        scale = 0.0
        for word, identifier in query_words(text):
            tokens = _QUERY_SYNTAX.sub(" ", word).lower().split()
            if not (identifier and len(tokens) > 1):
                plain.extend(tokens)
                continue
            phrase = self._index.parse_query('"' + " ".join(tokens) + '"', ["text"])
            rarity = idf(documents, min(int(searcher.search(phrase, 1).count), documents))
            tokens_idf = sum(term_idf(term) for term in analyzer.analyze(" ".join(tokens)))
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(phrase, rarity / tokens_idf)))
            scale += rarity
        if plain:
            clauses.append((tantivy.Occur.Should, self._index.parse_query(" ".join(plain), ["text"])))
            scale += sum(term_idf(term) for term in analyzer.analyze(" ".join(plain)))
        query = tantivy.Query.boolean_query(clauses) if clauses else None
        self._last = (text, query, scale)
        return query, scale

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
        for cid, text in zip(chunk_ids, texts, strict=False):
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

