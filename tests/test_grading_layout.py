"""The layout of selfattn_course/grading/: its import graph has no cycle and goes down the stages.

The graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of each module, those inside functions (lazy imports) included, and every
``importlib.import_module`` whose name is written out (a constant, or an f-string's constant
prefix). ``from package import name`` counts as importing the module ``package.name`` when there
is one, else ``package``; a module's parent packages are not counted (Python runs their
``__init__`` first, but they are not what the module depends on).

The stages, lowest first, as grading/__init__.py states them (a module may import its own stage
and the stages below, never one above): errors, names, notebooks and tripwires; spec; verdicts;
tasks; cell; autograde; classroom; and the package itself (its ``__init__``, which re-exports
``check``). One lookup goes up on purpose: the registry (spec/registry.py) finds a chapter's task
module by its name (:data:`LOOKUPS_BY_NAME`); the tasks package it names imports nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "selfattn_course.grading"
ROOT = REPO / "selfattn_course" / "grading"

#: Lowest first. A module's stage is the first part of its name below the package
#: (``spec.registry`` -> ``spec``); ``""`` is the package's own ``__init__``.
STAGES = [
    {"errors", "names", "notebooks", "tripwires"},
    {"spec"},
    {"verdicts"},
    {"tasks"},
    {"cell"},
]
STAGES += [{"autograde"}, {"classroom"}, {""}]

#: The upward edges allowed, each with its reason: (importer, imported).
LOOKUPS_BY_NAME = {
    # chapter_tasks() and registered_chapters() find selfattn_course.grading.tasks.chNN by name
    (f"{PACKAGE}.spec.registry", f"{PACKAGE}.tasks"),
}

#: What a notebook's kernel must not need to import the grading code a test cell runs.
JUPYTER_SIDE = ("nbformat", "nbclient", "nbconvert", "nbgrader", "jupyter_client", "IPython")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def grading_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _named_import(call: ast.Call) -> str | None:
    """The name an ``importlib.import_module(...)`` call imports, as far as it is written out."""
    func = call.func
    is_import_module = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )
    if not is_import_module or not call.args:
        return None
    name = call.args[0]
    if isinstance(name, ast.Constant) and isinstance(name.value, str):
        return name.value
    if isinstance(name, ast.JoinedStr) and name.values and isinstance(name.values[0], ast.Constant):
        return str(name.values[0].value).rstrip(".")
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The grading modules that module ``name`` (at ``path``) imports, lazily or not."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, name, is_package)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                targets.append(child if child in modules else base)
        elif isinstance(node, ast.Call) and (named := _named_import(node)) is not None:
            targets = [named]
        for target in targets:
            # ``import a.b.c`` of a name that is not a module: its nearest enclosing module
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = grading_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def stage_of(module: str) -> int:
    relative = module.removeprefix(PACKAGE).removeprefix(".")
    first = relative.split(".")[0]
    for level, names in enumerate(STAGES):
        if first in names:
            return level
    raise AssertionError(f"{module} is in no stage: add {first!r} to STAGES (and the docstring)")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def subpackage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``stage name -> the stage names it imports`` (the closing note's picture)."""

    def short(module: str) -> str:
        return module.removeprefix(PACKAGE).removeprefix(".").split(".")[0] or "__init__"

    folded: dict[str, set[str]] = {}
    for importer, targets in graph.items():
        folded.setdefault(short(importer), set()).update(
            short(target) for target in targets if short(target) != short(importer)
        )
    return folded


# --- the checker itself ---------------------------------------------------------------------------


def test_the_reader_sees_plain_lazy_relative_and_named_imports(tmp_path):
    modules = {f"{PACKAGE}.a": tmp_path / "a.py", f"{PACKAGE}.b": tmp_path / "b.py"}
    modules |= {f"{PACKAGE}.c.d": tmp_path / "d.py", f"{PACKAGE}.c": tmp_path / "c.py"}
    source = (
        f"import {PACKAGE}.b\n"
        "def later():\n"
        "    from .c import d\n"
        "    import importlib\n"
        f"    importlib.import_module(f'{PACKAGE}.c.{{name}}')\n"
        "import numpy\n"
    )
    modules[f"{PACKAGE}.a"].write_text(source)
    found = imports_of(f"{PACKAGE}.a", modules[f"{PACKAGE}.a"], modules)
    assert found == {f"{PACKAGE}.b", f"{PACKAGE}.c.d", f"{PACKAGE}.c"}


def test_the_cycle_finder_finds_a_cycle_and_only_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


# --- the package ----------------------------------------------------------------------------------


def test_the_grading_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert len(graph) > 20 and any(graph.values())
    assert cycles(graph) == []


def test_every_import_goes_down_the_stages_or_is_a_declared_lookup():
    upward = [
        (importer, target)
        for importer, targets in import_graph().items()
        for target in sorted(targets)
        if stage_of(target) > stage_of(importer) and (importer, target) not in LOOKUPS_BY_NAME
    ]
    assert upward == []


def test_the_declared_lookups_are_still_made_and_reach_a_package_that_imports_nothing():
    graph = import_graph()
    for importer, target in LOOKUPS_BY_NAME:
        assert target in graph[importer], f"{importer} no longer imports {target}: drop the entry"
        assert graph[target] == set()


def test_the_stages_cycle_free_when_folded_into_subpackages():
    folded = subpackage_graph(import_graph())
    lookups = {(a.split(".")[2], b.split(".")[2]) for a, b in LOOKUPS_BY_NAME}
    without_lookups = {
        name: {target for target in targets if (name, target) not in lookups}
        for name, targets in folded.items()
    }
    assert cycles(without_lookups) == []
    print("grading/ import graph:")
    for name in sorted(folded, key=lambda n: stage_of(f"{PACKAGE}.{n}".removesuffix(".__init__"))):
        print(f"  {name} -> {', '.join(sorted(folded[name])) or '(nothing in grading)'}")


def test_what_a_test_cell_runs_imports_with_torch_and_numpy_only():
    """A GPU machine runs the package with plain ``PYTHONPATH=.``: the grading code a test cell
    and the task tests use must not need Jupyter. (verdicts/trusted.py runs in the grader's
    process, next to nbgrader, and reads notebooks: it may.)"""
    kernel_side = [
        name
        for name in grading_modules()
        if stage_of(name) <= stage_of(f"{PACKAGE}.cell") and not name.endswith(".notebooks")
    ]
    kernel_side = [*kernel_side, PACKAGE]
    kernel_side.remove(f"{PACKAGE}.verdicts.trusted")
    program = (
        "import importlib, sys\n"
        f"blocked = {JUPYTER_SIDE!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in blocked:\n"
        "            raise ImportError(f'{name} is Jupyter-side')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {sorted(kernel_side)!r}:\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
