"""The import graph, read from the source: folders import only downwards, and no module cycle exists.

The engine's folders follow the data flow, so the tree reads as the architecture (docs/architecture.md):

    cli                                   the composition root (python -m dualsearch too)
    demo, service                         the two front ends; neither imports the other
    requests, finetune, profiles          one search request; training; the built-in corpus's index
    write, read                           the two paths through an index; neither imports the other
    ranking                               fusion, MaxP, priors, boosts, filters, explanations
    index                                 the on-disk index: layout, manifest, store, vectors, FAISS, BM25
    towers                                the encoders and their runtimes
    corpora                               documents in
    errors, defaults, version, atomic, records   import nothing of ours but errors

A module may import from its own folder and from folders below it. Imports inside functions count too
(a lazy import is still a dependency). The facade (``dualsearch/__init__.py``) and the test doubles
(``dualsearch.testing``) sit above everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {
    "dualsearch": REPO / "search",
    "dualsearch.corpora": REPO / "corpora",
    "dualsearch.finetune": REPO / "finetune",
    "dualsearch.demo": REPO / "demo",
}
BASE = {"dualsearch.errors", "dualsearch.defaults", "dualsearch.version", "dualsearch.atomic", "dualsearch.records"}
# folder -> height; folders of equal height are siblings and may not import each other
HEIGHTS = {
    "corpora": 1,
    "towers": 2,
    "index": 3,
    "ranking": 4,
    "write": 5,
    "read": 5,
    "requests": 6,
    "finetune": 6,
    "profiles": 6,
    "demo": 7,
    "service": 7,
    "cli": 8,
}
TOP = 9  # the facade, `python -m dualsearch` and the test doubles


def source_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if package == "dualsearch" and any(name.startswith(p + ".") or name == p for p in FOLDERS if p != package):
                continue
            modules[name] = path
    return modules


MODULES = source_modules()


def layer(module: str) -> tuple[int, str]:
    """(height, group): a module may import modules of lower height, or of its own group."""
    if module in BASE:
        return 0, "base"
    if module in {"dualsearch", "dualsearch.__main__", "dualsearch.testing"}:
        return TOP, module
    folder = module.split(".")[1]
    if folder not in HEIGHTS:
        raise AssertionError(f"{module} is in no folder of the layering: give it one (tests/test_layers.py)")
    return HEIGHTS[folder], folder


def imports_of(module: str, path: Path) -> set[str]:
    """The dualsearch modules ``module`` imports anywhere in its body (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "dualsearch"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dualsearch":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found - {module}


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module in a folder that is not below the importer's own."""
    upward = []
    for module, targets in sorted(graph.items()):
        height, group = layer(module)
        for target in sorted(targets):
            target_height, target_group = layer(target)
            if target_group != group and target_height >= height:
                upward.append(f"{module} -> {target}")
    return upward


def test_the_source_tree_maps_to_the_expected_packages():
    assert {
        "dualsearch",
        "dualsearch.cli",
        "dualsearch.errors",
        "dualsearch.corpora.sources",
        "dualsearch.finetune.train",
        "dualsearch.demo.app",
        "dualsearch.service.app",
        "dualsearch.testing",
    } <= set(MODULES)
    assert all(imported in MODULES for targets in GRAPH.values() for imported in targets)


def test_every_module_has_a_place_in_the_layering():
    for module in MODULES:
        layer(module)


def test_the_package_root_keeps_only_the_facade_and_the_base():
    root = {name for name in MODULES if name.count(".") == 1 and name.split(".")[1] not in HEIGHTS}
    assert root == BASE | {"dualsearch.__main__", "dualsearch.testing"}


def test_layers_import_only_downwards():
    assert upward_imports(GRAPH) == []


def test_the_check_catches_an_upward_import_and_siblings_importing_each_other():
    assert upward_imports(
        {
            "dualsearch.index.store": {"dualsearch.read.searcher", "dualsearch.towers.contract"},
            "dualsearch.write.reindex": {"dualsearch.read.searcher", "dualsearch.write.lock"},
            "dualsearch.corpora.text": {"dualsearch.errors"},
        }
    ) == ["dualsearch.index.store -> dualsearch.read.searcher", "dualsearch.write.reindex -> dualsearch.read.searcher"]


def test_no_import_cycles():
    done, active, cycles = set(), [], []

    def visit(module: str) -> None:
        if module in active:
            cycles.append(active[active.index(module) :] + [module])
            return
        if module in done or module == "dualsearch":  # the lazy facade
            return
        active.append(module)
        for target in sorted(GRAPH[module]):
            visit(target)
        active.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)
    assert cycles == []


def test_benchmarks_do_not_import_the_tests():
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "bench").glob("*.py")
        if any(
            isinstance(node, (ast.Import, ast.ImportFrom))
            and any(name.split(".")[0] == "tests" for name in _imported_names(node))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert offenders == []


def test_test_modules_share_helpers_through_helpers_or_conftest_only():
    """A test module importing another runs that module's tests' imports and fixtures twice over and hides
    a dependency; shared code lives in tests/helpers.py (plain helpers) or tests/conftest.py (fixtures)."""
    shared = {"tests.helpers", "tests.demo_server"}
    offenders = [
        f"{path.name} -> {name}"
        for path in (REPO / "tests").glob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in _imported_names(node)
        if name.split(".")[0] == "tests" and name not in shared
    ]
    assert offenders == []


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
