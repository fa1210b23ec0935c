"""Which segments a write folds into the segment it writes: a tiered policy by size, as Lucene's
TieredMergePolicy does, so the number of segments grows with the logarithm of the corpus while each
document is rewritten a logarithmic number of times over its life (docs/segments.md).

- **By size**: segments are grouped in tiers by the order of magnitude of their live documents
  (1-9, 10-99, 100-999, ...). When a write's new segment would be the ``SEGMENTS_PER_TIER``-th of
  its tier, the tier's segments are merged into it: ten segments of a tier become one of the next.
- **By deletions**: a segment whose deleted share reaches ``MERGE_DELETED_SHARE`` is rewritten with
  its live documents (Lucene's default allows a third of an index to be deleted documents), so
  deleted rows never cost more than that in memory and search time.

A merge copies the stored vectors (nothing is encoded again) and rebuilds postings from the stored
text; ``dualsearch optimize`` merges every segment into one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SEGMENTS_PER_TIER = 10
MERGE_DELETED_SHARE = 1 / 3


def tier(live_documents: int) -> int:
    """The tier of a segment: the order of magnitude of its live documents.

    Example:
        >>> tier(1), tier(9), tier(10), tier(4500)
        (0, 0, 1, 3)
    """
    return int(math.log10(max(live_documents, 1)))


def segments_due(live_counts: Sequence[int], rows: Sequence[int]) -> list[int]:
    """Positions of the segments a merge in the background folds into one now: those whose deleted
    share reaches ``MERGE_DELETED_SHARE``, and the segments of every tier that holds
    ``SEGMENTS_PER_TIER`` of them (a server's writes add segments without merging,
    :mod:`dualsearch.service.writes`).

    Example:
        >>> segments_due([5000, *[7] * 10], [5000, *[7] * 10])
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        >>> segments_due([5000, 7, 8], [9000, 7, 8])  # 44% of the first deleted
        [0]
    """
    chosen = set(_mostly_deleted(live_counts, rows))
    tiers: dict[int, list[int]] = {}
    for position, live in enumerate(live_counts):
        if live and position not in chosen:
            tiers.setdefault(tier(live), []).append(position)
    for positions in tiers.values():
        if len(positions) >= SEGMENTS_PER_TIER:
            chosen.update(positions)
    return sorted(chosen)


def _mostly_deleted(live_counts: Sequence[int], rows: Sequence[int]) -> list[int]:
    return [
        position
        for position, (live, total) in enumerate(zip(live_counts, rows, strict=True))
        if live and (total - live) >= MERGE_DELETED_SHARE * total
    ]


def segments_to_merge(live_counts: Sequence[int], rows: Sequence[int], new_documents: int) -> list[int]:
    """Positions of the live segments to fold into a write's new segment.

    Args:
        live_counts: Each live segment's live documents, after this write's deletions.
        rows: Each live segment's document rows (live and deleted).
        new_documents: Documents the write adds as its own segment (0 for a delete).

    Example:
        >>> small = [7, 8, 6, 9, 5, 7, 8, 9, 6]  # with the new one, ten segments of tier 0
        >>> segments_to_merge([5000, *small], [5000, *small], new_documents=3)
        [1, 2, 3, 4, 5, 6, 7, 8, 9]
        >>> segments_to_merge([5000, 7], [9000, 7], new_documents=3)  # 44% of the first deleted
        [0]
    """
    chosen = set(_mostly_deleted(live_counts, rows))
    if new_documents:
        same_tier = [
            position
            for position, live in enumerate(live_counts)
            if live and tier(live) == tier(new_documents) and position not in chosen
        ]
        if len(same_tier) + 1 >= SEGMENTS_PER_TIER:
            chosen.update(same_tier)
    return sorted(chosen)
