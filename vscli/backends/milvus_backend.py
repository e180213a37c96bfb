"""A store's vectors in one Milvus collection (Milvus Lite file or Milvus server).

One row per embedded window: ``pk`` = chunk id << 8 | window, ``cid`` (the chunk id), ``serial`` (the
file's serial in the store), ``file_id``, ``vector`` (inner product on normalized vectors = cosine),
``text`` (the chunk text, on window 0 only, so BM25 counts each chunk once), ``sparse`` (BM25 terms,
computed by Milvus from ``text``) and ``attributes`` (the file's attributes, for filter expressions).

Writes are idempotent: rows are upserted by primary key, and a commit that finds the mark an interrupted
one left (``milvus-writing`` in the store's folder) first deletes every row beyond the manifest's serials,
so a crash and a retry never duplicate or mix chunks. Hits are grouped by chunk
id (a chunk's best window), as the FAISS index does.
"""

from __future__ import annotations

import re
import weakref
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vscli import index as vindex
from vscli.backends.milvus_connection import connect, drop_index_files, is_lite, translated
from vscli.errors import BackendError, CorruptData, InvalidInput
from vscli.notices import announce
from vscli.workspace import atomic_write_bytes

if TYPE_CHECKING:
    import numpy as np

    from vscli.backends.base import Hits
    from vscli.folder import StoreFolder
    from vscli.index.keyword import KeywordWriter
    from vscli.reader import Snapshot

WINDOW_BITS = 8  # up to 256 embedding windows per chunk
MAX_TEXT_BYTES = 65535  # Milvus's VARCHAR limit
MAX_TOP_K = 16384  # Milvus's limit on one search's results
UPSERT_ROWS = 1000  # rows per upsert request
WRITING_MARK = "milvus-writing"  # in the store's folder while a commit's rows are not yet in the catalog
SCHEMA_FIELDS = ("pk", "cid", "serial", "file_id", "vector", "text", "attributes")
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_READY: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()  # client -> collections checked


def has_full_text_search(version: str) -> bool:
    """Whether a Milvus server of this version has BM25 full-text search (Milvus 2.5 and later; every
    Milvus Lite 3). An unrecognised version is given the benefit of the doubt: creation tells."""
    if version.startswith("milvus_lite"):
        return True
    found = re.search(r"(\d+)\.(\d+)", version)
    return found is None or (int(found.group(1)), int(found.group(2))) >= (2, 5)


def collection_name(requested: str | None, store_id: str) -> str:
    name = requested or f"vscli_{store_id}"
    if not _NAME.match(name):
        raise InvalidInput(f"collection must start with a letter or _ and hold only letters, digits and _ "
                           f"(at most 255), got {name!r}", field="collection")
    return name


class MilvusBackend:
    kind = "milvus"
    deletes_after_commit = True
    keeps_removed_vectors = False

    def __init__(self, folder: StoreFolder, spec: dict[str, Any]) -> None:
        self.folder = folder
        self.uri: str = spec["uri"]
        self.collection: str = spec["collection"]
        self.keyword = spec.get("keyword", "milvus")  # "local": the server has no BM25, tantivy does it
        self.local_keywords = self.keyword == "local"
        self.dimension = int(folder.config()["vscli"]["dimension"])

    def spec(self) -> dict[str, Any]:
        return {"kind": "milvus", "uri": self.uri, "collection": self.collection, "keyword": self.keyword}

    # ---- the collection ----------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Create the collection, or adopt an empty one made for a store of this dimension."""
        with connect(self.uri) as client:
            if client.has_collection(self.collection) and self._own_leftover(client):
                client.drop_collection(self.collection)  # an interrupted migration of this very store
            if client.has_collection(self.collection):
                fields = self._check(client)
                count = self._count(client)
                if count:
                    raise BackendError(f"collection {self.collection} at {self.uri} already holds {count} "
                                       "rows; choose another --collection (or drop it in Milvus)")
                self.local_keywords = "sparse" not in fields
                self.keyword = "local" if self.local_keywords else "milvus"
                return False
            bm25 = has_full_text_search(client.get_server_version())
            try:
                self._create(client, bm25)
            except BackendError as exc:
                if not bm25 or "function" not in exc.message.lower() and "bm25" not in exc.message.lower():
                    raise
                bm25 = False  # a server that claims a new version but lacks full-text search
                self._create(client, bm25)
            self.keyword = "milvus" if bm25 else "local"  # without BM25 in Milvus, vscli's keyword index
            self.local_keywords = not bm25
            return True

    def _own_leftover(self, client: Any) -> bool:
        """Whether the collection was made for this store by a migration that did not finish (prepare()
        runs only for a backend the store is not on yet, so such a collection holds nothing it needs)."""
        from vscli.backends import spec_of

        current = spec_of(self.folder.config())
        if current["kind"] == "milvus" and current["collection"] == self.collection:
            return False  # perhaps the store's own live collection under another spelling of the URI
        return client.describe_collection(self.collection).get("description") == self._description()

    def _description(self) -> str:
        return f"vscli vector store {self.folder.id}"

    def _create(self, client: Any, bm25: bool) -> None:
        with translated(self.uri):
            client.create_collection(self.collection, schema=self._schema(client, bm25),
                                     index_params=self._index_params(client, bm25), consistency_level="Strong")

    def _schema(self, client: Any, bm25: bool) -> Any:
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                      description=self._description())
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("cid", DataType.INT64)
        schema.add_field("serial", DataType.INT64)
        schema.add_field("file_id", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, nullable=True,
                         **({"enable_analyzer": True, "analyzer_params": ANALYZER} if bm25 else {}))
        schema.add_field("attributes", DataType.JSON)
        if bm25:
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                         input_field_names=["text"], output_field_names=["sparse"]))
        return schema

    def _index_params(self, client: Any, bm25: bool) -> Any:
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        if bm25:
            params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        params.add_index(field_name="serial", index_type="INVERTED")
        return params

    def _check(self, client: Any) -> dict[str, Any]:
        """The collection must be one vscli made, for vectors of this store's dimension."""
        info = client.describe_collection(self.collection)
        fields = {f["name"]: f for f in info["fields"]}
        missing = [name for name in SCHEMA_FIELDS if name not in fields]
        if missing:
            raise BackendError(f"collection {self.collection} at {self.uri} is not a vscli store "
                               f"(it lacks the field {missing[0]!r})")
        dim = int(fields["vector"]["params"].get("dim", 0))
        if dim != self.dimension:
            raise BackendError(f"collection {self.collection} at {self.uri} holds {dim}-dimensional vectors, "
                               f"but this store's model makes {self.dimension}-dimensional ones")
        return fields

    def _open(self, client: Any) -> None:
        """Check the collection and make sure it is loaded for search (once per client)."""
        ready = _READY.setdefault(client, set())
        if self.collection in ready:
            return
        if not client.has_collection(self.collection):
            raise CorruptData(f"store {self.folder.id} is missing its collection {self.collection} at {self.uri} "
                              "(dropped outside vscli?)")
        self._check(client)
        state = client.get_load_state(self.collection).get("state")
        if getattr(state, "name", str(state)) != "Loaded":
            self._load(client)
        ready.add(self.collection)

    def _load(self, client: Any) -> None:
        """Load the collection for search. A Milvus Lite file whose index files a kill tore cannot be
        loaded until they are gone: they are derived from the data files, so they are deleted and built
        again (doctor and every command then work; nothing the store holds is lost)."""
        try:
            client.load_collection(self.collection)
        except Exception:
            if not (is_lite(self.uri) and drop_index_files(self.uri, self.collection)):
                raise
            announce(f"rebuilding the Milvus Lite index of {self.collection} (its files were cut short by an "
                     "interrupted write)")
            client.load_collection(self.collection)

    def _count(self, client: Any) -> int:
        rows = client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # ---- the Backend protocol ---------------------------------------------------------------------

    def check(self) -> None:
        with connect(self.uri) as client:
            self._open(client)

    def writer(self, state: dict[str, Any], fresh: bool = False) -> MilvusWriter:
        return MilvusWriter(self, state, fresh)

    def reader(self, snapshot: Snapshot) -> MilvusReader:
        return MilvusReader(self, snapshot)

    def set_attributes(self, serial: int, attributes: dict[str, Any]) -> None:
        """Rewrite the file's rows with the new attributes (a full upsert works on every Milvus version)."""
        with connect(self.uri) as client:
            self._open(client)
            rows = client.query(self.collection, filter=f"serial == {int(serial)}", output_fields=list(SCHEMA_FIELDS))
            for row in rows:
                row["attributes"] = attributes
                row.pop("sparse", None)
            for start in range(0, len(rows), UPSERT_ROWS):
                client.upsert(self.collection, rows[start:start + UPSERT_ROWS])

    def vectors(self, state: dict[str, Any]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        import numpy as np

        serials = state["files"].live_serials()
        with connect(self.uri) as client:
            self._open(client)
            for serial in serials:
                rows = client.query(self.collection, filter=f"serial == {serial}", output_fields=["pk", "vector"])
                rows.sort(key=lambda r: r["pk"])
                vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(-1, self.dimension)
                owners = np.asarray([(r["pk"] >> WINDOW_BITS) & ((1 << vindex.CHUNK_BITS) - 1) for r in rows],
                                    dtype=np.int64)
                yield serial, vectors, owners

    def serial_counts(self, state: dict[str, Any]) -> dict[int, int]:
        counts: dict[int, int] = {}
        with connect(self.uri) as client:
            self._open(client)
            rows = client.query_iterator(self.collection, batch_size=10000, filter="", output_fields=["serial"])
            try:
                while batch := rows.next():
                    for row in batch:
                        counts[row["serial"]] = counts.get(row["serial"], 0) + 1
            finally:
                rows.close()
        return counts

    def describe(self, state: dict[str, Any]) -> str:
        count = state["files"].live_vectors()
        where = "Milvus Lite" if is_lite(self.uri) else "Milvus"
        keywords = "BM25 by Milvus" if self.keyword == "milvus" else "BM25 by vscli's keyword index"
        return f"{where} {self.uri} collection {self.collection} ({keywords}), {count} vectors"

    def drop(self, keep_keywords: bool = False) -> None:
        with connect(self.uri) as client:
            if client.has_collection(self.collection):
                client.drop_collection(self.collection)
            _READY.get(client, set()).discard(self.collection)


def _rows(serial: int, entry: dict[str, Any], texts: list[str], vectors: np.ndarray,
          owners: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    windows: dict[int, int] = {}
    for vector, position in zip(vectors.tolist(), owners.tolist(), strict=False):
        window = windows.get(position, 0)
        windows[position] = window + 1
        if window >= 1 << WINDOW_BITS:
            raise BackendError(f"a chunk of {entry['id']} needs more than {1 << WINDOW_BITS} embedding windows")
        cid = vindex.chunk_id(serial, int(position))
        rows.append({"pk": (cid << WINDOW_BITS) | window, "cid": cid, "serial": serial, "file_id": entry["id"],
                     "vector": vector, "text": _fitted(texts[position]) if window == 0 else None,
                     "attributes": entry["attributes"]})
    return rows


def _fitted(text: str) -> str:
    """The chunk text, cut to Milvus's VARCHAR limit in bytes (only BM25 reads it; the workspace keeps
    the whole chunk, which is what results show)."""
    data = text.encode("utf-8")
    return text if len(data) <= MAX_TEXT_BYTES else data[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


class MilvusWriter:
    def __init__(self, backend: MilvusBackend, state: dict[str, Any], fresh: bool) -> None:
        self.backend = backend
        self.state = state
        self.fresh = fresh
        self.removed: list[int] = []
        self.keyword: KeywordWriter | None = None
        self.adopt_keywords = fresh and backend.folder.raw_keyword_index().exists()  # kept as it is
        self._marked = False
        self._held = ExitStack()  # the connection is held until finish/abandon: one Lite open per commit
        self.client = self._held.enter_context(connect(backend.uri))
        try:
            backend._open(self.client)
        except BaseException:
            self._held.close()
            raise

    def remove(self, serial: int) -> None:
        self.removed.append(serial)

    def _mark(self, first: int) -> None:
        """Before the first row is written (``first``: the commit's first serial, the manifest's
        ``next_serial``): note that rows beyond the manifest may appear, and clear any an interrupted
        commit left. Serials from ``next_serial`` on belong to no committed file (the counter moves only
        with the catalog) and this commit reuses them, so such rows would mix with its own. The mark is a
        file, so this delete runs only after an interruption, not on every commit."""
        mark = self.backend.folder.dir / WRITING_MARK
        if mark.exists() and not self.fresh:
            with translated(self.backend.uri):
                self.client.delete(self.backend.collection, filter=f"serial >= {int(first)}")
        atomic_write_bytes(mark, b"")
        self._marked = True

    def add(self, serial: int, entry: dict[str, Any], texts: list[str], vectors: np.ndarray,
            owners: np.ndarray) -> None:
        backend = self.backend
        rows = _rows(serial, entry, texts, vectors, owners)
        if not self._marked:
            self._mark(serial)
        with translated(backend.uri):
            for start in range(0, len(rows), UPSERT_ROWS):
                self.client.upsert(backend.collection, rows[start:start + UPSERT_ROWS])
        if backend.keyword == "local" and not self.adopt_keywords:
            if self.keyword is None:
                folder = backend.folder
                self.keyword = folder.fresh_keyword_writer() if self.fresh else folder.keyword_writer(self.state)
            self.keyword.replace(serial, [vindex.chunk_id(serial, i) for i in range(len(texts))], texts)

    def commit(self, state: dict[str, Any]) -> list[Path]:
        if self.keyword is not None:
            self.keyword.commit()
        return []  # upserts are durable when Milvus acknowledges them

    def compact(self) -> None:
        pass  # removed rows are deleted by finish(): nothing waits for a merge

    def finish(self) -> None:
        try:
            if self._marked:
                (self.backend.folder.dir / WRITING_MARK).unlink(missing_ok=True)  # the catalog names the rows
            if self.removed:
                with translated(self.backend.uri):
                    self.client.delete(self.backend.collection,
                                       filter=f"serial in {sorted(set(int(s) for s in self.removed))}")
                if self.backend.keyword == "local":
                    self.backend.folder.forget_keywords(self.removed)
        except BackendError:
            pass  # the rows are unreachable (their files are gone from the manifest); doctor purges them
        finally:
            self._held.close()

    def abandon(self) -> None:
        if self.keyword is not None:
            self.keyword.abandon()
        self._held.close()


class MilvusReader:
    """Hits from the collection, narrowed by the filter translated to a Milvus expression."""

    def __init__(self, backend: MilvusBackend, snapshot: Snapshot) -> None:
        self.backend = backend
        self.snapshot = snapshot

    def open_vectors(self) -> None:
        """Nothing to open ahead: the connection is the store's, opened for the query already."""

    def _expression(self, flt: dict[str, Any] | None) -> str:
        from vscli.backends.milvus_filters import to_expression

        return (to_expression(flt) or "") if flt is not None else ""

    def vector_hits(self, query: np.ndarray, k: int, flt: dict[str, Any] | None) -> Hits:
        backend = self.backend
        with connect(backend.uri) as client:
            backend._open(client)
            found = client.search(backend.collection, data=[query.astype("float32").tolist()], anns_field="vector",
                                  limit=min(k, MAX_TOP_K), filter=self._expression(flt), group_by_field="cid",
                                  output_fields=["cid"], search_params={"metric_type": "IP"})
        return [(int(hit["entity"]["cid"]), float(hit["distance"])) for hit in found[0]]

    def keyword_hits(self, text: str, k: int, flt: dict[str, Any] | None) -> Hits:
        backend = self.backend
        if backend.keyword == "local":
            return backend.folder.keyword_index().search(text, k, self.snapshot.serials(flt))
        if not text.strip():
            return []
        with connect(backend.uri) as client:
            backend._open(client)
            found = client.search(backend.collection, data=[text], anns_field="sparse", limit=min(k, MAX_TOP_K),
                                  filter=self._expression(flt), output_fields=["cid"],
                                  search_params={"metric_type": "BM25"})
        # Milvus Lite reports BM25 as a negative distance, a server as a positive score: rank is what counts
        return [(int(hit["entity"]["cid"]), abs(float(hit["distance"]))) for hit in found[0]]

    def keyword_scale(self, text: str) -> float:
        """Milvus does not tell a term's document frequency, so its IDF is estimated by the best score of
        that term alone (one batched search); a term no chunk holds counts as much as the rarest found."""
        backend = self.backend
        if backend.keyword == "local":
            return backend.folder.keyword_index().scale(text)
        terms = re.findall(r"\w+", text.lower())
        if not terms:
            return 0.0
        with connect(backend.uri) as client:
            backend._open(client)
            found = client.search(backend.collection, data=terms, anns_field="sparse", limit=1,
                                  output_fields=["cid"], search_params={"metric_type": "BM25"})
        best = [abs(float(hits[0]["distance"])) if len(hits) else 0.0 for hits in found]
        rarest = max(best, default=0.0) or 1.0
        return sum(score or rarest for score in best)
