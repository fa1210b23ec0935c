"""Segments with deletions read as one index (dualsearch.index.segment_set): every read answers as a
single segment of the live documents does, and deleted documents never come back."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from dualsearch.corpora.document import Document
from dualsearch.corpora.sources import read_corpus
from dualsearch.index.lexical_segments import LexicalSegment
from dualsearch.index.segment_set import OpenSegment, SegmentSet
from dualsearch.index.store import DocumentStoreReader, DocumentStoreWriter, json_path
from dualsearch.ranking.dense import PassageMap
from dualsearch.testing import FakeEncoder

ENCODER = FakeEncoder(dimension=64)
QUERIES = ["green tea", "how is espresso made", "why does mars look red", "volcano", "python code"]


def two_passages(document: Document) -> list[tuple[int, int]]:
    """Documents with an even-length text get two passages (halves), so MaxP rows are exercised."""
    half = len(document.text) // 2
    return [(0, half), (half, len(document.text))] if len(document.text) % 2 == 0 else [(0, len(document.text))]


def write_segment(directory, documents: list[Document], trained: faiss.Index, deleted=()) -> OpenSegment:
    """One segment's files, as a writer would leave them, opened."""
    directory.mkdir(parents=True)
    spans = [two_passages(document) for document in documents]
    counts = np.array([len(s) for s in spans], np.int64)
    firsts = (np.cumsum(counts) - counts).tolist()
    writer = DocumentStoreWriter(directory / "store.sqlite")
    writer.add(range(len(documents)), documents, firsts, spans)
    writer.close()
    texts = [document.text[a:b] for document, parts in zip(documents, spans, strict=True) for a, b in parts]
    vectors = ENCODER.encode_documents(texts)
    index = faiss.clone_index(trained)
    index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
    lexical = LexicalSegment.build(document.encoding_text() for document in documents)
    return OpenSegment(
        directory.name,
        DocumentStoreReader(directory / "store.sqlite"),
        vectors,
        index,
        lexical,
        counts,
        np.asarray(sorted(deleted), np.int64),
    )


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return [Document(d.id, d.title, d.text, {**d.metadata, "n": n}) for n, d in enumerate(read_corpus("tiny"))]


@pytest.fixture(scope="module", params=["Flat", "IVF4,Flat"])
def trained(request, documents) -> faiss.Index:
    """An empty index, trained once on every document's vectors: the segments share its quantizer."""
    index = faiss.index_factory(ENCODER.dimension, request.param, faiss.METRIC_INNER_PRODUCT)
    if not isinstance(index, faiss.IndexIDMap) and not index.is_trained:
        index.train(ENCODER.encode_documents([d.text for d in documents]))
    return index if "IVF" in request.param else faiss.IndexIDMap(index)


@pytest.fixture
def pair(documents, trained, tmp_path):
    """(three segments written over time, with deletions and a rewrite; one segment of the live documents)."""
    first, second, third = documents[:10], documents[10:20], documents[20:]
    rewritten = [Document(first[2].id, first[2].title, first[2].text + " now about volcano", first[2].metadata)]
    segments = [
        write_segment(tmp_path / "s1", first, trained, deleted=[2, 5]),  # 2: rewritten below, 5: gone
        write_segment(tmp_path / "s2", second, trained, deleted=[0]),
        write_segment(tmp_path / "s3", third + rewritten, trained),
    ]
    live = [d for n, d in enumerate(first) if n not in (2, 5)] + second[1:] + third + rewritten
    merged = SegmentSet(segments)
    single = SegmentSet([write_segment(tmp_path / "one", live, trained)])
    yield merged, single, {first[5].id, second[0].id}
    merged.close()
    single.close()


def as_ids(found: SegmentSet, rows) -> list[str]:
    return [found.fetch([row])[row].doc_id for row in rows]


def test_the_store_answers_for_live_documents_only(pair):
    merged, single, gone = pair
    assert merged.document_count == single.document_count == single.row_count
    assert merged.row_count == single.row_count + 3  # deleted rows stay, masked
    ids = [d.id for d in single.iter_documents()]
    assert [d.id for d in merged.iter_documents()] == ids
    located = merged.lookup([*ids, *gone])
    assert set(located) == set(ids)  # a deleted document is not found, a rewritten one is found once
    (rewritten,) = [d.id for d in single.iter_documents() if "volcano" in d.text]
    assert "volcano" in merged.fetch([located[rewritten].doc_row])[located[rewritten].doc_row].text
    for doc_id, where in located.items():
        stored = merged.fetch([where.doc_row])[where.doc_row]
        assert stored.doc_id == doc_id and stored.first_row == where.first_row
        alone = single.lookup([doc_id])[doc_id]
        rows = np.arange(where.first_row, where.first_row + len(where.passages))
        np.testing.assert_array_equal(merged.vectors[rows], single.vectors[rows - where.first_row + alone.first_row])
    condition, parameters = "json_extract(metadata, ?) >= ?", [json_path("n"), 5]
    selected = as_ids(merged, merged.select_rows(condition, parameters))
    assert selected and sorted(selected) == sorted(as_ids(single, single.select_rows(condition, parameters)))
    values = merged.field_values("n")
    assert sum(value is None for value in values) == 3
    assert sorted(v for v in values if v is not None) == sorted(single.field_values("n"))
    assert np.asarray(merged.vectors).shape == merged.vectors.shape == (len(merged.vectors), ENCODER.dimension)


def found_documents(found: SegmentSet, rows: np.ndarray) -> list[str]:
    row_to_doc = PassageMap(found.passage_counts()).row_to_doc
    return as_ids(found, [row_to_doc[row] for row in rows if row >= 0])


def test_dense_search_over_segments_is_the_single_index_search(pair):
    merged, single, gone = pair
    queries = ENCODER.encode_queries(QUERIES)
    for k in (1, 5, 100):  # 100: more than the live passages, so every live one comes back
        merged_scores, merged_rows = merged.search(queries, k, nprobe=2)
        single_scores, single_rows = single.search(queries, k, nprobe=2)
        assert merged_rows.shape == single_rows.shape
        np.testing.assert_allclose(merged_scores, single_scores, atol=1e-6)
        for q in range(len(QUERIES)):
            merged_found = found_documents(merged, merged_rows[q])
            assert not set(merged_found) & gone
            if k == 100:  # every live passage: the same documents (at smaller k, ties at the cut may differ)
                assert sorted(merged_found) == sorted(found_documents(single, single_rows[q]))
    allowed_docs = merged.select_rows("json_extract(metadata, ?) < ?", [json_path("n"), 12])
    allowed = PassageMap(merged.passage_counts()).rows_of(allowed_docs)
    _, rows = merged.search(queries, 100, nprobe=4, allowed_rows=allowed)
    assert set(rows[rows >= 0].tolist()) <= set(allowed.tolist())


def test_lexical_scores_over_segments_are_the_single_segment_scores(pair):
    merged, single, _ = pair
    order = [merged.lookup([d.id])[d.id].doc_row for d in single.iter_documents()]
    for query in QUERIES:
        scores = merged.lexical.scores(query)
        np.testing.assert_allclose(scores[order], single.lexical.scores(query), atol=1e-6)
        assert not scores[~merged.live].any()
