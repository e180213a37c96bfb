"""What real client libraries sent to `vscli serve`, replayed against a live server (issue 16).

The NEAR AI tutorial's full code (nearai 0.1.14 + openai 1.65.5, run verbatim: only the config file
pointed at the server) and LiteLLM's SDK calls were recorded by scripts/record_clients.py, each in an
environment of its own (nearai needs openai < 1.66; both pull GBs), request by request: method, path,
headers and body exactly as sent. Here each request goes to a fresh server with the same headers and
body; ids the server hands out are mapped from the recording's to the new ones. Every answer must have
the recording's status and shape, so a client that parsed the recorded answers parses these.
"""

from __future__ import annotations

import base64
import http.client
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chat_server import ANSWER, ChatServer
from tests.test_serve import Server

FIXTURES = Path(__file__).parent / "fixtures" / "clients"
SKIP_HEADERS = {"host", "content-length"}


def _body(record: dict[str, str]) -> bytes:
    return base64.b64decode(record["base64"]) if "base64" in record else record["text"].encode()


def _shape(value: Any) -> Any:
    """The structure a client parses: keys, element shapes and value types (numbers are numbers)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _learn_ids(recorded: Any, answered: Any, ids: dict[str, str]) -> None:
    """Map the ids in the recorded answer to those at the same place in the new one."""
    if isinstance(recorded, dict) and isinstance(answered, dict):
        for key, value in recorded.items():
            if key in answered:
                _learn_ids(value, answered[key], ids)
    elif isinstance(recorded, list) and isinstance(answered, list):
        for old, new in zip(recorded, answered, strict=False):
            _learn_ids(old, new, ids)
    elif isinstance(recorded, str) and isinstance(answered, str) and recorded.startswith(("vs_", "file-", "vsfb_")):
        ids.setdefault(recorded, answered)


def _with_ids(data: bytes, ids: dict[str, str]) -> bytes:
    for old in sorted(ids, key=len, reverse=True):
        data = data.replace(old.encode(), ids[old].encode())
    return data


def _send(base: str, exchange: dict[str, Any], ids: dict[str, str]) -> tuple[int, Any]:
    host, port = base.split("//", 1)[1].split("/", 1)[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    headers = {k: v for k, v in exchange["headers"].items() if k not in SKIP_HEADERS}
    body = _with_ids(_body(exchange["body"]), ids)
    connection.request(exchange["method"], _with_ids(exchange["path"].encode(), ids).decode(), body=body or None,
                       headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, json.loads(data) if "json" in kind and data else {"text": data.decode("utf-8", "replace")}


def _replay(base: str, exchanges: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """Each request in turn; a run of identical requests (a client polling) is repeated until the answer
    has the shape of the run's last recorded one. Returns (recorded exchange, new answer) pairs."""
    ids: dict[str, str] = {}
    answered = []
    i = 0
    while i < len(exchanges):
        exchange = exchanges[i]
        key = (exchange["method"], exchange["path"], json.dumps(exchange["body"]))
        while i + 1 < len(exchanges) and (exchanges[i + 1]["method"], exchanges[i + 1]["path"],
                                          json.dumps(exchanges[i + 1]["body"])) == key:
            i += 1
        last = exchanges[i]
        deadline = time.monotonic() + 180
        while True:
            status, answer = _send(base, last, ids)
            done = status == last["status"] and _shape(answer) == _shape(last["response"])
            if isinstance(last["response"], dict) and "file_counts" in last["response"]:
                done = done and answer.get("file_counts") == last["response"]["file_counts"]
            if done or last is exchange or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        where = f"{last['method']} {last['path']}"
        assert status == last["status"], (where, answer)
        assert _shape(answer) == _shape(last["response"]), (where, answer, last["response"])
        _learn_ids(last["response"], answer, ids)
        answered.append((last, answer))
        i += 1
    return answered


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def chat_backed_server(home: Path):
    """`vscli serve` without a key (as the clients were recorded: NEAR AI's bearer is a signature), with
    the loopback chat server behind it for `/v1/chat/completions`."""
    with ChatServer() as chat:
        server = Server(home, env={"VSCLI_BASE_URL": chat.base_url, "VSCLI_API_KEY": "upstream-key"})
        try:
            yield server, chat
        finally:
            server.stop()


def test_the_recorded_tutorial_is_the_seeds_full_code_verbatim() -> None:
    """The NEAR AI tutorial page the product was described from (beside the checkout, as in CI)."""
    seeds = Path(__file__).resolve().parents[2] / "shared" / "seeds"
    page = next(p.read_text() for p in sorted(seeds.glob("*.txt")) if "Full Code for Quick Setup" in p.read_text())
    block = page.split("Full Code for Quick Setup</summary>\n```python\n", 1)[1].split("\n```", 1)[0]
    assert (FIXTURES / "nearai_tutorial.py").read_text() == textwrap.dedent(block + "\n")


def test_the_near_ai_tutorial_full_code(chat_backed_server) -> None:
    server, chat = chat_backed_server
    recorded = _fixture("nearai_tutorial")
    assert recorded["client"] == {"nearai": "0.1.14", "openai": "1.65.5"}
    answered = _replay(server.base_url, recorded["exchanges"])
    steps = [f"{e['method']} {e['path'].split('/')[2]}" for e, _ in answered]
    assert steps == ["POST vector_stores", "POST files", "POST vector_stores", "GET vector_stores", "GET files",
                     "POST vector_stores", "POST chat"]
    by_path = {e["path"].rsplit("/", 1)[-1]: (e, answer) for e, answer in answered}
    # step 5: the file's raw content, byte for byte
    assert [answer for e, answer in answered if e["path"].endswith("/content")] == [
        e["response"] for e in recorded["exchanges"] if e["path"].endswith("/content")]
    # step 7: InferenceClient.query_vector_store reads a list of {file_id, chunk_text, distance}
    search, chunks = by_path["search"]
    assert json.loads(_body(search["body"])) == {"query": "what is data mining?", "full_files": False}
    assert isinstance(chunks, list) and chunks and chunks[0]["chunk_text"].startswith("# Data mining")
    assert [c["distance"] for c in chunks] == sorted(c["distance"] for c in chunks)  # lower is better
    # step 8: the chat call reached the upstream with the retrieved context and the upstream's key
    completion = by_path["completions"][1]
    assert completion["choices"][0]["message"]["content"] == ANSWER
    sent = [r for r in chat.requests if r["path"] == "/v1/chat/completions"]
    assert len(sent) == 1 and sent[0]["headers"]["authorization"] == "Bearer upstream-key"
    assert sent[0]["body"]["model"] == "llama-v3p1-70b-instruct" and sent[0]["body"]["max_tokens"] == 1024
    assert chunks[0]["chunk_text"] in sent[0]["body"]["messages"][0]["content"]


def test_litellm_create_and_search_with_its_nulls(chat_backed_server) -> None:
    server, _ = chat_backed_server
    recorded = _fixture("litellm_calls")
    assert "litellm" in recorded["client"]
    sent = [json.loads(_body(e["body"])) for e in recorded["exchanges"] if e["path"].startswith("/v1/vector_stores")]
    assert sent[0]["file_ids"] is None and sent[1]["metadata"] is None  # the nulls LiteLLM sends
    assert all(body["filters"] is None and body["ranking_options"] is None for body in sent[2:])
    answered = _replay(server.base_url, recorded["exchanges"])
    assert [answer.get("object") for _, answer in answered] == ["file", "vector_store", "vector_store",
                                                                "vector_store.search_results.page",
                                                                "vector_store.search_results.page"]
    first, found = answered[3][1], answered[4][1]
    assert first["data"][0]["filename"] == "data_mining.md"
    assert len(found["data"]) == 2  # max_num_results, given; every other option null
