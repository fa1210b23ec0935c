"""dualsearch: semantic search over your own documents with a query tower and a document tower.

Everything a user needs is one import away; the names load on first use, so ``import dualsearch``
stays fast and pulls in neither torch nor Gradio.

Example:
    >>> import dualsearch
    >>> from dualsearch.testing import FakeEncoder  # in real use: dualsearch.DualEncoder.load()
    >>> import tempfile
    >>> index_dir = tempfile.mkdtemp() + "/index"
    >>> _ = dualsearch.index_corpus("tiny", index_dir, FakeEncoder())
    >>> with dualsearch.Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
    ...     print(searcher.search("how is espresso made", k=1)[0].doc_id)
    coffee-espresso
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dualsearch.version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "DualEncoder": "dualsearch.towers.dual_encoder",
    "OnnxEncoder": "dualsearch.towers.exported",
    "load_encoder": "dualsearch.towers.backends",
    "export_towers": "dualsearch.towers.export",
    "Encoder": "dualsearch.towers.contract",
    "Searcher": "dualsearch.read.searcher",
    "SearchResult": "dualsearch.read.searcher",
    "Document": "dualsearch.corpora.document",
    "FieldNames": "dualsearch.corpora.records",
    "read_corpus": "dualsearch.corpora.sources",
    "IndexConfig": "dualsearch.index.config",
    "build_index": "dualsearch.write.build",
    "index_corpus": "dualsearch.write.build",
    "BuildReport": "dualsearch.write.build",
    "reindex": "dualsearch.write.reindex",
    "add_documents": "dualsearch.write.reindex",
    "delete_documents": "dualsearch.write.reindex",
    "ReindexReport": "dualsearch.write.reindex",
    "evaluate": "dualsearch.read.evaluation",
    "finetune": "dualsearch.finetune.train",
    "FinetuneConfig": "dualsearch.finetune.config",
    "DualsearchError": "dualsearch.errors",
    "InvalidInputError": "dualsearch.errors",
    "UnknownDocumentError": "dualsearch.errors",
    "CorpusError": "dualsearch.errors",
    "CorpusNotFoundError": "dualsearch.errors",
    "TrainingDataError": "dualsearch.errors",
    "IndexNotFoundError": "dualsearch.errors",
    "IndexMismatchError": "dualsearch.errors",
    "IndexBuildError": "dualsearch.errors",
    "IndexCorruptError": "dualsearch.errors",
    "IndexLockedError": "dualsearch.errors",
    "IndexNotWritableError": "dualsearch.errors",
    "DiskFullError": "dualsearch.errors",
    "SearchFailedError": "dualsearch.errors",
    "ModelError": "dualsearch.errors",
    "MissingDependencyError": "dualsearch.errors",
}

__all__ = [
    "__version__",
    "DualEncoder",
    "OnnxEncoder",
    "load_encoder",
    "export_towers",
    "Encoder",
    "Searcher",
    "SearchResult",
    "Document",
    "FieldNames",
    "read_corpus",
    "IndexConfig",
    "build_index",
    "index_corpus",
    "BuildReport",
    "reindex",
    "add_documents",
    "delete_documents",
    "ReindexReport",
    "evaluate",
    "finetune",
    "FinetuneConfig",
    "DualsearchError",
    "InvalidInputError",
    "UnknownDocumentError",
    "CorpusError",
    "CorpusNotFoundError",
    "TrainingDataError",
    "IndexNotFoundError",
    "IndexMismatchError",
    "IndexBuildError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexNotWritableError",
    "DiskFullError",
    "SearchFailedError",
    "ModelError",
    "MissingDependencyError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dualsearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from dualsearch.corpora.document import Document
    from dualsearch.corpora.records import FieldNames
    from dualsearch.corpora.sources import read_corpus
    from dualsearch.errors import (
        CorpusError,
        CorpusNotFoundError,
        DiskFullError,
        DualsearchError,
        IndexBuildError,
        IndexCorruptError,
        IndexLockedError,
        IndexMismatchError,
        IndexNotFoundError,
        IndexNotWritableError,
        InvalidInputError,
        MissingDependencyError,
        ModelError,
        SearchFailedError,
        TrainingDataError,
        UnknownDocumentError,
    )
    from dualsearch.finetune.config import FinetuneConfig
    from dualsearch.finetune.train import finetune
    from dualsearch.index.config import IndexConfig
    from dualsearch.read.evaluation import evaluate
    from dualsearch.read.searcher import Searcher, SearchResult
    from dualsearch.towers.backends import load_encoder
    from dualsearch.towers.contract import Encoder
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.export import export_towers
    from dualsearch.towers.exported import OnnxEncoder
    from dualsearch.write.build import BuildReport, build_index, index_corpus
    from dualsearch.write.reindex import ReindexReport, add_documents, delete_documents, reindex
