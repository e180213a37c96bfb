"""ask against a real chat-completions server on 127.0.0.1, and the config command."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from tests.chat_server import ANSWER, ChatServer
from tests.conftest import assert_clean_error
from vscli.chunking import count_tokens
from vscli.errors import ExitCode

pytestmark = pytest.mark.usefixtures("backend")  # the shared suite: every test on FAISS and on Milvus

QUESTION = "what is data mining?"


@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


@pytest.fixture
def docs(cli, dataset: Path) -> str:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset), "-r", "--store", "docs").exit_code == 0
    return "docs"


def ask(cli, server: ChatServer, *extra: str):
    return cli("ask", "docs", QUESTION, "--base-url", server.base_url, "--api-key", "sk-test-123",
               "--model", "test-model", *extra)


def test_ask_sends_passages_and_question_and_prints_sources(cli, docs, server) -> None:
    result = ask(cli, server, "--no-stream", "-k", "3")
    assert result.exit_code == 0, result.stderr
    answer, _, sources = result.stdout.partition("\nSources:\n")
    assert answer.strip() == ANSWER
    lines = sources.rstrip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("  [1] data_mining.md  file-")
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["model"] == "test-model" and not body.get("stream")
    system, user = body["messages"]
    assert system["role"] == "system" and user == {"role": "user", "content": QUESTION}
    assert "cite" in system["content"].lower() and "[1] data_mining.md" in system["content"]
    assert "discovering previously unknown patterns" in system["content"]  # the retrieved chunk text
    assert "[3] " in system["content"] and "[4] " not in system["content"]


def test_streaming(cli, docs, server) -> None:
    result = ask(cli, server, "--stream")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(ANSWER + "\n")
    assert "Sources:" in result.stdout
    assert server.requests[0]["body"]["stream"] is True


def test_json_output(cli, docs, server) -> None:
    result = ask(cli, server, "--json", "-k", "2")
    assert result.exit_code == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["answer"] == ANSWER and obj["model"] == "test-model"
    assert obj["usage"]["total_tokens"] == 129
    assert len(obj["sources"]) == 2
    assert set(obj["sources"][0]) == {"file_id", "filename", "score", "attributes", "content"}
    assert obj["sources"][0]["filename"] == "data_mining.md"


def test_context_only_calls_nothing(cli, docs, server) -> None:
    result = cli("ask", "docs", QUESTION, "--context-only", "-k", "2", "--system", "Answer like a pirate.")
    assert result.exit_code == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["messages"][0]["content"].startswith("Answer like a pirate.\n\nContext passages:")
    assert obj["messages"][1] == {"role": "user", "content": QUESTION}
    assert server.requests == []


def test_context_fits_the_token_budget(cli, docs, server) -> None:
    wide = json.loads(cli("ask", "docs", QUESTION, "--context-only", "-k", "10").stdout)
    narrow = json.loads(cli("ask", "docs", QUESTION, "--context-only", "-k", "10",
                            "--max-context-tokens", "250", "--system", "S").stdout)
    passages = narrow["messages"][0]["content"].split("Context passages:\n\n", 1)[1]
    assert count_tokens(passages) <= 250
    assert passages.count("\n[") < wide["messages"][0]["content"].count("\n[")
    tiny = json.loads(cli("ask", "docs", QUESTION, "--context-only", "--max-context-tokens", "30",
                          "--system", "S").stdout)
    first = tiny["messages"][0]["content"].split("Context passages:\n\n", 1)[1]
    assert first.startswith("[1] data_mining.md") and count_tokens(first) <= 30


def test_options_reach_the_endpoint(cli, docs, server) -> None:
    ask(cli, server, "--no-stream", "--temperature", "0.2", "--max-tokens", "99", "--system", "Be brief.")
    body = server.requests[0]["body"]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 99
    assert body["messages"][0]["content"].startswith("Be brief.")


def test_settings_precedence(cli, docs, server, monkeypatch) -> None:
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    assert cli("config", "set", "base_url", dead).exit_code == 0
    assert cli("config", "set", "api_key", "from-file").exit_code == 0
    assert cli("config", "set", "model", "test-model").exit_code == 0
    # The config file alone points at a dead port.
    assert cli("ask", "docs", QUESTION, "--no-stream").exit_code == ExitCode.ENDPOINT
    # OPENAI_BASE_URL beats the file; VSCLI_BASE_URL beats OPENAI_BASE_URL; the flag beats both.
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    assert cli("ask", "docs", QUESTION, "--no-stream").exit_code == 0
    assert server.requests[-1]["headers"]["authorization"] == "Bearer from-file"
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-env")
    monkeypatch.setenv("VSCLI_BASE_URL", dead)
    assert cli("ask", "docs", QUESTION, "--no-stream").exit_code == ExitCode.ENDPOINT
    assert cli("ask", "docs", QUESTION, "--no-stream", "--base-url", server.base_url).exit_code == 0
    assert server.requests[-1]["headers"]["authorization"] == "Bearer from-openai-env"
    monkeypatch.setenv("VSCLI_API_KEY", "from-vscli-env")
    monkeypatch.setenv("VSCLI_BASE_URL", server.base_url)
    assert cli("ask", "docs", QUESTION, "--no-stream").exit_code == 0
    assert server.requests[-1]["headers"]["authorization"] == "Bearer from-vscli-env"
    assert cli("ask", "docs", QUESTION, "--no-stream", "--api-key", "from-flag").exit_code == 0
    assert server.requests[-1]["headers"]["authorization"] == "Bearer from-flag"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_endpoint_configured(cli, docs) -> None:
    assert_clean_error(cli("ask", "docs", QUESTION), ExitCode.USAGE, "no chat endpoint configured")


@pytest.mark.parametrize("extra,fragment", [
    (["--model", "missing-model"], "404 for model 'missing-model'"),
    (["--api-key", "bad-key"], "rejected the api key (http 401)"),
    (["--model", "slow-model", "--timeout", "1"], "did not answer within 1s"),
    (["--model", "garbage-model"], "malformed response"),
])
def test_endpoint_failures_are_clean_errors(cli, docs, server, extra, fragment) -> None:
    result = cli("ask", "docs", QUESTION, "--base-url", server.base_url, "--api-key", "k",
                 "--model", "test-model", "--no-stream", *extra)
    assert_clean_error(result, ExitCode.ENDPOINT, fragment)


def test_unreachable_endpoint(cli, docs) -> None:
    result = cli("ask", "docs", QUESTION, "--base-url", f"http://127.0.0.1:{_free_port()}/v1", "--no-stream")
    assert_clean_error(result, ExitCode.ENDPOINT, "cannot reach the chat endpoint")


def test_no_relevant_passage_sends_nothing(cli, docs, server) -> None:
    result = ask(cli, server, "--mode", "vector", "--min-score", "0.99")
    assert_clean_error(result, ExitCode.NO_CONTEXT, "below --min-score 0.99")
    assert cli("create", "empty").exit_code == 0
    result = cli("ask", "empty", QUESTION, "--base-url", server.base_url)
    assert_clean_error(result, ExitCode.NO_CONTEXT, "no completed files")
    assert server.requests == []


def test_config_commands(cli, tmp_path: Path) -> None:
    path = Path(os.environ["VSCLI_CONFIG"])
    assert cli("config", "path").stdout.strip() == str(path)
    assert cli("config", "set", "api_key", "sk-abcdefghijklmnop").exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli("config", "set", "top_k", "7").exit_code == 0
    assert cli("config", "get", "top_k").stdout.strip() == "7"
    listing = json.loads(cli("config", "list", "--json").stdout)
    assert listing["api_key"] == {"value": "sk-...mnop", "source": "config file"}
    assert listing["model"] == {"value": "gpt-4o-mini", "source": "default"}
    assert "sk-abcdefghijklmnop" not in cli("config", "list").stdout
    assert cli("config", "unset", "top_k").exit_code == 0
    assert_clean_error(cli("config", "get", "top_k"), ExitCode.NOT_FOUND, "not set")
    assert_clean_error(cli("config", "set", "colour", "red"), ExitCode.USAGE, "unknown config key")
    assert_clean_error(cli("config", "set", "top_k", "zero"), ExitCode.USAGE, "invalid value for top_k")
    assert_clean_error(cli("config", "set", "base_url", "localhost:8000"), ExitCode.USAGE, "http://")
    path.write_text("this is = = not toml")
    assert_clean_error(cli("config", "list"), ExitCode.USAGE, "cannot parse config file")
