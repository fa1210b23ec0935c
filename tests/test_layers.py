"""The import graph, read from the source: layers only import downwards, and no module cycle exists.

    CLI (dualsearch.cli, python -m dualsearch)        composition root
    dualsearch.finetune, .demo, .service              siblings: none imports another
    the engine (the other dualsearch.* modules)
    dualsearch.corpora
    dualsearch.errors, .defaults, .version            import nothing of ours

Imports inside functions count too (a lazy import is still a dependency). The facade
(``dualsearch/__init__.py``) names everything lazily and is the one module allowed above all.
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
BASE = {"dualsearch.errors", "dualsearch.defaults", "dualsearch.version"}


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
    if module.startswith("dualsearch.corpora"):
        return 1, "corpora"
    if module.startswith(("dualsearch.finetune", "dualsearch.demo", "dualsearch.service")):
        return 3, module.split(".")[1]
    if module.startswith("dualsearch.cli") or module == "dualsearch.__main__":
        return 4, "cli"
    if module == "dualsearch":
        return 5, "facade"
    return 2, "engine"


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


def test_layers_import_only_downwards():
    upward = []
    for module, targets in GRAPH.items():
        height, group = layer(module)
        for target in targets:
            target_height, target_group = layer(target)
            if target_group != group and target_height >= height:
                upward.append(f"{module} -> {target}")
    assert upward == []


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


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
