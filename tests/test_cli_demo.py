"""``dualsearch demo``: argument parsing, wiring to build_demo/launch_demo, errors, a cheap import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dualsearch.cli import main
from dualsearch.demo import app as demo_app
from dualsearch.read.searcher import Searcher


@pytest.fixture
def fake_towers(monkeypatch, fake_encoder):
    """Searcher.open loads the fake encoder instead of the towers named in the manifest."""
    original = Searcher.open
    monkeypatch.setattr(
        Searcher, "open", staticmethod(lambda path, encoder=None: original(path, encoder=encoder or fake_encoder))
    )


class FakeDemo:
    def __init__(self, record: dict) -> None:
        self.record = record

    def block_thread(self) -> None:  # the real one returns on Ctrl+C
        self.record["blocked"] = True

    def close(self) -> None:
        self.record["closed"] = True


@pytest.fixture
def launched(monkeypatch) -> dict:
    """Record what the command builds and launches instead of serving it."""
    record: dict = {}

    def build(searchers, examples=()):
        record.update(searchers=searchers, examples=list(examples))
        return FakeDemo(record)

    def launch(the_demo, port=None, block=True, quiet=False):
        record.update(demo=the_demo, port=port, block=block)
        return f"http://127.0.0.1:{port or 7860}/"

    monkeypatch.setattr(demo_app, "build_demo", build)
    monkeypatch.setattr(demo_app, "launch_demo", launch)
    return record


def test_demo_serves_one_index_with_examples_for_its_corpus(tiny_index, fake_towers, launched, capsys):
    assert main(["demo", str(tiny_index), "--port", "7999"]) == 0
    assert list(launched["searchers"]) == ["tiny-index"] and launched["examples"] == demo_app.TINY_EXAMPLES
    assert launched["port"] == 7999 and launched["blocked"] and launched["closed"]
    assert "serving tiny-index on http://127.0.0.1:7999/" in capsys.readouterr().out


def test_compare_shows_two_indexes_side_by_side(tiny_index, tmp_path, fake_towers, launched):
    import shutil

    shutil.copytree(tiny_index, tmp_path / "fine-tuned")
    assert main(["demo", str(tiny_index), "--compare", str(tmp_path / "fine-tuned")]) == 0
    assert list(launched["searchers"]) == ["tiny-index", "fine-tuned"] and launched["port"] is None


def test_dir_defaults_to_the_default_index(monkeypatch, tiny_index, fake_towers, launched):
    asked = []
    monkeypatch.setattr(
        "dualsearch.profiles.stdlib.resolve_index_dir",
        lambda name, show_progress=False: asked.append((name, show_progress)) or tiny_index,
    )
    assert main(["demo"]) == 0
    assert asked == [("default", True)] and list(launched["searchers"]) == ["default"]


def test_a_missing_index_is_one_line_on_stderr(tmp_path, capsys, launched):
    assert main(["demo", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dualsearch: error: ") and "nowhere" in err and err.count("\n") == 1
    assert "demo" not in launched


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_a_bad_port_is_refused_by_the_parser(port, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "x", "--port", port])
    assert exit_info.value.code == 2 and "--port" in capsys.readouterr().err


def test_a_missing_demo_extra_is_one_line_naming_it(tiny_index, fake_towers, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` meets when it is not installed
    assert main(["demo", str(tiny_index)]) == 1
    assert capsys.readouterr().err == "dualsearch: error: the demo needs gradio: pip install 'dualsearch[demo]'\n"


def test_importing_the_cli_does_not_import_gradio_or_torch():
    code = "import sys, dualsearch.cli; print(sorted(m for m in ('gradio', 'torch', 'faiss') if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
