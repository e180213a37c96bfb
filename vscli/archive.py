"""Store archives: `vscli export` and `vscli import` move a store between machines without re-embedding.

An archive is a gzipped tar:

    vscli-archive.json        format, versions, the store's id, name, model and dimension
    store/store.json          the `vector_store` object and vscli's settings
    store/files.json          the `vector_store.file` entries and the index segments
    store/chunks/<n>.json     the chunk texts of each processed file (moved into chunks.sqlite on import)
    store/index-<n>.faiss     the vectors, one file per segment
    store/keyword/...         the keyword (BM25) index, tantivy's files
    files/<file-id>/file.json and files/<file-id>/content
                              every upload the store names, byte for byte

The keyword index travels as it is, so BM25 scores come out identical (its statistics still count
chunks removed since its segments were last merged); if this machine's tantivy cannot open it, import
rebuilds it from the chunk texts (seconds, no model). Import reads members one by one into a staging
directory (no path from the archive is ever used as a path), checks every member's size before reading
it (the manifests it parses are bounded; nothing is unpacked past the free space), the shape of every
manifest, every upload's sha256 and the index's dimension, and then renames the store into place; on
any failure the workspace is left as it was. An import or export killed midway leaves its staging
folder or temporary file; the next one removes what dead processes left.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable

from vscli import __version__
from vscli.errors import CorruptData, InvalidInput, NotFound, VscliError
from vscli.files import FileRegistry, file_sha256
from vscli.folder import StoreFolder
from vscli.manifests import check_config, check_file_object, check_state
from vscli.store import Store, check_store_name, list_stores, validate_metadata
from vscli.workspace import (
    Workspace,
    atomic_write_bytes,
    is_store_id,
    locked,
    new_id,
    os_error,
    read_json,
    shown,
    sweep_temporaries,
    write_json,
)

FORMAT = "vscli-store-archive"
FORMAT_VERSION = 1
MANIFEST = "vscli-archive.json"
_MEMBER = re.compile(r"^(?:store/(?:store\.json|files\.json|chunks/\d+\.json|index-\d+\.faiss"
                     r"|keyword/(?!\.tantivy-)[A-Za-z0-9][A-Za-z0-9._-]*|keyword/\.managed\.json)"
                     r"|files/(file-[A-Za-z0-9]+)/(?:file\.json|content))$")
Progress = Callable[[int], None]  # called once per member copied, with the archive's number of members
SMALL_MEMBER = 1 << 20  # the archive's manifest, store.json, an upload's file.json: a few hundred bytes
MAX_FILES_JSON = 1 << 30  # files.json is parsed whole: a million files is ~700 MB
OWNER = ".owner"  # in a staging folder: the importing process, so a later import can tell it is dead
ADOPTED = ".adopted"  # in a staging folder: the uploads that import added, one id a line


def export_store(store: Store, dest: Path | BinaryIO, progress: Progress | None = None) -> dict[str, Any]:
    """Write the store and its uploads to ``dest``, a path (written atomically) or a binary stream such
    as stdout; returns the archive's manifest."""
    registry = FileRegistry(store.ws)
    with locked(store.folder.lock):  # a commit cannot replace or delete what we are copying
        config = store.config()
        state = store.folder.state()
        busy = [e["id"] for e in state["files"].with_status("in_progress")]
        if busy:
            raise InvalidInput(f"{len(busy)} file(s) of {store.id} are still being processed; wait with "
                               f"`vscli status {store.id} --wait` and export again")
        if config["vscli"].get("backend", {"kind": "faiss"})["kind"] != "faiss":
            raise InvalidInput(f"store {store.id} keeps its vectors in Milvus; archives carry FAISS stores: "
                               f"`vscli migrate {store.id} --to faiss` first (Milvus has its own backups)")
        members: list[tuple[str, Path]] = [("store/store.json", store.dir / "store.json")]
        members += [(f"store/index-{s['n']}.faiss", store.folder.index_file(s["n"]))
                    for s in store.folder.segments(state)]
        keyword = store.folder.raw_keyword_index().path
        if keyword.is_dir():  # its writes, like ours, happen under the store's lock
            members += [(f"store/keyword/{p.name}", p) for p in sorted(keyword.iterdir())
                        if p.is_file() and not p.name.startswith(".tantivy-")]
        chunk_members: list[tuple[str, int]] = []  # written from the chunk texts, as chunk manifests
        for file_id, entry in state["files"].items():
            serial = entry["vscli"].get("serial")
            if entry["status"] == "completed" and serial is not None:
                chunk_members.append((f"store/chunks/{serial}.json", serial))
            try:
                registry.get(file_id)
            except NotFound:
                raise CorruptData(f"the upload of {file_id} is missing from the workspace; "
                                  f"`vscli doctor {store.id} --repair` first") from None
            members += [(f"files/{file_id}/file.json", store.ws.file_dir(file_id) / "file.json"),
                        (f"files/{file_id}/content", store.ws.file_dir(file_id) / "content")]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vscli_version": __version__,
            "exported_at": int(time.time()),
            "vector_store": {"id": store.id, "name": config["name"], "model": config["vscli"]["model"],
                             "dimension": config["vscli"]["dimension"]},
            "files": len(state["files"]),
            "members": len(members) + len(chunk_members) + 2,
        }
        # The state goes as files.json, as vscli 0.1 kept it: an archive is read by any vscli.
        files_json = json.dumps({**state, "files": dict(state["files"].items())}, ensure_ascii=False,
                                separators=(",", ":")).encode()

        def write(tar: tarfile.TarFile) -> None:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            _add_bytes(tar, "store/files.json", files_json)
            if progress:
                progress(manifest["members"])
                progress(manifest["members"])
            for name, path in members:
                tar.add(path, arcname=name, recursive=False)
                if progress:
                    progress(manifest["members"])
            for name, serial in chunk_members:
                _add_bytes(tar, name, json.dumps(store.folder.chunk_manifest(serial), ensure_ascii=False,
                                                 separators=(",", ":")).encode())
                if progress:
                    progress(manifest["members"])

        if not isinstance(dest, Path):
            with tarfile.open(fileobj=dest, mode="w|gz") as tar:
                write(tar)
            return manifest
        sweep_temporaries(dest)  # what an export to the same place, killed midway, left behind
        try:
            atomic_write_bytes(dest, lambda tmp: _write_tar(tmp, write))
        except OSError as exc:
            raise os_error("write", dest, exc) from exc
    return manifest


def _write_tar(path: Path, write: Callable[[tarfile.TarFile], None]) -> None:
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        write(tar)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def import_store(ws: Workspace, source: Path | BinaryIO, name: str | None = None, new_store_id: bool = False,
                 progress: Progress | None = None) -> Store:
    """Install the store in ``source`` (an archive from `export_store`: a path, or a stream such as
    stdin) into ``ws``."""
    if isinstance(source, Path) and source.is_dir():
        raise InvalidInput(f"{source} is a directory, not a store archive")
    try:
        tar = tarfile.open(source, "r:*") if isinstance(source, Path) else tarfile.open(fileobj=source, mode="r|*")
    except FileNotFoundError:
        raise NotFound(f"no such file: {source}") from None
    except tarfile.TarError:
        raise InvalidInput(f"{source} is not a vscli store archive (not a readable tar archive)") from None
    except OSError as exc:
        raise os_error("read", source if isinstance(source, Path) else Path("the archive stream"), exc) from exc
    ws.ensure()
    sweep_imports(ws)
    staging, uploads = _staging(ws.stores_dir), _staging(ws.files_dir)
    adopted: list[str] = []
    label = str(source) if isinstance(source, Path) else "the archive on standard input"
    try:
        with tar:
            try:
                _unpack(tar, label, staging, uploads, progress)
            except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, ValueError) as exc:
                raise CorruptData(f"{label} is damaged or truncated ({exc})") from None
        store = _install(ws, staging, uploads, name, new_store_id, adopted)
    except BaseException:
        registry = FileRegistry(ws)
        for file_id in adopted:  # uploads this import added: take them back out
            try:
                registry.delete(file_id)
            except VscliError:
                pass
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(uploads, ignore_errors=True)
    _ensure_keyword_index(store)
    return store


def _staging(parent: Path) -> Path:
    """A staging folder that names the process filling it."""
    from vscli import liveness

    folder = Path(tempfile.mkdtemp(prefix=".import-", dir=parent))
    write_json(folder / OWNER, liveness.this_process())
    return folder


def sweep_imports(ws: Workspace) -> list[str]:
    """Remove the staging folders of imports whose process died (kill -9), and the uploads such an
    import had added for a store it never installed; returns the folders removed."""
    from vscli import liveness

    swept = []
    folders = [p for parent in (ws.stores_dir, ws.files_dir) if parent.is_dir()
               for p in parent.glob(".import-*") if p.is_dir()]
    for folder in folders:
        try:
            owner = read_json(folder / OWNER)
        except (VscliError, OSError):
            owner = None  # unreadable, or an import that finished: its folder is on its way out
        if isinstance(owner, dict) and liveness.is_alive(owner):
            continue
        if owner is None and time.time() - folder.stat().st_mtime < 3600:
            continue  # no owner yet (just made) or already cleaned: leave it to its process
        try:
            orphans = (folder / ADOPTED).read_text().split()
        except OSError:
            orphans = []
        if orphans:
            _forget_uploads(ws, orphans)
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(folder.name)
    return swept


def _forget_uploads(ws: Workspace, file_ids: list[str]) -> None:
    """Delete uploads a dead import added, unless a store has taken them up since."""
    used: set[str] = set()
    for store in list_stores(ws):
        try:
            used.update(entry["id"] for entry in store.files(reap=False))
        except VscliError:
            return  # a store we cannot read might use them: keep them
    registry = FileRegistry(ws)
    for file_id in file_ids:
        if file_id not in used:
            try:
                registry.delete(file_id)
            except VscliError:
                pass


def _ensure_keyword_index(store: Store) -> None:
    """Keep the archive's keyword index when it opens here; else rebuild it from the chunk texts."""
    try:
        keyword = store.folder.raw_keyword_index()
        if keyword.exists() and keyword.size >= 0:
            return
    except (VscliError, ValueError, OSError):
        pass
    try:
        with locked(store.folder.lock):
            store.folder.rebuild_keyword_index(store.folder.state())
    except VscliError:
        pass  # the store is complete without it: the first keyword query (or doctor --repair) builds it


def _unpack(tar: tarfile.TarFile, source: Any, staging: Path, uploads: Path,
            progress: Progress | None) -> None:
    """Copy every member into the staging directories, checking its name; the manifest must be there."""
    manifest: dict[str, Any] | None = None
    for member in tar:
        _check_size(member, source, staging)
        if member.name == MANIFEST:
            with _member(tar, member, source) as stream:
                manifest = json.loads(stream.read(SMALL_MEMBER + 1))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise InvalidInput(f"{source} is not a vscli store archive")
            if not isinstance(manifest.get("format_version", 0), int) or not isinstance(
                    manifest.get("members", 0), int):
                raise CorruptData(f"{source}: its manifest {MANIFEST} is damaged")
            if manifest.get("format_version", 0) > FORMAT_VERSION:
                raise InvalidInput(f"{source} was written by a newer vscli ({manifest.get('vscli_version')}); "
                                   f"upgrade vscli to import it")
            if progress:
                progress(int(manifest.get("members", 0)))
            continue
        match = _MEMBER.match(member.name)
        if not match or not member.isfile():
            raise CorruptData(f"{source}: unexpected archive member {member.name!r}")
        if match.group(1):  # an upload
            target = uploads / match.group(1) / member.name.rsplit("/", 1)[1]
        else:
            target = staging / member.name.split("/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        with _member(tar, member, source) as stream, target.open("wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        if progress and manifest is not None:
            progress(int(manifest.get("members", 0)))
    if manifest is None:
        raise InvalidInput(f"{source} is not a vscli store archive (no {MANIFEST})")


def _check_size(member: tarfile.TarInfo, source: Any, staging: Path) -> None:
    """Refuse a member before reading it: one that is parsed whole must be small, and none may unpack
    past the free space (a small archive can hold gigabytes of zeros)."""
    name = member.name
    small = name in (MANIFEST, "store/store.json", "store/keyword/.managed.json") or name.endswith("/file.json")
    bound = SMALL_MEMBER if small else MAX_FILES_JSON if name == "store/files.json" else None
    if bound is not None and member.size > bound:
        raise CorruptData(f"{source}: {name} unpacks to {member.size} bytes, more than such a file can hold "
                          f"({bound})")
    free = shutil.disk_usage(staging).free
    if member.size > free:
        raise InvalidInput(f"{source}: {name} unpacks to {member.size} bytes; only {free} are free in the "
                           "workspace")


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, source: Any) -> IO[bytes]:
    stream = tar.extractfile(member)
    if stream is None:
        raise CorruptData(f"{source}: cannot read {member.name}")
    return stream


def _install(ws: Workspace, staging: Path, uploads: Path, name: str | None, new_store_id: bool,
             adopted: list[str]) -> Store:
    try:
        config = read_json(staging / "store.json")
        state = check_state(read_json(staging / "files.json"), "store/files.json in the archive")
    except FileNotFoundError as exc:
        raise CorruptData(f"the archive lacks store/{Path(exc.filename).name}") from None
    if not isinstance(config, dict) or (not new_store_id and not is_store_id(config.get("id"))):
        raise CorruptData(f"the archive's store id {shown(config.get('id') if isinstance(config, dict) else config)} "
                          "is not a vscli store id")
    check_config({**config, "id": new_id("vs_")}, "store/store.json in the archive")
    store_id = new_id("vs_") if new_store_id else config["id"]
    if ws.store_dir(store_id).exists():
        raise InvalidInput(f"vector store {store_id} ({config['name']}) already exists in this workspace; "
                           f"import with --new-id to add it as another store")
    config["id"] = store_id
    if name is not None:
        check_store_name(name)
        config["name"] = name
    validate_metadata(config.get("metadata") or {})
    for segment in StoreFolder.segments(state):
        from vscli import index as vindex

        path = staging / f"index-{segment['n']}.faiss"
        if not path.exists():
            raise CorruptData(f"the archive lacks the store's index (index-{segment['n']}.faiss)")
        vindex.open_index(path, config["vscli"]["dimension"])  # readable, and of the store's dimension
    for entry in state["files"].values():
        entry["vector_store_id"] = store_id
        serial = entry["vscli"].get("serial")
        if entry["status"] == "completed" and not (staging / "chunks" / f"{serial}.json").exists():
            raise CorruptData(f"the archive lacks the chunks of {entry['id']}")
    registry = FileRegistry(ws)
    for file_id in state["files"]:
        folder = uploads / file_id
        try:
            obj = check_file_object(read_json(folder / "file.json"), f"files/{file_id}/file.json in the archive")
        except FileNotFoundError:
            raise CorruptData(f"the archive lacks the upload of {file_id}") from None
        content = folder / "content"
        if obj.get("id") != file_id or not content.is_file() or file_sha256(content) != obj.get("sha256"):
            raise CorruptData(f"the archive's upload of {file_id} does not match its checksum")
        if registry.adopt(obj, content):
            adopted.append(file_id)
            with (staging / ADOPTED).open("a") as journal:  # for the sweep, should this process die
                journal.write(file_id + "\n")
    (staging / ADOPTED).unlink(missing_ok=True)
    (staging / OWNER).unlink(missing_ok=True)
    write_json(staging / "store.json", config)
    folder = StoreFolder(staging, ws.lock_path(store_id), store_id)
    folder.write_state(state)  # the catalog, from files.json
    folder.adopt_chunk_files(state)  # the chunk texts, from the chunk manifests
    with locked(ws.lock_path("stores")):
        if ws.store_dir(store_id).exists():
            raise InvalidInput(f"vector store {store_id} already exists in this workspace")
        try:
            os.replace(staging, ws.store_dir(store_id))
        except OSError as exc:
            raise os_error("create the store in", ws.stores_dir, exc) from exc
    return Store(ws, store_id)
