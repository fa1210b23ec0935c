"""A simulated click log over NFCorpus train, for training on clicks (`dualsearch finetune LOG --corpus C`).

    python -m bench.click_log [--records 20000] [--out /tmp/dualsearch-bench/clicks/nfcorpus-train.jsonl]
    python -m bench.click_log --describe [--out LOG]      # the statistics of an existing log, not a new one

Nobody publishes a click log over our collections, so we make one from the judgements, in the open:

- **What is shown**: the zero-shot towers (default towers and backend) rank the whole NFCorpus corpus for
  each *train* query; its top 10 is what the user sees.
- **Which queries**: query frequencies follow a Zipf law (the i-th query of a seeded shuffle has weight
  ``1 / i**ZIPF_EXPONENT``), so a few queries, and the documents they show, recur often.
- **Clicks**: a position-biased cascade-free model. The result at rank ``r`` (1-based) is examined with
  probability ``1 / r**EXAMINATION_EXPONENT``; an examined result is clicked with probability
  ``CLICK_IF_RELEVANT`` if the train judgements call it relevant, else ``NOISE_CLICK``.

Writes the log (outside the repository: it is data, rebuilt by this script) and
results/click_log.json: the parameters and seed, the log's SHA-256 and its statistics (records, clicks
per query, share of clicks on the most clicked documents). The shown lists come from floating-point (and
int8) rankings, so another version of the towers' code or another CPU can show a few queries other
documents: the hash says which log a training run used (:mod:`bench.click_training` checks it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_DATA, RESULTS_DIR, write_result

logger = logging.getLogger("bench.click_log")
SHOWN = 10
ZIPF_EXPONENT = 1.1
EXAMINATION_EXPONENT = 1.0
CLICK_IF_RELEVANT = 0.9
NOISE_CLICK = 0.03
SEED = 12


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("/tmp/dualsearch-bench/clicks/nfcorpus-train.jsonl"))
    parser.add_argument("--describe", action="store_true", help="describe the existing log at --out, do not simulate")
    return parser.parse_args(argv)


def shown_lists(beir_dir: Path, query_ids: list[str]) -> dict[str, list[str]]:
    """The zero-shot towers' top :data:`SHOWN` documents for each query (exact search)."""
    from dualsearch.corpora import beir
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.towers.backends import load_encoder

    documents = list(read_corpus(str(beir_dir)))
    queries = beir.read_queries(beir_dir)  # texts only, never metadata
    encoder = load_encoder()
    document_vectors = encoder.encode_documents([d.encoding_text() for d in documents])  # (n, d)
    query_vectors = encoder.encode_queries([queries[q] for q in query_ids])  # (m, d)
    top = np.argsort(-(query_vectors @ document_vectors.T), axis=1)[:, :SHOWN]
    return {q: [documents[j].id for j in row] for q, row in zip(query_ids, top, strict=True)}


def simulate(
    shown: dict[str, list[str]], relevant: dict[str, set[str]], queries: dict[str, str], records: int, seed: int
) -> list[dict]:
    """``records`` log records: a Zipf-drawn query, what was shown, and the position-biased clicks.

    Example:
        >>> log = simulate({"q": ["a", "b"]}, {"q": {"b"}}, {"q": "text"}, 3, seed=0)
        >>> [record["shown"] for record in log]
        [['a', 'b'], ['a', 'b'], ['a', 'b']]
    """
    rng = random.Random(seed)
    order = sorted(shown)
    rng.shuffle(order)
    weights = [1 / (i + 1) ** ZIPF_EXPONENT for i in range(len(order))]
    log = []
    for query_id in rng.choices(order, weights=weights, k=records):
        clicked = []
        for rank, document in enumerate(shown[query_id], start=1):
            if rng.random() < 1 / rank**EXAMINATION_EXPONENT:
                chance = CLICK_IF_RELEVANT if document in relevant.get(query_id, ()) else NOISE_CLICK
                if rng.random() < chance:
                    clicked.append(document)
        log.append({"query": queries[query_id], "shown": shown[query_id], "clicked": clicked})
    return log


def statistics(log: list[dict]) -> dict:
    """Records, clicks, distinct queries, and how concentrated the clicks are."""
    clicks = Counter(d for record in log for d in record["clicked"])
    total = sum(clicks.values())
    per_query = Counter(record["query"] for record in log)
    ranked = [count for _, count in clicks.most_common()]
    top_share = lambda share: round(sum(ranked[: max(1, int(share * len(ranked)))]) / max(total, 1), 4)  # noqa: E731
    return {
        "records": len(log),
        "records_with_a_click": sum(1 for record in log if record["clicked"]),
        "clicks": total,
        "clicks_per_record": round(total / max(len(log), 1), 3),
        "distinct_queries": len(per_query),
        "records_of_the_most_frequent_query": per_query.most_common(1)[0][1] if per_query else 0,
        "distinct_clicked_documents": len(clicks),
        "click_share_of_top_1_percent_documents": top_share(0.01),
        "click_share_of_top_10_percent_documents": top_share(0.10),
    }


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    if args.describe:
        if not args.out.is_file():
            raise SystemExit(f"no click log at {args.out}: run python -m bench.click_log first")
        return describe(args.out)
    from dualsearch.corpora import beir

    beir_dir = args.data / "nfcorpus"
    qrels = beir.read_qrels(beir_dir, "train")
    relevant = {q: {d for d, grade in judged.items() if grade > 0} for q, judged in qrels.items()}
    query_ids = sorted(q for q, documents in relevant.items() if documents)
    queries = beir.read_queries(beir_dir)
    shown = shown_lists(beir_dir, query_ids)
    log = simulate(shown, relevant, queries, args.records, SEED)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(record) + "\n" for record in log), encoding="utf-8")
    return describe(args.out)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def describe(log_path: Path, results_dir: Path = RESULTS_DIR) -> int:
    """Write results/click_log.json for the log at ``log_path``: this script's parameters, the log's hash
    and its statistics."""
    with log_path.open(encoding="utf-8") as lines:
        log = [json.loads(line) for line in lines if line.strip()]
    result = {
        "log": str(log_path),
        "log_sha256": file_sha256(log_path),
        "collection": "nfcorpus train queries and judgements; shown lists from the zero-shot towers (onnx-int8)",
        "parameters": {
            "seed": SEED,
            "shown": SHOWN,
            "zipf_exponent": ZIPF_EXPONENT,
            "examination_exponent": EXAMINATION_EXPONENT,
            "click_if_relevant": CLICK_IF_RELEVANT,
            "noise_click": NOISE_CLICK,
        },
        "statistics": statistics(log),
    }
    print(f"{log_path}: statistics in {write_result('click_log', result, results_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
