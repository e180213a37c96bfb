"""Keep a store in step with a folder: `vscli sync DIR --store STORE`.

Files managed by sync carry their path relative to DIR in the `path` attribute. Each run compares the
folder with the store by path and content hash (sha256):

- a new path is uploaded and attached; a path whose content changed gets the new content attached, and
  the old file leaves the store once the new one is processed (so the store never lacks the file);
- a path gone from DIR whose content appears under a new path is a rename: only its `path` attribute
  changes, nothing is re-embedded;
- a path gone from DIR is removed from the store (unless ``delete`` is false);
- unchanged files cost a hash and nothing else.

Files vscli does not read at all (images, archives, ...) are skipped and listed; files it cannot read
(empty, bad encoding, ...) are counted as failed. Files in the store without a `path` attribute (added
by `upload` or `attach`) are never touched.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vscli.errors import InvalidInput, NotFound, VscliError
from vscli.extract import UnsupportedType, detect, extract
from vscli.files import FileRegistry, max_file_bytes
from vscli.store import Store
from vscli.uploads import is_hidden
from vscli.workspace import name_text


@dataclass
class LocalFile:
    rel: str
    path: Path
    sha256: str


@dataclass
class Plan:
    added: list[LocalFile] = field(default_factory=list)
    updated: list[tuple[LocalFile, list[str]]] = field(default_factory=list)  # new content, old file ids
    renamed: list[tuple[str, LocalFile, str]] = field(default_factory=list)  # (file id, new, old path)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (path, file id)
    retried: list[tuple[LocalFile, str]] = field(default_factory=list)  # same content, failed before
    unchanged: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


def scan(root: Path, globs: list[str]) -> tuple[list[LocalFile], list[dict[str, str]], list[dict[str, str]]]:
    """The folder's files (hidden ones excluded, filtered by globs), plus skipped and unreadable ones."""
    if not root.is_dir():
        raise NotFound(f"no such directory: {root}") if not root.exists() else InvalidInput(
            f"{root} is not a directory")
    limit = max_file_bytes()
    found, skipped, failed = [], [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = name_text(path.relative_to(root).as_posix())  # names that are not UTF-8: `\xNN`
        if is_hidden(Path(rel)):
            continue
        if globs and not any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in globs):
            continue
        try:
            if path.stat().st_size > limit:
                failed.append({"path": rel, "error": f"over the size limit of {limit} bytes"})
                continue
            data = path.read_bytes()
            detect(data, path.name)  # cheap: full extraction is only for new and changed files
        except UnsupportedType as exc:
            skipped.append({"path": rel, "reason": exc.message.split(";")[0]})
            continue
        except (VscliError, OSError) as exc:
            failed.append({"path": rel, "error": _reason(exc, path.name)})
            continue
        found.append(LocalFile(rel, path, hashlib.sha256(data).hexdigest()))
    return found, skipped, failed


def plan(store: Store, root: Path, globs: list[str], delete: bool = True) -> Plan:
    local, skipped, failed = scan(root, globs)
    result = Plan(skipped=skipped, failed=failed)
    by_path: dict[str, list[dict[str, Any]]] = {}
    by_hash: dict[str, str] = {}
    uploads = store.upload_facts()  # kept in the store's entries: no upload manifest read per file
    for entry in store.files(reap=True):
        if entry["id"] not in uploads:
            continue
        digest = uploads[entry["id"]]["sha256"]
        by_hash.setdefault(digest, entry["id"])
        path = entry["attributes"].get("path")
        if isinstance(path, str):
            by_path.setdefault(path, []).append({**entry, "sha256": digest})
    local_paths = {f.rel for f in local}
    unreadable = {f["path"] for f in failed}
    # Paths that vanished from DIR: their files are free to be renamed, else removed.
    vanished = {p: entries for p, entries in by_path.items() if p not in local_paths and p not in unreadable}
    vanished_by_hash = {e["sha256"]: (p, e["id"]) for p, entries in vanished.items() for e in entries}
    for f in local:
        entries = by_path.get(f.rel, [])
        same = [e for e in entries if e["sha256"] == f.sha256]
        stale = [e["id"] for e in entries if e["sha256"] != f.sha256]
        if same:
            if same[0]["status"] == "failed":
                result.retried.append((f, same[0]["id"]))
            else:
                result.unchanged.append(f.rel)
            if stale:  # an earlier update whose old file was never removed
                result.updated.append((f, stale))
        elif entries:
            result.updated.append((f, stale))
        elif f.sha256 in vanished_by_hash:
            old_path, file_id = vanished_by_hash.pop(f.sha256)
            result.renamed.append((file_id, f, old_path))
        elif f.sha256 in by_hash:
            result.unchanged.append(f.rel)  # a copy of content already in the store: no duplicate chunks
        else:
            result.added.append(f)
    result.added = [f for f in result.added if _readable(f, result.failed)]
    result.updated = [(f, stale) for f, stale in result.updated if _readable(f, result.failed)]
    if delete:
        renamed_ids = {file_id for file_id, _, _ in result.renamed}
        result.removed = [(p, e["id"]) for p, entries in vanished.items() for e in entries
                          if e["id"] not in renamed_ids]
    return result


def _reason(exc: Exception, name: str) -> str:
    """Why a file failed, without the file's name in front (the report already starts with its path)."""
    message = exc.message if isinstance(exc, VscliError) else str(exc)
    return message.removeprefix(f"{name_text(name)}: ")


def _readable(f: LocalFile, failed: list[dict[str, str]]) -> bool:
    """Extract a new or changed file now, so one vscli cannot read is reported instead of stored."""
    try:
        extract(f.path.read_bytes(), f.path.name)
        return True
    except (VscliError, OSError) as exc:
        failed.append({"path": f.rel, "error": _reason(exc, f.path.name)})
        return False


@dataclass
class Outcome:
    plan: Plan
    failed: list[dict[str, str]]
    windows_embedded: int

    def as_dict(self, dry_run: bool) -> dict[str, Any]:
        p = self.plan
        return {
            "object": "vector_store.sync",
            "dry_run": dry_run,
            "added": [f.rel for f in p.added],
            "updated": [f.rel for f, _ in p.updated],
            "renamed": [{"from": old, "to": f.rel} for _, f, old in p.renamed],
            "removed": [path for path, _ in p.removed],
            "retried": [f.rel for f, _ in p.retried],
            "unchanged": len(p.unchanged),
            "skipped": p.skipped,
            "failed": self.failed,
            "windows_embedded": self.windows_embedded,
        }


def apply(store: Store, p: Plan, progress: Callable[[str, int], None] | None = None) -> Outcome:
    """Carry out a plan: upload, attach and process what is new or changed, then rename and remove."""
    from vscli import liveness

    registry = FileRegistry(store.ws)
    me = liveness.this_process()
    todo: list[str] = []
    sources: dict[str, str] = {}  # file id -> path, for reporting failures
    unmanaged = {e["id"] for e in store.files(reap=False) if not isinstance(e["attributes"].get("path"), str)}
    for f in [*p.added, *(f for f, _ in p.updated)]:
        obj, _ = registry.add(f.path.read_bytes(), name_text(f.path.name))
        sources[obj["id"]] = f.rel
        if obj["id"] in unmanaged:
            continue  # the same bytes were added by `upload`/`attach`: in the store already, and not sync's
        todo += store.attach([obj["id"]], {"path": f.rel}, worker=me)
    for f, file_id in p.retried:
        todo += store.attach([file_id], {"path": f.rel}, worker=me)
        sources[file_id] = f.rel
    for file_id, f, _ in p.renamed:
        store.attach([file_id], {"path": f.rel})  # attributes only: the chunks stay
    embedded = 0

    def hook(event: str, amount: int) -> None:
        nonlocal embedded
        if event == "embedded":
            embedded += amount
        if progress:
            progress(event, amount)

    store.process(todo, progress=hook)
    entries = {e["id"]: e for e in store.files(reap=False)}
    failed = list(p.failed)
    for file_id, rel in sources.items():
        entry = entries.get(file_id)
        if entry is not None and entry["status"] == "failed":
            failed.append({"path": rel, "error": (entry.get("last_error") or {}).get("message", "failed")})
    # Old versions leave only once their replacement is in; removed paths leave now.
    done = {rel for file_id, rel in sources.items() if entries.get(file_id, {}).get("status") == "completed"}
    old = [file_id for f, stale in p.updated if f.rel in done for file_id in stale]
    gone = [file_id for _, file_id in p.removed]
    if old or gone:
        store.remove(list(dict.fromkeys(old + gone)))
    return Outcome(p, failed, embedded)
