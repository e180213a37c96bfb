"""Commands over files: upload, attach, files, rm, cat, uploads, delete-file (and the hidden worker)."""


import stat
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscli import liveness, worker
from vscli.cli import complete, render
from vscli.cli.app import app, workspace
from vscli.cli.options import parse_attributes
from vscli.cli.progress import ingest_progress
from vscli.cli.stores import JsonOpt, StoreArg
from vscli.errors import FilesFailed, InvalidInput, NotFound
from vscli.extract import extract_text
from vscli.files import FileRegistry, public
from vscli.store import Store, check_environment, resolve_store
from vscli.uploads import Spooled, files_in, spool
from vscli.workspace import Workspace, check_text, name_text, os_error

AttrOpt = Annotated[Optional[list[str]], typer.Option(
    "--attr", metavar="KEY=VALUE", help="File attribute (repeatable): string, number or true/false.")]
NoWaitOpt = Annotated[bool, typer.Option(
    "--no-wait", help="Return at once; a background process does the work (see `vscli status`).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output on stderr.")]


def _read_inputs(ws: Workspace, paths: list[str], recursive: bool, filename: Optional[str],
                 encoding: Optional[str] = None) -> list[Spooled]:
    """Read and check every input before anything is stored: all are good, or nothing changes.

    Each input is spooled once, within the size limit (`vscli.uploads.spool`: `/dev/zero` or an endless
    pipe is refused, not read until memory runs out), and its text checked: what is stored is what was
    checked, even if the file changes meanwhile. The caller deletes the spools (`discard`)."""
    sources: list[tuple[str, Optional[Path], Optional[str]]] = []
    for raw in paths:
        if raw == "-":
            sources.append((filename or "stdin.txt", None, None))
            continue
        path = Path(raw)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise NotFound(f"no such file or directory: {name_text(raw)}") from None
        except OSError as exc:
            raise os_error("read", path, exc) from exc
        if stat.S_ISDIR(mode):
            if not recursive:
                raise InvalidInput(f"{name_text(raw)} is a directory (use --recursive to upload the files in it)")
            found = files_in(path)
            if not found:
                raise InvalidInput(f"{name_text(raw)} holds no files to upload")
            sources.extend((name_text(p.name), p, name_text(p.relative_to(path).as_posix())) for p in found)
        elif not stat.S_ISREG(mode):  # opening a FIFO without a writer would hang; a device never ends
            raise InvalidInput(f"{name_text(raw)} is not a regular file (a device, FIFO or socket); "
                               "to upload what it produces, pipe it to `vscli upload -`")
        else:
            sources.append((filename or name_text(path.name), path, None))
    if filename and len(sources) > 1:
        raise InvalidInput("--filename names a single upload; got several files")
    inputs: list[Spooled] = []
    try:
        for name, source, relative in sources:
            shown = name_text(str(source)) if source else name
            if source is None:
                inputs.append(spool(ws, sys.stdin.buffer, shown))
            else:
                try:
                    with source.open("rb") as handle:
                        inputs.append(spool(ws, handle, shown, where=source))
                except OSError as exc:
                    raise os_error("read", source, exc) from exc
            inputs[-1].name, inputs[-1].relative = name, relative
            extract_text(inputs[-1].read(), shown, encoding)
    except BaseException:
        discard(inputs)
        raise
    return inputs


def discard(inputs: list[Spooled]) -> None:
    for item in inputs:
        item.discard()


def _process(store: Store, todo: list[str], no_wait: bool, quiet: bool) -> None:
    if not todo:
        return
    if no_wait:
        worker.spawn(store, todo)
        if not quiet:
            render.message(f"processing {len(todo)} file(s) in the background; "
                           f"`vscli status {store.id} --wait` waits for them")
        return
    with ingest_progress(len(todo), quiet) as hook:
        store.process(todo, progress=hook)


def _settle(store: Store, file_ids: list[str], no_wait: bool) -> None:
    """Wait for files that another process is processing (e.g. a parallel upload of the same file)."""
    if not no_wait:
        store.wait_for(file_ids)


def _report(store: Store, file_ids: list[str], quiet: bool) -> list[dict]:
    """The store's entries for these files; failures are reported and make the command fail."""
    entries = store.entries(file_ids)
    failed = [e for e in entries if e["status"] == "failed"]
    registry = FileRegistry(store.ws)
    for e in failed:
        render.message(f"failed: {e['id']} ({registry.get(e['id'])['filename']}): {e['last_error']['message']}")
    done = sum(e["status"] == "completed" for e in entries)
    if not quiet and not failed:
        render.message(f"{done} file(s) completed in {store.config()['name']} ({store.id})")
    return entries


def _fail_if_any(entries: list[dict]) -> None:
    failed = [e for e in entries if e["status"] == "failed"]
    if failed:
        raise FilesFailed(f"{len(failed)} of {len(entries)} file(s) failed to process")


@app.command()
def upload(
    paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="Files, directories (with "
                                               "--recursive), or - for standard input.")],
    store: Annotated[Optional[str], typer.Option(
        "--store", "-s", metavar="STORE", help="Also attach the files to this store and process them.")] = None,
    attr: AttrOpt = None,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Upload the files in directories; with --store each records its path in "
        "the directory (the path attribute, as sync does).")] = False,
    filename: Annotated[Optional[str], typer.Option(
        "--filename", help="Name for a single upload (default for -: stdin.txt).")] = None,
    encoding: Annotated[Optional[str], typer.Option(
        "--encoding", help="Read text files in this encoding (e.g. latin-1) instead of UTF-8/UTF-16.")] = None,
    no_wait: NoWaitOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Upload files and print their ids, one per line, in input order.

    With --store the files are also attached and processed before the command returns (exit 4 if any
    file failed). Identical content already in the store is not uploaded again.

    \b
    Example: vscli upload dataset/*.md --store docs --attr team=research
    """
    ws = workspace()
    attributes = parse_attributes(attr)
    if filename is not None:
        check_text(filename, "--filename")
    target = resolve_store(ws, store) if store else None
    if target is not None:
        target.check_queryable()
        check_environment()
        target.backend().check()  # an unreachable Milvus fails the command before anything is uploaded
    if encoding:
        import codecs

        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise InvalidInput(f"unknown encoding {encoding!r}") from None
    inputs = _read_inputs(ws, paths, recursive, filename, encoding)
    registry = FileRegistry(ws)
    ids: list[str] = []
    reused = 0
    try:
        in_store = target.holding(item.digest for item in inputs) if target else {}
        for item in inputs:
            existing = in_store.get(item.digest)
            if existing:
                ids.append(existing)
                reused += 1
                continue
            obj, new = registry.add_path(item.path, item.name, digest=item.digest, encoding=encoding)
            ids.append(obj["id"])
            reused += not new
    finally:
        discard(inputs)
    if reused and not quiet:
        render.message(f"{reused} of {len(inputs)} file(s) already uploaded (the same content): "
                       "their existing ids are printed")
    todo: list[str] = []
    if target is not None:
        # The content check above spares an upload; this one, under the store's lock, is the one that
        # holds when two processes upload the same bytes at once.
        # Files found in a directory carry their path in it, as `sync` records it (an explicit --attr
        # path=... wins): results then tell apart the README.md of every folder.
        paths_of = [{"path": item.relative} if item.relative else {} for item in inputs]
        ids, todo = target.attach_content(ids, attributes, worker=None if no_wait else liveness.this_process(),
                                          own_attributes=paths_of)
    if not as_json:
        for file_id in ids:
            render.emit_line(file_id)
    if target is None:
        if as_json:
            render.emit_json(render.list_page([public(registry.get(i)) for i in ids]))
        return
    _process(target, todo, no_wait, quiet)
    _settle(target, ids, no_wait)
    entries = target.entries(ids) if no_wait else _report(target, ids, quiet)
    if as_json:
        render.emit_json(render.list_page(entries))
    _fail_if_any(entries)


@app.command()
def attach(
    store: StoreArg,
    file_ids: Annotated[list[str], typer.Argument(
        metavar="FILE_ID...", help="Uploaded file ids.", autocompletion=complete.uploads)],
    attr: AttrOpt = None,
    no_wait: NoWaitOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Attach uploaded files to a store and process them (extract, chunk, embed, index).

    \b
    Example: vscli attach docs file-abc123 --attr author=Jane --no-wait
    """
    target = resolve_store(workspace(), store)
    target.check_queryable()
    me = None if no_wait else liveness.this_process()
    todo = target.attach(file_ids, parse_attributes(attr), worker=me)
    _process(target, todo, no_wait, quiet)
    _settle(target, file_ids, no_wait)
    entries = target.entries(file_ids) if no_wait else _report(target, file_ids, quiet)
    if as_json:
        render.emit_json(render.list_page(entries))
    _fail_if_any(entries)


@app.command("_work", hidden=True)
def work(store: str, file_ids: list[str]) -> None:
    """Process attached files in the background (started by --no-wait)."""
    worker.run(Store(workspace(), store), file_ids)


@app.command()
def files(
    store: StoreArg,
    as_json: JsonOpt = False,
) -> None:
    """List the files of a store with their processing status.

    \b
    Example: vscli files docs --json | jq -r '.data[] | select(.status=="failed") | .id'
    """
    s = resolve_store(workspace(), store)
    if as_json:
        render.emit_list_page(s.iter_files())  # streamed: a store of any size, one page in memory
        return
    entries = s.files()
    uploads = s.upload_facts()  # kept in the store's entries: no upload manifest read per file
    rows = []
    for e in entries:
        name = uploads[e["id"]]["filename"] if e["id"] in uploads else "(deleted)"
        error = e["last_error"]["message"] if e.get("last_error") else ""
        rows.append([e["id"], name, e["status"], render.human_bytes(e["usage_bytes"]),
                     render.timestamp(e["created_at"]), error])
    columns = ["FILE ID", "FILENAME", "STATUS", "SIZE", "ATTACHED", "LAST ERROR"]
    if not any(row[-1] for row in rows):  # no file failed: no empty column
        columns, rows = columns[:-1], [row[:-1] for row in rows]
    render.table(columns, rows)


@app.command()
def rm(
    store: StoreArg,
    file_ids: Annotated[list[str], typer.Argument(metavar="FILE_ID...", help="Files to remove.",
                                                              autocompletion=complete.store_files)],
    as_json: JsonOpt = False,
) -> None:
    """Remove files from a store: their chunks never come back in a query. The upload stays.

    \b
    Example: vscli rm docs file-abc123
    """
    s = resolve_store(workspace(), store)
    removed = s.remove(file_ids)
    if as_json:
        render.emit_json(render.list_page([{"id": f, "object": "vector_store.file.deleted", "deleted": True}
                                for f in removed]))
    else:
        render.message(f"removed {len(removed)} file(s) from {s.config()['name']} ({s.id})")


@app.command()
def cat(
    file_id: Annotated[str, typer.Argument(
        metavar="FILE_ID", help="An uploaded file id.", autocompletion=complete.uploads)],
    text: Annotated[bool, typer.Option("--text", help="Print the extracted text (chunk offsets refer to it).")]
    = False,
) -> None:
    """Write an uploaded file's bytes to stdout, unchanged (--text: the text vscli extracted from it).

    \b
    Example: vscli cat file-abc123 > copy.md
    """
    registry = FileRegistry(workspace())
    data = registry.read(file_id)
    if text:
        from vscli.extract import extract_text

        obj = registry.get(file_id)
        render.emit_line(extract_text(data, obj["filename"], obj.get("encoding")))
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@app.command()
def uploads(as_json: JsonOpt = False) -> None:
    """List uploaded files in the workspace (attached to a store or not).

    \b
    Example: vscli uploads
    """
    objs = [public(f) for f in FileRegistry(workspace()).list()]
    if as_json:
        render.emit_json(render.list_page(objs))
        return
    render.table(["FILE ID", "FILENAME", "SIZE", "CREATED"],
                 [[o["id"], o["filename"], render.human_bytes(o["bytes"]), render.timestamp(o["created_at"])]
                  for o in objs])


@app.command("delete-file")
def delete_file(
    file_ids: Annotated[list[str], typer.Argument(
        metavar="FILE_ID...", help="Uploaded file ids.", autocompletion=complete.uploads)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete uploaded files entirely: removed from every store, then their bytes are deleted.

    On a terminal it names the stores the files leave and asks first (--yes skips the question).

    \b
    Example: vscli delete-file file-abc123 --yes
    """
    from vscli.store import delete_uploads, stores_holding

    ws = workspace()
    if not yes and sys.stdin.isatty():
        registry = FileRegistry(ws)
        names = ", ".join(registry.get(f)["filename"] for f in dict.fromkeys(file_ids))  # unknown ids fail here
        holding = stores_holding(ws, file_ids)
        where = (f"; this removes it from {len(holding)} store(s): "
                 + ", ".join(f"{s.config()['name']} ({s.id})" for s in holding)) if holding else ""
        if not typer.confirm(f"Delete {len(set(file_ids))} uploaded file(s) ({names}){where}?", err=True):
            render.message("nothing deleted")
            return
    deleted_ids = delete_uploads(ws, file_ids)
    if as_json:
        deleted = [{"id": f, "object": "file", "deleted": True} for f in deleted_ids]
        render.emit_json(render.list_page(deleted))
    else:
        render.message(f"deleted {len(deleted_ids)} file(s)")


@app.command()
def sync(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The folder to mirror into the store.")],
    store: Annotated[str, typer.Option("--store", "-s", metavar="STORE", help="The store to keep in step.")],
    glob: Annotated[Optional[list[str]], typer.Option(
        "--glob", metavar="PATTERN", help="Only files matching (repeatable), e.g. '*.md' or 'docs/**'.")] = None,
    delete: Annotated[bool, typer.Option(
        "--delete/--no-delete", help="Remove files deleted from DIR from the store (default: yes).")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Keep a store in step with a folder: add new files, re-process changed ones, remove deleted ones.

    Unchanged and renamed files are not embedded again. Each file's path relative to DIR is kept in its
    `path` attribute. Exits 4 if any file failed (a --dry-run shows failures and exits 0). Safe to run
    repeatedly (cron, CI).

    \b
    Example: vscli sync ./docs --store docs --glob '*.md' --glob '*.pdf'
    """
    from vscli import sync as syncing

    target = resolve_store(workspace(), store)
    target.check_queryable()
    check_environment()
    plan = syncing.plan(target, directory, glob or [], delete)
    if dry_run:
        outcome = syncing.Outcome(plan, plan.failed, 0)
    else:
        todo = len(plan.added) + len(plan.updated) + len(plan.retried)
        with ingest_progress(todo, quiet) as hook:
            outcome = syncing.apply(target, plan, progress=hook)
    summary = outcome.as_dict(dry_run)
    if as_json:
        render.emit_json(summary)
    else:
        prefix = "dry run, nothing changed: would have " if dry_run else ""
        for key, label in (("added", "add"), ("updated", "update"), ("removed", "remove"), ("retried", "retry")):
            for path in summary[key]:
                render.emit_line(f"{label}\t{path}")
        for move in summary["renamed"]:
            render.emit_line(f"rename\t{move['from']} -> {move['to']}")
        for item in summary["skipped"]:
            render.message(f"skipped {item['path']}: {item['reason']}")
        for item in summary["failed"]:
            render.message(f"failed: {item['path']}: {item['error']}")
        counts = {k: len(summary[k]) for k in ("added", "updated", "renamed", "removed")}
        render.emit_line(f"{prefix}added {counts['added']}, updated {counts['updated']}, renamed {counts['renamed']}, "
                         f"removed {counts['removed']}, unchanged {summary['unchanged']}, "
                         f"failed {len(summary['failed'])}")
    if summary["failed"] and not dry_run:  # a dry run's plan is its output, failures included
        raise FilesFailed(f"{len(summary['failed'])} file(s) failed to sync")
