"""A real chat-completions server on 127.0.0.1 for the ask tests (stdlib http.server, one thread).

It records every request and answers by the requested model: "test-model" answers normally (quoting the
first line of the question back), "missing-model" gives 404, "slow-model" sleeps past client timeouts,
"garbage-model" answers 200 with a body that is not JSON. Hostile ones never finish: "drip-model" sends
its JSON a byte every 0.3 s, "keepalive-model" streams SSE comments every 0.3 s, "endless-model" streams
words without end. A bearer token "bad-key" gives 401.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "Data mining finds previously unknown patterns [1]."


class ChatServer:
    def __init__(self, answer: str = ANSWER) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "body": None,
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                if self.path != "/v1/models":
                    return self._json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
                return self._json(200, {"object": "list", "data": [{"id": "test-model", "object": "model",
                                                                    "created": 0, "owned_by": "tests"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body,
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
                if self.headers.get("Authorization") == "Bearer bad-key":
                    return self._json(401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error",
                                                      "code": "invalid_api_key"}})
                model = body.get("model")
                if model == "missing-model":
                    return self._json(404, {"error": {"message": f"model {model} not found",
                                                      "code": "model_not_found"}})
                if model == "slow-model":
                    time.sleep(5)
                    return self._json(200, _completion(model, server.answer))
                if model == "garbage-model":
                    data = b"<html>this is not json</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                if model in ("drip-model", "keepalive-model", "endless-model"):
                    return self._never_ending(model)
                if body.get("stream"):
                    return self._stream(model)
                return self._json(200, _completion(model, server.answer))

            def _json(self, status: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _never_ending(self, model: str) -> None:
                """Until the client hangs up (or two minutes pass)."""
                self.send_response(200)
                if model == "drip-model":
                    data = json.dumps(_completion(model, server.answer)).encode() * 1000
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                event = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": {"content": "and on "}, "finish_reason": None}]}
                end = time.monotonic() + 120
                try:
                    for i in range(10**9):
                        if time.monotonic() > end:
                            return
                        if model == "drip-model":
                            self.wfile.write(data[i:i + 1])
                        elif model == "keepalive-model":
                            self.wfile.write(b": keep-alive\n\n")
                        else:
                            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(0.3 if model != "endless-model" else 0.001)
                except OSError:
                    return  # the client hung up

            def _stream(self, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = server.answer.split(" ")
                for i, word in enumerate(words):
                    delta = {"content": word + ("" if i == len(words) - 1 else " ")}
                    if i == 0:
                        delta["role"] = "assistant"
                    event = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                last = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (the timeout test) is expected, not an error


def _completion(model: str, answer: str = ANSWER) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129},
    }
