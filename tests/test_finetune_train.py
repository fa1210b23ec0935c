"""Training tiny towers for a few steps: separate vs tied weights, the saved directory, reloading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.finetune.config import FinetuneConfig
from dualsearch.finetune.train import CONFIG_NAME, REPORT_NAME, finetune
from tests.helpers import FAST_TRAINING as FAST

pytestmark = pytest.mark.slow  # trains, exports or starts Ray: seconds a test (make test-fast skips it)


def tower_state(model, route: str) -> dict[str, np.ndarray]:
    from dualsearch.finetune.model import tower_modules

    transformer = tower_modules(model)[route][0]
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in transformer.state_dict().items()}


def plain_state(model) -> dict[str, np.ndarray]:
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in model[0].state_dict().items()}


def differs(left: dict, right: dict) -> bool:
    return any(not np.array_equal(left[name], right[name]) for name in left)


@pytest.fixture(scope="module")
def untied(tmp_path_factory, tiny_plain_model_dir):
    out = tmp_path_factory.mktemp("untied") / "model"
    config = FinetuneConfig(base=str(tiny_plain_model_dir), hard_negatives=1, **FAST)
    return out, finetune(TINY_CORPUS_DIR, out, config)


def test_separate_towers_start_equal_and_end_with_their_own_weights(untied, tiny_plain_model_dir):
    from dualsearch.towers.weights import load_sentence_transformer

    out, _ = untied
    base = plain_state(load_sentence_transformer(str(tiny_plain_model_dir)))
    trained = load_sentence_transformer(str(out))
    query, document = tower_state(trained, "query"), tower_state(trained, "document")
    assert differs(query, document)  # both started as copies of the base: they were trained apart
    assert differs(query, base) and differs(document, base)  # and both were trained


def test_saved_directory_reloads_and_encodes_the_same(untied):
    from dualsearch.towers.dual_encoder import DualEncoder

    out, report = untied
    config = FinetuneConfig.from_json(out / CONFIG_NAME)
    assert config.hard_negatives == 1 and config.split == "test"
    saved = json.loads((out / REPORT_NAME).read_text())
    assert saved["before"] == report.before and saved["after"] == report.after
    assert set(report.after) == {"ndcg@10", "recall@100", "mrr@10"} and report.dev_queries == 4
    assert report.negatives_per_pair == 1 and report.train_pairs > 0
    assert not (out / "checkpoints").exists()
    first, second = DualEncoder.load(str(out)), DualEncoder.load(str(out))
    texts = ["which tea is oxidised the most", "Black tea leaves are fully oxidised"]
    assert first.identity().routes == ("document", "query")
    np.testing.assert_allclose(first.encode_queries(texts), second.encode_queries(texts), atol=1e-6)
    np.testing.assert_allclose(first.encode_documents(texts), second.encode_documents(texts), atol=1e-6)
    assert not np.allclose(first.encode_queries(texts), first.encode_documents(texts), atol=1e-4)


def test_the_saved_model_carries_its_towers_exported_for_the_default_backend(untied, tmp_path, monkeypatch):
    from dualsearch.towers.backends import DEFAULT_BACKEND, load_encoder
    from dualsearch.towers.exported import OnnxEncoder

    monkeypatch.setenv("DUALSEARCH_HOME", str(tmp_path))  # the export cache: must stay unused
    out, _ = untied
    exported = OnnxEncoder.load(out / f"dualsearch-{DEFAULT_BACKEND}")
    assert exported.identity().model == str(out.resolve())  # the published name, not the build directory's
    # for that backend (they were fp32 before 0.5.0): an index of int8 vectors takes a new query tower as is
    assert (exported.identity().query_backend, exported.identity().document_backend) == (DEFAULT_BACKEND,) * 2
    encoder = load_encoder(str(out), DEFAULT_BACKEND)
    assert encoder.query_tower.directory.parent == out / f"dualsearch-{DEFAULT_BACKEND}"
    assert not (tmp_path / "towers").exists()


def test_saved_towers_are_the_kept_ones(untied):
    """What was evaluated as 'after' is what was saved: re-scoring the saved towers gives the same metrics."""
    from dualsearch.finetune.evaluator import RetrievalEvaluator
    from dualsearch.finetune.sampling import dev_corpus
    from dualsearch.finetune.train import load_splits
    from dualsearch.towers.weights import load_sentence_transformer

    out, report = untied
    config = FinetuneConfig.from_json(out / CONFIG_NAME)
    _, dev = load_splits(TINY_CORPUS_DIR, config)
    evaluator = RetrievalEvaluator(dev, dev_corpus(dev, config.dev_max_documents, config.seed))
    metrics = evaluator(load_sentence_transformer(str(out)))
    assert metrics["dev_ndcg@10"] == pytest.approx(report.after["ndcg@10"], abs=1e-5)
    assert max(h["ndcg@10"] for h in report.history) == pytest.approx(report.after["ndcg@10"], abs=1e-5)


def test_tied_towers_share_one_model(tmp_path, tiny_plain_model_dir):
    from dualsearch.towers.dual_encoder import DualEncoder

    out = tmp_path / "tied"
    report = finetune(TINY_CORPUS_DIR, out, FinetuneConfig(base=str(tiny_plain_model_dir), tied=True, **FAST))
    encoder = DualEncoder.load(str(out))
    assert encoder.identity().routes == ()  # a plain model: the same weights encode both sides
    texts = ["how is espresso made"]
    np.testing.assert_allclose(encoder.encode_queries(texts), encoder.encode_documents(texts), atol=1e-6)
    assert differs(plain_state(encoder.model), plain_state(DualEncoder.load(str(tiny_plain_model_dir)).model))
    assert report.before and report.after


def test_router_base_keeps_its_towers_and_refuses_tying(tmp_path, tiny_model_dir):
    from dualsearch.errors import ModelError

    config = FinetuneConfig(
        base=str(tiny_model_dir), gradient_cache=True, mini_batch_size=2, **{**FAST, "dev_fraction": 0.0}
    )
    report = finetune(TINY_CORPUS_DIR, tmp_path / "again", config)
    assert report.before == {} and report.train_pairs == 18
    with pytest.raises(ModelError, match="already has separate query/document towers"):
        finetune(TINY_CORPUS_DIR, tmp_path / "tied", FinetuneConfig(base=str(tiny_model_dir), tied=True, **FAST))
    assert not (tmp_path / "tied").exists() and not list(tmp_path.glob(".tied.building-*"))


def test_existing_output_is_refused_unless_overwrite(tmp_path, tiny_plain_model_dir):
    from dualsearch.errors import InvalidInputError

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    config = FinetuneConfig(base=str(tiny_plain_model_dir), **{**FAST, "dev_fraction": 0.0})
    with pytest.raises(InvalidInputError, match="is not empty"):
        finetune(TINY_CORPUS_DIR, out, config)
    assert (out / "keep.txt").read_text() == "mine"
    finetune(TINY_CORPUS_DIR, out, config, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / CONFIG_NAME).is_file()


def test_both_miners_give_every_pair_two_negatives_that_are_not_its_positives(tiny_model_dir):
    from dualsearch.finetune.data import load_training_data
    from dualsearch.finetune.train import training_dataset
    from dualsearch.towers.weights import load_sentence_transformer

    data = load_training_data(TINY_CORPUS_DIR, split="test")
    config = FinetuneConfig(split="test", hard_negatives=2, negative_miner="both", negative_range_max=10)
    rows = training_dataset(data, config, load_sentence_transformer(str(tiny_model_dir)))
    dataset, count = rows.dataset, rows.negatives_per_pair
    assert count == 2 and dataset.column_names == ["query", "document", "negative_1", "negative_2"]
    positives_by_query = {data.queries[q]: {data.documents[d] for d in docs} for q, docs in data.qrels.items()}
    for row in dataset:
        assert row["negative_1"] != row["negative_2"]
        assert not {row["negative_1"], row["negative_2"]} & positives_by_query[row["query"]]


def test_training_with_known_positives_kept_apart_saves_working_towers(tmp_path, tiny_plain_model_dir):
    from dualsearch.towers.dual_encoder import DualEncoder

    out = tmp_path / "model"
    config = FinetuneConfig(base=str(tiny_plain_model_dir), avoid_known_positives=True, **FAST)
    report = finetune(TINY_CORPUS_DIR, out, config)
    assert report.history and FinetuneConfig.from_json(out / CONFIG_NAME).avoid_known_positives
    vectors = DualEncoder.load(str(out)).encode_queries(["green tea"])
    assert vectors.shape[0] == 1 and np.isfinite(vectors).all()


def test_training_the_query_tower_alone_leaves_the_document_tower_bit_equal(tmp_path, tiny_plain_model_dir):
    from dualsearch.towers.weights import load_sentence_transformer

    out = tmp_path / "query-only"
    options = {**FAST, "interpolate": True, "max_document_length": None}
    report = finetune(TINY_CORPUS_DIR, out, FinetuneConfig(base=str(tiny_plain_model_dir), train="query", **options))
    base_model = load_sentence_transformer(str(tiny_plain_model_dir))
    base, saved = plain_state(base_model), load_sentence_transformer(str(out))
    document = tower_state(saved, "document")
    assert all(np.array_equal(document[name], base[name]) for name in base)  # bit-equal, interpolated or not
    assert report.trained_towers == "query" and differs(tower_state(saved, "query"), base)
    assert report.selection["document_length"] == base_model.max_seq_length  # the base's own length
    assert FinetuneConfig.from_json(out / CONFIG_NAME).max_document_length == base_model.max_seq_length


def test_the_document_tower_trains_at_its_own_learning_rate(tmp_path, tiny_plain_model_dir):
    """At a vanishing document rate the document tower stays (almost) where it started, while the query
    tower, at the usual rate, moves; so the rate reaches the document tower's parameters and no other."""
    from dualsearch.towers.weights import load_sentence_transformer

    out = tmp_path / "slow-document"
    config = FinetuneConfig(base=str(tiny_plain_model_dir), document_learning_rate=1e-12, **FAST)
    finetune(TINY_CORPUS_DIR, out, config)
    base, saved = plain_state(load_sentence_transformer(str(tiny_plain_model_dir))), load_sentence_transformer(str(out))
    document, query = tower_state(saved, "document"), tower_state(saved, "query")
    assert max(float(np.abs(document[name] - base[name]).max()) for name in base) < 1e-6
    assert max(float(np.abs(query[name] - base[name]).max()) for name in base) > 1e-4
    assert FinetuneConfig.from_json(out / CONFIG_NAME).document_learning_rate == 1e-12


@pytest.mark.parametrize("options", [{"tied": True}, {"train": "query"}])
def test_a_document_learning_rate_needs_a_trained_document_tower_of_its_own(options):
    from dualsearch.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="document_learning_rate needs a document tower"):
        FinetuneConfig(document_learning_rate=1e-5, **options)


def test_training_the_query_tower_alone_refuses_another_document_length(tmp_path, tiny_plain_model_dir):
    from dualsearch.errors import InvalidInputError

    config = FinetuneConfig(base=str(tiny_plain_model_dir), train="query", **{**FAST, "max_document_length": 7})
    with pytest.raises(InvalidInputError, match="keeps the document tower as it is"):
        finetune(TINY_CORPUS_DIR, tmp_path / "m", config)


def test_interpolation_choice_is_saved_with_every_score(tmp_path, tiny_plain_model_dir):
    out = tmp_path / "interpolated"
    config = FinetuneConfig(base=str(tiny_plain_model_dir), **{**FAST, "interpolate": True})
    report = finetune(TINY_CORPUS_DIR, out, config)
    saved = json.loads((out / REPORT_NAME).read_text())["selection"]
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert saved["grid"] == grid and saved["key"] == "query/document"
    assert set(saved["dev_ndcg_by_alphas"]) == {f"{query}/{document}" for query in grid for document in grid}
    assert saved["probe_overlap_by_alphas"]["0.0/0.0"] == 1.0  # the base towers against themselves
    label = f"{saved['alphas']['query']}/{saved['alphas']['document']}"
    assert saved["dev_ndcg_by_alphas"][label] == pytest.approx(report.after["ndcg@10"], abs=1e-6)
    assert saved["document_length"] == 64  # fixed by max_document_length in FAST


def test_an_index_of_the_base_towers_takes_a_query_tower_trained_alone_without_encoding(tmp_path, tiny_plain_model_dir):
    """The whole path: index with the base towers, train the query tower, reindex: nothing is encoded."""
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.write.build import IndexConfig, build_index
    from dualsearch.write.reindex import reindex

    index_dir = tmp_path / "index"
    build_index(read_corpus("tiny"), index_dir, DualEncoder.load(str(tiny_plain_model_dir)), IndexConfig("Flat"))
    out = tmp_path / "query-only"
    options = {**FAST, "max_document_length": None, "interpolate": False}
    finetune(TINY_CORPUS_DIR, out, FinetuneConfig(base=str(tiny_plain_model_dir), train="query", **options))
    tuned = DualEncoder.load(str(out))
    report = reindex(index_dir, TINY_CORPUS_DIR, tuned)
    assert report.published and report.encoded == 0 and not report.retrained
    with Searcher.open(index_dir, encoder=tuned) as searcher:
        assert len(searcher.search("green tea", k=3)) == 3


@pytest.mark.parametrize("similarity", ["dot", "euclidean"])
def test_towers_trained_for_a_similarity_save_it_and_an_index_follows(tmp_path, tiny_model_dir, similarity):
    from sentence_transformers import SentenceTransformer

    from dualsearch.corpora.sources import read_corpus
    from dualsearch.index.layout import current_version_dir
    from dualsearch.index.manifest import Manifest
    from dualsearch.read.searcher import Searcher
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.write.build import build_index

    out = tmp_path / "model"
    report = finetune(TINY_CORPUS_DIR, out, FinetuneConfig(base=str(tiny_model_dir), similarity=similarity, **FAST))
    assert report.train_pairs > 0 and report.after  # trained, then scored on dev as the index will rank
    assert json.loads((out / CONFIG_NAME).read_text())["similarity"] == similarity
    model = SentenceTransformer(str(out), device="cpu")
    assert model.similarity_fn_name == similarity  # sentence-transformers' own record, in the model directory
    towers = [type(module).__name__ for route in ("query", "document") for module in model[0].sub_modules[route]]
    assert "Normalize" not in towers  # a vector's length counts for dot product and distance
    encoder = DualEncoder.load(str(out))
    assert not np.allclose(np.linalg.norm(encoder.encode_documents(["green tea", "black coffee"]), axis=1), 1.0)
    build_index(read_corpus("tiny"), tmp_path / "index", encoder)
    manifest = Manifest.read(current_version_dir(tmp_path / "index"))
    assert (manifest.similarity, manifest.metric) == (
        similarity,
        "l2" if similarity == "euclidean" else "inner_product",
    )
    assert Searcher.open(tmp_path / "index", encoder).search("tea", k=3)


def test_the_loss_scores_with_the_chosen_similarity(tiny_model_dir):
    import torch
    from sentence_transformers.util import cos_sim, dot_score, euclidean_sim

    from dualsearch.finetune.model import build_training_model
    from dualsearch.finetune.trainer import make_loss

    model = build_training_model(str(tiny_model_dir))
    queries, documents = torch.randn(3, 8), torch.randn(3, 8) * 3
    for similarity, expected, scale in (
        ("cosine", cos_sim, None),
        ("dot", dot_score, 2.5),
        ("euclidean", euclidean_sim, 9.0),
    ):
        for logq in (False, True):
            loss = make_loss(model, FinetuneConfig(similarity=similarity, logq=logq, scale=scale))
            assert loss.scale == (scale or 20.0)
            torch.testing.assert_close(loss.similarity_fct(queries, documents), expected(queries, documents))


def test_the_scale_for_dot_and_euclidean_gives_the_spread_cosine_has_at_20(tiny_model_dir):
    from dualsearch.finetune.data import load_training_data
    from dualsearch.finetune.model import build_training_model
    from dualsearch.finetune.scale import score_spread, spread_matched_scale

    data = load_training_data("tiny", split="test")  # fewer texts than the sample size: all of them
    for similarity in ("dot", "euclidean"):
        model = build_training_model(str(tiny_model_dir), similarity=similarity)
        scale, rule = spread_matched_scale(model, data, similarity)
        assert f"scale {scale:g}" in rule and similarity in rule
        queries = model.encode_query(list(data.queries.values()), convert_to_numpy=True).astype(np.float64)
        documents = model.encode_document(list(data.documents.values()), convert_to_numpy=True).astype(np.float64)
        unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        unit_documents = documents / np.linalg.norm(documents, axis=1, keepdims=True)
        cosine = unit_queries @ unit_documents.T
        # by hand, as the loss scores: dot products, or distances (not squared) negated
        own = queries @ documents.T
        if similarity == "euclidean":
            own = -np.sqrt(((queries[:, None, :] - documents[None, :, :]) ** 2).sum(-1))
        assert scale * score_spread(own) == pytest.approx(20 * score_spread(cosine), rel=1e-2)


def test_a_dot_product_run_records_the_scale_it_chose_and_why(tmp_path, tiny_model_dir):
    out = tmp_path / "model"
    report = finetune(TINY_CORPUS_DIR, out, FinetuneConfig(base=str(tiny_model_dir), similarity="dot", **FAST))
    saved = json.loads((out / CONFIG_NAME).read_text())
    assert isinstance(saved["scale"], float) and saved["scale"] > 0
    assert any(rule.startswith(f"scale {saved['scale']:g}:") for rule in report.recipe)
