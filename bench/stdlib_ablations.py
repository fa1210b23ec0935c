"""What else was tried for the default index's ranking, and did not help: each change scored on the dev
sets of bench/stdlib_dev.py, against the default index's own setting.

    python -m bench.stdlib_ablations

The dev sets are the same 80 questions and 80 known items; the baseline is the setting the default
index ranks with (dualsearch.defaults: fusion weight, usage prior, boost of functions and classes).
Every variant is scored offline from the index's own parts (its passage vectors, searched exactly,
its BM25 index, its prior), fused the way the engine fuses: min-max over each side's top 100,
weighted, then the prior and the boosts. The offline baseline is printed beside the engine's own
(the engine searches IVF, this exact), so the two can be compared. Each variant is tried at a few
strengths, and the best is what the table shows: a generous reading, and still none moved dev by
more than bench/stdlib_dev.py's tolerance. Never run on the judged set. Writes
results/stdlib_ablations.json.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable

import numpy as np

from bench.common import write_result
from bench.stdlib_dev import DEV_QUERIES, TOLERANCE, known_item_queries
from bench.stdlib_search import qrels_of, read_queries, score

K, CANDIDATES = 10, 100
_SNAKE = re.compile(r"\b[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+\b")


class DevScores:
    """The default index's parts and the dev queries, with each query's dense (MaxP) and BM25 score of
    every document, from which a variant's ranking is recombined."""

    def __init__(self, searcher, query_sets: dict[str, dict[str, dict]]) -> None:
        from dualsearch.profiles.stdlib import (
            STDLIB_DENSE_WEIGHT,
            STDLIB_KIND_BOOST,
            STDLIB_PRIOR_FIELD,
            STDLIB_PRIOR_WEIGHT,
            kind_boosts,
        )

        self.searcher, self.query_sets = searcher, query_sets
        self.count = len(searcher)
        fetched = searcher.store.fetch(range(self.count))  # offline recombination reads the index's parts
        self.documents = [fetched[row] for row in range(self.count)]
        self.passage_vectors = np.asarray(searcher.vectors)
        self.passage_docs = searcher.passages.row_to_doc
        self.dense_weight = STDLIB_DENSE_WEIGHT
        self.prior = STDLIB_PRIOR_WEIGHT * searcher.prior_scores(STDLIB_PRIOR_FIELD)
        kinds = np.array([self.documents[row].metadata.get("kind") for row in range(self.count)])
        boosted = [kind for _, kind, _ in kind_boosts(STDLIB_KIND_BOOST)]
        self.boost = np.where(np.isin(kinds, boosted), STDLIB_KIND_BOOST, 0.0)
        self.rows = {self.documents[row].doc_id: row for row in range(self.count)}

    def texts(self, name: str) -> list[str]:
        return [row["query"] for row in self.query_sets[name].values()]

    def dense(self, query_vectors: np.ndarray, passage_weights: np.ndarray | None = None) -> np.ndarray:
        """(queries, documents) best passage cosine; ``passage_weights`` scale each passage's first."""
        scores = query_vectors @ self.passage_vectors.T
        if passage_weights is not None:
            scores = scores * passage_weights
        best = np.full((len(query_vectors), self.count), -1.0, np.float32)
        for number in range(len(query_vectors)):
            np.maximum.at(best[number], self.passage_docs, scores[number])
        return best

    def lexical(self, texts: list[str], index=None, prepare: Callable[[str], str] = str) -> np.ndarray:
        index = index or self.searcher.lexical
        return np.stack([index.scores(prepare(text)) for text in texts])

    def mrr(self, name: str, dense: np.ndarray, lexical: np.ndarray, extra=None, parent=None) -> float:
        """MRR@10 of set ``name`` ranked from these scores; ``extra`` (n,) joins every score, ``parent``
        (rows, weight) adds the weight times the fused score of each document's parent document."""
        from dualsearch.ranking.fusion import min_max

        run = {}
        for number, query_id in enumerate(self.query_sets[name]):
            top = set(np.argsort(-dense[number])[:CANDIDATES]) | set(np.argsort(-lexical[number])[:CANDIDATES])
            candidates = np.array(sorted(top))
            fused = self.dense_weight * min_max(dense[number][candidates])
            fused += (1 - self.dense_weight) * min_max(lexical[number][candidates])
            total = fused + self.prior[candidates] + self.boost[candidates]
            if extra is not None:
                total += extra[candidates]
            if parent is not None:
                rows, weight = parent
                everywhere = np.zeros(self.count)
                everywhere[candidates] = fused
                total += weight * np.where(rows[candidates] >= 0, everywhere[np.maximum(rows[candidates], 0)], 0.0)
            order = candidates[np.argsort(-total, kind="stable")][:K]
            run[query_id] = {self.documents[row].doc_id: float(K - rank) for rank, row in enumerate(order)}
        return score(qrels_of(self.query_sets[name]), run)["mrr@10"]

    def both(self, **variant) -> dict[str, float]:
        """Questions, known items and their mean, each query set ranked with ``variant``: per set
        ``query_vectors``, ``lexical``; shared ``extra``, ``parent``, ``passage_weights``."""
        scores = {}
        for name in self.query_sets:
            vectors = variant.get("query_vectors", {}).get(name)
            vectors = vectors if vectors is not None else self.searcher.encoder.encode_queries(self.texts(name))
            lexical = variant.get("lexical", {}).get(name)
            lexical = lexical if lexical is not None else self.lexical(self.texts(name))
            dense = self.dense(vectors, variant.get("passage_weights"))
            scores[name] = round(self.mrr(name, dense, lexical, variant.get("extra"), variant.get("parent")), 4)
        scores["mrr@10"] = round(sum(scores[name] for name in self.query_sets) / len(self.query_sets), 4)
        return scores


def expanded_queries(dev: DevScores, name: str, count: int, weight: float) -> np.ndarray:
    """Pseudo-relevance feedback: each query vector plus ``weight`` times the mean of its ``count``
    best passages, normalised."""
    vectors = dev.searcher.encoder.encode_queries(dev.texts(name))
    best = np.argsort(-(vectors @ dev.passage_vectors.T), axis=1)[:, :count]
    moved = vectors + weight * dev.passage_vectors[best].mean(axis=1)
    return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)


def parent_rows(dev: DevScores, level: str) -> np.ndarray:
    """Each document's parent row (-1: none): its module's document, or a method's class document."""
    parents = np.full(dev.count, -1)
    for row in range(dev.count):
        kind, name = dev.documents[row].doc_id.split(":", 1)
        if level == "module" and kind != "module":
            parent = f"module:{dev.documents[row].metadata.get('module')}"
        elif level == "class" and kind in ("method", "data"):
            parent = f"class:{name.rpartition('.')[0]}"
        else:
            continue
        parents[row] = dev.rows.get(parent, -1)
    return parents


def snake_case_words(text: str) -> str:
    """``text`` and, after it, the words of its ``snake_case`` names.

    Example:
        >>> snake_case_words("Path.read_text(encoding=None)")
        'Path.read_text(encoding=None) read text'
    """
    words = [match.group(0).replace("_", " ") for match in _SNAKE.finditer(text)]
    return " ".join([text, *words])


def variants(dev: DevScores) -> dict[str, list[tuple[str, dict]]]:
    """Each idea, at the strengths tried: (strength, variant for :meth:`DevScores.both`)."""
    from dualsearch.index.lexical import LexicalIndex

    names = list(dev.query_sets)
    texts = [f"{d.title} {d.text}" if d.title else d.text for d in dev.documents]
    split_index = LexicalIndex.build(snake_case_words(text) for text in texts)
    first = np.ones(len(dev.passage_docs), bool)
    first[1:] = dev.passage_docs[1:] != dev.passage_docs[:-1]
    lengths = np.log1p([len(d.text) for d in dev.documents])
    modules = {
        d.doc_id.split(":", 1)[1]: d.metadata.get("usage", 0) for d in dev.documents if d.doc_id[:7] == "module:"
    }
    popularity = np.log1p([modules.get(d.metadata.get("module"), 0) for d in dev.documents])
    prompt = "How to {} in Python?"
    prompted = {n: dev.searcher.encoder.encode_queries([prompt.format(t) for t in dev.texts(n)]) for n in names}
    return {
        "query expanded from its first passages": [
            (
                f"{count} passages, weight {weight}",
                {"query_vectors": {n: expanded_queries(dev, n, count, weight) for n in names}},
            )
            for count, weight in ((3, 0.3), (5, 0.3), (10, 0.5))
        ],
        "the module's score joins its members'": [
            (f"weight {weight}", {"parent": (parent_rows(dev, "module"), weight)}) for weight in (0.05, 0.1, 0.2)
        ],
        "the class's score joins its methods'": [
            (f"weight {weight}", {"parent": (parent_rows(dev, "class"), weight)}) for weight in (0.05, 0.1, 0.2)
        ],
        "BM25 also reads the words of snake_case names": [
            ("on", {"lexical": {n: dev.lexical(dev.texts(n), split_index, snake_case_words) for n in names}})
        ],
        f"a prompt before the query ({prompt!r})": [("on", {"query_vectors": prompted})],
        "passages after the first weigh less": [
            (f"weight {weight}", {"passage_weights": np.where(first, 1.0, weight)}) for weight in (0.98, 0.95, 0.9)
        ],
        "a prior on the text's length": [
            (f"weight {weight}", {"extra": weight * lengths / lengths.max()}) for weight in (0.02, 0.05, 0.1)
        ],
        "a prior on the module's popularity": [
            (f"weight {weight}", {"extra": weight * popularity / popularity.max()}) for weight in (0.02, 0.05, 0.1)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.profiles.stdlib import resolve_index_dir
    from dualsearch.read.searcher import Searcher

    query_sets = {"questions": read_queries(DEV_QUERIES), "known_items": known_item_queries(read_corpus("default"))}
    searcher = Searcher.open(resolve_index_dir("default", show_progress=True))
    dev = DevScores(searcher, query_sets)
    engine = {}
    for name, queries in query_sets.items():
        results = searcher.search_batch([row["query"] for row in queries.values()], k=K)
        run = {query_id: {r.doc_id: r.score for r in hits} for query_id, hits in zip(queries, results)}
        engine[name] = round(score(qrels_of(queries), run)["mrr@10"], 4)
    engine["mrr@10"] = round(sum(engine.values()) / len(query_sets), 4)
    baseline = dev.both()
    print(f"engine {engine}; offline baseline {baseline}")
    rows = []
    for idea, tried in variants(dev).items():
        scored = [(strength, dev.both(**variant)) for strength, variant in tried]
        strength, best = max(scored, key=lambda pair: pair[1]["mrr@10"])
        rows.append({"change": idea, "best": strength, "metrics": best, "tried": dict(scored)})
        print(f"{idea}: best {strength}, MRR@10 {best['mrr@10']:.4f} ({best['mrr@10'] - baseline['mrr@10']:+.4f})")
    result = {"engine": engine, "baseline": baseline, "tolerance": TOLERANCE, "changes": rows}
    print(f"wrote {write_result('stdlib_ablations', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
