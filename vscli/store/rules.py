"""The rules a store's inputs are checked by, in one place: metadata, attributes, names, and the numeric
settings processing reads. The library raises `InvalidInput` naming the field; each front end words it."""

from __future__ import annotations

from typing import Any

from vscli.errors import InvalidInput
from vscli.workspace import check_text, env_positive_int, is_file_id, is_store_id, shown

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 512
MAX_RESULTS = 50
BATCH_CHUNKS_ENV = "VSCLI_BATCH_CHUNKS"
BATCH_CHUNKS = 256  # files are embedded and committed in groups of about this many chunks


def validate_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidInput(f"at most {MAX_METADATA_PAIRS} metadata pairs are allowed, got {len(metadata)}")
    for key, value in metadata.items():
        check_text(key, "a metadata key")
        check_text(str(value), f"metadata value for {key!r}")
        if not key:
            raise InvalidInput("metadata keys must not be empty")
        if len(key) > MAX_METADATA_KEY:
            raise InvalidInput(f"metadata key {key[:20]!r}... is longer than {MAX_METADATA_KEY} characters")
        if len(str(value)) > MAX_METADATA_VALUE:
            raise InvalidInput(f"metadata value for {key!r} is longer than {MAX_METADATA_VALUE} characters")


def validate_attributes(attributes: dict[str, Any]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes are allowed, got {len(attributes)}")
    for key, value in attributes.items():
        check_text(key, "an attribute key")
        if isinstance(value, str):
            check_text(value, f"attribute {key!r}")
        if not key or len(key) > MAX_ATTRIBUTE_KEY:
            raise InvalidInput(f"attribute keys must be 1 to {MAX_ATTRIBUTE_KEY} characters, got {key!r}")
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(f"attribute {key!r} is longer than {MAX_ATTRIBUTE_VALUE} characters")


def check_store_name(name: str) -> None:
    """A store name is not empty and does not look like an id: commands take either, and a store named
    like another's id would be the one a retried `delete` of that id finds once the id is gone."""
    check_text(name, "the store name")
    if not name.strip():
        raise InvalidInput("the store name must not be empty")
    if is_store_id(name) or is_file_id(name):
        raise InvalidInput(f"the store name {shown(name)} looks like an id (vs_..., file-...); choose another")


def check_environment() -> None:
    """Validate the numeric settings processing reads, so a bad one fails before any change."""
    from vscli.embedding import embedding_threads
    from vscli.index.faiss_index import FLAT_MAX_ENV, FLAT_MAX_VECTORS

    env_positive_int(BATCH_CHUNKS_ENV, BATCH_CHUNKS)
    env_positive_int(FLAT_MAX_ENV, FLAT_MAX_VECTORS)
    embedding_threads()
