"""run_query and its helpers (demo/app.py, search/requests/search.py, demo/render.py): escaping, marking, messages."""

from __future__ import annotations

import re

import pytest

from dualsearch.demo.app import EMPTY_QUERY_MESSAGE, examples_for, open_searchers, run_query
from dualsearch.demo.render import PanelInfo, highlight, render_results
from dualsearch.errors import DualsearchError, InvalidInputError
from dualsearch.ranking.explain import highlight_words
from dualsearch.read.searcher import Searcher, SearchResult
from dualsearch.requests.search import MAX_QUERY_CHARS, prepare_query, search_records
from dualsearch.requests.snippets import query_terms, snippet
from dualsearch.write.build import IndexConfig, build_index


@pytest.fixture
def searcher(tiny_index, fake_encoder) -> Searcher:
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    yield searcher
    searcher.close()


def _doc_ids(panel: str) -> list[str]:
    return re.findall(r'data-doc-id="([^"]*)"', panel)


def _visible_text(panel: str) -> str:
    """What a browser shows: tags dropped, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", panel))


def test_run_query_ranks_like_the_searcher_and_shows_rank_score_id_and_time(searcher):
    [panel] = run_query({"tiny": searcher}, "how is espresso made", k=3)
    expected = searcher.search("how is espresso made", k=3)
    assert _doc_ids(panel) == [result.doc_id for result in expected]
    assert "Espresso" in panel and f"score {expected[0].score:.3f}" in panel and "<code>coffee-espresso</code>" in panel
    assert re.search(r"3 results in \d+\.\d ms", panel)
    assert "nprobe 1 of 1 lists" in panel  # the tiny corpus makes one inverted list


def test_markup_in_documents_is_escaped_and_shown_as_text(searcher):
    [panel] = run_query({"tiny": searcher}, "escape html script img", k=1)
    assert _doc_ids(panel) == ["web-html-escaping"]
    assert "<script" not in panel and "<img" not in panel
    assert "&lt;<mark>script</mark>&gt;" in panel and "&lt;<mark>img</mark> onerror=alert(1)&gt;" in panel
    assert "<script> and <img onerror=alert(1)>" in _visible_text(panel)


def test_markup_in_the_query_and_index_name_is_escaped(searcher):
    [panel] = run_query({'<b onmouseover="x">': searcher}, '<script>alert(1)</script> "tea"', k=2)
    assert "<b " not in panel and "<script>" not in panel and "&lt;b onmouseover=&quot;x&quot;&gt;" in panel
    assert "<mark>tea</mark>" in panel.lower()


def test_without_the_towers_side_query_words_are_marked_case_insensitively_by_stem(searcher):
    [panel] = run_query({"tiny": searcher}, "Escaping HTML", k=1, mode="lexical")
    assert "<mark>Escaping</mark> <mark>HTML</mark>" in panel  # the title
    assert "must <mark>escape</mark> characters" in panel  # "escaping" marks "escape" too
    assert query_terms("how do I parse the arguments") == ["argument", "pars"]  # stop words dropped


def test_the_marked_words_are_the_explanation_of_the_towers_score(searcher):
    query = "why does mars look red"
    [panel] = run_query({"tiny": searcher}, query, k=1)
    [result] = searcher.search(query, k=1)
    [explanation] = searcher.explain(query, [result])
    marked = {word.lower() for word in re.findall(r"<mark>(.*?)</mark>", panel)}
    expected = set(highlight_words(result.text, explanation["document_tokens"]))
    expected |= set(highlight_words(result.title, explanation["document_tokens"], field="title"))
    assert expected and marked == expected


def test_empty_query_gives_a_message_per_panel(searcher):
    for query in ("", "   \n\t", None):
        panels = run_query({"a": searcher, "b": searcher}, query)
        assert len(panels) == 2 and all(EMPTY_QUERY_MESSAGE in panel for panel in panels)
        assert all("ds-error" not in panel for panel in panels)


@pytest.mark.parametrize(
    ("k", "nprobe", "words"),
    [
        (0, 0, "k must be"),
        (101, 0, "k must be"),
        ("many", 0, "k must be"),
        (5, -1, "nprobe must be"),
        (2.5, 0, "k must be"),
    ],
)
def test_bad_k_or_nprobe_is_an_error_message_not_an_exception(searcher, k, nprobe, words):
    [panel] = run_query({"tiny": searcher}, "tea", k=k, nprobe=nprobe)
    assert "ds-error" in panel and "Search failed: " + words in panel and "Traceback" not in panel


def test_sliders_send_floats_and_nprobe_zero_means_the_default(searcher):
    [panel] = run_query({"tiny": searcher}, "tea", k=4.0, nprobe=0.0)
    assert len(_doc_ids(panel)) == 4 and "nprobe 1 of 1 lists" in panel


def test_a_failing_search_shows_an_escaped_error_not_a_traceback(searcher, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("faiss exploded <b>")

    monkeypatch.setattr(searcher, "search_batch", broken)
    [panel] = run_query({"tiny": searcher}, "tea")
    assert "ds-error" in panel and "RuntimeError: faiss exploded &lt;b&gt;" in panel and "Traceback" not in panel
    monkeypatch.setattr(
        searcher, "search_batch", lambda *a, **k: (_ for _ in ()).throw(DualsearchError("index went away"))
    )
    assert "Search failed: index went away" in run_query({"tiny": searcher}, "tea")[0]


def test_no_results_is_a_message(searcher, monkeypatch):
    monkeypatch.setattr(searcher, "search_batch", lambda queries, *args, **kwargs: [[] for _ in queries])
    [panel] = run_query({"tiny": searcher}, "tea")
    assert "No results" in panel and "0 results" in panel


def test_a_10000_character_query_is_shortened_with_a_note(searcher):
    query = "green tea " * 1000  # 10,000 characters
    [panel] = run_query({"tiny": searcher}, query, k=2)
    text, note = prepare_query(query)
    assert len(text) <= MAX_QUERY_CHARS and text.endswith("tea") and note in _visible_text(panel)
    assert "of 9,999 characters" in note  # stripped length
    assert _doc_ids(panel)[0] == "tea-green"
    assert prepare_query("x" * 5000)[0] == "x" * MAX_QUERY_CHARS  # no space to cut at


def test_emoji_and_non_latin_queries_work(searcher):
    for query in ("🍵 tea ☕", "緑茶 green tea", "чай", "🙂🙂🙂"):
        [panel] = run_query({"tiny": searcher}, query, k=3)
        assert len(_doc_ids(panel)) == 3, query
    assert "<mark>緑茶</mark>" in highlight("飲む 緑茶", query_terms("緑茶"))


def test_side_by_side_indexes_each_get_a_panel_and_nprobe_is_ignored_without_lists(tmp_path, searcher, fake_encoder):
    from dualsearch.corpora.sources import read_corpus

    build_index(read_corpus("tiny"), tmp_path / "flat", fake_encoder, IndexConfig(factory="Flat"), corpus_name="tiny")
    flat = Searcher.open(tmp_path / "flat", encoder=fake_encoder)
    ivf_panel, flat_panel = run_query({"ivf": searcher, "flat": flat}, "black tea", k=2, nprobe=7)
    assert _doc_ids(ivf_panel) == _doc_ids(flat_panel) == ["tea-black", "tea-green"]
    assert "nprobe 1 of 1 lists" in ivf_panel and "nprobe" not in flat_panel  # 7 is capped at nlist / ignored
    records = search_records({"ivf": searcher, "flat": flat}, "black tea", k=2, nprobe=7)
    assert [(r["index"], r["nprobe"]) for r in records] == [("ivf", 1), ("flat", 0)]
    flat.close()


def test_search_records_are_json_and_match_the_searcher(searcher):
    import json

    [record] = search_records({"tiny": searcher}, "why does mars look red", k=3)
    expected = searcher.search("why does mars look red", k=3)
    assert [r["id"] for r in record["results"]] == [r.doc_id for r in expected]
    assert json.loads(json.dumps(record))["results"][0]["metadata"] == expected[0].metadata
    with pytest.raises(InvalidInputError, match="empty query"):
        search_records({"tiny": searcher}, "  ")


def test_snippet_centres_on_query_words_and_keeps_short_texts():
    text = " ".join(f"filler{i}" for i in range(200)) + " the argparse module parses arguments " + "tail " * 200
    short = snippet(text, query_terms("parse arguments"))
    assert short.startswith("… ") and short.endswith(" …") and "argparse module parses arguments" in short
    assert len(short) < 340
    assert snippet("  a   short\ntext ", ["short"]) == "a short text"


def test_render_results_uses_the_doc_id_when_there_is_no_title():
    panel = render_results([SearchResult(1, "doc-<7>", 0.5, "", "body")], "body", PanelInfo("x", 0.002, 0, 0))
    assert '<span class="ds-rank">1.</span>doc-&lt;7&gt;' in panel and "1 result in 2.0 ms" in panel


def test_open_searchers_labels_indexes_by_folder_and_shares_towers(tiny_index, fake_encoder, monkeypatch):
    original, calls = Searcher.open, []

    def open_with_fake_towers(path, encoder=None):
        calls.append(encoder)
        return original(path, encoder=encoder or fake_encoder)

    monkeypatch.setattr(Searcher, "open", staticmethod(open_with_fake_towers))
    searchers = open_searchers([str(tiny_index), str(tiny_index), str(tiny_index)])
    assert list(searchers) == ["tiny-index", "tiny-index (2)", "tiny-index (3)"]
    assert calls == [None, fake_encoder, fake_encoder]  # later indexes reuse the first one's towers
    assert all(s.search("tea", k=1)[0].doc_id.startswith("tea-") for s in searchers.values())


def test_examples_suit_the_corpus(searcher):
    assert "escape html on a web page" in examples_for(searcher)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (5, "the query must be a string, got int"),
        (["tea"], "the query must be a string, got list"),
        ({"q": "tea"}, "the query must be a string, got dict"),
        ("tea \ud800", "the query is not valid Unicode"),
        (None, "empty query"),
        ("\x00\u200b", "empty query"),
    ],
)
def test_the_api_answers_bad_queries_with_a_message(searcher, query, message):
    """Each becomes gr.Error(message) in the /search endpoint, not {"error": null} and a traceback."""
    with pytest.raises(InvalidInputError, match=message):
        search_records({"tiny": searcher}, query)


def test_the_mode_and_a_filter_reach_the_search(searcher):
    records = search_records({"tiny": searcher}, "leaves", k=2, mode="lexical", filter="topic=tea")
    results = records[0]["results"]
    assert len(results) == 2 and all(r["metadata"]["topic"] == "tea" for r in results)
    assert all(r["dense_score"] is None and r["lexical_score"] is not None for r in results)  # BM25 alone
    expected = [r.doc_id for r in searcher.search("leaves", k=2, mode="lexical", filter={"topic": "tea"})]
    assert [r["id"] for r in results] == expected
    [panel] = run_query({"tiny": searcher}, "leaves", k=3, mode="dense", filter="topic=tea; topic=coffee")
    assert "Search failed" in panel and "two conditions on" in panel  # a bad filter is a message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("topic=tea", {"topic": "tea"}), ('{"topic": ["tea"]}', {"topic": ["tea"]}), ({"a": 1}, {"a": 1})],
)
def test_the_filter_box_reads_like_the_cli_option(text, expected):
    from dualsearch.requests.search import parse_filter_text

    assert parse_filter_text(text) == expected


def test_an_unknown_mode_is_refused_by_name(searcher):
    with pytest.raises(InvalidInputError, match="mode"):
        search_records({"tiny": searcher}, "tea", mode="semantic")


def test_a_sharded_index_is_searched_and_described_as_a_whole(tmp_path, fake_encoder):
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.demo.app import describe
    from dualsearch.write.shard_build import build_sharded_index

    build_index(read_corpus("tiny"), tmp_path / "one", fake_encoder, corpus_name="tiny")
    build_sharded_index(read_corpus("tiny"), tmp_path / "sharded", fake_encoder, shards=2, corpus_name="tiny")
    one, sharded = (Searcher.open(tmp_path / name, encoder=fake_encoder) for name in ("one", "sharded"))
    one_panel, sharded_panel = run_query({"one": one, "sharded": sharded}, "how is espresso made", k=3)
    assert _doc_ids(sharded_panel) == _doc_ids(one_panel) == [r.doc_id for r in one.search("how is espresso made", k=3)]
    assert describe(sharded).startswith("26 documents from 'tiny' in 2 shards")
    one.close()
    sharded.close()
