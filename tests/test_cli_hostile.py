"""Hostile and careless input through the real command, in a subprocess: whatever the input, one line
on stderr, a non-zero exit, and every index left byte for byte as it was (no traceback, ever).

The indexes are built in-process with the fake towers; every case here is refused before towers
would be loaded, which is part of what is tested (bad input is refused before any work).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dualsearch.corpora.sources import read_corpus
from dualsearch.index import layout
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index

ROOT = "{root}"  # replaced by the test's directory in each argument


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    build_index(read_corpus("tiny"), root / "idx", FakeEncoder(), corpus_name="tiny")
    for damaged in ("bad-current", "edited-manifest"):
        shutil.copytree(root / "idx", root / damaged)
    (root / "bad-current" / layout.CURRENT_NAME).write_bytes(b"\x89\xff\x00garbage\xfe")
    manifest = layout.current_version_dir(root / "edited-manifest") / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"document_count": 26', '"document_count": 999'))
    corpora = {
        "surrogate.jsonl": b'{"_id": "a", "text": "fine"}\n{"_id": "b", "text": "bad \\ud800"}\n',
        "surrogate-id.jsonl": b'{"_id": "\\udc80", "text": "fine"}\n',
        "nan.jsonl": b'{"_id": "n", "text": "fine", "score": NaN}\n',
        "bool-id.jsonl": b'{"_id": true, "text": "fine"}\n',
        "other.jsonl": b'{"_id": "elsewhere", "text": "a document of another collection"}\n',
        "empty.jsonl": b"",
        "unterminated.csv": b'id,title,text\nc1,T,"text one\nc2,t,x\nc3,t,y\n',
        "a-file": b"not a directory",
    }
    for name, content in corpora.items():
        (root / name).write_bytes(content)
    return root


CASES = [
    (["search", "idx", b"caf\xe9 espresso"], "the query argument is not valid UTF-8: b'caf\\xe9 espresso'"),
    (["search", "idx", "\u200b\u200b"], "empty query"),
    (["search", "idx", "   "], "empty query"),
    (["delete", "idx", b"bad\xffid"], "the doc ids argument is not valid UTF-8"),
    (["delete", "idx", "no-such-id"], "holds no document with id 'no-such-id'"),
    (["index", "tiny", "--out", b"new\xff"], "the out argument is not valid UTF-8"),
    (["index", "surrogate.jsonl", "--out", "new"], "surrogate.jsonl:2: document b: text (field 'text') is not valid"),
    (["index", "surrogate-id.jsonl", "--out", "new"], "surrogate-id.jsonl:1: document id '\\udc80' is not valid"),
    (["index", "bool-id.jsonl", "--out", "new"], "document id must be a string or an integer, got True"),
    (["index", "unterminated.csv", "--out", "new"], "unterminated.csv:2: malformed CSV"),
    (["index", "empty.jsonl", "--out", "new"], "has no documents"),
    (["index", "tiny", "--out", "a-file/idx"], "cannot write to"),
    (["reindex", "idx", "--corpus", "surrogate.jsonl"], "surrogate.jsonl:2: document b: text"),
    (["reindex", "idx", "--corpus", "surrogate-id.jsonl"], "surrogate-id.jsonl:1: document id '\\udc80'"),
    (["reindex", "idx", "--corpus", "other.jsonl"], "--allow-mass-delete"),
    (["reindex", "idx", "--corpus", "empty.jsonl", "--allow-mass-delete"], "corpus empty.jsonl has no documents"),
    (["add", "idx", "nan.jsonl"], "metadata field 'score' holds nan, which JSON cannot represent"),
    (["search", "bad-current", "tea"], "CURRENT is damaged: not text. To recover, rebuild the index"),
    (["search", "edited-manifest", "tea"], "manifest.json does not match the checksum"),
    (["reindex", "edited-manifest", "--corpus", "tiny"], "manifest.json does not match the checksum"),
    (["delete", "edited-manifest", "tea-green"], "manifest.json does not match the checksum"),
]


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (the writer's lock file aside: taking the lock rewrites it)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(root.rglob("*"))
        if path.name != ".lock"
    }


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(map(repr, argv)) for argv, _ in CASES])
def test_hostile_input_gets_one_line_and_leaves_every_index_unchanged(root, argv, message):
    before = snapshot(root)
    done = subprocess.run(
        [sys.executable, "-m", "dualsearch", *argv],
        cwd=root,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},  # no test reaches the network, even by mistake
    )
    stderr = done.stderr.decode("utf-8", "backslashreplace")
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualsearch: error: "), stderr
    assert message in lines[0]
    assert snapshot(root) == before


def test_the_table_covers_every_writing_command():
    assert {argv[0] for argv, _ in CASES} >= {"index", "reindex", "add", "delete", "search"}
    assert json.dumps([m for _, m in CASES])  # messages are plain text
