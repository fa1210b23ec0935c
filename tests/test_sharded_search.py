"""Sharded indexes (dualsearch.index.shards, dualsearch.write.shard_*, dualsearch.read.shard*): routing,
building, writes, and a search over shards that ranks as one index of the same documents does, in
every mode, with filters, priors and boosts."""

from __future__ import annotations

import json

import pytest

from dualsearch.corpora.document import Document
from dualsearch.errors import IndexBuildError, InvalidInputError, UnknownDocumentError
from dualsearch.index import layout
from dualsearch.index.shards import ShardMap, shard_of
from dualsearch.read.searcher import Searcher
from dualsearch.read.sharded import ShardedSearcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index
from dualsearch.write.reindex import add_documents, delete_documents, reindex
from dualsearch.write.shard_build import build_sharded_index, split_index
from dualsearch.write.shard_writes import add_to_shards, delete_from_shards, reindex_shards
from tests.helpers import SHARD_QUERIES as QUERIES
from tests.helpers import SHARDED_IVF as IVF
from tests.helpers import SHARDS, passage_towers, sharded_corpus, towers


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """(one index, a sharded index) of the same documents, built with the same settings."""
    root = tmp_path_factory.mktemp("sharded")
    build_index(sharded_corpus(), root / "one", towers(), IVF)
    report = build_sharded_index(sharded_corpus(), root / "sharded", towers(), SHARDS, IVF)
    assert report.document_count == 900 and len(report.shards) == SHARDS and min(report.shards) > 200
    return root / "one", root / "sharded"


def ranking(index_dir, encoder=None, **options) -> list[tuple[list[float], list[tuple[str, float]]]]:
    """Each query's top-10 scores, and its results above the tenth score with ties ordered by id (two
    indexes of the same documents may order tied documents apart, and so cut a tie at the tenth apart)."""
    with Searcher.open(index_dir, encoder=encoder or towers()) as searcher:
        found = []
        for query in QUERIES:
            hits = [(r.doc_id, round(r.score, 5)) for r in searcher.search(query, k=10, **options)]
            scores = sorted((score for _, score in hits), reverse=True)
            above = sorted((hit for hit in hits if scores and hit[1] > scores[-1]), key=lambda h: (-h[1], h[0]))
            found.append((scores, above))
        return found


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "dense"},
        {"mode": "dense", "exact": True},
        {"mode": "lexical"},
        {"mode": "hybrid"},
        {"mode": "hybrid", "fusion": "rrf"},
        {"mode": "hybrid", "exact": True},
        {"mode": "hybrid", "nprobe": 1},
        {"mode": "hybrid", "filter": {"kind": "class"}},
        {"mode": "dense", "filter": {"kind": "method"}},
        {"mode": "lexical", "filter": {"kind": "function"}},
        {"mode": "hybrid", "prior_field": "views", "prior_weight": 0.2},
        {"mode": "dense", "prior_field": "views", "prior_weight": 0.5},
        {"mode": "hybrid", "boosts": (("kind", "class", 0.1),)},
    ],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()),
)
def test_a_sharded_index_ranks_as_one_index_of_the_same_documents(indexes, options):
    one, sharded = indexes
    expected = ranking(one, **options)
    assert any(scores for scores, _ in expected)  # the comparison is about results, not two empty lists
    assert ranking(sharded, **options) == expected


@pytest.mark.parametrize(
    "options",
    [{"mode": "hybrid"}, {"mode": "hybrid", "nprobe": 1}, {"mode": "dense", "nprobe": 1}, {"mode": "dense"}],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()),
)
def test_documents_of_several_passages_rank_as_in_one_index(tmp_path_factory, options):
    """One index scores a document by its best passage among those its search found, and a document
    BM25 brings in by its exact best passage; the shards must do the same, though each finds more of its
    own passages than the corpus's top holds."""
    root = tmp_path_factory.getbasetemp() / "passages"
    if not (root / "sharded").exists():
        build_index(sharded_corpus(), root / "one", passage_towers(), IVF)
        build_sharded_index(sharded_corpus(), root / "sharded", passage_towers(), SHARDS, IVF)
    assert ranking(root / "sharded", passage_towers(), **options) == ranking(root / "one", passage_towers(), **options)


def test_every_document_lives_in_the_shard_its_id_routes_to(indexes):
    _, sharded = indexes
    shard_map = ShardMap.read(sharded)
    with ShardedSearcher.open(sharded, encoder=towers()) as searcher:
        assert len(searcher) == 900
        for number, shard in enumerate(searcher.shards):
            ids = [document.id for document in shard.store.iter_documents()]
            assert ids and all(shard_of(doc_id, SHARDS) == number for doc_id in ids)
        assert searcher.document("d17").doc_id == "d17" and searcher.document("nowhere") is None
    assert shard_map.owner(sharded, "d17").name == shard_map.shards[shard_of("d17", SHARDS)]


def test_the_shards_share_the_centroids_and_nprobe_of_one_index(indexes):
    one, sharded = indexes
    with Searcher.open(one, encoder=towers()) as single, ShardedSearcher.open(sharded, towers()) as many:
        assert many.shard_map.default_nprobe == single.manifest.default_nprobe
        assert all(shard.manifest.factory == single.manifest.factory for shard in many.shards)
        assert all(shard.manifest.trained_count == 900 for shard in many.shards)  # trained once, on everything


def test_a_field_no_shard_has_is_refused_as_one_index_refuses_it(indexes):
    _, sharded = indexes
    with ShardedSearcher.open(sharded, encoder=towers()) as searcher:
        with pytest.raises(InvalidInputError, match="metadata field 'colour'"):
            searcher.search("green tea", filter={"colour": "red"})
        with pytest.raises(InvalidInputError, match="prior field 'likes'"):
            searcher.search("green tea", prior_field="likes", prior_weight=0.3)


def test_building_refuses_one_shard_a_used_directory_and_empty_shards(tmp_path):
    with pytest.raises(InvalidInputError, match="at least 2 shards"):
        build_sharded_index(sharded_corpus(10), tmp_path / "a", towers(), 1)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not empty"):
        build_sharded_index(sharded_corpus(10), tmp_path / "used", towers(), 2)
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"
    with pytest.raises(IndexBuildError, match="empty: use fewer shards"):
        build_sharded_index(sharded_corpus(3), tmp_path / "few", towers(), 8)
    assert not (tmp_path / "few").exists()


def test_a_filtered_search_runs_in_every_shard_as_it_runs_in_one_index(indexes, monkeypatch):
    """One index searches a filter that lets few passages through exactly, and a wider one with IVF at a
    raised nprobe; each shard decides by the whole corpus's counts, not its own third of them."""
    import dualsearch.read.searcher as searcher_module

    one, sharded = indexes
    monkeypatch.setattr(searcher_module, "EXACT_FILTER_ROWS", 200)  # ~300 class documents: IVF in one index
    options = {"mode": "dense", "filter": {"kind": "class"}, "nprobe": 1}  # 3 lists of 16: not exact
    assert ranking(sharded, **options) == ranking(one, **options)


def test_the_command_line_builds_and_searches_a_sharded_index(tmp_path, capsys, monkeypatch):
    from dualsearch.cli import main
    from dualsearch.towers import backends

    monkeypatch.setattr(backends, "load_encoder", lambda *args, **kwargs: towers())
    corpus_file = tmp_path / "notes.jsonl"
    corpus_file.write_text(
        "".join(f'{{"_id": "{d.id}", "title": "{d.title}", "text": "{d.text}"}}\n' for d in sharded_corpus(60)),
        encoding="utf-8",
    )
    assert main(["index", str(corpus_file), "--out", str(tmp_path / "sharded"), "--shards", "2"]) == 0
    assert "indexed 60 documents" in capsys.readouterr().out and ShardMap.read(tmp_path / "sharded").count == 2
    assert main(["search", str(tmp_path / "sharded"), "green tea", "-k", "3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    with ShardedSearcher.open(tmp_path / "sharded", encoder=towers()) as searcher:
        expected = [r.doc_id for r in searcher.search("green tea", k=3)]
        assert record["version"] == "v000001+v000001"
    assert [r["id"] for r in record["results"]] == expected
    assert main(["delete", str(tmp_path / "sharded"), "d3"]) == 0 and "deleted 1" in capsys.readouterr().out
    assert main(["serve", str(tmp_path / "sharded"), "--port", "0"]) != 0  # refused, not served half-way
    assert "sharded index" in capsys.readouterr().err


def test_explanations_share_bm25_by_the_whole_sharded_corpus(indexes):
    one, sharded = indexes
    with Searcher.open(one, encoder=towers()) as single, ShardedSearcher.open(sharded, towers()) as many:
        results = many.search("green tea", k=5, mode="lexical")
        expected = single.explain("green tea", single.search("green tea", k=5, mode="lexical"))
        assert [e["lexical_terms"] for e in many.explain("green tea", results)] == [
            e["lexical_terms"] for e in expected
        ]


@pytest.fixture
def written(tmp_path):
    """(one index, a sharded index) of the first 600 documents, each copied fresh for a test that writes."""
    documents = sharded_corpus()
    build_index(documents[:600], tmp_path / "one", towers(), IVF)
    build_sharded_index(documents[:600], tmp_path / "sharded", towers(), SHARDS, IVF)
    return tmp_path / "one", tmp_path / "sharded", documents


def test_writes_go_to_the_owning_shard_and_rank_as_the_same_writes_to_one_index(written):
    one, sharded, documents = written
    added = documents[600:700] + [Document("d5", "Note 5", "green tea with honey and lava", {"kind": "class"})]
    gone = ["d1", "d2", "d3", "d40", "d41"]
    add_documents(one, added, towers())
    delete_documents(one, gone, towers())
    before = ShardedSearcher.open(sharded, encoder=towers())
    report = add_to_shards(sharded, added, towers())
    assert (report.added, report.updated, report.unchanged) == (100, 1, 599)
    report = delete_from_shards(sharded, gone, towers())
    assert (report.deleted, report.unchanged) == (5, 695)
    assert len(before) == 600  # a searcher keeps the versions it opened until it reloads
    with before.reload() as searcher:
        assert len(searcher) == 695 and searcher.version_name != before.version_name
        assert searcher.search("green tea with honey and lava", k=1)[0].doc_id == "d5"
        for number, shard in enumerate(searcher.shards):
            assert all(shard_of(d.id, SHARDS) == number for d in shard.store.iter_documents())
        assert searcher.document("d5").text == "green tea with honey and lava" and searcher.document("d1") is None
    for options in ({"mode": "hybrid"}, {"mode": "dense"}, {"mode": "lexical"}):
        assert ranking(sharded, **options) == ranking(one, **options)


def test_a_bad_delete_changes_no_shard(written):
    _, sharded, _ = written
    versions = [layout.current_version_dir(d).name for d in ShardMap.read(sharded).shard_dirs(sharded)]
    with pytest.raises(UnknownDocumentError, match="'nowhere'"):
        delete_from_shards(sharded, ["d1", "d2", "d3", "nowhere"], towers())
    assert [layout.current_version_dir(d).name for d in ShardMap.read(sharded).shard_dirs(sharded)] == versions


def test_reindex_routes_the_corpus_by_id_and_a_shard_never_retrains_alone(written, tmp_path):
    one, sharded, documents = written
    changed = documents[:550] + documents[600:650]  # 50 deleted, 50 added
    corpus_file = tmp_path / "changed.jsonl"
    records = ({"_id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata} for d in changed)
    corpus_file.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    report = reindex_shards(sharded, corpus_file, towers())
    assert (report.added, report.deleted, report.unchanged) == (50, 50, 550)
    reindex(one, corpus_file, towers())
    assert ranking(sharded, mode="hybrid") == ranking(one, mode="hybrid")
    shard_dir = ShardMap.read(sharded).shard_dirs(sharded)[0]
    with pytest.raises(InvalidInputError, match="share their centroids"):
        owned = lambda doc_id: shard_of(doc_id, SHARDS) == 0  # noqa: E731
        reindex(shard_dir, corpus_file, FakeEncoder(salt="other towers"), owned=owned)


def test_an_index_splits_into_shards_without_encoding_anything(indexes, tmp_path):
    one, _ = indexes

    class CountingEncoder(FakeEncoder):
        documents_encoded = 0

        def encode_documents(self, texts, *args, **kwargs):
            CountingEncoder.documents_encoded += len(texts)
            return super().encode_documents(texts, *args, **kwargs)

    counts = split_index(one, tmp_path / "split", CountingEncoder(), 2)
    assert sum(counts) == 900 and CountingEncoder.documents_encoded == 0
    for options in ({"mode": "hybrid"}, {"mode": "dense"}):
        assert ranking(tmp_path / "split", **options) == ranking(one, **options)
