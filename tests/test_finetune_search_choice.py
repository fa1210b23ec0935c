"""The search settings a fine-tuning run chooses on dev, saved with the model, and an index that starts
from them (library and CLI)."""

from __future__ import annotations

import json
import shutil

import pytest

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.errors import InvalidInputError
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.search_choice import CANDIDATES, choose_search
from dualsearch.finetune.train import REPORT_NAME, finetune
from dualsearch.ranking.settings import SEARCH_SETTINGS_NAME, model_search_settings
from tests.helpers import FAST_TRAINING as FAST

pytestmark = pytest.mark.slow  # trains, exports or starts Ray: seconds a test (make test-fast skips it)


def index_search(index_dir) -> dict:
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest

    return Manifest.read(current_version_dir(index_dir)).search


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_plain_model_dir):
    out = tmp_path_factory.mktemp("search-choice") / "model"
    return out, finetune(TINY_CORPUS_DIR, out, FinetuneConfig(base=str(tiny_plain_model_dir), **FAST))


def test_every_candidate_is_scored_on_dev_and_the_choice_is_saved_with_the_model(trained):
    from dualsearch.cli.finetune import report_lines
    from dualsearch.towers.backends import DEFAULT_BACKEND

    out, report = trained
    scores = report.search["dev_ndcg_by_search"]
    assert set(scores) == set(CANDIDATES)
    assert report.search["label"] == choose_search(scores)
    assert json.loads((out / REPORT_NAME).read_text())["search"] == report.search
    chosen = CANDIDATES[report.search["label"]]
    assert model_search_settings(out) == chosen
    assert model_search_settings(out / f"dualsearch-{DEFAULT_BACKEND}") == chosen  # the exported towers carry it
    assert any(
        f"an index of these towers uses {report.search['label']} by default" in line for line in report_lines(report)
    )


def test_the_towers_alone_score_on_the_engine_as_the_dev_evaluation_scores_them(trained):
    """The candidates are scored by a real index of the dev corpus; its dense search (exact, one passage
    per short document) ranks as the dev evaluator does, so the two nDCG@10 agree."""
    _, report = trained
    assert report.search["dev_ndcg_by_search"]["dense"] == pytest.approx(report.after["ndcg@10"], abs=1e-4)


def test_the_dev_index_keeps_titles_apart_as_an_index_of_the_corpus_does(monkeypatch, tiny_plain_model_dir):
    """Every passage of a long dev document starts with its title, so the candidates are scored on the
    passages a real index would hold."""
    import dualsearch.write.build as indexer
    from dualsearch.finetune.data import load_training_data
    from dualsearch.finetune.search_choice import choose_search_settings
    from dualsearch.towers.weights import load_sentence_transformer

    built = []
    real_build = indexer.build_index  # choose_search_settings imports it when called: patch its module

    def recording_build(documents, *args, **kwargs):
        documents = list(documents)
        built.extend(documents)
        return real_build(documents, *args, **kwargs)

    monkeypatch.setattr(indexer, "build_index", recording_build)
    dev = load_training_data(TINY_CORPUS_DIR, split="test")
    model = load_sentence_transformer(str(tiny_plain_model_dir))
    choose_search_settings(model, dev, list(dev.documents), str(tiny_plain_model_dir))
    by_id = {document.id: document for document in built}
    assert len(by_id) == 26
    assert by_id["tea-green"].title == "Green tea" and by_id["tea-green"].text.startswith("Green tea is made")


def test_an_index_of_the_model_starts_from_its_settings(tmp_path, tiny_plain_model_dir):
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.write.build import IndexConfig, build_index

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_plain_model_dir, model_dir)
    recommended = {"mode": "hybrid", "fusion": "convex", "dense_weight": 0.9}
    (model_dir / SEARCH_SETTINGS_NAME).write_text(json.dumps({"settings": recommended}))
    build_index(read_corpus("tiny"), tmp_path / "index", DualEncoder.load(str(model_dir)), IndexConfig("Flat"))
    assert {name: index_search(tmp_path / "index")[name] for name in recommended} == recommended
    plain = DualEncoder.load(str(tiny_plain_model_dir))
    build_index(read_corpus("tiny"), tmp_path / "plain", plain, IndexConfig("Flat"))
    assert index_search(tmp_path / "plain")["dense_weight"] == 0.5  # the engine's default, without a recommendation


def test_the_cli_index_takes_the_model_settings_and_the_prior_given_with_it(tmp_path, tiny_plain_model_dir):
    from dualsearch.cli import main

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_plain_model_dir, model_dir)
    (model_dir / SEARCH_SETTINGS_NAME).write_text(json.dumps({"settings": {"mode": "dense"}}))
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": f"d{n}", "text": f"document number {n} about tea", "views": n} for n in range(12)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    command = ["index", str(corpus), "--out", str(tmp_path / "index"), "--model", str(model_dir)]
    assert main([*command, "--index-factory", "Flat", "--prior-field", "views"]) == 0
    search = index_search(tmp_path / "index")
    assert search["mode"] == "dense" and search["prior_field"] == "views" and search["prior_weight"] > 0


@pytest.mark.parametrize("content", ["not json", '{"settings": {"mode": "fuzzy"}}', '{"mode": "dense"}'])
def test_a_damaged_settings_file_is_a_clear_error(tmp_path, content):
    (tmp_path / SEARCH_SETTINGS_NAME).write_text(content)
    with pytest.raises(InvalidInputError, match="is not a search settings file"):
        model_search_settings(tmp_path)
