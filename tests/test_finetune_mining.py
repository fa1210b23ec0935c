"""Hard-negative mining: the rank window and the margin keep likely false negatives out."""

from __future__ import annotations

from dualsearch.corpora.sources import TINY_CORPUS_DIR
from dualsearch.finetune.data import load_pair_records, load_training_data
from dualsearch.finetune.mining import (
    Bm25Ranker,
    NegativeWindow,
    Ranking,
    bm25_rankings,
    negatives_for_pairs,
    select_negatives,
    tower_rankings,
)

# Scores fall by 1 per rank; the positive "p" sits at rank 2 with score 8.
RANKING = Ranking([("a", 10.0), ("b", 9.0), ("p", 8.0), ("c", 7.0), ("d", 6.0), ("e", 5.0), ("f", 4.0)], {"p": 8.0})


def test_window_skips_top_ranks_and_stops_at_range_max():
    assert select_negatives(RANKING, {"p"}, "p", NegativeWindow(0, 50), 3) == ["a", "b", "c"]
    assert select_negatives(RANKING, {"p"}, "p", NegativeWindow(range_min=2, range_max=50), 3) == ["c", "d", "e"]
    assert select_negatives(RANKING, {"p"}, "p", NegativeWindow(range_min=3, range_max=5), 9) == ["c", "d"]


def test_margin_keeps_only_candidates_clearly_below_the_positive():
    # 8 - 0.2 * 8 = 6.4: a, b (above the positive) and c (7.0) are too close to be trusted as negatives
    assert select_negatives(RANKING, {"p"}, "p", NegativeWindow(margin=0.2), 2) == ["d", "e"]
    assert select_negatives(RANKING, {"p"}, "p", NegativeWindow(margin=0.0), 2) == ["c", "d"]


def test_other_positives_and_excluded_ids_are_never_negatives():
    assert select_negatives(RANKING, {"p", "c"}, "p", NegativeWindow(range_min=2), 2, exclude=["d"]) == ["e", "f"]


def test_bm25_ranker_ranks_matching_words_first_and_scores_positives():
    ranker = Bm25Ranker({"tea": "green tea leaves", "coffee": "espresso coffee beans", "bread": "sourdough bread"})
    ranking = ranker.rank("green tea", ["coffee"], depth=2)
    assert ranking.hits[0][0] == "tea" and len(ranking.hits) == 2
    assert ranking.positive_scores["coffee"] == 0.0 < ranking.hits[0][1]
    assert not ranker.scores("the of and").any()  # stopwords only: every score 0, no crash


def test_mined_negatives_respect_window_and_margin_for_every_pair():
    data = load_training_data(TINY_CORPUS_DIR, split="test")
    pairs = [(q, d) for q in sorted(data.qrels) for d in sorted(data.qrels[q])]
    rankings = bm25_rankings(data, depth=20)
    window = NegativeWindow(range_min=1, range_max=20, margin=0.1)
    negatives = negatives_for_pairs(data, pairs, 2, [rankings], window, seed=0)
    assert all(len(row) == 2 for row in negatives)
    for (query_id, positive_id), row in zip(pairs, negatives):
        ranking = rankings[query_id]
        ranks = {d: rank for rank, (d, _) in enumerate(ranking.hits)}
        positive_score = ranking.positive_scores[positive_id]
        for negative in row:
            assert negative not in data.qrels[query_id]
            if negative in ranks and ranks[negative] >= 1:  # mined (not a random fill-in): inside the window and margin
                assert dict(ranking.hits)[negative] <= positive_score - 0.1 * abs(positive_score)


def test_given_negatives_come_first_and_short_windows_are_filled_at_random():
    data = load_pair_records(
        [
            ("r:1", {"query": "tea", "document": "green tea", "negative": "black tea"}),
            ("r:2", {"query": "bread", "document": "sourdough bread"}),
            ("r:3", {"query": "moon", "document": "the moon"}),
        ],
        "rows",
    )
    pairs = [("q0", "d0"), ("q1", "d2")]
    empty = {q: Ranking([], {}) for q in data.queries}
    negatives = negatives_for_pairs(data, pairs, 2, [empty], NegativeWindow(), seed=0)
    assert negatives[0][0] == "d1" and len(set(negatives[0])) == 2
    assert all(n not in data.qrels[q] for (q, _), row in zip(pairs, negatives) for n in row)


def test_tower_rankings_use_the_query_and_document_towers(tiny_model_dir):
    from dualsearch.towers.weights import load_sentence_transformer

    data = load_training_data(TINY_CORPUS_DIR, split="test")
    model = load_sentence_transformer(str(tiny_model_dir))
    rankings = tower_rankings(model, data, depth=5)
    query_vector = model.encode_query([data.queries["q1"]], normalize_embeddings=True)[0]
    document_vectors = model.encode_document([data.documents[d] for d in data.documents], normalize_embeddings=True)
    best = max(zip(data.documents, document_vectors @ query_vector), key=lambda item: item[1])
    assert rankings["q1"].hits[0][0] == best[0] and abs(rankings["q1"].hits[0][1] - best[1]) < 1e-5
    assert set(rankings["q1"].positive_scores) == {"tea-black", "tea-green"}
