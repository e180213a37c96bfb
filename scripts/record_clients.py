"""Record what real client libraries send to `vscli serve`, as fixtures that tests/test_client_replay.py
replays against a live server.

The clients cannot live in the project's environment: nearai 0.1.14 (the newest whose tutorial still
uses ``client.beta.vector_stores``) needs openai < 1.66, and it pulls several GB. So they run once, here,
each in an environment of its own, and every request they make goes through a recording proxy in front
of `vscli serve` (with a loopback chat server behind it for the chat calls). The fixture keeps each
request exactly as sent (method, path, headers, body) and vscli's answer.

Make the environments once, then record (from the repository's root):

    python -m venv /tmp/nearai-venv && /tmp/nearai-venv/bin/pip install nearai==0.1.14 openai==1.65.5
    python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install litellm
    python scripts/record_clients.py --nearai-python /tmp/nearai-venv/bin/python \\
        --litellm-python /tmp/litellm-venv/bin/python

The client scripts are tests/fixtures/clients/nearai_tutorial.py (the NEAR AI tutorial's "Full Code
Example", verbatim) and litellm_calls.py (LiteLLM's vector-store and file calls as its docs show them).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chat_server import ChatServer  # noqa: E402  (the tests' loopback chat server)

CLIENTS = ROOT / "tests" / "fixtures" / "clients"
DATASET = ROOT / "examples" / "dataset"
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}
# Fake NEAR AI credentials: its clients send them as the bearer token; a keyless vscli server ignores it.
NEAR_AUTH = {"account_id": "tester.near", "public_key": "ed25519:fake", "signature": "fake-signature",
             "callback_url": "http://localhost:1234/capture", "nonce": "1700000000000",
             "recipient": "ai.near", "message": "Welcome to NEAR AI", "on_behalf_of": None}


def body_record(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


class RecordingProxy:
    """Forwards every request to the server at ``target`` and keeps both sides."""

    def __init__(self, target: str) -> None:
        self.exchanges: list[dict[str, Any]] = []
        host, port = target.split("//", 1)[1].split("/", 1)[0].split(":")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while size := int(self.rfile.readline().strip(), 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return data
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._read_body()
                headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(host, int(port), timeout=300)
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                answer = response.read()
                kind = response.getheader("Content-Type", "")
                proxy.exchanges.append({
                    "method": self.command, "path": self.path, "headers": headers, "body": body_record(body),
                    "status": response.status,
                    "response": json.loads(answer) if "json" in kind and answer else body_record(answer)})
                self.send_response(response.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                upstream.close()

            do_GET = do_POST = do_DELETE = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def client_versions(python: str, packages: list[str]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))")
    return json.loads(subprocess.run([python, "-c", code, *packages], check=True, capture_output=True,
                                     text=True).stdout)


def record(name: str, python: str, packages: list[str]) -> None:
    script = CLIENTS / f"{name}.py"
    with tempfile.TemporaryDirectory() as tmp, ChatServer() as chat:
        work = Path(tmp)
        shutil.copytree(DATASET, work / "dataset")  # the tutorial opens dataset/data_mining.md
        env = {**os.environ, "VSCLI_HOME": str(work / "vscli"), "VSCLI_BASE_URL": chat.base_url,
               "VSCLI_API_KEY": "upstream-key"}
        server = subprocess.Popen([sys.executable, "-m", "vscli", "serve", "--port", "0"], env=env,
                                  stderr=subprocess.PIPE, text=True)
        try:
            match = re.search(r"on (http://[^ ]+)/v1", server.stderr.readline())  # type: ignore[union-attr]
            assert match, "vscli serve did not start"
            threading.Thread(target=server.stderr.read, daemon=True).start()  # type: ignore[union-attr]
            proxy = RecordingProxy(match.group(1))
            user_home = work / "user"
            (user_home / ".nearai").mkdir(parents=True)
            (user_home / ".nearai" / "config.json").write_text(json.dumps({"api_url": proxy.url, "auth": NEAR_AUTH}))
            client_env = {"PATH": os.environ["PATH"], "HOME": str(user_home), "LITELLM_API_BASE": f"{proxy.url}/v1",
                          "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # LiteLLM: no cost-map download
            ran = subprocess.run([python, str(script)], cwd=work, env=client_env, capture_output=True, text=True,
                                 timeout=900)
            proxy.close()
            if ran.returncode != 0:
                raise SystemExit(f"{script.name} failed:\n{ran.stdout}\n{ran.stderr}")
        finally:
            server.terminate()
            server.wait(timeout=60)
        fixture = {"client": client_versions(python, packages), "script": script.name,
                   "stdout": ran.stdout, "exchanges": proxy.exchanges,
                   "chat_requests": [{"path": r["path"], "body": r["body"]} for r in chat.requests]}
    out = CLIENTS / f"{name}.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"{out.relative_to(ROOT)}: {len(fixture['exchanges'])} requests", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nearai-python", help="a Python with nearai==0.1.14 and openai==1.65.5")
    parser.add_argument("--litellm-python", help="a Python with litellm")
    args = parser.parse_args()
    if args.nearai_python:
        record("nearai_tutorial", args.nearai_python, ["nearai", "openai"])
    if args.litellm_python:
        record("litellm_calls", args.litellm_python, ["litellm", "openai"])
    if not (args.nearai_python or args.litellm_python):
        parser.error("give --nearai-python, --litellm-python or both")


if __name__ == "__main__":
    main()
