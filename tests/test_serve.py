"""`vscli serve`, started as a real process on a free local port and driven with the official openai SDK."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import openai
import pytest

from tests.conftest import EXAMPLES, ROOT, run_vscli

pytestmark = pytest.mark.usefixtures("backend")  # the shared suite: every test on FAISS and on Milvus

KEY = "test-key-0123456789"


class Server:
    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "vscli", "serve", "--port", "0", *args],
                                     env={**os.environ, "VSCLI_HOME": str(home), **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()  # type: ignore[union-attr]
        match = re.search(r"on (http://[^ ]+/v1)", line)
        assert match, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")  # type: ignore
        self.base_url = match.group(1)

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=60)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.stderr.read()  # type: ignore[union-attr]


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    srv = Server(home, "--api-key", KEY)
    yield srv
    srv.stop()


def _wait(client: openai.OpenAI, store_id: str, timeout: float = 180) -> openai.types.VectorStore:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = client.vector_stores.retrieve(store_id)
        if store.file_counts.in_progress == 0:
            return store
        time.sleep(0.3)
    raise AssertionError("processing did not finish")


def test_the_sdk_workflow(server: Server) -> None:
    client = server.client()
    store = client.vector_stores.create(name="docs", metadata={"team": "wiki"})
    assert store.object == "vector_store" and store.name == "docs" and store.metadata == {"team": "wiki"}
    paths = [EXAMPLES / "data_mining.md", EXAMPLES / "neural_networks.md", EXAMPLES / "sourdough_bread.md"]
    uploaded = [client.files.create(file=open(p, "rb"), purpose="assistants") for p in paths]
    assert [f.filename for f in uploaded] == [p.name for p in paths] and uploaded[0].bytes == paths[0].stat().st_size
    attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded[0].id,
                                                 attributes={"year": 2021, "topic": "mining"})
    assert attached.status in ("in_progress", "completed") and attached.attributes == {"year": 2021, "topic": "mining"}
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id,
                                                     file_ids=[uploaded[1].id, uploaded[2].id])
    assert batch.object == "vector_store.files_batch" and batch.file_counts.total == 2
    done = _wait(client, store.id)
    assert done.file_counts.completed == 3 and done.status == "completed"
    assert client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id).status == "completed"
    # content: the upload byte for byte, and the parsed text
    for f, p in zip(uploaded, paths, strict=False):
        assert client.files.content(f.id).read() == p.read_bytes()
    text = client.vector_stores.files.content(uploaded[0].id, vector_store_id=store.id)
    assert text.data[0].text.startswith("# Data mining")
    # search: best first, filters, threshold, max_num_results
    hits = client.vector_stores.search(vector_store_id=store.id, query="what is data mining?", max_num_results=3)
    assert hits.data[0].filename == "data_mining.md" and len(hits.data) == 3
    assert [h.score for h in hits.data] == sorted((h.score for h in hits.data), reverse=True)
    filtered = client.vector_stores.search(vector_store_id=store.id, query="bread",
                                           filters={"type": "eq", "key": "topic", "value": "mining"})
    assert {h.file_id for h in filtered.data} == {uploaded[0].id}
    strict = client.vector_stores.search(vector_store_id=store.id, query="bread",
                                         ranking_options={"score_threshold": 0.99})
    assert all(h.score >= 0.99 for h in strict.data) and len(strict.data) < len(
        client.vector_stores.search(vector_store_id=store.id, query="bread").data)
    # attributes update
    updated = client.vector_stores.files.update(uploaded[1].id, vector_store_id=store.id, attributes={"year": 2019})
    assert updated.attributes == {"year": 2019}
    # delete a file from the store: gone from search and from the store's files, still an upload
    client.vector_stores.files.delete(uploaded[0].id, vector_store_id=store.id)
    after = client.vector_stores.search(vector_store_id=store.id, query="what is data mining?", max_num_results=10)
    assert uploaded[0].id not in {h.file_id for h in after.data}
    assert uploaded[0].id not in {f.id for f in client.vector_stores.files.list(store.id)}
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(uploaded[0].id, vector_store_id=store.id)
    assert client.files.retrieve(uploaded[0].id).id == uploaded[0].id
    # delete the upload itself, then the store
    assert client.files.delete(uploaded[0].id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded[0].id)
    assert client.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_pagination(server: Server) -> None:
    client = server.client()
    made = [client.vector_stores.create(name=f"s{i}").id for i in range(5)]
    first = client.vector_stores.list(limit=2, order="asc")
    assert [s.id for s in first.data] == made[:2] and first.has_more
    assert [s.id for s in client.vector_stores.list(limit=2, order="asc", after=made[1]).data] == made[2:4]
    assert [s.id for s in client.vector_stores.list(limit=2, order="asc", before=made[4]).data] == made[2:4]
    assert [s.id for s in client.vector_stores.list(limit=2, order="asc")] == made  # the SDK follows has_more
    assert [s.id for s in client.vector_stores.list(limit=3)] == made[::-1]  # newest first by default
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.list(limit=0)


def test_a_stores_files_are_paged_by_the_catalog(server: Server) -> None:
    """`GET /v1/vector_stores/{id}/files` reads its page from the catalog's index (by created_at, then
    attach order; tests/test_catalog.py compares it with the page listed in memory): the SDK's cursors."""
    client = server.client()
    store = client.vector_stores.create(name="paged")
    attached = []
    for i in range(5):
        upload = client.files.create(file=(f"n{i}.txt", f"note {i} about bread".encode()), purpose="assistants")
        attached.append(client.vector_stores.files.create(vector_store_id=store.id, file_id=upload.id).id)
    listed = client.vector_stores.files.list
    first = listed(vector_store_id=store.id, limit=2, order="asc")
    assert [f.id for f in first.data] == attached[:2] and first.has_more
    assert [f.id for f in listed(vector_store_id=store.id, limit=2, order="asc")] == attached  # follows cursors
    assert [f.id for f in listed(vector_store_id=store.id, limit=2)] == attached[::-1]  # newest first
    assert [f.id for f in listed(vector_store_id=store.id, limit=2, order="asc", before=attached[4]).data] == \
        attached[2:4]
    assert [f.id for f in listed(vector_store_id=store.id, limit=2, after=attached[3], before=attached[0]).data] == \
        attached[1:3][::-1]
    assert listed(vector_store_id=store.id, filter="cancelled").data == []
    with pytest.raises(openai.BadRequestError) as unknown:
        listed(vector_store_id=store.id, after="file-nothere")
    assert "after" in str(unknown.value)


def test_errors_in_openai_shape(home: Path) -> None:
    srv = Server(home, "--api-key", KEY, env={"VSCLI_MAX_FILE_BYTES": "2000"})
    try:
        with pytest.raises(openai.AuthenticationError) as wrong:
            srv.client("wrong-key-000000").vector_stores.list()
        assert wrong.value.status_code == 401 and wrong.value.body["code"] == "invalid_api_key"
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as no_key:  # no Authorization header at all
            urllib.request.urlopen(srv.base_url + "/vector_stores", timeout=30)
        assert no_key.value.code == 401
        client = srv.client()
        with pytest.raises(openai.NotFoundError) as missing:
            client.vector_stores.retrieve("vs_doesnotexist")
        assert "no such vector store" in missing.value.body["message"]
        store = client.vector_stores.create(name="docs")
        with pytest.raises(openai.BadRequestError) as bad:
            client.vector_stores.search(vector_store_id=store.id, query="x", filters={"type": "like", "key": "a",
                                                                                      "value": 1})
        assert '"type" must be one of' in bad.value.body["message"]
        with pytest.raises(openai.BadRequestError) as many:  # the library names the field; HTTP words it so
            client.vector_stores.search(vector_store_id=store.id, query="x", max_num_results=51)
        assert many.value.body["message"].startswith("max_num_results must be between 1 and 50")
        assert many.value.body["param"] == "max_num_results" and "-k" not in many.value.body["message"]
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.create(vector_store_id=store.id, file_id="file-nope")
        with pytest.raises(openai.APIStatusError) as big:
            client.files.create(file=("big.md", b"x" * 5000), purpose="assistants")
        assert big.value.status_code == 413
        assert client.files.list().data == []  # nothing was stored
    finally:
        srv.stop()


def test_binding_beyond_loopback_needs_a_key(home: Path) -> None:
    result = run_vscli("serve", "--host", "0.0.0.0", "--port", "0", home=home, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 2 and err.startswith("Error: refusing to serve on 0.0.0.0 without an API key")
    busy = Server(home)
    try:
        port = busy.base_url.rsplit(":", 1)[1].split("/")[0]
        again = run_vscli("serve", "--port", port, home=home, timeout=60)
        assert again.returncode == 2 and b"cannot listen on 127.0.0.1:" in again.stderr
    finally:
        busy.stop()


def test_shares_the_workspace_with_the_cli(server: Server, home: Path, dataset: Path) -> None:
    """A CLI upload while the server runs is searchable through the server, and the other way round."""
    client = server.client()
    assert run_vscli("create", "docs", home=home).returncode == 0
    assert run_vscli("upload", str(dataset / "data_mining.md"), "--store", "docs", "--quiet",
                     home=home).returncode == 0
    store = next(s for s in client.vector_stores.list() if s.name == "docs")
    found = client.vector_stores.search(vector_store_id=store.id, query="data mining")
    assert found.data[0].filename == "data_mining.md"
    uploaded = client.files.create(file=open(dataset / "sourdough_bread.md", "rb"), purpose="assistants")
    client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
    _wait(client, store.id)
    found = run_vscli("query", "docs", "sourdough starter", "-k", "1", home=home)
    assert found.returncode == 0 and b"sourdough_bread.md" in found.stdout


def test_docs_page_works_offline(server: Server) -> None:
    import urllib.request

    base = server.base_url[: -len("/v1")]
    page = urllib.request.urlopen(base + "/docs", timeout=30).read().decode()
    assert "swagger" in page.lower() and "cdn." not in page  # assets served locally
    spec = urllib.request.urlopen(base + "/openapi.json", timeout=30).read().decode()
    assert "/v1/vector_stores/{vector_store_id}/search" in spec


def test_the_readme_workflow_script(server: Server) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "serve_workflow.py"), server.base_url, KEY],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "File processed! The vector store is ready." in result.stdout
    assert re.search(r"\d\.\d{4}  data_mining\.md", result.stdout)


def test_a_killed_server_leaves_no_file_in_progress(home: Path, dataset: Path) -> None:
    """kill -9 while the server is processing: the next reader marks the file failed (its worker died),
    and attaching it again from the CLI finishes the job."""
    srv = Server(home)
    client = srv.client()
    store = client.vector_stores.create(name="docs")
    uploaded = client.files.create(file=open(dataset / "data_mining.md", "rb"), purpose="assistants")
    attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
    assert attached.status == "in_progress"  # the model takes seconds to load: we kill before it is done
    srv.proc.kill()
    srv.proc.wait(timeout=30)
    status = run_vscli("status", "docs", "--wait", "--timeout", "60", home=home)
    assert status.returncode == 4, status.stderr  # failed, not stuck
    assert run_vscli("attach", "docs", uploaded.id, home=home).returncode == 0
    assert run_vscli("status", "docs", "--wait", home=home).returncode == 0


def test_null_means_not_given(server: Server, dataset: Path) -> None:
    """LiteLLM sends every optional field, null when unset; vscli answered 400, so create-without-files and
    every search failed (issue 16). These are the bodies LiteLLM's openai provider sends."""
    import json
    import urllib.error
    import urllib.request

    def post(path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(f"{server.base_url}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {KEY}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    code, created = post("/vector_stores", {"name": "litellm", "file_ids": None, "expires_after": None,
                                            "chunking_strategy": None, "metadata": None})
    assert code == 200, created
    client = server.client()
    with (dataset / "data_mining.md").open("rb") as f:
        file_id = client.files.create(file=f, purpose="assistants").id
    code, attached = post(f"/vector_stores/{created['id']}/files",
                          {"file_id": file_id, "attributes": None, "chunking_strategy": None})
    assert code == 200, attached
    _wait(client, created["id"])
    code, found = post(f"/vector_stores/{created['id']}/search",
                       {"query": "what is data mining?", "filters": None, "max_num_results": None,
                        "ranking_options": None, "rewrite_query": None})
    assert code == 200 and found["data"][0]["filename"] == "data_mining.md", found
    code, _ = post(f"/vector_stores/{created['id']}/search", {"query": None})
    assert code == 400  # a required field is still required
    # NEAR AI's hub client (`query_vector_store`) posts full_files and reads a list (issue 16)
    code, chunks = post(f"/vector_stores/{created['id']}/search", {"query": "what is data mining?",
                                                                  "full_files": False})
    assert code == 200 and isinstance(chunks, list) and chunks, chunks
    assert set(chunks[0]) == {"file_id", "chunk_text", "distance"} and chunks[0]["file_id"] == file_id
    assert 0 <= chunks[0]["distance"] <= 1 and chunks[0]["distance"] <= chunks[-1]["distance"]
    code, files = post(f"/vector_stores/{created['id']}/search", {"query": "what is data mining?",
                                                                 "full_files": True})
    assert code == 200 and len(files) == 1, files
    assert files[0]["filename"] == "data_mining.md" and files[0]["file_content"].startswith("# Data mining")
    assert files[0]["distance"] == chunks[0]["distance"]


def test_batch_cancel_ranker_none_purposes_and_upload_identity(server: Server, dataset: Path) -> None:
    """The openai SDK's `file_batches.cancel` was a 404 and `ranker="none"` a 400; any purpose was taken;
    the same bytes uploaded twice were one file, so deleting "the second" deleted the first (issue 16)."""
    client = server.client()
    paths = sorted(dataset.glob("*.md"))
    ids = []
    for path in paths:
        with path.open("rb") as f:
            ids.append(client.files.create(file=f, purpose="assistants").id)
    store = client.vector_stores.create(name="batches")
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    cancelled = client.vector_stores.file_batches.cancel(batch_id=batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.cancelled >= 1
    assert cancelled.file_counts.in_progress == 0
    time.sleep(1)
    statuses = {f.id: f.status for f in client.vector_stores.files.list(vector_store_id=store.id, limit=100)}
    assert set(statuses.values()) <= {"cancelled", "completed"} and "cancelled" in statuses.values()
    again = next(f for f, s in statuses.items() if s == "cancelled")
    client.vector_stores.files.create(vector_store_id=store.id, file_id=again)  # attach again: processed
    _wait(client, store.id)
    assert client.vector_stores.files.retrieve(vector_store_id=store.id, file_id=again).status == "completed"
    found = client.vector_stores.search(vector_store_id=store.id, query="data mining",
                                        ranking_options={"ranker": "none"})
    assert found.data is not None
    with pytest.raises(openai.BadRequestError, match="purpose must be one of"):
        with paths[0].open("rb") as f:
            client.files.create(file=f, purpose="nonsense")  # type: ignore[arg-type]
    with paths[0].open("rb") as f:
        first = client.files.create(file=f, purpose="assistants")
    time.sleep(1.1)
    with paths[0].open("rb") as f:
        second = client.files.create(file=f, purpose="user_data")
    assert first.id != second.id and second.purpose == "user_data" and second.created_at > first.created_at
    other = client.vector_stores.create(name="identity", file_ids=[first.id])
    _wait(client, other.id)
    client.files.delete(second.id)
    assert client.files.retrieve(first.id).id == first.id
    assert [f.id for f in client.vector_stores.files.list(vector_store_id=other.id)] == [first.id]


def test_chat_is_passed_through_to_the_ask_endpoint(home: Path) -> None:
    """NEAR AI's tutorial calls `client.chat.completions.create` on the same base URL as the vector stores:
    vscli had no /v1/chat/completions (404) nor /v1/models (issue 16). Now they reach `ask`'s endpoint."""
    from tests.chat_server import ANSWER, ChatServer

    with ChatServer() as chat:
        srv = Server(home, "--api-key", KEY, env={"VSCLI_BASE_URL": chat.base_url, "VSCLI_API_KEY": "upstream-key"})
        try:
            client = srv.client()
            answer = client.chat.completions.create(model="test-model",
                                                    messages=[{"role": "user", "content": "hello"}])
            assert answer.choices[0].message.content == ANSWER
            streamed = client.chat.completions.create(model="test-model", stream=True,
                                                      messages=[{"role": "user", "content": "hello"}])
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == ANSWER
            assert [m.id for m in client.models.list()] == ["test-model"]
            with pytest.raises(openai.NotFoundError, match="missing-model"):  # upstream errors pass through
                client.chat.completions.create(model="missing-model", messages=[{"role": "user", "content": "x"}])
        finally:
            srv.stop()
        keys = {r["headers"].get("authorization") for r in chat.requests}
        assert keys == {"Bearer upstream-key"}  # the upstream's key, never the server's
    bare = Server(home, "--api-key", KEY)
    try:
        with pytest.raises(openai.APIStatusError, match="no chat endpoint configured") as caught:
            bare.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert caught.value.status_code == 503
    finally:
        bare.stop()
