"""Document priors: a numeric metadata field joins every score, in every mode, set per index or per query."""

from __future__ import annotations

import json
import math

import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import InvalidInputError
from dualsearch.index.layout import current_version_dir
from dualsearch.index.manifest import Manifest
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index

# Ten documents that say the same thing, so towers and BM25 tie them; only their views differ.
VIEWS = [3, 0, 250, 7, None, 1000, 12, 0, 40, 1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("priors") / "corpus.jsonl"
    rows = []
    for number, views in enumerate(VIEWS):
        row = {"_id": f"d{number}", "text": "how to brew green tea at the right temperature"}
        if views is not None:
            row["views"] = views
        rows.append(row)
    rows.append({"_id": "other", "text": "planets of the solar system", "views": 5000})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def searcher(corpus, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("priors-index") / "index"
    settings = SearchSettings(prior_field="views", prior_weight=0.5)
    build_index(read_corpus(corpus), index_dir, FakeEncoder(), search_settings=settings)
    with Searcher.open(index_dir, encoder=FakeEncoder()) as opened:
        yield opened


def _by_views(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda doc_id: -(VIEWS[int(doc_id[1:])] or 0))


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_the_prior_orders_documents_the_query_cannot_tell_apart(searcher, mode):
    results = searcher.search("brew green tea", k=5, mode=mode)
    ids = [r.doc_id for r in results]
    assert ids == ["d5", "d2", "d8", "d6", "d3"]  # 1000, 250, 40, 12, 7 views
    assert ids == _by_views([f"d{n}" for n in range(len(VIEWS))])[:5]
    largest = math.log1p(5000)  # the prior scales by the index's largest value ("other")
    assert results[0].prior == pytest.approx(math.log1p(1000) / largest, rel=1e-5)
    assert all(r.score == pytest.approx(r.prior * 0.5 + results[-1].score - results[-1].prior * 0.5) for r in results)


def test_a_prior_does_not_outrank_relevance_at_a_moderate_weight(searcher):
    results = searcher.search("brew green tea", k=11, mode="dense")
    assert results[-1].doc_id == "other"  # the most viewed document, about planets: last


def test_a_query_can_turn_the_prior_off_or_change_its_weight(searcher):
    off = searcher.search("brew green tea", k=10, mode="dense", prior_weight=0)
    assert [r.prior for r in off] == [None] * 10
    assert len({round(r.score, 5) for r in off}) == 1  # without the prior, nothing tells them apart
    heavy = searcher.search("brew green tea", k=1, mode="dense", prior_weight=100)
    assert heavy[0].doc_id == "other"  # a weight no user should pick lets popularity win


def test_a_prior_keeps_filters_inside_the_search(searcher):
    results = searcher.search("brew green tea", k=3, mode="hybrid", filter={"views": {"lt": 10}})
    assert [r.doc_id for r in results] == ["d3", "d0", "d9"]  # 7, 3, 1 views; the missing one fails the range


def test_bad_priors_are_refused(searcher, corpus, tmp_path):
    with pytest.raises(InvalidInputError, match="no document .* has the prior field 'likes'"):
        searcher.search("tea", prior_field="likes", prior_weight=0.1)
    with pytest.raises(InvalidInputError, match="at least 0"):
        searcher.search("tea", prior_weight=-1)
    with pytest.raises(InvalidInputError, match="needs a prior_field"):
        SearchSettings(prior_weight=0.2)


def test_a_query_naming_a_field_that_holds_no_counts_ranks_those_documents_with_prior_0(tmp_path, caplog):
    words = tmp_path / "words.jsonl"  # "views" is no prior field of this index: nothing checked it
    words.write_text(json.dumps({"_id": "a", "text": "tea", "views": "many"}) + "\n")
    build_index(read_corpus(words), tmp_path / "index", FakeEncoder())
    with Searcher.open(tmp_path / "index", encoder=FakeEncoder()) as opened:
        (result,) = opened.search("tea", prior_field="views", prior_weight=0.1)
    assert result.prior == 0.0
    assert "1 documents hold something else (first: 'many')" in caplog.text


def test_the_cli_records_the_prior_in_the_manifest_and_search_can_override_it(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dualsearch.towers.backends.load_encoder", lambda *args, **kwargs: FakeEncoder())
    index_dir = tmp_path / "index"
    assert main(["index", str(corpus), "--out", str(index_dir), "--prior-field", "views", "--prior-weight", "0.4"]) == 0
    search = Manifest.read(current_version_dir(index_dir)).search
    assert search["prior_field"] == "views" and search["prior_weight"] == 0.4
    capsys.readouterr()
    assert main(["search", str(index_dir), "brew green tea", "-k", "1", "--json", "--mode", "dense"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "d5"
    assert main(["search", str(index_dir), "brew green tea", "-k", "1", "--json", "--prior-weight", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["prior"] is None
    assert main(["index", str(corpus), "--out", str(tmp_path / "other"), "--prior-weight", "0.4"]) != 0
    assert "--prior-weight needs --prior-field" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
