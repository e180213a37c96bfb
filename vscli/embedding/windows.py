"""Split texts into windows that fit the model, so no word of a chunk is silently truncated.

sentence-transformers cuts every input at the model's `max_seq_length` word pieces (256 for
all-MiniLM-L6-v2, two of them [CLS] and [SEP]). A chunk measured in cl100k tokens can hold more word
pieces than that, so each chunk is split at word boundaries into windows of at most `max_pieces` pieces,
overlapping a little; each window gets its own vector and the index maps all of them to the chunk.
"""

from __future__ import annotations

from typing import Callable, Sequence

Offsets = Sequence[tuple[int, int]]
PieceOffsets = Callable[[list[str]], Sequence[Offsets]]  # texts -> each text's word-piece offsets

# Slack under the model's limit: re-tokenizing a window's text can differ by a piece or two at its edges.
SLACK_PIECES = 4
OVERLAP_PIECES = 32


def split_windows(
    texts: Sequence[str], piece_offsets: PieceOffsets, max_pieces: int
) -> tuple[list[str], list[int]]:
    """All windows of all texts, and for each window the index of the text it came from.

    `piece_offsets` gives the character offsets of each text's word pieces (no special tokens, no
    truncation): the sentence-transformers tokenizer and the ONNX path's tokenizers.Tokenizer give the
    same ones, so both paths cut the same windows."""
    if not texts:
        return [], []
    limit = max_pieces - SLACK_PIECES
    windows: list[str] = []
    owners: list[int] = []
    for i, (text, offsets) in enumerate(zip(texts, piece_offsets(list(texts)), strict=True)):
        if len(offsets) <= limit:
            windows.append(text)
            owners.append(i)
            continue
        for start, end in _window_bounds(offsets, limit):
            windows.append(text[offsets[start][0] : offsets[end - 1][1]])
            owners.append(i)
    return windows, owners


def _window_bounds(offsets: Sequence[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Piece ranges [start, end) of at most `limit` pieces, cut only where a new word starts."""

    def word_start(p: int) -> bool:
        return p == 0 or p >= len(offsets) or offsets[p][0] > offsets[p - 1][1]

    n = len(offsets)
    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + limit, n)
        if end < n:
            cut = end
            while cut > start + limit // 2 and not word_start(cut):
                cut -= 1
            end = cut if word_start(cut) else end
        bounds.append((start, end))
        if end >= n:
            return bounds
        nxt = max(end - OVERLAP_PIECES, start + 1)
        while nxt < end and not word_start(nxt):
            nxt += 1
        start = nxt
