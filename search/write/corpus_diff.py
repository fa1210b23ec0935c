"""Compare a corpus with the live version before a re-index writes anything: :func:`diff_with_live`.

Two mistakes it stops early, while they are still cheap:

- **The wrong corpus.** ``reindex DIR --corpus other.jsonl`` makes the index hold exactly the
  documents of ``other.jsonl``: every document not in it is deleted. :func:`check_deletions` refuses
  to delete more than :data:`~dualsearch.defaults.MAX_DELETE_SHARE` of the index unless asked to
  (``allow_mass_delete``, ``--allow-mass-delete``), before anything is encoded.
- **No change.** A corpus identical to the index (same ids, same content hashes, same towers)
  needs no new version; :attr:`CorpusDiff.changes_nothing` says so.

The comparison reads the corpus as the validating pass does (the reader validates), so it costs
no extra pass; ids are looked up in the live document store in batches, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from dualsearch.corpora.document import Document
from dualsearch.defaults import MAX_DELETE_SHARE
from dualsearch.errors import CorpusError, InvalidInputError
from dualsearch.index.store import DocumentStoreReader

LOOKUP_BATCH = 500  # ids per store look-up


@dataclass(frozen=True)
class CorpusDiff:
    """How a corpus relates to the live version, by document id and content hash."""

    total: int  # documents in the corpus
    kept: int  # of them, ids the live version holds
    unchanged: int  # of those, with the same content
    live: int  # documents in the live version

    @property
    def deleted(self) -> int:
        return self.live - self.kept

    @property
    def changes_nothing(self) -> bool:
        return self.unchanged == self.total == self.live


def diff_with_live(
    store: DocumentStoreReader, live_count: int, documents: Iterable[Document], unchanged_rows: np.ndarray | None = None
) -> CorpusDiff:
    """Count the corpus's documents, those the live store holds, and those unchanged (whose rows are
    marked in ``unchanged_rows``, a bool array over the store's rows, when given).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from dualsearch.index.store import DocumentStoreWriter
        >>> path = Path(tempfile.mkdtemp()) / "documents.sqlite"
        >>> writer = DocumentStoreWriter(path)
        >>> writer.add([0, 1], [Document("a", "", "one"), Document("b", "", "two")], [0, 1], [[(0, 3)], [(0, 3)]])
        >>> writer.close()
        >>> diff_with_live(DocumentStoreReader(path), 2, [Document("a", "", "one"), Document("c", "", "new")])
        CorpusDiff(total=2, kept=1, unchanged=1, live=2)
    """
    total = kept = unchanged = 0
    iterator = iter(documents)
    while batch := list(islice(iterator, LOOKUP_BATCH)):
        stored = store.lookup(document.id for document in batch)
        total += len(batch)
        for document in batch:
            hit = stored.get(document.id)
            if hit is not None:
                kept += 1
                same = hit.content_hash == document.content_hash()
                unchanged += same
                if same and unchanged_rows is not None:
                    unchanged_rows[hit.doc_row] = True
    return CorpusDiff(total, kept, unchanged, live_count)


def changed_documents(store: DocumentStoreReader, documents: Iterable[Document]) -> Iterator[Document]:
    """The documents the live store does not hold as they are: new ids and changed content."""
    iterator = iter(documents)
    while batch := list(islice(iterator, LOOKUP_BATCH)):
        stored = store.lookup(document.id for document in batch)
        for document in batch:
            hit = stored.get(document.id)
            if hit is None or hit.content_hash != document.content_hash():
                yield document


def check_deletions(
    diff: CorpusDiff, corpus: str, allow_mass_delete: bool = False, max_share: float = MAX_DELETE_SHARE
) -> None:
    """Refuse an empty corpus, and one whose re-index would delete more than ``max_share`` of the index.

    Example:
        >>> check_deletions(CorpusDiff(total=10, kept=1, unchanged=1, live=100), "other.jsonl")
        Traceback (most recent call last):
        ...
        dualsearch.errors.InvalidInputError: re-indexing with other.jsonl would delete 99 of the index's 100 documents \
(more than 50%): is it the right corpus? If so, pass --allow-mass-delete (allow_mass_delete=True)
    """
    if diff.total == 0:
        raise CorpusError(f"corpus {corpus} has no documents: re-indexing with it would empty the index")
    if not allow_mass_delete and diff.deleted > max_share * diff.live:
        raise InvalidInputError(
            f"re-indexing with {corpus} would delete {diff.deleted} of the index's {diff.live} documents "
            f"(more than {max_share:.0%}): is it the right corpus? "
            "If so, pass --allow-mass-delete (allow_mass_delete=True)"
        )
