"""The embedded default corpus is extracted from the running interpreter without importing modules."""

from __future__ import annotations

import sys

from dualsearch.corpora.sources import read_corpus


def test_default_corpus_covers_topics_modules_classes_and_functions():
    docs = {d.id: d for d in read_corpus("default")}
    assert len(docs) > 1000
    assert {"topic:assert", "module:json", "function:json.dumps", "class:argparse.ArgumentParser"} <= set(docs)
    dumps = docs["function:json.dumps"]
    assert dumps.title == "json.dumps()" and dumps.text == "Serialize ``obj`` to a JSON formatted ``str``."
    assert dumps.metadata["truncated"] is True
    assert dumps.metadata["signature"].startswith("json.dumps(obj, *, skipkeys=False")
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert {k: dumps.metadata[k] for k in ("kind", "module", "python")} == {
        "kind": "function",
        "module": "json",
        "python": python,
    }
    assert not any(d.startswith(("module:test.", "module:idlelib")) for d in docs)


def test_extraction_does_not_import_side_effect_modules():
    for name in ("antigravity", "this"):
        sys.modules.pop(name, None)
    list(read_corpus("default"))
    assert "antigravity" not in sys.modules and "this" not in sys.modules


def test_long_docstrings_keep_their_opening_paragraphs():
    from dualsearch.corpora.stdlib_docs import SUMMARY_CHARS, summary

    docstring = "What it does.\n\nSecond paragraph.\n\n" + "Parameter details. " * 100
    assert summary(docstring) == "What it does.\n\nSecond paragraph."
    assert summary("x" * 2000) == "x" * 2000  # the first paragraph is always whole
    docs = list(read_corpus("default"))
    cut = [d for d in docs if d.metadata.get("truncated")]
    assert cut and all(len(d.text) <= SUMMARY_CHARS or "\n\n" not in d.text for d in cut)
    assert all("\n\n" not in d.text for d in docs if d.metadata["kind"] in ("function", "class"))
    assert not any(d.metadata.get("truncated") for d in docs if d.metadata["kind"] == "topic")
