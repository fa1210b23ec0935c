"""``dualsearch serve`` at start-up: what it refuses at once (L6), and a fatal signal logged (L4).

The server itself never runs here: ``Server.run`` is replaced by a stub recording that it was reached.
"""

from __future__ import annotations

import faulthandler
import signal
import subprocess
import sys
import textwrap

import pytest

from dualsearch.cli import main
from dualsearch.corpora.sources import read_corpus
from dualsearch.errors import IndexCorruptError
from dualsearch.index.config import IndexConfig
from dualsearch.read.searcher import Searcher
from dualsearch.service.server import Server
from dualsearch.testing import FakeEncoder
from dualsearch.towers.dual_encoder import DualEncoder
from dualsearch.write.build import build_index


@pytest.fixture
def served(monkeypatch) -> list[str]:
    """Run the serve command up to the server's loop, with the fake towers standing in for any model;
    returns the URLs it would have served."""
    monkeypatch.delenv("DUALSEARCH_TOKEN", raising=False)
    monkeypatch.setattr(
        DualEncoder,
        "load",
        classmethod(lambda cls, model, *args, **kwargs: FakeEncoder(similarity="dot" if "dot" in model else "cosine")),
    )
    runs: list[str] = []
    monkeypatch.setattr(Server, "run", lambda self: runs.append(self.url))
    return runs


def test_l6_serve_refuses_a_file(tmp_path, served, capsys):
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0\n")
    assert main(["serve", str(path), "--port", "0"]) == 1
    assert f"{path} is a file, not an index directory" in capsys.readouterr().err
    assert served == []


def test_l6_serve_refuses_a_directory_holding_something_else(tmp_path, served, capsys):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    assert main(["serve", str(tmp_path / "etc"), "--port", "0"]) == 1
    assert "is not a dualsearch index and holds other files" in capsys.readouterr().err
    assert served == []


def test_l6_serve_refuses_towers_that_compare_by_another_similarity(tiny_index, served, capsys):
    assert main(["serve", str(tiny_index), "--port", "0", "--model", "mdot", "--backend", "torch"]) == 1
    err = capsys.readouterr().err
    assert "compare vectors by cosine similarity" in err and "compare by dot" in err
    assert served == []


@pytest.mark.parametrize("state", ["missing", "empty", "a first build under way"])
def test_l6_serve_still_waits_for_a_first_publish(tmp_path, served, capsys, state):
    index_dir = tmp_path / "index"
    if state != "missing":
        index_dir.mkdir()
    if state == "a first build under way":
        (index_dir / ".lock").write_text("")
        (index_dir / ".build-abc").mkdir()
    assert main(["serve", str(index_dir), "--port", "0"]) == 0
    assert "no index yet (503 until one is published)" in capsys.readouterr().out
    assert len(served) == 1


def test_l6_serve_with_matching_towers_starts(tiny_index, served, capsys):
    assert main(["serve", str(tiny_index), "--port", "0", "--model", "fake", "--backend", "torch"]) == 0
    assert len(served) == 1


def test_l4_serve_logs_fatal_signals(tiny_index, served, monkeypatch):
    enabled = []
    monkeypatch.setattr(faulthandler, "enable", lambda *args, **kwargs: enabled.append(kwargs))
    assert main(["serve", str(tiny_index), "--port", "0", "--model", "fake", "--backend", "torch"]) == 0
    assert enabled and enabled[0].get("all_threads") is True


def test_l4_a_fatal_signal_is_logged_with_the_stack_that_took_it(tmp_path):
    """What the server's log shows when a mapped file is truncated between the size check and the read
    (here: a read of the vectors' map behind the searcher's back)."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from dualsearch.cli.serve import log_fatal_signals
        from dualsearch.corpora.sources import read_corpus
        from dualsearch.read.searcher import Searcher
        from dualsearch.testing import FakeEncoder
        from dualsearch.write.build import build_index

        index_dir = Path({str(tmp_path / "index")!r})
        build_index(read_corpus("tiny"), index_dir, FakeEncoder())
        log_fatal_signals()
        with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
            (searcher.store.segments[0].directory / "vectors.f32").open("w").close()  # truncated in place
            print(float(searcher.vectors[-1].sum()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGBUS, done.stderr
    assert done.stderr.startswith("Fatal Python error: Bus error")
    assert 'File "<string>"' in done.stderr.partition("Current thread")[2]  # the line that read the map


@pytest.mark.parametrize(("mapped", "exact"), [("index.ivfdata", False), ("vectors.f32", True)])
def test_l4_a_mapped_file_truncated_after_opening_is_an_error_not_a_crash(tmp_path, mapped, exact):
    index_dir = tmp_path / "index"
    build_index(read_corpus("tiny"), index_dir, FakeEncoder(), IndexConfig(on_disk=True))
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        with open(searcher.store.segments[0].directory / mapped, "r+b") as handle:
            handle.truncate(8)  # in place: the searcher's memory map now reaches past the file's end
        with pytest.raises(IndexCorruptError, match=f"{mapped} has 8 bytes.*changed in place"):
            searcher.search("green tea", k=3, mode="dense", exact=exact)


def test_serve_takes_a_refresh_interval_and_refuses_a_negative_one(tiny_index, served, monkeypatch, capsys):
    apps = []
    monkeypatch.setattr(Server, "run", lambda self: apps.append(self._server.config.app))
    assert main(["serve", str(tiny_index), "--port", "0", "--refresh-seconds", "0.25"]) == 0
    assert apps[0].state.writes.refresh_seconds == 0.25
    with pytest.raises(SystemExit):
        main(["serve", str(tiny_index), "--port", "0", "--refresh-seconds", "-1"])
    assert "give 0 or more seconds" in capsys.readouterr().err
