"""The Milvus backend against real engines: Milvus Lite files, and a Milvus server on 127.0.0.1 (the Lite
engine behind Milvus's gRPC service, with a token check) standing in for a cluster.

The shared suite (workflow, sync, ask, serve, reliability, filters) runs on both backends through the
`backend` fixture; this module covers what only Milvus has: URIs and tokens, migration, collections that
do not fit, a busy Lite file, a server without BM25, and leftovers of interrupted writes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymilvus import DataType, MilvusClient

from tests.conftest import assert_clean_error, run_vscli, snapshot
from tests.milvus_server import MilvusServer
from vscli.backends.milvus_connection import connect
from vscli.backends.milvus_filters import to_expression
from vscli.errors import ExitCode
from vscli.filters import matches
from vscli.store import resolve_store
from vscli.workspace import Workspace

QUERIES = ["what is data mining?", "how do neural networks learn", "bread dough fermentation"]


def _results(cli, store: str = "docs") -> dict[str, list]:
    """Every query in every mode: (file id, score, text) of each result."""
    found = {}
    for mode in ("vector", "keyword", "hybrid"):
        for query in QUERIES:
            result = cli("query", store, query, "--mode", mode, "-k", "5", "--json")
            assert result.exit_code == 0, result.output
            found[f"{mode}:{query}"] = [(r["file_id"], r["score"], r["content"][0]["text"])
                                        for r in json.loads(result.stdout)["data"]]
    return found


def _same_hits(got: list, expected: list) -> bool:
    """The same hits with the same scores, as two engines give them: FAISS's exact search (read by numpy)
    and Milvus's sum the same products in another order, so a score may differ in its last bit, and so by
    one in the sixth decimal once rounded; hits whose scores differ by no more than that may trade places."""
    close = 2e-6

    def near(a: float, b: float) -> bool:
        return abs(a - b) <= close

    return (len(got) == len(expected)
            and all(near(g[1], e[1]) for g, e in zip(got, expected, strict=True))  # rank by rank
            and sorted((g[0], g[2]) for g in got) == sorted((e[0], e[2]) for e in expected)
            and all(any((g[0], g[2]) == (e[0], e[2]) and near(g[1], e[1]) for e in expected) for g in got))


def _store_dir(home: Path) -> Path:
    return next((home / "stores").glob("vs_*"))


def _collections(uri: str) -> list[str]:
    with connect(uri) as client:
        return list(client.list_collections())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_migrate_round_trip_gives_identical_results(cli, dataset: Path, home: Path, tmp_path: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", *map(str, sorted(dataset.glob("*.md"))), "--store", "docs", "-q").exit_code == 0
    before = _results(cli)
    uri = str(tmp_path / "vectors.db")

    moved = cli("migrate", "docs", "--to", "milvus", "--uri", uri)
    assert moved.exit_code == 0, moved.output
    store_dir = _store_dir(home)
    assert not list(store_dir.glob("index-*.faiss")) and not (store_dir / "keyword").exists()
    config = json.loads((store_dir / "store.json").read_text())
    assert config["vscli"]["backend"] == {"kind": "milvus", "uri": uri, "collection": f"vscli_{store_dir.name}",
                                          "keyword": "milvus"}
    on_milvus = _results(cli)
    for key, results in before.items():
        if key.startswith("vector:"):  # the same vectors, searched exactly: the same results
            assert _same_hits(on_milvus[key], results), (key, on_milvus[key], results)
    # BM25 by Milvus (no stemming) ranks a little differently from tantivy's, but finds the same topics
    assert on_milvus["keyword:what is data mining?"][0][0] == before["keyword:what is data mining?"][0][0]
    status = cli("status", "docs")
    assert "milvus" in status.stdout and uri in status.stdout

    back = cli("migrate", "docs", "--to", "faiss")
    assert back.exit_code == 0, back.output
    assert _results(cli) == before  # every mode: the round trip changes nothing
    assert f"vscli_{store_dir.name}" not in _collections(uri)  # the Milvus copy was dropped
    assert cli("doctor", "docs").exit_code == 0

    assert_clean_error(cli("migrate", "docs", "--to", "faiss"), ExitCode.USAGE, "already on that backend")
    assert_clean_error(cli("migrate", "docs", "--to", "milvus"), ExitCode.USAGE, "needs --uri")
    assert_clean_error(cli("migrate", "docs", "--to", "qdrant"), ExitCode.USAGE,
                       "the backend must be one of faiss, milvus")


def test_a_failed_migration_leaves_the_store_as_it_was(cli, dataset: Path, home: Path) -> None:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    before, files = _results(cli), snapshot(home)
    result = cli("migrate", "docs", "--to", "milvus", "--uri", f"http://127.0.0.1:{_free_port()}")
    assert_clean_error(result, ExitCode.BACKEND, "cannot reach Milvus at http://127.0.0.1:")
    assert snapshot(home) == files and _results(cli) == before


def test_a_server_with_a_token(cli, dataset: Path, home: Path, tmp_path: Path, monkeypatch) -> None:
    secret = "root:s3cret-token"
    with MilvusServer(tmp_path / "server", token=secret) as server:
        # the token is used, never stored
        created = cli("create", "docs", "--backend", "milvus", "--uri", server.uri, "--token", secret)
        assert created.exit_code == 0, created.output
        assert not any(secret in p.read_text(errors="ignore") for p in home.rglob("*") if p.is_file())
        # a later command without it is refused, before anything is uploaded
        files = snapshot(home)
        refused = cli("upload", str(dataset / "data_mining.md"), "--store", "docs")
        assert_clean_error(refused, ExitCode.BACKEND, f"Milvus at {server.uri} refused the token")
        assert snapshot(home) == files
        monkeypatch.setenv("VSCLI_MILVUS_TOKEN", "root:wrong")
        assert_clean_error(cli("query", "docs", "data"), ExitCode.BACKEND, "refused the token")
        # from the environment, then from the config file
        monkeypatch.setenv("VSCLI_MILVUS_TOKEN", secret)
        assert cli("upload", *map(str, sorted(dataset.glob("*.md"))), "--store", "docs", "-q").exit_code == 0
        monkeypatch.delenv("VSCLI_MILVUS_TOKEN")
        assert cli("config", "set", "milvus_token", secret).exit_code == 0
        hits = json.loads(cli("query", "docs", "what is data mining?", "--json").stdout)["data"]
        assert hits[0]["filename"] == "data_mining.md"
        listing = json.loads(cli("config", "list", "--json").stdout)
        assert listing["milvus_token"] == {"value": "roo...oken", "source": "config file"}  # masked
        assert cli("rm", "docs", hits[0]["file_id"]).exit_code == 0
        assert cli("doctor", "docs").exit_code == 0


def test_unreachable_server_creates_nothing(cli, home: Path) -> None:
    uri = f"http://127.0.0.1:{_free_port()}"
    result = cli("create", "docs", "--backend", "milvus", "--uri", uri)
    assert_clean_error(result, ExitCode.BACKEND, f"cannot reach Milvus at {uri}")
    stores = home / "stores"
    assert not stores.exists() or not any(stores.iterdir())  # no store, no staging directory left


def test_collections_that_do_not_fit(cli, home: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "shared.db")
    with connect(uri) as client:
        schema = client.create_schema(auto_id=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        for name in ("cid", "serial"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("file_id", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=768)
        schema.add_field("text", DataType.VARCHAR, max_length=100, nullable=True)
        schema.add_field("attributes", DataType.JSON)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        client.create_collection("wide", schema=schema, index_params=params)
        other = client.create_schema(auto_id=False)
        other.add_field("id", DataType.INT64, is_primary=True)
        other.add_field("embedding", DataType.FLOAT_VECTOR, dim=384)
        client.create_collection("theirs", schema=other, index_params=client.prepare_index_params())
    create = ["create", "docs", "--backend", "milvus", "--uri", uri, "--collection"]
    assert_clean_error(cli(*create, "wide"), ExitCode.BACKEND,
                       "holds 768-dimensional vectors, but this store's model makes 384-dimensional ones")
    assert_clean_error(cli(*create, "theirs"), ExitCode.BACKEND, "is not a vscli store")
    assert_clean_error(cli(*create, "bad-name"), ExitCode.USAGE, "--collection must start with a letter")
    assert_clean_error(cli("create", "docs", "--backend", "milvus", "--uri", str(tmp_path / "x.txt")),
                       ExitCode.USAGE, "ending in .db")
    assert cli(*create, "mine").exit_code == 0
    (tmp_path / "a.md").write_text("Sourdough needs a lively starter.\n")
    assert cli("upload", str(tmp_path / "a.md"), "--store", "docs", "-q").exit_code == 0
    # a second store cannot take over a collection that holds another store's rows
    assert_clean_error(cli("create", "docs2", *create[2:], "mine"), ExitCode.BACKEND, "already holds")
    assert sorted(_collections(uri)) == ["mine", "theirs", "wide"]


def test_a_server_without_bm25_uses_the_keyword_index(cli, tmp_path: Path, home: Path) -> None:
    """Milvus before 2.5 has no full-text search: vscli's own keyword index stands in."""
    codes = {"e4012.md": "Error E-4012: the ingest service rejects uploads; check quotas.",
             "e4013.md": "Error E-4013: the ingest service rejects uploads; check the proxy."}
    with MilvusServer(tmp_path / "server", version="v2.4.9") as server:
        assert cli("create", "docs", "--backend", "milvus", "--uri", server.uri).exit_code == 0
        config = json.loads((_store_dir(home) / "store.json").read_text())
        assert config["vscli"]["backend"]["keyword"] == "local"
        for name, text in codes.items():
            (tmp_path / name).write_text(text + "\n")
            assert cli("upload", str(tmp_path / name), "--store", "docs", "-q").exit_code == 0
        assert (_store_dir(home) / "keyword" / "meta.json").exists()
        keyword = json.loads(cli("query", "docs", "E-4013", "--mode", "keyword", "--json").stdout)["data"]
        assert keyword[0]["filename"] == "e4013.md"
        assert "BM25 by vscli's keyword index" in cli("status", "docs").stdout
        assert cli("doctor", "docs").exit_code == 0


def test_a_busy_lite_file_is_waited_for_then_reported(cli, dataset: Path, tmp_path: Path, home: Path) -> None:
    uri = str(tmp_path / "vectors.db")
    assert cli("create", "docs", "--backend", "milvus", "--uri", uri).exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pymilvus import MilvusClient\n"
                               f"MilvusClient({uri!r}); print('ready', flush=True); time.sleep(float(sys.argv[1]))",
                               "10"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert holder.stdout.readline().strip() == b"ready"  # type: ignore[union-attr]
        busy = run_vscli("query", "docs", "data mining", home=home, env={"VSCLI_MILVUS_LITE_WAIT": "1"})
        assert busy.returncode == ExitCode.BACKEND and busy.stdout == b""
        assert b"in use by another process" in busy.stderr and b"Traceback" not in busy.stderr
        started = time.monotonic()
        waited = run_vscli("query", "docs", "data mining", home=home)  # waits for the holder to exit
        assert waited.returncode == 0 and b"data_mining.md" in waited.stdout
        assert time.monotonic() - started > 1
    finally:
        holder.kill()
        holder.wait()


def test_interrupted_writes_never_duplicate_chunks(cli, dataset: Path, tmp_path: Path, home: Path) -> None:
    """Rows written for a serial by a commit that never reached files.json are replaced, not added to,
    when the serial is used again; and a reader never returns rows the manifest does not name."""
    import numpy as np

    assert cli("create", "docs", "--backend", "milvus", "--uri", str(tmp_path / "v.db")).exit_code == 0
    store = resolve_store(Workspace(home), "docs")
    state = store.folder.state()
    writer = store.backend().writer(state)
    leftover = {"id": "file-ghost", "attributes": {}}
    vectors = np.eye(8, 384, dtype=np.float32)
    writer.add(1, leftover, [f"ghost chunk {i}" for i in range(8)], vectors, np.arange(8))
    writer.abandon()  # the crash: files.json never named serial 1
    assert cli("query", "docs", "ghost chunk", "--mode", "keyword").stdout == ""  # unknown serial: unseen
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    entry = store.files()[0]
    report = cli("doctor", "docs", "--json")
    assert json.loads(report.stdout)["healthy"], report.stdout
    counts = store.backend().serial_counts(store.folder.state())
    assert counts == {1: store.folder.state()["files"][entry["id"]]["vscli"]["vectors"]}  # the ghost rows are gone


def test_a_writer_killed_while_milvus_lite_flushes(cli, dataset: Path, tmp_path: Path, home: Path) -> None:
    """Milvus Lite 3.2 replays a killed writer's log even where its rows were already flushed to disk,
    and its queries then return them twice: doctor, right after a kill -9 of an upload, saw files of the
    last commit with doubled vectors (CI). vscli deletes such flushed logs before it opens the file."""
    uri = str(tmp_path / "v.db")
    assert cli("create", "docs", "--backend", "milvus", "--uri", uri).exit_code == 0
    assert cli("upload", *map(str, sorted(dataset.glob("*.md"))), "--store", "docs", "-q").exit_code == 0
    collection = _collections(uri)[0]
    before = json.loads(cli("doctor", "docs", "--json").stdout)["vectors_checked"]
    # A writer upserts rows the store already has (a re-run does), then dies where the flush has written
    # the rows to disk but not yet deleted its log.
    rewrite = (f"import os\nfrom pymilvus import MilvusClient\nfrom milvus_lite.storage import wal\n"
               f"client = MilvusClient({uri!r})\nclient.load_collection({collection!r})\n"
               f"rows = client.query({collection!r}, filter='serial >= 0', output_fields=['*'])\n"
               "for row in rows: row.pop('sparse', None)\n"
               f"client.upsert({collection!r}, rows)\n"
               "wal.WAL.close_and_delete = lambda self: os._exit(9)\n"
               f"client.flush({collection!r})\n")
    died = subprocess.run([sys.executable, "-c", rewrite], capture_output=True)
    assert died.returncode == 9, died.stderr.decode()[-2000:]
    assert list(Path(uri).glob("collections/*/wal/*.arrow"))  # the log a clean close would have deleted
    report = cli("doctor", "docs", "--json")
    assert report.exit_code == 0 and json.loads(report.stdout)["healthy"], report.stdout
    assert json.loads(report.stdout)["vectors_checked"] == before
    assert not list(Path(uri).glob("collections/*/wal/*.arrow"))
    for mode in ("vector", "keyword"):
        hits = json.loads(cli("query", "docs", "data mining", "--mode", mode, "-k", "20", "--json").stdout)["data"]
        assert hits and len({(h["file_id"], h["content"][0]["text"]) for h in hits}) == len(hits)  # none twice


def test_index_files_cut_short_by_a_kill_are_built_again(cli, dataset: Path, tmp_path: Path, home: Path) -> None:
    """Milvus Lite writes a data file's index files in place; a kill while it writes one leaves it short
    (CI saw one of 0 bytes), and every later load failed with "File is too small: 0", doctor included.
    They are derived from the data files: vscli deletes them and Milvus Lite builds them again."""
    uri = str(tmp_path / "v.db")
    assert cli("create", "docs", "--backend", "milvus", "--uri", uri).exit_code == 0
    assert cli("upload", *map(str, sorted(dataset.glob("*.md"))), "--store", "docs", "-q").exit_code == 0
    expected = cli("query", "docs", "data mining", "--json").stdout
    index_files = sorted(Path(uri).glob("collections/*/partitions/*/indexes/*"))
    assert len(index_files) >= 2  # the vectors' and the serial's
    index_files[0].write_bytes(b"")
    with index_files[1].open("r+b") as handle:
        handle.truncate(index_files[1].stat().st_size // 2)
    report = run_vscli("doctor", "docs", "--json", home=home)
    assert report.returncode == 0 and json.loads(report.stdout)["healthy"], report.stderr
    assert all(path.stat().st_size > 16 for path in index_files)  # built again
    index_files[1].write_bytes(b"")
    assert cli("query", "docs", "data mining", "--json").stdout == expected


def test_doctor_and_a_collection_dropped_outside_vscli(cli, dataset: Path, tmp_path: Path, home: Path) -> None:
    uri = str(tmp_path / "v.db")
    assert cli("create", "docs", "--backend", "milvus", "--uri", uri).exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    collection = _collections(uri)[0]
    with connect(uri) as client:
        client.drop_collection(collection)
    assert_clean_error(cli("query", "docs", "data"), ExitCode.CORRUPT, f"missing its collection {collection}")
    assert cli("doctor", "docs").exit_code == ExitCode.CORRUPT
    repaired = cli("doctor", "docs", "--repair")
    assert repaired.exit_code == 0 and "missing its collection" in repaired.stdout
    file_id = json.loads(cli("files", "docs", "--json").stdout)["data"][0]["id"]
    assert cli("attach", "docs", file_id).exit_code == 0  # attaching again re-embeds it
    assert "data_mining.md" in cli("query", "docs", "what is data mining?").stdout
    assert cli("delete", "docs", "--yes").exit_code == 0
    assert _collections(uri) == []  # deleting the store drops its collection


@pytest.mark.parametrize("flt", [
    {"type": t, "key": "a", "value": v}
    for t in ("eq", "ne", "gt", "gte", "lt", "lte")
    for v in (1, 0, True, False, 2.5, "1", "x", 'q"uo\\te', "2020-01-01", 7)
] + [{"type": t, "key": "a", "value": vs} for t in ("in", "nin") for vs in ([1, "x"], [True], ["x", "y"], [2.5, 7])]
  + [{"type": "or", "filters": [{"type": "eq", "key": "a", "value": 7}, {"type": "ne", "key": "b", "value": "x"}]},
     {"type": "and", "filters": [{"type": "gte", "key": "a", "value": 1},
                                 {"type": "nin", "key": "b", "value": ["y"]}]}],
  ids=lambda f: json.dumps(f)[:50])
def test_filter_expressions_select_at_least_what_openai_rules_do(flt: dict, filter_collection: tuple) -> None:
    """A Milvus expression may select more (the reader re-checks), never less."""
    client, attributes = filter_collection
    wanted = {i for i, attrs in enumerate(attributes) if matches(flt, attrs)}
    expression = to_expression(flt)
    if expression is None:
        return  # nothing to push down: the reader's own check selects
    got = {row["pk"] for row in client.query("t", filter=expression, output_fields=["pk"], limit=100)}
    assert wanted <= got, expression


@pytest.fixture(scope="module")
def filter_collection(tmp_path_factory: pytest.TempPathFactory):
    attributes = [{}, {"a": 1}, {"a": 0}, {"a": True}, {"a": False}, {"a": 2.5}, {"a": "1"}, {"a": "x"},
                  {"a": 'q"uo\\te'}, {"a": "2020-01-02"}, {"a": "2019-12-31"}, {"b": "x"}, {"a": 7, "b": "y"}]
    path = str(tmp_path_factory.mktemp("filters") / "f.db")
    client = MilvusClient(path)
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("attributes", DataType.JSON)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
    client.create_collection("t", schema=schema, index_params=params)
    client.upsert("t", [{"pk": i, "vector": [1, 0], "attributes": a} for i, a in enumerate(attributes)])
    yield client, attributes
    client.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)


def test_kill_9_during_migrate_then_retry(cli, tmp_path: Path, home: Path) -> None:
    """A migration killed at any moment leaves the store whole on one backend; running it again finishes
    it (a half-filled collection made for this store is dropped and made again)."""
    from tests.corpus import write_corpus
    from tests.test_reliability import popen_vscli

    write_corpus(tmp_path / "corpus", 40)
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(tmp_path / "corpus"), "-r", "--store", "docs", "-q").exit_code == 0
    before = _results(cli)
    uri = str(tmp_path / "vectors.db")
    for delay in (1.0, 2.0, 3.0, 4.5):
        proc = popen_vscli("migrate", "docs", "--to", "milvus", "--uri", uri, home=home)
        time.sleep(delay)
        proc.send_signal(9)
        proc.wait()
        report = json.loads(cli("doctor", "docs", "--json").stdout)
        assert report["healthy"], report
        config = json.loads((_store_dir(home) / "store.json").read_text())
        if config["vscli"].get("backend", {}).get("kind") == "milvus":
            break  # the kill came after the switch
        assert _results(cli) == before  # still on FAISS, unchanged
    else:
        moved = cli("migrate", "docs", "--to", "milvus", "--uri", uri)
        assert moved.exit_code == 0, moved.output
    on_milvus = _results(cli)
    assert all(_same_hits(on_milvus[key], results) for key, results in before.items() if key.startswith("vector:"))
    assert cli("migrate", "docs", "--to", "faiss").exit_code == 0
    assert _results(cli) == before
