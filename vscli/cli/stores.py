"""Commands over whole stores: create, ls, status, delete."""


import sys
from typing import Annotated, Optional

import typer

from vscli.cli import complete, render
from vscli.cli.app import app, workspace
from vscli.cli.options import parse_metadata
from vscli.cli.progress import wait_progress
from vscli.embedding import DEFAULT_MODEL
from vscli.errors import ExitCode, WaitTimeout
from vscli.store import Store, create_store, resolve_store, store_objects

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the OpenAI-shaped JSON object.")]
UriOpt = Annotated[Optional[str], typer.Option(
    "--uri", envvar="VSCLI_MILVUS_URI", help="Milvus: a Milvus Lite file (./vectors.db) or a server "
    "(http://localhost:19530).")]
TokenOpt = Annotated[Optional[str], typer.Option(
    "--token", help="Milvus: USER:PASSWORD or an API key; default VSCLI_MILVUS_TOKEN, then the config "
    "file's milvus_token. Never written into the store's manifest.")]
CollectionOpt = Annotated[Optional[str], typer.Option(
    "--collection", help="Milvus: the collection's name (default vscli_<store id>); an existing one must "
    "be empty and of the model's dimension.")]
StoreArg = Annotated[str, typer.Argument(metavar="STORE", help="Store id (vs_...) or its unique name.",
                                         autocompletion=complete.stores)]


@app.command()
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for the store (used in place of its id).")],
    chunk_size: Annotated[Optional[int], typer.Option(
        "--chunk-size", help="Max tokens (cl100k) per chunk, 100-4096. Default: auto (200).")] = None,
    chunk_overlap: Annotated[Optional[int], typer.Option(
        "--chunk-overlap", help="Tokens shared by neighbouring chunks, at most half the chunk size.")] = None,
    metadata: Annotated[Optional[list[str]], typer.Option(
        "--metadata", metavar="KEY=VALUE", help="Metadata pair (repeatable, up to 16).")] = None,
    expires_after_days: Annotated[Optional[int], typer.Option(
        "--expires-after-days", help="Expire the store this many days after its last use.")] = None,
    model: Annotated[str, typer.Option(
        "--model", envvar="VSCLI_EMBEDDING_MODEL", help="Embedding model: the bundled default, a local "
        "sentence-transformers directory, or a model in the Hugging Face cache.")] = DEFAULT_MODEL,
    backend: Annotated[str, typer.Option(
        "--backend", envvar="VSCLI_BACKEND", autocompletion=complete.backends,
        help="Where vectors live: faiss (files in the workspace) or milvus (a collection; needs --uri).")
    ] = "faiss",
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
    allow_duplicate_name: Annotated[bool, typer.Option(
        "--allow-duplicate-name", help="Create it even if another store has this name (commands will then "
        "need its id).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a vector store and print its id. Names are unique: an existing name is refused (exit 2).

    \b
    Example: vscli create docs --chunk-size 400 --chunk-overlap 100 --metadata project=wiki
    Example: vscli create docs --backend milvus --uri ./vectors.db
    """
    from vscli.backends.milvus_connection import token_flag

    with token_flag(token):
        store = create_store(workspace(), name, chunk_size, chunk_overlap, parse_metadata(metadata),
                             expires_after_days, model, backend, uri if backend == "milvus" else None, collection,
                             unique_name=not allow_duplicate_name)
    if as_json:
        render.emit_json(store.obj())
    else:
        render.emit_line(store.id)


@app.command("ls")
def list_command(as_json: JsonOpt = False) -> None:
    """List vector stores.

    \b
    Example: vscli ls --json | jq -r '.data[].name'
    """
    objs, damaged = store_objects(workspace())
    for store_id, problem in damaged.items():
        render.message(f"warning: {problem}; `vscli doctor {store_id}` says more")
    if as_json:
        render.emit_json(render.list_page(objs))
    else:
        render.table(
            ["ID", "NAME", "STATUS", "FILES", "SIZE", "CREATED"],
            [[o["id"], o["name"], o["status"], o["file_counts"]["total"], render.human_bytes(o["usage_bytes"]),
              render.timestamp(o["created_at"])] for o in objs]
            + [[store_id, "?", "damaged", "?", "?", "?"] for store_id in damaged],
        )
    if damaged:
        raise typer.Exit(ExitCode.CORRUPT)


@app.command()
def status(
    store: StoreArg,
    wait: Annotated[bool, typer.Option("--wait", help="Block until no file is in progress.")] = False,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", metavar="SECONDS", help="With --wait: give up after this long (exit 5).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a store's status and file counts; --wait blocks until processing ends.

    Exits 0 when every file completed, 4 when any failed, 5 on timeout.

    \b
    Example: vscli status docs --wait --timeout 600
    """
    s = resolve_store(workspace(), store)
    timed_out: WaitTimeout | None = None
    if wait:
        try:
            with wait_progress() as seen:
                s.wait(timeout, seen=seen)
        except WaitTimeout as exc:
            timed_out = exc
    else:
        s.reap_orphans()
    obj = s.obj()
    _print_status(s, obj, as_json)
    if timed_out:
        raise timed_out
    if obj["file_counts"]["failed"]:
        render.message(f"{obj['file_counts']['failed']} file(s) failed; see `vscli files {store}`")
        raise typer.Exit(ExitCode.FILES_FAILED)


def _print_status(s: Store, obj: dict, as_json: bool) -> None:
    if as_json:
        render.emit_json(obj)
        return
    counts = obj["file_counts"]
    settings = s.settings()
    from vscli.chunking import resolved

    strategy = settings["chunking_strategy"]
    static = resolved(strategy)["static"]
    chunking = (f"{strategy['type']} ({static['max_chunk_size_tokens']} tokens, "
                f"{static['chunk_overlap_tokens']} overlap)")
    rows = [
        ("id", obj["id"]),
        ("name", obj["name"]),
        ("status", obj["status"]),
        ("files", f"{counts['completed']} completed, {counts['in_progress']} in progress, "
                  f"{counts['failed']} failed, {counts['cancelled']} cancelled, {counts['total']} total"),
        ("bytes", f"{obj['usage_bytes']} ({render.human_bytes(obj['usage_bytes'])})"),
        ("model", f"{settings['model']} ({settings['dimension']} dimensions)"),
        ("chunking", chunking),
        ("backend", settings["backend"]),
        ("index", settings["index"]),
        ("encoder", _encoder(settings["model"])),
        ("created", render.timestamp(obj["created_at"])),
        ("last active", render.timestamp(obj["last_active_at"])),
        ("expires", render.timestamp(obj["expires_at"]) if obj["expires_at"] else "never"),
    ]
    if obj["metadata"]:
        rows.append(("metadata", ", ".join(f"{k}={v}" for k, v in obj["metadata"].items())))
    render.pairs(rows)


def _encoder(model: str) -> str:
    from vscli.embedding import resolve_model
    from vscli.embedding.onnx_query import describe

    return describe(resolve_model(model))


@app.command()
def migrate(
    store: StoreArg,
    to: Annotated[str, typer.Option("--to", autocompletion=complete.backends,
                                    help="The backend to move to: faiss or milvus.")],
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a store's vectors to another backend (FAISS <-> Milvus) without embedding again.

    The old copy is dropped only after the store has switched; a failure leaves the store as it was.

    \b
    Example: vscli migrate docs --to milvus --uri http://milvus.internal:19530
    Example: vscli migrate docs --to faiss
    """
    from vscli.backends import new_spec
    from vscli.backends.milvus_connection import token_flag
    from vscli.cli.progress import count_progress

    s = resolve_store(workspace(), store)
    spec = new_spec(to, uri if to == "milvus" else None, collection, s.id)
    completed = s.obj()["file_counts"]["completed"]
    with token_flag(token), count_progress(completed, "migrating", "files") as advance:
        s.migrate(spec, progress=lambda event, amount: advance())
    if as_json:
        render.emit_json(s.obj())
    else:
        render.message(f"moved {s.id} ({completed} file(s)) to {s.settings()['index']}")


@app.command()
def delete(
    store: StoreArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a vector store (its chunks and index). Uploaded files stay; see `delete-file`.

    \b
    Example: vscli delete docs --yes
    """
    s = resolve_store(workspace(), store)
    name = s.config()["name"]
    if not yes and sys.stdin.isatty() and not typer.confirm(f"Delete vector store {s.id} ({name})?", err=True):
        render.message("nothing deleted")
        return
    s.delete()
    if as_json:
        render.emit_json({"id": s.id, "object": "vector_store.deleted", "deleted": True})
    else:
        render.message(f"deleted vector store {s.id} ({name})")


@app.command()
def doctor(
    store: StoreArg,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is repairable (see README).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a store's manifests against its index and files on disk; --repair fixes what it can.

    Exits 0 when the store is consistent (or was repaired), 7 when problems remain.

    \b
    Example: vscli doctor docs --repair
    """
    from vscli.doctor import check

    report = check(resolve_store(workspace(), store), repair=repair)
    if as_json:
        render.emit_json(report.as_dict())
    else:
        for finding in report.findings:
            verb = "repaired" if report.repaired else ("problem" if finding.damage else "clean-up")
            render.emit_line(f"{verb}: {finding.problem} -> {finding.repair}")
        state = "repaired" if report.repaired else ("ok" if report.healthy else "damaged")
        render.emit_line(f"{state}: {report.files_checked} file(s), {report.vectors_checked} vector(s) checked")
    if not report.healthy:
        raise typer.Exit(ExitCode.CORRUPT)
