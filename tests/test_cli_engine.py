"""The CLI, in-process: exact command forms, output, and one-line errors with non-zero exits."""

from __future__ import annotations

import json

import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import TINY_CORPUS_DIR


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, tiny_model_dir):
    index_dir = tmp_path_factory.mktemp("cli") / "idx"
    assert main(["index", "tiny", "--out", str(index_dir), "--model", str(tiny_model_dir), "--batch-size", "8"]) == 0
    return index_dir


def test_index_prints_a_summary(cli_index, capsys, tiny_model_dir, tmp_path):
    assert (
        main(
            [
                "index",
                str(TINY_CORPUS_DIR),
                "--out",
                str(tmp_path / "i"),
                "--model",
                str(tiny_model_dir),
                "--index-factory",
                "Flat",
            ]
        )
        == 0
    )
    assert "indexed 26 documents" in capsys.readouterr().out


def test_index_lead_passage_encodes_a_first_paragraph_alone(tmp_path, tiny_model_dir):
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest

    corpus = tmp_path / "docs.jsonl"
    rows = [{"_id": "a", "text": "Summary.\n\nDetails."}, {"_id": "b", "text": "One paragraph."}]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    command = ["index", str(corpus), "--out", str(tmp_path / "i"), "--model", str(tiny_model_dir)]
    assert main([*command, "--index-factory", "Flat", "--lead-passage"]) == 0
    manifest = Manifest.read(current_version_dir(tmp_path / "i"))
    assert manifest.passages["lead"] is True and manifest.passage_count == 3


def test_search_text_and_json(cli_index, capsys):
    assert main(["search", str(cli_index), "espresso", "-k", "3"]) == 0
    text = capsys.readouterr().out
    assert text.count("\n     ") == 3 and text.lstrip().startswith("1.")
    assert main(["search", str(cli_index), "espresso", "-k", "2", "--nprobe", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"version", "mode", "nprobe", "seconds", "query", "results"}
    assert record["query"] == "espresso" and record["nprobe"] == 1 and record["mode"] == "hybrid"
    assert [r["rank"] for r in record["results"]] == [1, 2]
    assert set(record["results"][0]) == {
        "rank",
        "id",
        "score",
        "title",
        "snippet",
        "passage",
        "metadata",
        "dense_score",
        "lexical_score",
        "prior",
        "boost",
    }


def test_search_json_and_the_http_service_give_the_same_record(cli_index, capsys):
    """One result schema (docs/results.md): `dualsearch search --json` prints what `GET /search` answers."""
    import httpx

    from dualsearch.index.query_tower import index_encoder
    from dualsearch.read.live_index import LiveIndex
    from dualsearch.service.app import create_app
    from dualsearch.service.server import Server

    assert main(["search", str(cli_index), "why does mars look red", "-k", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    live = LiveIndex(cli_index, lambda manifest: index_encoder(cli_index, manifest))
    server = Server(create_app(live), "127.0.0.1", 0, None).start()
    try:
        served = httpx.get(f"{server.url}/search", params={"q": "why does mars look red", "k": 3}, timeout=30).json()
    finally:
        server.stop()
        live.close()
    assert set(printed) == set(served)
    assert [set(result) for result in printed["results"]] == [set(result) for result in served["results"]]
    without_timing = [{key: value for key, value in record.items() if key != "seconds"} for record in (printed, served)]
    assert without_timing[0] == without_timing[1]


def test_evaluate_json_has_the_three_metrics(cli_index, capsys):
    assert (
        main(["evaluate", str(cli_index), "--queries", str(TINY_CORPUS_DIR), "--split", "test", "--exact", "--json"])
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10"}
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    assert main(["evaluate", str(cli_index), "--queries", str(TINY_CORPUS_DIR)]) == 0
    assert "ndcg@10" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "{tmp}/none", "tea"], "no index at"),
        (["search", "{index}", "   "], "empty query"),
        (["index", "{tmp}/missing.jsonl", "--out", "{tmp}/o"], "corpus not found"),
        (["index", "{bad}", "--out", "{tmp}/o", "--model", "{model}"], "bad.jsonl:2: invalid JSON"),
        (["index", "tiny", "--out", "{tmp}/o", "--model", "{tmp}/no-model"], "cannot load model"),
        (["evaluate", "{index}", "--queries", "{tmp}"], "no qrels for split 'test'"),
    ],
)
def test_errors_are_one_line_on_stderr(cli_index, tiny_model_dir, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "ok"}\n{"_id": 2, "text": \n')
    argv = [a.format(tmp=tmp_path, index=cli_index, bad=bad, model=tiny_model_dir) for a in argv]
    assert main(argv) == 1
    last_line = capsys.readouterr().err.splitlines()[-1]  # progress bars may come before it
    assert last_line.startswith("dualsearch: error: ") and message in last_line


@pytest.mark.parametrize(
    "argv", [["search", "x", "q", "-k", "0"], ["search", "x", "q", "--nprobe", "many"], ["frobnicate"]]
)
def test_bad_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_python_dash_m_entry_point_runs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dualsearch", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "evaluate" in done.stdout


def test_search_prints_ids_and_titles_escaped_for_the_terminal(tiny_model_dir, tmp_path, capsys):
    corpus = tmp_path / "evil.jsonl"
    rows = [
        {"_id": "evil\nid", "title": "\x1b[2Jclear\u202eright-to-left", "text": "espresso \x07 with a bell"},
        {"_id": "plain", "title": "Plain", "text": "green tea"},
    ]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    index_dir = tmp_path / "idx"
    assert main(["index", str(corpus), "--out", str(index_dir), "--model", str(tiny_model_dir)]) == 0
    capsys.readouterr()
    assert main(["search", str(index_dir), "espresso", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[2Jclear\\u202eright-to-left  [evil\\nid]" in out and "espresso \\x07 with a bell" in out
    assert len(out.splitlines()) == 4  # two results, two lines each
    assert main(["search", str(index_dir), "espresso", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] in ("evil\nid", "plain")  # JSON keeps the text


def test_evaluate_shows_no_sentence_transformers_batches_bar(cli_index, capsys):
    assert main(["evaluate", str(cli_index), "--queries", str(TINY_CORPUS_DIR), "--exact"]) == 0
    assert "Batches" not in capsys.readouterr().err


def test_libraries_that_narrate_stay_quiet_on_the_terminal():
    import logging

    import bm25s  # noqa: F401  (it sets its own logger to DEBUG when imported)

    from dualsearch.cli import _configure_logging

    _configure_logging(verbose=False)
    assert logging.getLogger("bm25s").getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize(("corpus", "model"), [("default", "stdlib"), (str(TINY_CORPUS_DIR), "default")])
def test_index_takes_the_stdlib_query_tower_for_the_default_corpus_only(monkeypatch, tmp_path, corpus, model):
    """The built-in corpus is indexed with the towers tuned on Python questions; any other corpus keeps the
    default towers unless --model says otherwise."""
    loaded = []

    def load_encoder(name, backend=None, batch_size=None):
        loaded.append(name)
        raise SystemExit(0)  # what is loaded is all this test asks

    monkeypatch.setattr("dualsearch.towers.backends.load_encoder", load_encoder)
    monkeypatch.setattr("dualsearch.write.build.index_corpus", lambda corpus, out, encoder, *a, **k: encoder.dimension)
    with pytest.raises(SystemExit):
        main(["index", corpus, "--out", str(tmp_path / "index")])
    assert loaded == [model]
