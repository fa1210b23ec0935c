"""Fault injection: a real ``dualsearch reindex`` process is killed with SIGKILL at several points.

Each time the index must open, hold exactly the old corpus or the new one (never a mix), and a
rerun must finish with the new content, reusing the chunks the killed run had encoded.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dualsearch.cli import main
from tests.helpers import CRASH_CORPUS_SIZE, index_contents, live_segment_dir, run_cli, write_crash_corpus

pytestmark = pytest.mark.slow


@pytest.fixture
def indexed(tmp_path, tiny_model_dir):
    old = write_crash_corpus(tmp_path / "old.jsonl", "old")
    new = write_crash_corpus(tmp_path / "new.jsonl", "new")
    index_dir = tmp_path / "idx"
    assert main(["index", str(tmp_path / "old.jsonl"), "--out", str(index_dir), "--model", str(tiny_model_dir)]) == 0
    return index_dir, old, new


@pytest.mark.parametrize(
    ("kill_at", "expected"),
    [
        ("encoding:2", "old"),  # after two of three chunks were encoded and checkpointed
        ("writing", "old"),  # the FAISS index of the new version is on disk, the manifest not yet
        ("before-switch", "old"),  # the new version is complete and renamed into place, CURRENT not yet replaced
        ("after-switch", "new"),  # CURRENT names the new version, the old one not yet cleaned up
    ],
)
def test_sigkill_leaves_old_or_new_and_a_rerun_completes(indexed, tiny_model_dir, kill_at, expected):
    index_dir, old, new = indexed
    corpus = str(index_dir.parent / "new.jsonl")
    killed = run_cli("reindex", str(index_dir), "--corpus", corpus, kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr
    assert index_contents(index_dir, tiny_model_dir) == (old if expected == "old" else new)

    rerun = run_cli("reindex", str(index_dir), "--corpus", corpus)
    assert rerun.returncode == 0, rerun.stderr
    assert index_contents(index_dir, tiny_model_dir) == new
    assert not list(index_dir.glob(".build-*")) and not (index_dir / ".chunks").exists()
    if kill_at.startswith("encoding"):
        assert "from an interrupted run" in rerun.stdout and ", 0 of them from" not in rerun.stdout


def test_killed_first_build_leaves_no_index_and_rerun_resumes(tmp_path, tiny_model_dir):
    write_crash_corpus(tmp_path / "c.jsonl", "v1")
    index_dir = tmp_path / "idx"
    killed = run_cli(
        "index",
        str(tmp_path / "c.jsonl"),
        "--out",
        str(index_dir),
        "--model",
        str(tiny_model_dir),
        kill_at="encoding:1",
    )
    assert killed.returncode == -9
    assert not (index_dir / "CURRENT").exists() and (index_dir / ".chunks").is_dir()
    assert (
        run_cli("index", str(tmp_path / "c.jsonl"), "--out", str(index_dir), "--model", str(tiny_model_dir)).returncode
        == 0
    )
    assert len(index_contents(index_dir, tiny_model_dir)) == CRASH_CORPUS_SIZE


def test_a_running_writer_blocks_a_second_one(indexed):
    index_dir, _, _ = indexed
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from dualsearch.write.lock import IndexLock\n"
                f"with IndexLock({str(index_dir)!r}):\n    print('locked', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = run_cli("delete", str(index_dir), "d1")
        assert second.returncode == 1
        assert f"is being written by process {holder.pid}" in second.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert run_cli("delete", str(index_dir), "d1").returncode == 0  # the kernel released the dead holder's lock


def test_corrupted_file_is_named_on_open(indexed):
    index_dir, _, _ = indexed
    vectors = live_segment_dir(index_dir) / "vectors.f32"
    with open(vectors, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02\x03")
    done = run_cli("search", str(index_dir), "document")
    assert done.returncode == 1 and "vectors.f32 does not match its checksum" in done.stderr
