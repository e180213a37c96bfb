"""Commands over the whole workspace: info, usage, export, import."""


import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscli.cli import complete, render
from vscli.cli.app import app, workspace
from vscli.cli.progress import count_progress
from vscli.cli.stores import JsonOpt, StoreArg
from vscli.workspace import Workspace


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as one JSON object.")] = False,
) -> None:
    """Where vscli keeps things, what it runs with, and each store's size.

    \b
    Example: vscli info --json | jq .workspace
    """
    from vscli.info import gather

    facts = gather(workspace())
    if as_json:
        render.emit_json(facts)
        return
    model = facts["default_model"]
    rows = [
        ("vscli", f"{facts['version']} (Python {facts['python']}, {facts['platform']})"),
        ("workspace", facts["workspace"] + ("" if facts["workspace_exists"] else " (not created yet)")),
        ("config file", facts["config_file"] + ("" if facts["config_exists"] else " (none)")),
        ("model cache", facts["cache_dir"]),
        ("default model", f"{model['name']} ({model['path'] or 'not installed'})"),
        ("libraries", ", ".join(f"{k} {v}" for k, v in facts["libraries"].items() if v)),
        ("uploads", render.human_bytes(facts["uploads_disk_bytes"]) + " on disk"),
    ]
    render.pairs(rows)
    if facts["stores"]:
        render.emit_line("")
        render.table(
            ["ID", "NAME", "FILES", "USAGE", "ON DISK", "MODEL", "INDEX"],
            [[s["id"], s.get("name", ""), s["file_counts"]["total"] if "file_counts" in s else "",
              render.human_bytes(s["usage_bytes"]) if "usage_bytes" in s else "",
              render.human_bytes(s["disk_bytes"]) if "disk_bytes" in s else "",
              s.get("model", ""), s.get("index", s.get("error", ""))] for s in facts["stores"]],
        )


@app.command()
def usage(
    store: Annotated[Optional[str], typer.Option(
        "--store", metavar="STORE", autocompletion=complete.stores,
        help="Only this store (id or name; the id of a deleted store works too).")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="DATE", help="Only events from this UTC day on (2026-12-01), or an ISO date and time.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a list object of rows.")] = False,
) -> None:
    """What was done and embedded, per UTC day and store: server requests and ingest.

    `vscli serve` logs every request; every upload, attach, sync or server processing logs what it
    embedded (files, chunks, vectors, tokens, bytes). The log is logs/usage.jsonl in the workspace.

    \b
    Example: vscli usage --since 2026-12-01 --store docs
    """
    from vscli import usage as usage_log
    from vscli.errors import NotFound
    from vscli.store import resolve_store
    from vscli.workspace import is_store_id

    ws = workspace()
    store_id = None
    if store is not None:
        try:
            store_id = resolve_store(ws, store).id
        except NotFound:
            if not is_store_id(store):
                raise
            store_id = store  # a deleted store's id: its lines are still in the log
    rows = usage_log.summarize(ws, store_id, usage_log.parse_since(since) if since is not None else None)
    if as_json:
        render.emit_json({"object": "list", "data": rows})
        return
    names = _store_names(ws)
    render.table(["DAY", "STORE", "REQUESTS", "ERRORS", "FILES", "FAILED", "CHUNKS", "TOKENS", "BYTES"],
                 [[r["day"], names.get(r["store"], r["store"]) if r["store"] else "-", r["requests"], r["errors"],
                   r["files"], r["failed"], r["chunks"], r["tokens"], render.human_bytes(r["bytes"])] for r in rows])


def _store_names(ws: Workspace) -> dict[str, str]:
    """Store id -> "name (id)" for the stores that still exist and have a readable manifest."""
    from vscli.errors import VscliError
    from vscli.store import list_stores

    names = {}
    for s in list_stores(ws):
        try:
            names[s.id] = f"{s.config()['name']} ({s.id})"
        except VscliError:
            continue
    return names


@app.command()
def export(
    store: StoreArg,
    dest: Annotated[str, typer.Argument(metavar="FILE", help="The archive to write (.tar.gz), or - for stdout.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the archive's manifest as JSON.")] = False,
) -> None:
    """Write a store to a portable archive: its uploads, chunks, vectors and settings.

    Importing it elsewhere needs no re-embedding. Files still being processed must finish first.

    \b
    Example: vscli export docs docs.tar.gz && scp docs.tar.gz host: && ssh host vscli import docs.tar.gz
    """
    from vscli.archive import export_store
    from vscli.errors import InvalidInput
    from vscli.store import resolve_store

    s = resolve_store(workspace(), store)
    if dest == "-":
        if sys.stdout.isatty():
            raise InvalidInput("refusing to write an archive to a terminal; redirect stdout or name a file")
        if as_json:
            raise InvalidInput("--json needs FILE: stdout carries the archive")
        export_store(s, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    target = Path(dest)
    if target.is_dir():
        raise InvalidInput(f"{dest} is a directory; name the archive file to write")
    with count_progress(None, "exporting", "archive members", quiet) as advance:
        manifest = export_store(s, target, lambda total: advance(total=total))
    if as_json:
        render.emit_json(manifest)
    elif not quiet:
        render.message(f"exported {s.id} ({manifest['vector_store']['name']}, {manifest['files']} file(s)) "
                       f"to {dest}, {render.human_bytes(target.stat().st_size)}")


@app.command(name="import")
def import_(
    source: Annotated[str, typer.Argument(metavar="FILE", help="An archive from `vscli export`, or - for stdin.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Give the imported store this name.")] = None,
    new_id: Annotated[bool, typer.Option(
        "--new-id", help="Import under a new store id (to keep a copy next to the original).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a store from an archive and print its id; its vectors are used as they are.

    The store keeps its id and its files keep theirs, so scripts work unchanged on the new machine.

    \b
    Example: vscli import docs.tar.gz --name docs-copy --new-id
    """
    from vscli.archive import import_store

    with count_progress(None, "importing", "archive members", quiet) as advance:
        s = import_store(workspace(), sys.stdin.buffer if source == "-" else Path(source), name, new_id,
                         lambda total: advance(total=total))
    if as_json:
        render.emit_json(s.obj())
    else:
        render.emit_line(s.id)
