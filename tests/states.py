"""A store's committed state as tests look at it and damage it: straight from its catalog with sqlite3
(not through vscli), or written as vscli 0.1 kept it (files.json, no catalog)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

CATALOG = "catalog.sqlite"


def read_state(store_dir: Path) -> dict[str, Any]:
    """``{"files": {id: entry}, "next_serial", "generation", "segments", "index"}`` as committed."""
    conn = sqlite3.connect(store_dir / CATALOG)
    try:
        meta = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")
                if key != "version"}
        files = {file_id: json.loads(entry)
                 for file_id, entry in conn.execute("SELECT id, entry FROM files ORDER BY position")}
    finally:
        conn.close()
    return {**meta, "files": files}


def write_old_format(store_dir: Path, state: dict[str, Any]) -> None:
    """Make the store one of vscli 0.1: its state in a pretty-printed files.json, and no catalog."""
    (store_dir / "files.json").write_text(json.dumps(state, indent=2))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_dir / CATALOG}{suffix}").unlink(missing_ok=True)


def set_entry_text(store_dir: Path, file_id: str, text: str) -> None:
    """Replace one file's entry in the catalog by raw text, as damage would."""
    _execute(store_dir, "UPDATE files SET entry = ? WHERE id = ?", (text, file_id))


def set_meta_text(store_dir: Path, key: str, text: str) -> None:
    _execute(store_dir, "UPDATE meta SET value = ? WHERE key = ?", (text, key))


def _execute(store_dir: Path, sql: str, params: tuple[Any, ...]) -> None:
    conn = sqlite3.connect(store_dir / CATALOG)
    try:
        assert conn.execute(sql, params).rowcount == 1
        conn.commit()
    finally:
        conn.close()


def make_schema_1(store_dir: Path) -> None:
    """Make the catalog one of vscli 0.2 (schema 1): no totals kept by triggers, no index by created_at."""
    conn = sqlite3.connect(store_dir / CATALOG)
    try:
        conn.executescript("DROP TRIGGER files_added; DROP TRIGGER files_removed; DROP TRIGGER files_changed; "
                           "DROP TABLE totals; DROP INDEX files_created; PRAGMA user_version = 1;")
    finally:
        conn.close()


def schema_of(store_dir: Path) -> int:
    conn = sqlite3.connect(store_dir / CATALOG)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


CHUNKS = "chunks.sqlite"


def read_chunks(store_dir: Path) -> dict[int, dict[str, Any]]:
    """Serial -> ``{"file_id", "chunks": [...]}`` as the chunk texts hold them, read with sqlite3."""
    conn = sqlite3.connect(store_dir / CHUNKS)
    try:
        docs = {serial: {"file_id": file_id, "chunks": []}
                for serial, file_id in conn.execute("SELECT serial, file_id FROM owners")}
        for serial, text, start, end, tokens, pages in conn.execute(
                "SELECT serial, text, start_char, end_char, tokens, pages FROM chunks ORDER BY serial, position"):
            docs[serial]["chunks"].append({"text": text, "start": start, "end": end, "tokens": tokens,
                                           **({"pages": json.loads(pages)} if pages else {})})
    finally:
        conn.close()
    return docs


def delete_chunks(store_dir: Path, serial: int) -> None:
    """Lose one file's chunks from the chunk texts, as damage would."""
    conn = sqlite3.connect(store_dir / CHUNKS)
    try:
        conn.execute("DELETE FROM chunks WHERE serial = ?", (serial,))
        conn.execute("DELETE FROM owners WHERE serial = ?", (serial,))
        conn.commit()
    finally:
        conn.close()


def write_chunk_manifests(store_dir: Path) -> dict[int, dict[str, Any]]:
    """Make the store's chunks as vscli 0.3 kept them: ``chunks/<serial>.json``, no chunks.sqlite."""
    docs = read_chunks(store_dir)
    (store_dir / "chunks").mkdir(exist_ok=True)
    for serial, doc in docs.items():
        (store_dir / "chunks" / f"{serial}.json").write_text(json.dumps(doc, indent=2))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_dir / CHUNKS}{suffix}").unlink(missing_ok=True)
    return docs
