"""Boosts: documents whose metadata field has a value gain a fixed amount, set per index or per query."""

from __future__ import annotations

import json

import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import InvalidInputError
from dualsearch.index.layout import current_version_dir
from dualsearch.index.manifest import Manifest
from dualsearch.ranking.boosts import parse_boost
from dualsearch.ranking.settings import SearchSettings
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index

# Six documents that say the same thing, so towers and BM25 tie them; only their metadata differs.
KINDS = ["method", "function", "method", "class", "data", "function"]
DEPRECATED = [False, True, False, False, True, False]
TEXT = "split a string into a list of words"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("boosts") / "corpus.jsonl"
    rows = [
        {"_id": f"d{number}", "text": TEXT, "kind": kind, "deprecated": old}
        for number, (kind, old) in enumerate(zip(KINDS, DEPRECATED))
    ]
    rows.append({"_id": "other", "text": "the orbits of the planets", "kind": "function", "deprecated": False})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def index_dir(corpus, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("boosts-index") / "index"
    settings = SearchSettings(boosts=(("kind", "function", 0.5), ("deprecated", True, -0.2)))
    build_index(read_corpus(corpus), index_dir, FakeEncoder(), search_settings=settings)
    return index_dir


def ranked_ids(searcher, **overrides) -> list[str]:
    return [r.doc_id for r in searcher.search("split a string into words", k=6, **overrides)]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_the_index_boosts_lift_and_lower_documents_the_query_cannot_tell_apart(index_dir, mode):
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        results = searcher.search("split a string into words", k=6, mode=mode)
    ids = [r.doc_id for r in results]
    # d5: function (+0.5); d1: function, deprecated (+0.3); then the unboosted in order; d4 deprecated (-0.2) last
    assert ids[:2] == ["d5", "d1"] and ids[-1] == "d4" and set(ids) == {f"d{n}" for n in range(6)}
    assert results[0].score - results[2].score == pytest.approx(0.5, abs=1e-5)
    assert results[1].score - results[2].score == pytest.approx(0.3, abs=1e-5)
    # each result says what its boosts added: the sum of the ones it matched
    assert [round(r.boost, 5) for r in results] == [0.5, 0.3, 0.0, 0.0, 0.0, -0.2]


def test_a_query_replaces_the_boosts_or_turns_them_off(index_dir):
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        assert ranked_ids(searcher, boosts=(("kind", "class", 1.0),))[0] == "d3"
        off = ranked_ids(searcher, boosts=(("kind", "class", 0.0),))
        assert off == ranked_ids(searcher, boosts=()) != ranked_ids(searcher)  # zero weight: as if no boost
        assert {r.boost for r in searcher.search("split a string into words", boosts=())} == {None}


def test_boosts_are_recorded_in_the_manifest_and_read_back_as_tuples(index_dir):
    manifest = Manifest.read(current_version_dir(index_dir))
    assert manifest.search["boosts"] == [["kind", "function", 0.5], ["deprecated", True, -0.2]]
    assert SearchSettings.from_dict(manifest.search).boosts == (("kind", "function", 0.5), ("deprecated", True, -0.2))


@pytest.mark.parametrize(
    "text",
    ["kind:0.1", "kind=function", "kind=function:x", "=function:0.1", "year>=2010:0.1", "kind=function:inf"],
)
def test_malformed_boosts_are_refused_with_the_form_expected(text):
    with pytest.raises(InvalidInputError):
        parse_boost(text)


def test_a_boost_on_a_field_no_document_has_is_an_error(index_dir):
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        with pytest.raises(InvalidInputError, match="colour"):
            searcher.search("words", boosts=(("colour", "red", 0.1),))


def test_the_cli_records_boosts_and_search_can_override_them(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dualsearch.towers.backends.load_encoder", lambda *args, **kwargs: FakeEncoder())
    out = tmp_path / "index"
    command = ["index", str(corpus), "--out", str(out), "--index-factory", "Flat", "--boost", "kind=class:0.7"]
    assert main(command) == 0
    assert Manifest.read(current_version_dir(out)).search["boosts"] == [["kind", "class", 0.7]]
    monkeypatch.setattr(
        "dualsearch.cli.engine._open_searcher", lambda path, backend: Searcher.open(path, FakeEncoder())
    )
    capsys.readouterr()
    assert main(["search", str(out), "split a string", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "d3"
    assert main(["search", str(out), "split a string", "-k", "1", "--json", "--boost", "kind=data:2"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "d4"
    assert main(["search", str(out), "words", "--boost", "kind:2"]) == 1
    assert "FIELD=VALUE:WEIGHT" in capsys.readouterr().err
