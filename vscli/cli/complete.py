"""Shell completion of values: store names and ids, file ids, search modes, config keys.

The scripts in completions/ call vscli back with `_VSCLI_COMPLETE` set; click parses the words typed so
far and asks these functions for the candidates. They read the workspace the command line names
(`--home`, else $VSCLI_HOME, else the default) and never fail: a broken workspace completes nothing.
"""


from typing import Any

import typer

MODES = ("hybrid", "vector", "keyword")  # as vscli.search has them (a test checks)
FUSIONS = ("score", "rrf")


def _workspace(ctx: typer.Context) -> Any:
    from vscli.workspace import Workspace, user_dir

    return Workspace(user_dir(ctx.find_root().params.get("home")))


def stores(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Store names (with the id as help) and ids (with the name)."""
    try:
        from vscli.store import list_stores

        found: list[tuple[str, str]] = []
        for store in list_stores(_workspace(ctx)):
            name = store.config().get("name", "")
            found += [(name, store.id), (store.id, name)] if name else [(store.id, "")]
        return [(value, help_) for value, help_ in found if value.startswith(incomplete)]
    except Exception:  # completion must never print an error into the user's command line
        return []


def uploads(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Uploaded file ids, with their filenames as help."""
    try:
        from vscli.files import FileRegistry

        return [(f["id"], f["filename"]) for f in FileRegistry(_workspace(ctx)).list()
                if f["id"].startswith(incomplete)]
    except Exception:
        return []


def store_files(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The ids of the files in the store named earlier on the command line."""
    try:
        from vscli.files import FileRegistry
        from vscli.store import resolve_store

        ws = _workspace(ctx)
        store = resolve_store(ws, ctx.params["store"])
        registry = FileRegistry(ws)
        return [(f["id"], registry.get(f["id"])["filename"]) for f in store.files(reap=False)
                if f["id"].startswith(incomplete)]
    except Exception:
        return []


def modes(incomplete: str) -> list[str]:
    return [m for m in MODES if m.startswith(incomplete)]


def fusions(incomplete: str) -> list[str]:
    return [f for f in FUSIONS if f.startswith(incomplete)]


def eval_fusions(incomplete: str) -> list[str]:
    return [f for f in (*FUSIONS, "all") if f.startswith(incomplete)]


def eval_modes(incomplete: str) -> list[str]:
    return [m for m in (*MODES, "all") if m.startswith(incomplete)]


def backends(incomplete: str) -> list[str]:
    return [b for b in ("faiss", "milvus") if b.startswith(incomplete)]


def config_keys(incomplete: str) -> list[str]:
    from vscli import config

    return [k for k in config.KEYS if k.startswith(incomplete)]
