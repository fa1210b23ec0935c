"""The embedded default corpus is extracted from the running interpreter without importing modules."""

from __future__ import annotations

import sys

from corpora.sources import read_corpus


def test_default_corpus_covers_topics_modules_classes_and_functions():
    docs = {d.id: d for d in read_corpus("default")}
    assert len(docs) > 1000
    assert {"topic:assert", "module:json", "function:json.dumps", "class:argparse.ArgumentParser"} <= set(docs)
    dumps = docs["function:json.dumps"]
    assert dumps.title.startswith("json.dumps(obj")
    assert "JSON" in dumps.text
    assert dumps.metadata == {"kind": "function", "module": "json", "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    assert not any(d.startswith(("module:test.", "module:idlelib")) for d in docs)


def test_extraction_does_not_import_side_effect_modules():
    for name in ("antigravity", "this"):
        sys.modules.pop(name, None)
    list(read_corpus("default"))
    assert "antigravity" not in sys.modules and "this" not in sys.modules
