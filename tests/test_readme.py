"""The README and the guides say what the code does: the Python example runs as written, tables come
from code, and the README's figures are the ones results/*.json hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.report_readme import headline_table, with_headline_table
from dualsearch.corpora.sources import corpus_formats_markdown

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
GUIDE = (REPO / "docs" / "guide.md").read_text(encoding="utf-8")


def python_example() -> str:
    section = README.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_python_example_is_one_import():
    imports = [line for line in python_example().splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import dualsearch"]


@pytest.mark.slow
def test_the_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_example(), "README.md", "exec"), {})
    first = capsys.readouterr().out.splitlines()[0].split()
    assert first[0] == "1" and first[2] == "coffee-espresso"
    assert (tmp_path / "my-index" / "CURRENT").is_file()


def test_the_corpus_table_is_the_one_the_code_renders():
    assert corpus_formats_markdown() in GUIDE


def test_the_readme_figures_are_those_of_the_results_files():
    """`python -m bench report` writes them; a hand edit, or results changed without the report, fails."""
    assert with_headline_table(README, headline_table(REPO / "results")) == README
    assert "not run yet" not in headline_table(REPO / "results")


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 200
    assert "../shared" not in README and "issue" not in README.lower()


def test_user_docs_never_point_at_our_benchmark_data():
    """A user's clone has no ../shared: the docs name a download or a variable instead."""
    offenders = [path.name for path in (REPO / "docs").glob("*.md") if "../shared" in path.read_text(encoding="utf-8")]
    assert offenders == [] and "../shared" not in README
