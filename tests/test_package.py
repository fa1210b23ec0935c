"""The package as users install it: one import name, a lazy facade, nothing shadowed by their files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dualsearch

REPO = Path(__file__).resolve().parents[1]
OUR_FOLDERS = ("search", "corpora", "finetune", "demo")


def run_python(code: str, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_public_name_resolves_and_is_listed_once():
    assert len(dualsearch.__all__) == len(set(dualsearch.__all__))
    assert set(dualsearch.__all__) == set(dualsearch._EXPORTS) | {"__version__"}
    for name in dualsearch.__all__:
        assert getattr(dualsearch, name) is not None, name
    assert issubclass(dualsearch.InvalidInputError, (dualsearch.DualsearchError, ValueError))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        dualsearch.nothing_here  # noqa: B018


def test_import_is_light(tmp_path):
    code = (
        "import sys, dualsearch; "
        "print([m for m in ('torch', 'sentence_transformers', 'gradio', 'faiss', 'numpy') if m in sys.modules])"
    )
    assert run_python(code, tmp_path).strip() == "[]"


def test_users_files_named_like_our_folders_do_not_shadow_the_package(tmp_path):
    (tmp_path / "search.py").write_text("raise SystemExit('the user search.py was imported')\n")
    for name in ("demo", "corpora", "finetune"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise SystemExit('the user {name}/ was imported')\n")
    code = (
        "import dualsearch, dualsearch.cli, dualsearch.corpora.sources, dualsearch.demo.app, "
        "dualsearch.finetune.config; print(len(list(dualsearch.read_corpus('tiny'))))"
    )
    assert run_python(code, tmp_path).strip() == "26"


def test_the_editable_install_maps_only_the_dualsearch_name(tmp_path):
    """`pip install -e` (the Makefile's set-up) adds `dualsearch` and nothing else to the import path."""
    site = [Path(p) for p in sys.path if p.endswith("site-packages")]
    finders = [f for s in site for f in s.glob("__editable___dualsearch_*_finder.py")]
    if not finders:
        pytest.skip("dualsearch is not installed in editable mode here")
    mapping = run_python(
        f"import runpy, json; print(json.dumps(runpy.run_path({str(finders[0])!r})['MAPPING']))", tmp_path
    )
    assert all(name == "dualsearch" or name.startswith("dualsearch.") for name in json.loads(mapping))
    code = f"import importlib.util as u; print([n for n in {OUR_FOLDERS!r} if u.find_spec(n)])"
    assert run_python(code, tmp_path).strip() == "[]"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (setuptools writes build/ beside what it builds)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("search", "corpora", "finetune", "demo"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=600)
    return next(out.glob("dualsearch-*.whl"))


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"dualsearch", f"dualsearch-{dualsearch.__version__}.dist-info"}
    for expected in (
        "dualsearch/corpora/tiny/corpus.jsonl",
        "dualsearch/corpora/tiny/qrels/test.tsv",
        "dualsearch/cli/__init__.py",
        "dualsearch/demo/app.py",
        "dualsearch/finetune/train.py",
    ):
        assert expected in names


@pytest.mark.slow
def test_the_wheel_holds_every_module_of_the_source_folders(wheel):
    """A folder missing from pyproject.toml's package list would install without its modules."""
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {"search": "dualsearch", "corpora": "dualsearch/corpora", "finetune": "dualsearch/finetune"}
    packages["demo"] = "dualsearch/demo"
    missing = [
        str(path.relative_to(REPO))
        for folder, package in packages.items()
        for path in (REPO / folder).rglob("*.py")
        if f"{package}/{path.relative_to(REPO / folder).as_posix()}" not in names
    ]
    assert missing == []


@pytest.mark.slow
def test_a_regular_install_adds_only_dualsearch(wheel, tmp_path):
    """`pip install .` into an empty target: one package, importable from anywhere, its corpus data included."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    top_level = {p.name for p in target.iterdir() if p.name != "bin"}
    assert top_level == {"dualsearch", f"dualsearch-{dualsearch.__version__}.dist-info"}
    work = tmp_path / "work"
    work.mkdir()
    (work / "search.py").write_text("raise SystemExit('the user search.py was imported')\n")
    code = (
        "import sys; before = {m.split('.')[0] for m in sys.modules}; import dualsearch, dualsearch.cli; "
        "docs = list(dualsearch.read_corpus('tiny')); "
        "ours = {m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('dualsearch',) + "
        f"{OUR_FOLDERS!r}}}; print(dualsearch.__file__, len(docs), sorted(ours))"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    # the venv's site-packages stay on the path for the dependencies; the target comes first
    file, count, ours = run_python(code, work, env).split(" ", 2)
    assert file.startswith(str(target)) and count == "26" and ours.strip() == "['dualsearch']"


def test_python_dash_m_dualsearch_is_the_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dualsearch", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == f"dualsearch {dualsearch.__version__}"
