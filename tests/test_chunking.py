"""Chunking by cl100k tokens: sizes, overlap, offsets and full coverage of the text."""

from __future__ import annotations

import pytest

from vscli import chunking
from vscli.chunking import chunk_text, count_tokens


def covered(text: str, chunks: list[chunking.Chunk]) -> bool:
    reach = 0
    for c in chunks:
        if c.start > reach:
            return False
        reach = max(reach, c.end)
    return reach == len(text)


@pytest.mark.parametrize("size,overlap", [(100, 0), (100, 50), (200, 50), (1000, 300)])
def test_chunks_cover_the_text_within_the_budget(size: int, overlap: int) -> None:
    text = ("Data mining finds patterns in data. " * 40 + "\n\n") * 10
    chunks = chunk_text(text, size, overlap)
    assert covered(text, chunks)
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.tokens <= size
        assert count_tokens(c.text) <= size + 1  # re-encoding a slice may merge one boundary token


def test_overlap_repeats_text_between_neighbours() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    chunks = chunk_text(text, 100, 40)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # overlapping
    no_overlap = chunk_text(text, 100, 0)
    assert "".join(c.text for c in no_overlap) == text


def test_multibyte_text_is_never_split_or_lost() -> None:
    text = "日本語のテキストと絵文字🎉🧪。" * 200
    chunks = chunk_text(text, 100, 0)
    assert "".join(c.text for c in chunks) == text
    assert covered(text, chunk_text(text, 100, 50))


def test_cuts_prefer_paragraph_ends() -> None:
    paragraph = "This sentence is part of a paragraph about retrieval. " * 12
    text = "\n\n".join([paragraph] * 6)
    chunks = chunk_text(text, 200, 0)
    assert all(c.text.rstrip().endswith(".") for c in chunks[:-1]), [c.text[-20:] for c in chunks]


@pytest.mark.parametrize("size,overlap,message", [
    (99, 0, "between 100 and 4096"),
    (4097, 0, "between 100 and 4096"),
    (400, 201, "half the chunk size"),
    (400, -1, "negative"),
])
def test_static_validation_follows_openai(size: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunking.validate_static(size, overlap)


def test_strategy_objects() -> None:
    assert chunking.strategy(None, None) == {"type": "auto"}
    assert chunking.strategy(800, 400)["static"] == {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
    assert chunking.resolved({"type": "auto"})["static"]["max_chunk_size_tokens"] == chunking.AUTO_CHUNK_TOKENS
