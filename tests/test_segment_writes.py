"""Writes in proportion to the change (docs/segments.md): a write adds a segment and deletion files,
never rewrites a live segment's files, and the index answers as a fresh build of the same documents."""

from __future__ import annotations

import json

import pytest

from dualsearch.corpora.document import Document
from dualsearch.corpora.sources import read_corpus
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import IndexConfig, build_index
from dualsearch.write.merge_policy import SEGMENTS_PER_TIER
from dualsearch.write.reindex import add_documents, delete_documents, optimize, reindex
from tests.helpers import CountingEncoder

QUERIES = ["green tea", "how is espresso made", "why does mars look red", "volcano lava", "python lists"]
FLAT = IndexConfig(factory="Flat")  # exact dense scores, so two indexes of the same documents score alike


def tiny_documents() -> list[Document]:
    return [Document(d.id, d.title, d.text, {**d.metadata, "n": n}) for n, d in enumerate(read_corpus("tiny"))]


@pytest.fixture
def index_dir(tmp_path):
    directory = tmp_path / "idx"
    build_index(tiny_documents(), directory, FakeEncoder(), FLAT)
    return directory


def entries(index_dir):
    return Manifest.read(layout.current_version_dir(index_dir)).segment_entries()


def segment_files(index_dir, name) -> dict[str, bytes]:
    directory = layout.segment_dir(index_dir, name)
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def answers(index_dir, **options) -> list[list[tuple[str, float]]]:
    """Each query's results, ties ordered by id (two indexes may order tied documents apart)."""
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        found = []
        for query in QUERIES:
            results = searcher.search(query, k=10, **options)
            found.append(sorted(((r.doc_id, round(r.score, 5)) for r in results), key=lambda hit: (-hit[1], hit[0])))
        return found


def test_add_writes_a_segment_of_the_new_documents_and_leaves_the_live_files_alone(index_dir):
    (first,) = entries(index_dir)
    before = segment_files(index_dir, first.name)
    encoder = CountingEncoder()
    report = add_documents(index_dir, [Document("new-1", "", "a volcano erupts with lava")], encoder)
    assert (report.added, report.unchanged, report.encoded) == (1, 26, 1) and len(encoder.encoded) == 1
    kept, new = entries(index_dir)
    assert kept == first and (new.documents, new.deleted_count) == (1, 0)
    assert segment_files(index_dir, first.name) == before  # not one byte of the live segment rewritten


def test_replacing_and_deleting_write_deletion_files_only(index_dir):
    (first,) = entries(index_dir)
    before = segment_files(index_dir, first.name)
    delete_documents(index_dir, ["tea-green"], FakeEncoder())
    (only,) = entries(index_dir)  # no new segment: a delete encodes nothing
    assert only.deleted_count == 1 and only.deleted.startswith("deleted-v")
    after = segment_files(index_dir, first.name)
    assert {name: data for name, data in after.items() if name != only.deleted} == before
    add_documents(index_dir, [Document("tea-black", "Black tea", "black tea about a volcano now")], FakeEncoder())
    kept, new = entries(index_dir)
    assert (kept.deleted_count, new.documents) == (2, 1)  # the old copy deleted, the new one in its segment
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        assert len(searcher) == 25 and searcher.document("tea-green") is None
        assert "volcano" in searcher.document("tea-black").text
        every = searcher.search("tea", k=25, mode="dense")
        assert len(every) == 25 and "tea-green" not in {r.doc_id for r in every}  # k results, none deleted


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_an_index_written_in_pieces_answers_as_a_fresh_build_of_its_documents(index_dir, tmp_path, mode):
    documents = {d.id: d for d in tiny_documents()}
    add_documents(index_dir, [Document("new-1", "", "a volcano erupts with lava", {"n": 100})], FakeEncoder())
    delete_documents(index_dir, ["coffee-espresso", "astro-mars"], FakeEncoder())
    changed = Document("tea-green", "Green tea", "green tea grown on a volcano", {"n": 101})
    add_documents(index_dir, [changed], FakeEncoder())
    documents["new-1"] = Document("new-1", "", "a volcano erupts with lava", {"n": 100})
    documents["tea-green"] = changed
    del documents["coffee-espresso"], documents["astro-mars"]
    assert len(entries(index_dir)) == 3
    fresh = tmp_path / "fresh"
    build_index(list(documents.values()), fresh, FakeEncoder(), FLAT)
    assert answers(index_dir, mode=mode) == answers(fresh, mode=mode)
    condition = {"n": {"gte": 5}}
    assert answers(index_dir, mode=mode, filter=condition) == answers(fresh, mode=mode, filter=condition)


def test_priors_and_boosts_see_live_documents_only(tmp_path):
    rows = [
        Document(f"d{n}", "", "the same words about tea", {"views": n, "kind": "a" if n % 2 else "b"}) for n in range(8)
    ]
    index_dir = tmp_path / "idx"
    settings = SearchSettings(prior_field="views", prior_weight=0.5)
    build_index(rows, index_dir, FakeEncoder(), FLAT, search_settings=settings)
    delete_documents(index_dir, ["d7"], FakeEncoder())  # the largest count: priors now scale by d6's
    add_documents(index_dir, [Document("d9", "", "the same words about tea", {"views": 3, "kind": "a"})], FakeEncoder())
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        results = searcher.search("tea", k=3, mode="dense")
        assert [r.doc_id for r in results] == ["d6", "d5", "d4"] and results[0].prior == pytest.approx(1.0)
        boosted = searcher.search("tea", k=2, mode="dense", prior_weight=0, boosts=(("kind", "a", 1.0),))
        assert {r.doc_id for r in boosted} <= {"d1", "d3", "d5", "d9"}


def test_many_small_writes_are_merged_into_few_segments(index_dir):
    for number in range(3 * SEGMENTS_PER_TIER):
        add_documents(index_dir, [Document(f"small-{number}", "", f"note number {number} about kites")], FakeEncoder())
    assert len(entries(index_dir)) < SEGMENTS_PER_TIER + 1  # tiers of ten become one of the next
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        assert len(searcher) == 26 + 3 * SEGMENTS_PER_TIER
        assert searcher.search("note number 17 about kites", k=1, mode="lexical")[0].doc_id == "small-17"


def test_a_segment_with_a_third_deleted_is_rewritten_with_its_live_documents(index_dir):
    encoder = CountingEncoder()
    delete_documents(index_dir, [d.id for d in tiny_documents()[:9]], encoder)  # 9 of 26: a third
    (only,) = entries(index_dir)
    assert (only.documents, only.deleted_count) == (17, 0) and encoder.encoded == []  # copied, not encoded


def test_optimize_merges_every_segment_into_one_without_encoding(index_dir):
    add_documents(index_dir, [Document("new-1", "", "a volcano erupts with lava")], FakeEncoder())
    delete_documents(index_dir, ["tea-green"], FakeEncoder())
    before = answers(index_dir, mode="hybrid")
    encoder = CountingEncoder()
    report = optimize(index_dir, encoder)
    (only,) = entries(index_dir)
    assert (only.documents, only.deleted_count, report.encoded, encoder.encoded) == (26, 0, 0, [])
    assert answers(index_dir, mode="hybrid") == before
    assert not optimize(index_dir, encoder).published  # one segment, nothing deleted: nothing to do


def test_only_the_segments_of_kept_versions_stay_on_disk(index_dir):
    for number in range(3):
        add_documents(index_dir, [Document(f"new-{number}", "", f"text {number}")], FakeEncoder())
    stale = layout.prepare_segment_build_dir(index_dir)  # a writer that died before publishing
    optimize(index_dir, FakeEncoder())
    on_disk = sorted(path.name for path in (index_dir / "segments").iterdir())
    named = set()
    for version in index_dir.glob("v*"):
        named |= {entry["name"] for entry in json.loads((version / "manifest.json").read_text())["segments"]}
    assert set(on_disk) == named and not stale.exists()


def test_a_reader_keeps_its_version_while_writes_and_merges_go_on(index_dir):
    with Searcher.open(index_dir, encoder=FakeEncoder()) as old:
        expected = [r.doc_id for r in old.search("green tea", k=5)]
        delete_documents(index_dir, ["tea-green"], FakeEncoder())
        add_documents(index_dir, [Document("new-1", "", "green tea again")], FakeEncoder())
        optimize(index_dir, FakeEncoder())
        optimize(index_dir, FakeEncoder())
        assert [r.doc_id for r in old.search("green tea", k=5)] == expected  # its files are held open


def test_reindex_writes_the_changed_documents_only(index_dir, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    documents = tiny_documents()
    documents[0] = Document(documents[0].id, documents[0].title, "changed text about a volcano", documents[0].metadata)
    documents = documents[:-2] + [Document("brand-new", "", "a brand new document about kites", {"n": 99})]
    corpus.write_text(
        "".join(json.dumps({"_id": d.id, "title": d.title, "text": d.text, **d.metadata}) + "\n" for d in documents)
    )
    encoder = CountingEncoder()
    report = reindex(index_dir, corpus, encoder)
    assert (report.added, report.updated, report.deleted, report.unchanged) == (1, 1, 2, 23)
    assert len(encoder.encoded) == 2 and not report.retrained
    kept, new = entries(index_dir)
    assert (kept.deleted_count, new.documents) == (3, 2)
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        assert len(searcher) == 25 and searcher.search("kites", k=1)[0].doc_id == "brand-new"


def test_following_a_write_opens_only_what_changed(index_dir):
    first = Searcher.open(index_dir, encoder=FakeEncoder())
    add_documents(index_dir, [Document("new-1", "", "green tea on a volcano")], FakeEncoder())
    delete_documents(index_dir, ["tea-green"], FakeEncoder())
    second = Searcher.open(index_dir, encoder=FakeEncoder(), previous=first)
    shared, added = second.store.segments
    assert shared.index is first.store.segments[0].index and shared.store is first.store.segments[0].store
    assert len(shared.deleted) == 1 and len(first.store.segments[0].deleted) == 0  # each version its own deletions
    assert "tea-green" in {r.doc_id for r in first.search("green tea", k=5)}
    first.close()  # the shared store stays open for the newer version
    assert [r.doc_id for r in second.search("green tea", k=2)][:1] == ["new-1"]
    assert second.document("tea-black") is not None
    second.close()
