"""The usage log and `vscli usage` (issue 16): every server request and every ingest batch leaves a line;
the command sums them per UTC day and store."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openai

from tests.conftest import assert_clean_error
from tests.states import read_chunks
from tests.test_serve import KEY, Server, _wait
from vscli import usage
from vscli.errors import ExitCode
from vscli.workspace import Workspace


def log_lines(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "logs" / "usage.jsonl").read_text().splitlines()]


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def test_what_the_cli_embeds_is_logged_and_summed(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    paths = [dataset / "data_mining.md", dataset / "sourdough_bread.md"]
    assert cli("upload", *map(str, paths), "--store", "docs").exit_code == 0
    ingest = [e for e in log_lines(home) if e["kind"] == "ingest"]
    store_id = json.loads(cli("status", "docs", "--json").stdout)["id"]
    chunks = sum(len(doc["chunks"]) for doc in read_chunks(home / "stores" / store_id).values())
    assert ingest and {e["source"] for e in ingest} == {"cli"} and {e["store"] for e in ingest} == {store_id}
    [row] = json.loads(cli("usage", "--json").stdout)["data"]
    assert row == {"day": today(), "store": store_id, "requests": 0, "errors": 0, "files": 2, "failed": 0,
                   "chunks": chunks, "vectors": row["vectors"], "tokens": row["tokens"],
                   "bytes": sum(p.stat().st_size for p in paths)}
    assert row["vectors"] >= chunks and row["tokens"] > chunks  # every chunk embedded, in cl100k tokens
    table = cli("usage").stdout
    assert f"docs ({store_id})" in table and "DAY" in table.splitlines()[0]


def test_filters_and_bad_input(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    cli("create", "other")
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs").exit_code == 0
    assert json.loads(cli("usage", "--store", "other", "--json").stdout)["data"] == []
    assert len(json.loads(cli("usage", "--store", "docs", "--json").stdout)["data"]) == 1
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert json.loads(cli("usage", "--since", tomorrow, "--json").stdout)["data"] == []
    assert len(json.loads(cli("usage", "--since", today(), "--json").stdout)["data"]) == 1
    assert_clean_error(cli("usage", "--since", "last tuesday"), ExitCode.USAGE, "--since must be a date")
    assert_clean_error(cli("usage", "--store", "nope"), ExitCode.NOT_FOUND, "no vector store")
    store_id = json.loads(cli("status", "docs", "--json").stdout)["id"]
    assert cli("delete", "docs", "--yes").exit_code == 0
    rows = json.loads(cli("usage", "--store", store_id, "--json").stdout)["data"]  # a deleted store's id
    assert rows[0]["files"] == 1


def test_the_server_logs_every_request(home: Path, dataset: Path, cli) -> None:
    srv = Server(home, "--api-key", KEY)
    try:
        client = srv.client()
        store = client.vector_stores.create(name="docs")
        uploaded = client.files.create(file=(dataset / "data_mining.md").open("rb"), purpose="assistants")
        client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
        _wait(client, store.id)
        client.vector_stores.search(vector_store_id=store.id, query="data mining")
        try:
            client.vector_stores.retrieve("vs_doesnotexist000000000000")
        except openai.NotFoundError:
            pass
        try:
            srv.client(key="wrong").vector_stores.list()
        except openai.AuthenticationError:
            pass
    finally:
        srv.stop()
    lines = log_lines(home)
    requests = [e for e in lines if e["kind"] == "request"]
    assert {e["source"] for e in lines} == {"serve"}
    upload = next(e for e in requests if e["method"] == "POST" and e["path"] == "/v1/files")
    assert upload["status"] == 200 and upload["bytes"] == (dataset / "data_mining.md").stat().st_size
    search = next(e for e in requests if e["path"].endswith("/search"))
    assert search["store"] == store.id and search["status"] == 200 and search["latency_ms"] > 0
    assert search["key"] == "server key"
    assert any(e["status"] == 404 for e in requests)
    assert [e["key"] for e in requests if e["status"] == 401] == [None]  # the wrong key is not the key
    ingest = [e for e in lines if e["kind"] == "ingest"]
    assert sum(e["files"] for e in ingest) == 1 and ingest[0]["store"] == store.id
    rows = {r["store"]: r for r in json.loads(cli("usage", "--json").stdout)["data"]}
    assert rows[store.id]["files"] == 1 and rows[store.id]["chunks"] > 0
    assert rows[store.id]["requests"] == sum(1 for e in requests if e["store"] == store.id)
    assert rows["vs_doesnotexist000000000000"]["errors"] == 1  # counted under the id the request named
    assert rows[None]["errors"] == 1  # the wrong key's 401
    assert rows[None]["requests"] == sum(1 for e in requests if e["store"] is None)


def test_the_log_rotates_by_size_and_keeps_five_files(home: Path, monkeypatch) -> None:
    ws = Workspace(home)
    ws.ensure()
    monkeypatch.setenv("VSCLI_USAGE_LOG_BYTES", "2048")
    for i in range(200):
        usage.record(ws, {"kind": "ingest", "store": "vs_a", "files": 1, "chunks": i})
    logs = sorted(p.name for p in (home / "logs").iterdir())
    assert logs == ["usage.jsonl", *(f"usage.jsonl.{n}" for n in range(1, usage.KEEP + 1))]
    assert all(p.stat().st_size <= 2048 for p in (home / "logs").iterdir())
    kept = list(usage.events(ws))
    assert [e["chunks"] for e in kept] == list(range(200 - len(kept), 200))  # the newest, in order
    with (home / "logs" / "usage.jsonl").open("a") as log:
        log.write('{"time": 1, "kind": "ingest", "fi')  # a torn line (a process killed mid-write)
    assert len(list(usage.events(ws))) == len(kept)


def test_a_log_that_cannot_be_written_never_fails_the_upload(cli, dataset: Path, home: Path) -> None:
    cli("create", "docs")
    (home / "logs").write_text("not a directory")  # the log's folder cannot be made
    result = cli("upload", str(dataset / "data_mining.md"), "--store", "docs")
    assert result.exit_code == 0 and "Error" not in result.stderr and "Traceback" not in result.stderr
    assert cli("usage", "--json").exit_code == 0
    before = time.time()
    usage.record(Workspace(home / "not-created-yet"), {"kind": "ingest"})
    assert not (home / "not-created-yet").exists() and time.time() - before < 1
