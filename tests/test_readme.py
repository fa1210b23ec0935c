"""The README says what the code does: its Python example runs as written, its tables come from code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualsearch.corpora.sources import corpus_formats_markdown

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


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
    assert corpus_formats_markdown() in README
