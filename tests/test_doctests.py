"""Every docstring example in the package runs, as written (`# doctest: +SKIP` marks the few that
need real towers, a network or a server)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

NOT_IMPORTABLE = {"dualsearch.__main__"}  # running it is the CLI
SLOW = {"dualsearch.corpora.stdlib_docs"}  # its example extracts the whole standard library


def package_modules() -> list[str]:
    """Every module of every dualsearch package (its folders map to packages, so walk each)."""
    names = set()
    for package_name in ("dualsearch", "dualsearch.corpora", "dualsearch.finetune", "dualsearch.demo"):
        package = importlib.import_module(package_name)
        names.add(package_name)
        names |= {info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}.")}
    return sorted(names - NOT_IMPORTABLE)


@pytest.mark.parametrize(
    "module_name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in package_modules()]
)
def test_docstring_examples(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, module_name, globs=vars(module).copy()):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {module_name} failed (see above)"


def bench_modules() -> list[str]:
    import bench

    return sorted(f"bench.{info.name}" for info in pkgutil.iter_modules(bench.__path__))


@pytest.mark.parametrize("module_name", bench_modules())
def test_benchmark_docstring_examples(module_name, tmp_path, monkeypatch):
    test_docstring_examples(module_name, tmp_path, monkeypatch)


def test_every_module_is_checked():
    assert {
        "dualsearch.errors",
        "dualsearch.corpora.stdlib_docs",
        "dualsearch.demo.app",
        "dualsearch.finetune.mining",
        "dualsearch.cli.arguments",
    } <= set(package_modules())


def test_examples_import_the_installed_package_not_the_repository_folders():
    """The repository's folders (search/, finetune/, ...) are importable here only because pytest puts the
    repository on sys.path; a user has `dualsearch` alone, so an example must import from it."""
    folders = ("search", "corpora", "finetune", "demo")
    offenders = []
    for module_name in package_modules():
        module = importlib.import_module(module_name)
        for test in doctest.DocTestFinder(exclude_empty=True).find(module, module_name):
            for example in test.examples:
                words = example.source.split()
                if words[:1] in (["from"], ["import"]) and len(words) > 1 and words[1].split(".")[0] in folders:
                    offenders.append(f"{test.name}: {example.source.strip()}")
    assert offenders == []
