"""Fine-tune the query and document towers with MultipleNegativesRankingLoss.

Entry points: :func:`dualsearch.finetune.train.finetune` (data in, model directory out), configured by
:class:`dualsearch.finetune.config.FinetuneConfig`; on the command line ``dualsearch finetune DATA --out DIR``.
Modules: ``data`` (pairs from BEIR, JSONL or Hugging Face datasets), ``sampling`` (pair subsets, dev
hold-out, dev corpus), ``mining`` (hard negatives), ``model`` (the towers), ``dataset`` (trainer
columns), ``evaluator`` (dev IR metrics), ``trainer`` (the sentence-transformers trainer), ``train``
(the whole run). Importing this package loads nothing heavy.
"""
