"""When the FAISS backend merges its segments: a size-tiered policy, as log-structured stores use.

Each commit writes only its own vectors, as a new immutable segment; a removal only takes the file out of
the manifest, and its vectors stay in their segment, unsearchable, until a merge drops them. Left alone,
the segments would multiply and the dead vectors pile up; merging keeps both bounded:

- segments fall into tiers by size (below `MERGE_FLOOR` vectors, then each tier `MERGE_FACTOR` times the
  last); when a tier holds `MERGE_FACTOR` segments, they are merged into one (of the next tier). Each
  vector is so rewritten about log_4(store / MERGE_FLOOR) times in its life, whatever the store's size,
  and a store of a million vectors has at most some fifteen segments to search.
- when more than half the vectors held belong to removed files, every segment is merged into one.

The policy only chooses; `vscli.backends.faiss_backend` does the merging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vscli.index import VectorIndex

MERGE_FLOOR = 4096  # segments smaller than this are all in the first tier
MERGE_FACTOR = 4  # segments per tier that trigger a merge, and the growth from one tier to the next


def tier(vectors: int) -> int:
    """Which size tier a segment of this many vectors is in (0: the smallest)."""
    level, bound = 0, MERGE_FLOOR
    while vectors >= bound:
        level, bound = level + 1, bound * MERGE_FACTOR
    return level


def plan_merge(sizes: list[int], dead: int) -> list[int]:
    """The positions (in ``sizes``) of the segments to merge next, or [] when none should be.
    ``dead``: how many of the vectors held belong to files no longer in the store."""
    if sizes and dead * 2 > sum(sizes):
        return list(range(len(sizes)))
    tiers: dict[int, list[int]] = {}
    for at, size in enumerate(sizes):
        tiers.setdefault(tier(size), []).append(at)
    for level in sorted(tiers):
        if len(tiers[level]) >= MERGE_FACTOR:
            return tiers[level]
    return []


def record(number: int, index: VectorIndex) -> dict[str, Any]:
    """A segment as the catalog names it: its file number, how many vectors it holds, its index type."""
    return {"n": number, "vectors": index.size, "kind": index.kind()}


def describe(segments: list[dict[str, Any]], dead: int) -> str:
    """What holds a store's vectors, for `vscli status`: the index types, the live vectors, the segments
    (each record: ``{"vectors": count, "kind": index type}``) and the removed files' vectors not yet
    dropped."""
    held = sum(segment["vectors"] for segment in segments)
    kinds = " + ".join(dict.fromkeys(segment["kind"] for segment in segments)) or "flat (exact)"
    text = f"faiss {kinds}, {held - dead} vectors"
    if len(segments) > 1:
        text += f" in {len(segments)} segments"
    if dead:
        text += f" (and {dead} of removed files, dropped at the next merge)"
    return text
