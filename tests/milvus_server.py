"""A Milvus server on 127.0.0.1 for tests: the Milvus Lite engine behind Milvus's own gRPC service.

It stands in for a Milvus cluster (`vscli create --uri http://127.0.0.1:PORT`), with two things a
cluster has and Milvus Lite's embedded mode does not: a token that must be presented (checked like
Milvus's auth interceptor, which answers UNAUTHENTICATED), and a server version (to stand in for a
Milvus older than 2.5, which has no BM25 full-text search).
"""

from __future__ import annotations

import base64
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

AUTH_FAILURE = "auth check failure, please check username, password or API key are correct"


class _TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self.expected = base64.b64encode(token.encode()).decode()

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if dict(details.invocation_metadata).get("authorization") == self.expected or handler is None:
            return handler

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILURE)

        return grpc.unary_unary_rpc_method_handler(deny, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


class _Servicer(MilvusServicer):
    def __init__(self, db: MilvusLite, version: str | None) -> None:
        super().__init__(db)
        self._version = version

    def GetVersion(self, request: Any, context: Any) -> Any:
        if self._version is None:
            return super().GetVersion(request, context)
        return milvus_pb2.GetVersionResponse(status=common_pb2.Status(code=0, reason=""), version=self._version)


class MilvusServer:
    """``with MilvusServer(tmp_path / "data", token="root:secret") as server: server.uri``"""

    def __init__(self, data_dir: Path, token: str | None = None, version: str | None = None) -> None:
        self.data_dir = data_dir
        self.token = token
        self.version = version

    def __enter__(self) -> "MilvusServer":
        self.db = MilvusLite(str(self.data_dir))
        interceptors = [_TokenCheck(self.token)] if self.token else []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=interceptors)
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(_Servicer(self.db, self.version), self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.uri = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop(grace=1).wait()
        self.db.close()
