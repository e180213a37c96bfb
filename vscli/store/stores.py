"""The workspace's stores: making one, listing them, finding one by id or name, and taking uploads out of
all of them."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Iterable

from vscli.embedding import DEFAULT_MODEL
from vscli.errors import CorruptData, InvalidInput, NotFound, VscliError
from vscli.files import FileRegistry
from vscli.folder import StoreFolder
from vscli.store.rules import check_store_name, validate_metadata
from vscli.store.vector_store import Store, drop_quietly
from vscli.workspace import (
    Workspace,
    is_store_id,
    locked,
    new_id,
    os_error,
    write_json,
)


def create_store(
    ws: Workspace,
    name: str,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    metadata: dict[str, str] | None = None,
    expires_after_days: int | None = None,
    model: str = DEFAULT_MODEL,
    backend: str = "faiss",
    uri: str | None = None,
    collection: str | None = None,
    unique_name: bool = False,
) -> Store:
    """Create an empty store. The model is loaded once here (unless it is the bundled default) to learn
    its dimension and to fail now, not at the first upload, when it cannot be loaded. A Milvus backend's
    collection is created (or an empty one of the right dimension adopted) before the store appears.
    ``unique_name``: refuse a name another store has (checked again under the lock that creation holds);
    OpenAI's API allows duplicates, the CLI does not, because its commands take names."""
    from vscli import chunking
    from vscli.backends import new_spec, open_backend

    check_store_name(name)
    if unique_name:
        _check_name_free(ws, name)
    metadata = metadata or {}
    validate_metadata(metadata)
    try:
        strategy = chunking.strategy(chunk_size, chunk_overlap)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if expires_after_days is not None and not 1 <= expires_after_days <= 365:
        raise InvalidInput(f"expires_after_days must be between 1 and 365, got {expires_after_days}",
                           field="expires_after_days")
    store_id = new_id("vs_")
    spec = new_spec(backend, uri, collection, store_id)
    dimension = _model_dimension(model)
    ws.ensure()
    now = int(time.time())
    config: dict[str, Any] = {
        "id": store_id,
        "object": "vector_store",
        "created_at": now,
        "name": name,
        "expires_after": {"anchor": "last_active_at", "days": expires_after_days}
        if expires_after_days
        else None,
        "last_active_at": now,
        "metadata": metadata,
        "vscli": {
            "model": model,
            "dimension": dimension,
            "chunking_strategy": strategy,
            "created_ns": time.time_ns(),  # orders stores made within the same second
        },
    }
    staging = ws.stores_dir / f".creating-{store_id}"
    try:
        try:
            staging.mkdir(parents=True)
            write_json(staging / "store.json", config)
            StoreFolder(staging, ws.lock_path(store_id), store_id).write_state(
                {"generation": 0, "next_serial": 1, "segments": [], "files": {}})
        except OSError as exc:
            raise os_error("create the store in", ws.stores_dir, exc) from exc
        if spec["kind"] != "faiss":
            target = open_backend(StoreFolder(staging, ws.lock_path(store_id), store_id), spec)
            target.prepare()  # the collection exists (and fits) before the store does
            config["vscli"]["backend"] = target.spec()
            write_json(staging / "store.json", config)
        with locked(ws.lock_path("stores")):
            try:
                if unique_name:
                    _check_name_free(ws, name)
                os.replace(staging, ws.store_dir(store_id))
            except (OSError, InvalidInput) as exc:
                if spec["kind"] != "faiss":
                    drop_quietly(target)
                if isinstance(exc, InvalidInput):
                    raise
                raise os_error("create the store in", ws.stores_dir, exc) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Store(ws, store_id)


def _model_dimension(model: str) -> int:
    if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return 384
    from vscli.embedding import load_embedder

    return load_embedder(model).dimension


def list_stores(ws: Workspace) -> list[Store]:
    """All stores, oldest first."""
    if not ws.stores_dir.is_dir():
        return []
    stores = []
    for d in ws.stores_dir.iterdir():
        if is_store_id(d.name) and (d / "store.json").exists():
            stores.append(Store(ws, d.name))
    return sorted(stores, key=lambda s: (*_created(s), s.id))


def store_objects(ws: Workspace) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The `vector_store` object of every store, oldest first, and {store id: what is wrong} for those
    whose manifests are damaged: one bad store must not hide the others."""
    objs, damaged = [], {}
    for store in list_stores(ws):
        try:
            objs.append(store.obj())
        except CorruptData as exc:
            damaged[store.id] = exc.message
        except NotFound:
            continue  # deleted while we listed
    return objs, damaged


def stores_holding(ws: Workspace, file_ids: Iterable[str]) -> list[Store]:
    """The stores any of these files is in (what `delete_uploads` would take them out of)."""
    wanted = list(dict.fromkeys(file_ids))
    return [store for store in list_stores(ws) if any(f in store.folder.committed()["files"] for f in wanted)]


def delete_uploads(ws: Workspace, file_ids: list[str]) -> list[str]:
    """Delete uploaded files entirely: out of every store first, then their bytes. All ids are checked
    before anything changes."""
    registry = FileRegistry(ws)
    for file_id in file_ids:
        registry.get(file_id)
    stores = list_stores(ws)
    for file_id in dict.fromkeys(file_ids):
        for store in stores:
            try:
                present = file_id in store.folder.committed()["files"]
            except NotFound:
                continue  # the store was deleted meanwhile
            if present:
                store.remove([file_id])
        registry.delete(file_id)
    return list(dict.fromkeys(file_ids))


def _created(store: Store) -> tuple[int, int]:
    try:
        config = store.config()
        return int(config.get("created_at", 0)), int(config.get("vscli", {}).get("created_ns", 0))
    except VscliError:
        return 0, 0


def stores_named(ws: Workspace, name: str) -> list[Store]:
    """The stores with this name (damaged ones cannot be asked, and are left out)."""
    matches = []
    for store in list_stores(ws):
        try:
            if store.config().get("name") == name:
                matches.append(store)
        except (CorruptData, NotFound):
            continue
    return matches


def _check_name_free(ws: Workspace, name: str) -> None:
    taken = stores_named(ws, name)
    if taken:
        raise InvalidInput(f"a vector store named {name!r} exists already ({taken[0].id}); use it by that name "
                           "or id, choose another name, or pass --allow-duplicate-name")


def resolve_store(ws: Workspace, ref: str) -> Store:
    """A store by id, or by its name when exactly one store has that name."""
    if is_store_id(ref) and (ws.store_dir(ref) / "store.json").exists():
        return Store(ws, ref)
    matches = stores_named(ws, ref)
    if not matches:
        raise NotFound(f"no vector store with id or name {ref!r} (see `vscli ls`)")
    if len(matches) > 1:
        ids = ", ".join(s.id for s in matches)
        raise InvalidInput(f"the name {ref!r} matches {len(matches)} vector stores ({ids}); use an id")
    return matches[0]
