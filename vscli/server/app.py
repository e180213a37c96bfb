"""The FastAPI application: OpenAI's Files and Vector Stores endpoints under /v1, on the local workspace.

Every endpoint calls the library; errors leave in OpenAI's shape, ``{"error": {"message", "type",
"param", "code"}}``, with 400 for invalid requests, 401 for a missing or wrong key, 404 for unknown ids,
413 for uploads over the size limit and 500/503 for vscli's own failures.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Iterable, Optional, Union

from fastapi import Body as JsonBody
from fastapi import File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from vscli import chunking, liveness, usage
from vscli.errors import CorruptData, InvalidInput, NotFound, StoreExpired, TooLarge, Unavailable, VscliError
from vscli.files import FileRegistry, max_file_bytes, public
from vscli.search import Searcher, check_k, page
from vscli.server.chat_proxy import forward
from vscli.server.limits import BodyLimit
from vscli.server.listing import check_page, envelope, paginate
from vscli.server.near_ai import near_ai_results
from vscli.server.origin import host_names, refusal
from vscli.server.processing import Processor
from vscli.store import Store, create_store, delete_uploads, store_objects
from vscli.uploads import spool
from vscli.workspace import Workspace

# OpenAI's rankers, and vscli's modes by name. "none" is OpenAI's "no re-ranking": vscli has no re-ranker
# after retrieval, so every hybrid ranker returns the fused scores as they are.
RANKERS = {"auto": "hybrid", "default-2024-11-15": "hybrid", "none": "hybrid", "hybrid": "hybrid",
           "vector": "vector", "keyword": "keyword"}
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_STATUS = {TooLarge: 413, InvalidInput: 400, StoreExpired: 400, NotFound: 404, CorruptData: 500, Unavailable: 503}
_STORE_IN_PATH = re.compile(r"^/v1/vector_stores/(vs_[A-Za-z0-9]+)")


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields vscli does not use (e.g. description)

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_given(cls, data: Any) -> Any:
        """LiteLLM sends every optional field, null when unset (`"file_ids": null`): null means "not given",
        so the field's default applies."""
        return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data


class ExpiresAfter(Body):
    anchor: str = "last_active_at"
    days: int


class CreateStore(Body):
    name: Optional[str] = None
    file_ids: list[str] = []
    chunking_strategy: Optional[dict[str, Any]] = None
    metadata: Optional[dict[str, str]] = None
    expires_after: Optional[ExpiresAfter] = None


class UpdateStore(Body):
    name: Optional[str] = None
    metadata: Optional[dict[str, str]] = None
    expires_after: Optional[ExpiresAfter] = None


class AttachFile(Body):
    file_id: str
    attributes: Optional[dict[str, Union[bool, int, float, str]]] = None
    chunking_strategy: Optional[dict[str, Any]] = None


class BatchFile(Body):
    file_id: str
    attributes: Optional[dict[str, Union[bool, int, float, str]]] = None
    chunking_strategy: Optional[dict[str, Any]] = None


class CreateBatch(Body):
    file_ids: Optional[list[str]] = None
    files: Optional[list[BatchFile]] = None
    attributes: Optional[dict[str, Union[bool, int, float, str]]] = None
    chunking_strategy: Optional[dict[str, Any]] = None


class UpdateFile(Body):
    attributes: dict[str, Union[bool, int, float, str]]


class RankingOptions(Body):
    ranker: str = "auto"
    score_threshold: Optional[float] = None


class SearchRequest(Body):
    query: Union[str, list[str]]
    filters: Optional[dict[str, Any]] = None
    max_num_results: int = 10
    ranking_options: Optional[RankingOptions] = None
    rewrite_query: bool = False
    full_files: Optional[bool] = None  # sent by NEAR AI's hub client only: answer its list shape


# The library's names of inputs (`VscliError.field`) -> where they are in a request; OpenAI's error
# object names it as `param`.
PARAMS = {"expires_after_days": "expires_after.days", "min_score": "ranking_options.score_threshold"}


def error_response(status: int, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    kind = {401: "authentication_error", 404: "invalid_request_error", 413: "invalid_request_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def create_app(ws: Workspace, api_key: str | None = None, processor: Processor | None = None,
               bound_host: str = "127.0.0.1", allowed_hosts: Iterable[str] = ()) -> Any:
    """The app. Without an API key it answers only requests addressed to ``bound_host``, a loopback name
    or one of ``allowed_hosts``, and from no other web origin (`vscli.server.origin`)."""
    from fastapi_offline import FastAPIOffline  # FastAPI whose /docs page needs no CDN

    from vscli import __version__

    app = FastAPIOffline(title="vscli", version=__version__,
                         description="OpenAI's Files and Vector Stores API on a local vscli workspace.")
    processor = processor or Processor(ws)
    registry = FileRegistry(ws)
    encoders: dict[str, Any] = {}
    encoders_lock = threading.Lock()

    # ---- errors and authentication --------------------------------------------------------------------

    @app.exception_handler(VscliError)
    def vscli_error(request: Request, exc: VscliError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
        param = PARAMS.get(exc.field or "", exc.field)
        return error_response(status, exc.worded(PARAMS), param=param)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(400, f"{where}: {first.get('msg', 'invalid request')}", param=where or None)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug: say so in OpenAI's shape
        return error_response(500, f"unexpected {type(exc).__name__}: {exc}")

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    names = None if api_key is not None else host_names(bound_host, allowed_hosts)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        started, keyed = time.perf_counter(), False
        refused = refusal(request.method, request.headers, names)
        if refused is not None:
            response = error_response(*refused)
        elif (request.url.path.startswith("/v1/") and api_key is not None
              and not _authorized(request.headers.get("authorization", ""), api_key)):
            response = error_response(401, "Incorrect API key provided", code="invalid_api_key")
        else:
            keyed = api_key is not None  # the request carried the server's key (or no key is needed)
            response = await call_next(request)
        if request.url.path.startswith("/v1/"):
            usage.record(ws, request_event(request, response.status_code, time.perf_counter() - started, keyed))
        return response

    # Outside `guard`, so the body is counted before any of it is parsed or spooled (`vscli.server.limits`).
    app.add_middleware(BodyLimit, upload_limit=max_file_bytes, too_large=lambda limit: error_response(
        413, f"the request is larger than the limit of {limit} bytes"))

    def store(vector_store_id: str) -> Store:
        found = Store(ws, vector_store_id)
        found.config()  # NotFound -> 404
        return found

    # ---- files ----------------------------------------------------------------------------------------

    @app.post("/v1/files", tags=["files"])
    def upload_file(request: Request, file: UploadFile = File(...),  # noqa: B008 (FastAPI's way)
                    purpose: str = Form(...)) -> Any:
        if purpose not in PURPOSES:
            raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose[:40]!r}")
        spooled = spool(ws, file.file, Path(file.filename or "upload").name)  # the size limit: 413
        try:
            obj, _ = registry.add_path(spooled.path, spooled.name, purpose, spooled.digest,
                                       reuse=False)  # as in OpenAI, every upload is its own file
            request.state.bytes_stored = spooled.size  # for the usage log
            return public(obj)
        finally:
            spooled.discard()

    @app.get("/v1/files", tags=["files"])
    def list_files(purpose: Optional[str] = None, limit: int = Query(20), order: str = "desc",
                   after: Optional[str] = None, before: Optional[str] = None) -> dict[str, Any]:
        check_page(limit, order)
        chosen, more = registry.page(limit, order, after, before, purpose)
        return envelope([public(o) for o in chosen], more)

    @app.get("/v1/files/{file_id}", tags=["files"])
    def get_file(file_id: str) -> dict[str, Any]:
        return public(registry.get(file_id))

    @app.get("/v1/files/{file_id}/content", tags=["files"])
    def file_content(file_id: str) -> FileResponse:
        obj = registry.get(file_id)
        return FileResponse(registry.content_path(file_id), media_type="application/octet-stream",
                            filename=obj["filename"])

    @app.delete("/v1/files/{file_id}", tags=["files"])
    def delete_file(file_id: str) -> dict[str, Any]:
        delete_uploads(ws, [file_id])
        return {"id": file_id, "object": "file", "deleted": True}

    # ---- vector stores ----------------------------------------------------------------------------------

    @app.post("/v1/vector_stores", tags=["vector stores"])
    def create_vector_store(body: CreateStore) -> dict[str, Any]:
        size, overlap = _static(body.chunking_strategy)
        for file_id in body.file_ids:
            registry.get(file_id)  # unknown ids fail before the store exists
        created = create_store(ws, body.name or "untitled", size, overlap, body.metadata or {},
                               body.expires_after.days if body.expires_after else None)
        if body.file_ids:
            processor.submit(created.id, created.attach(body.file_ids, worker=liveness.this_process()))
        return created.obj()

    @app.get("/v1/vector_stores", tags=["vector stores"])
    def list_vector_stores(limit: int = 20, order: str = "desc", after: Optional[str] = None,
                           before: Optional[str] = None) -> dict[str, Any]:
        return paginate(store_objects(ws)[0], limit, order, after, before)  # damaged ones: 500 when asked for

    @app.get("/v1/vector_stores/{vector_store_id}", tags=["vector stores"])
    def get_vector_store(vector_store_id: str) -> dict[str, Any]:
        return store(vector_store_id).obj()

    @app.post("/v1/vector_stores/{vector_store_id}", tags=["vector stores"])
    def update_vector_store(vector_store_id: str, body: UpdateStore) -> dict[str, Any]:
        expires: Any = False
        if "expires_after" in body.model_fields_set:
            expires = body.expires_after.days if body.expires_after else None
        return store(vector_store_id).update(body.name, body.metadata, expires)

    @app.delete("/v1/vector_stores/{vector_store_id}", tags=["vector stores"])
    def delete_vector_store(vector_store_id: str) -> dict[str, Any]:
        store(vector_store_id).delete()
        return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}

    # ---- files in a vector store ---------------------------------------------------------------------

    @app.post("/v1/vector_stores/{vector_store_id}/files", tags=["vector store files"])
    def attach_file(vector_store_id: str, body: AttachFile) -> dict[str, Any]:
        target = store(vector_store_id)
        strategy = _strategy(body.chunking_strategy)
        todo = target.attach([body.file_id], body.attributes or {}, worker=liveness.this_process(),
                             chunking_strategy=strategy)
        if body.attributes is not None and not todo:
            target.set_attributes(body.file_id, body.attributes)
        processor.submit(target.id, todo)
        return target.file(body.file_id)

    @app.get("/v1/vector_stores/{vector_store_id}/files", tags=["vector store files"])
    def list_store_files(vector_store_id: str, limit: int = 20, order: str = "desc", after: Optional[str] = None,
                         before: Optional[str] = None, filter: Optional[str] = None) -> dict[str, Any]:
        check_page(limit, order)
        return envelope(*store(vector_store_id).files_page(limit, order, after, before, filter))

    @app.get("/v1/vector_stores/{vector_store_id}/files/{file_id}", tags=["vector store files"])
    def get_store_file(vector_store_id: str, file_id: str) -> dict[str, Any]:
        target = store(vector_store_id)
        target.reap_orphans()
        return target.file(file_id)

    @app.post("/v1/vector_stores/{vector_store_id}/files/{file_id}", tags=["vector store files"])
    def update_store_file(vector_store_id: str, file_id: str, body: UpdateFile) -> dict[str, Any]:
        return store(vector_store_id).set_attributes(file_id, body.attributes)

    @app.delete("/v1/vector_stores/{vector_store_id}/files/{file_id}", tags=["vector store files"])
    def remove_store_file(vector_store_id: str, file_id: str) -> dict[str, Any]:
        store(vector_store_id).remove([file_id])
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    @app.get("/v1/vector_stores/{vector_store_id}/files/{file_id}/content", tags=["vector store files"])
    def store_file_content(vector_store_id: str, file_id: str) -> dict[str, Any]:
        store(vector_store_id).file(file_id)  # 404 unless the file is in this store
        text = _file_text(file_id)
        return {"object": "vector_store.file_content.page", "data": [{"type": "text", "text": text}],
                "has_more": False, "next_page": None}

    # ---- file batches -----------------------------------------------------------------------------------

    @app.post("/v1/vector_stores/{vector_store_id}/file_batches", tags=["vector store file batches"])
    def create_batch(vector_store_id: str, body: CreateBatch) -> dict[str, Any]:
        target = store(vector_store_id)
        if (body.file_ids is None) == (body.files is None):
            raise InvalidInput("give either file_ids or files")
        items = body.files or [BatchFile(file_id=f, attributes=body.attributes,
                                         chunking_strategy=body.chunking_strategy) for f in body.file_ids or []]
        if not items:
            raise InvalidInput("a file batch needs at least one file")
        for item in items:
            registry.get(item.file_id)
        todo: list[str] = []
        for item in items:
            todo += target.attach([item.file_id], item.attributes or {}, worker=liveness.this_process(),
                                  chunking_strategy=_strategy(item.chunking_strategy))
        batch = target.create_batch([item.file_id for item in items])
        processor.submit(target.id, todo)
        return batch

    @app.get("/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", tags=["vector store file batches"])
    def get_batch(vector_store_id: str, batch_id: str) -> dict[str, Any]:
        return store(vector_store_id).batch(batch_id)

    @app.post("/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
              tags=["vector store file batches"])
    def cancel_batch(vector_store_id: str, batch_id: str) -> dict[str, Any]:
        return store(vector_store_id).cancel_batch(batch_id)

    @app.get("/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
             tags=["vector store file batches"])
    def list_batch_files(vector_store_id: str, batch_id: str, limit: int = 20, order: str = "desc",
                         after: Optional[str] = None, before: Optional[str] = None,
                         filter: Optional[str] = None) -> dict[str, Any]:
        target = store(vector_store_id)
        wanted = set(target.batch_file_ids(batch_id))
        files = [f for f in target.files() if f["id"] in wanted and (filter is None or f["status"] == filter)]
        return paginate(files, limit, order, after, before)

    # ---- search ------------------------------------------------------------------------------------------

    @app.post("/v1/vector_stores/{vector_store_id}/search", tags=["search"])
    def search(vector_store_id: str, body: SearchRequest) -> Any:
        target = store(vector_store_id)
        check_k(body.max_num_results)
        text = body.query if isinstance(body.query, str) else " ".join(body.query)
        if not text.strip():
            raise InvalidInput("query must not be empty")
        options = body.ranking_options or RankingOptions()
        mode = RANKERS.get(options.ranker)
        if mode is None:
            raise InvalidInput(f"ranking_options.ranker must be one of {', '.join(RANKERS)}, got {options.ranker!r}")
        model = target.config()["vscli"]["model"]
        searcher = Searcher(target, mode, body.filters, options.score_threshold,
                            encoder=_encoder(model) if mode != "keyword" else None)
        results = searcher.results(text, body.max_num_results)
        if body.full_files is not None:
            return near_ai_results(results, body.full_files, _file_text)
        return page(text, results)

    def _file_text(file_id: str) -> str:
        from vscli.extract import extract_text

        obj = registry.get(file_id)
        return extract_text(registry.read(file_id), obj["filename"], obj.get("encoding"))

    # ---- chat, passed through to `ask`'s endpoint (`vscli.server.chat_proxy`) ---------------------------

    @app.post("/v1/chat/completions", tags=["chat"])
    def chat_completions(request: Request, body: Annotated[dict[str, Any], JsonBody()]) -> Any:
        if isinstance(body.get("user"), str):
            request.state.user = body["user"][:200]  # end-user tracking, as LiteLLM promises it
        return forward("POST", "chat/completions", json.dumps(body).encode())

    @app.get("/v1/models", tags=["chat"])
    def models() -> Any:
        return forward("GET", "models", None)

    def _encoder(model: str) -> Any:
        with encoders_lock:  # one encoder per model for the server's life: no load per request
            if model not in encoders:
                from vscli.embedding import load_query_encoder

                encoders[model] = load_query_encoder(model, long_lived=True)
            return encoders[model]

    app.state.processor = processor
    return app


def request_event(request: Request, status: int, seconds: float, keyed: bool) -> dict[str, Any]:
    """The usage log's line for one request (`vscli.usage`)."""
    found = _STORE_IN_PATH.match(request.url.path)
    return {"kind": "request", "method": request.method, "path": request.url.path, "status": status,
            "latency_ms": round(seconds * 1000, 1), "store": found.group(1) if found else None,
            "bytes": getattr(request.state, "bytes_stored", None), "user": getattr(request.state, "user", None),
            "key": "server key" if keyed else None}


def _authorized(header: str, api_key: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def _static(strategy: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """OpenAI's chunking_strategy -> (chunk size, overlap) for `create_store` (None, None: auto)."""
    resolved = _strategy(strategy)
    if resolved is None or resolved["type"] == "auto":
        return None, None
    static = resolved["static"]
    return static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]


def _strategy(strategy: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate OpenAI's chunking_strategy object; returns vscli's (None: the store's own)."""
    if strategy is None:
        return None
    kind = strategy.get("type")
    if kind == "auto":
        return {"type": "auto"}
    if kind != "static" or not isinstance(strategy.get("static"), dict):
        raise InvalidInput('chunking_strategy must be {"type": "auto"} or {"type": "static", "static": {...}}')
    static = strategy["static"]
    fields = ("max_chunk_size_tokens", "chunk_overlap_tokens")
    for field in fields:  # integers, as OpenAI's schema has them (1e400 is a float: infinity)
        value = static.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise InvalidInput(f"chunking_strategy.static.{field} must be an integer, got {value!r}")
    return chunking.strategy(*(int(static[field]) for field in fields))

