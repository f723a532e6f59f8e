"""Checks on the learner's source, made in the grader's process: the code is read, never run.

Two kinds of finding, both stated in words with the cell and line they come from:

- **tampering**, anywhere in the learner's cells: code that changes the grading tools in the
  kernel. Rebinding ``check`` (or another name the setup cell imports from
  ``selfattn_course.grading``), importing or reaching into ``selfattn_course.grading``, replacing a
  function of an imported module (``np.allclose = ...``, ``setattr(torch.testing, ...)``),
  changing how IPython runs cells (``get_ipython().input_transformers_cleanup``, ``events``),
  ``sys.modules``, ``sys.setprofile``, ``ctypes``; and code this check cannot read: code built at
  run time (``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``, ``runpy``), ``%run``,
  and modules imported from files next to the notebook. Every test cell after it then scores 0:
  nothing the kernel reports from then on can be trusted.
- **forbidden**, per "from scratch" task (a task with a ``forbidden`` list): the task's function or
  class, and every top-level function, class or variable of the learner's that it uses (except
  the helpers the grader provides for it), must not refer to what the task asks to write by hand:
  torch's attention (``scaled_dot_product_attention`` and torch's private ``_scaled_dot_product_*``
  kernels, ``nn.MultiheadAttention``, ``multi_head_attention_forward``) or the package's reference
  modules named in the list (``selfattn_course.attention``, ``selfattn_course.masks``). Code built
  at run time (``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``) counts too: the
  grader must be able to read what the code calls. That task scores 0.

The kernel watches calls as well (:mod:`.forbid`); this check is the one the learner's code cannot
switch off. Names are followed through imports and top-level aliases (``import torch.nn.functional
as F``, ``sdpa = F.scaled_dot_product_attention``); a cell that does not parse is skipped (it fails
in the kernel anyway). IPython syntax (``%timeit``, ``!ls``) is turned into Python first, as IPython
does.
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfattn_course.grading.spec.task import FunctionTask

GRADING_PACKAGE = "selfattn_course.grading"

#: Attributes of IPython's shell (and of sys) that change how cells run or how results are shown.
IPYTHON_HOOKS = frozenset(
    {
        "input_transformers_cleanup",
        "input_transformers_post",
        "input_transformer_manager",
        "ast_transformers",
        "set_custom_exc",
        "custom_exceptions",
        "showtraceback",
        "showsyntaxerror",
        "run_cell",
        "run_ast_nodes",
        "run_code",
        "transform_cell",
        "display_pub",
        "displayhook",
        "display_formatter",
        "excepthook",
    }
)

#: Dotted names whose use is tampering wherever they appear.
TAMPERING_NAMES = frozenset(
    {
        "sys.modules",
        "sys.setprofile",
        "sys.settrace",
        "sys.meta_path",
        "sys.path_hooks",
        "sys.displayhook",
        "sys.excepthook",
        "threading.setprofile",
        "threading.settrace",
        "importlib.reload",
        "builtins.__import__",
    }
)
TAMPERING_MODULES = frozenset({"ctypes"})

#: Libraries whose attributes, when the grader cannot look them up, are assumed to be code: an
#: assignment to one of them is tampering.
GUARDED_LIBRARIES = frozenset(
    {"numpy", "torch", "IPython", "selfattn_course", "builtins", "sys", "math", "warnings"}
)

DYNAMIC_CALLS = frozenset({"exec", "eval", "compile", "__import__"})
DYNAMIC_MODULES = ("importlib", "runpy")
#: IPython magics that run code from elsewhere (``%run script.py``) or import it (``%load_ext x``).
RUNNING_MAGICS = frozenset({"run"})
IMPORTING_MAGICS = frozenset({"load_ext", "reload_ext"})

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


@dataclass(frozen=True)
class CodeCell:
    """One code cell: where it is (``"cell 'attention-solution'"``, its index among the notebook's
    cells), its source, and whether it is the course's own (a locked cell, which nbgrader restores
    from the source notebook)."""

    label: str
    source: str
    trusted: bool
    position: int = 0


@dataclass(frozen=True)
class Finding:
    """One thing the source does that it may not: what, in words, and where."""

    what: str
    where: str
    position: int = 0  # of its cell: it can only affect the cells after it

    def __str__(self) -> str:
        return f"{self.what} ({self.where})"


@dataclass
class _Parsed:
    cell: CodeCell
    tree: ast.Module


def _parse(source: str) -> ast.Module | str:
    """The cell's code as Python (IPython syntax transformed first), or why it does not parse."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # no IPython, or input IPython itself could not transform: parse as it is
        pass
    try:
        return ast.parse(source)
    except SyntaxError as error:
        return f"{type(error).__name__}: {error.msg}, line {error.lineno}"
    except (ValueError, RecursionError, MemoryError) as error:
        return f"{type(error).__name__}: {str(error)[:80]}"


def _finding(parsed: _Parsed, node: ast.AST, what: str) -> Finding:
    where = f"{parsed.cell.label}, line {getattr(node, 'lineno', '?')}"
    return Finding(what, where, parsed.cell.position)


def _dotted(node: ast.AST) -> str:
    """``np.testing.assert_allclose`` for an attribute chain on a name, ``"..."`` otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    return "..."


def _bound_names(target: ast.AST) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _bound_names(element)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """``(bound name, dotted path)`` for each name an import binds (relative imports: none)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                root = alias.name.split(".")[0]
                yield root, root
    elif node.level == 0 and node.module:
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name, f"{node.module}.{alias.name}"


def _stored_names(nodes: Iterable[ast.AST]) -> set[str]:
    """Names bound in these nodes (assignments, imports, defs, loop targets, parameters), not
    looking inside nested functions, classes and lambdas but naming them."""
    names: set[str] = set()
    for node in nodes:
        for sub in _walk(node, into_scopes=False):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names.update(name for name, _ in _import_bindings(sub))
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                names.add(sub.name)
            elif isinstance(sub, ast.arg):
                names.add(sub.arg)
    return names


def _scoped_walk(
    node: ast.AST, bound: frozenset[str] = frozenset()
) -> Iterator[tuple[ast.AST, frozenset[str]]]:
    """Every node under ``node`` with the names local to the function it sits in (which then do
    not refer to the notebook's top-level names)."""
    yield node, bound
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        outer = [*node.args.defaults, *node.args.kw_defaults]
        outer += getattr(node, "decorator_list", [])
        for child in outer:
            if child is not None:
                yield from _scoped_walk(child, bound)
        body = node.body if isinstance(node.body, list) else [node.body]
        declared = {
            name for sub in ast.walk(node) if isinstance(sub, ast.Global) for name in sub.names
        }
        local = (_stored_names([node.args, *body]) - declared) | bound
        for child in body:
            yield from _scoped_walk(child, frozenset(local))
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        bound = bound | _stored_names(generator.target for generator in node.generators)
    for child in ast.iter_child_nodes(node):
        yield from _scoped_walk(child, bound)


def _top_level(statements: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The module-level statements, descending into if/for/while/with/try but not into scopes."""
    for statement in statements:
        yield statement
        if isinstance(statement, _SCOPES):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _top_level(getattr(statement, name, []) or [])
        for handler in getattr(statement, "handlers", []) or []:
            yield from _top_level(handler.body)


def _binds(statement: ast.stmt) -> set[str]:
    """The top-level names a statement binds."""
    if isinstance(statement, _SCOPES):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {name for name, _ in _import_bindings(statement)}
    targets: list[ast.AST] = []
    if isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.AugAssign, ast.AnnAssign)):
        targets = [statement.target]
    elif isinstance(statement, (ast.For, ast.AsyncFor)):
        targets = [statement.target]
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in statement.items if item.optional_vars]
    return {name for target in targets for name in _bound_names(target)}


def _changes(statement: ast.stmt) -> set[str]:
    """The top-level names whose object a statement changes: ``x.attr = ``, ``x[i] = ``,
    ``x.append(...)``, ``setattr(x, ...)``."""
    roots: list[str | None] = []
    if isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        roots = [_root_name(target) for target in targets if not isinstance(target, ast.Name)]
    elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        call = statement.value
        if isinstance(call.func, ast.Attribute):
            roots = [_root_name(call.func.value)]
        elif _dotted(call.func) in ("setattr", "delattr") and call.args:
            roots = [_root_name(call.args[0])]
    return {root for root in roots if root is not None}


class Program:
    """Every code cell of a notebook, parsed, with what the names at top level refer to.

    ``local_modules`` are the names a cell could import from files next to the notebook
    (:func:`local_modules`): code the grader does not read.
    """

    def __init__(self, cells: Sequence[CodeCell], local_modules: Iterable[str] = ()):
        self.parsed: list[_Parsed] = []
        # Learner cells that are not Python the grader can read: reported, never skipped.
        self.unreadable: list[Finding] = []
        for cell in cells:
            tree = _parse(cell.source)
            if isinstance(tree, ast.Module):
                self.parsed.append(_Parsed(cell, tree))
            elif not cell.trusted:
                what = f"code the grader cannot read as Python ({tree}), so it cannot check it"
                self.unreadable.append(Finding(what, cell.label, cell.position))
        self.local_modules = frozenset(local_modules)
        self.course_imports: set[str] = set()  # top-level modules the course's own cells import
        self.student = [parsed for parsed in self.parsed if not parsed.cell.trusted]
        self.aliases: dict[str, set[str]] = {}
        self.grading_names: set[str] = set()
        self.definitions: dict[str, list[tuple[_Parsed, ast.AST]]] = {}
        self._collect_aliases()
        self._collect_definitions()

    # --- names ------------------------------------------------------------------------------------

    def _collect_aliases(self) -> None:
        for parsed in self.parsed:
            for node in ast.walk(parsed.tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for name, path in _import_bindings(node):
                        self.aliases.setdefault(name, set()).add(path)
                        if parsed.cell.trusted:
                            self.course_imports.add(path.split(".")[0])
                        if parsed.cell.trusted and path.startswith(GRADING_PACKAGE + "."):
                            self.grading_names.add(name)
        for _ in range(3):  # aliases of aliases: F = torch.nn.functional; sdpa = F.scaled_...
            for parsed in self.parsed:
                for statement in _top_level(parsed.tree.body):
                    if isinstance(statement, ast.Assign):
                        paths = self.resolve(statement.value)
                        for target in statement.targets:
                            if isinstance(target, ast.Name) and paths:
                                self.aliases.setdefault(target.id, set()).update(paths)

    def resolve(self, node: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
        """The dotted paths a name or an attribute chain may refer to (empty when unknown, or
        when its name is one of the ``local`` names of the function it is in)."""
        if isinstance(node, ast.Name):
            return set() if node.id in local else set(self.aliases.get(node.id, ()))
        if isinstance(node, ast.Attribute):
            return {f"{path}.{node.attr}" for path in self.resolve(node.value, local)}
        return set()

    def _collect_definitions(self) -> None:
        """Learner's top-level name -> the statements that bind it, then those that change it
        (``helpers.append(...)``, ``attention.__doc__ = ...``, ``setattr(attention, ...)``)."""
        changes = []
        for parsed in self.student:
            for statement in _top_level(parsed.tree.body):
                for name in _binds(statement):
                    self.definitions.setdefault(name, []).append((parsed, statement))
                changes += [(name, parsed, statement) for name in _changes(statement)]
        imported = {name for name, paths in self.aliases.items() if paths}
        for name, parsed, statement in changes:
            if name in self.definitions and name not in imported:
                self.definitions[name].append((parsed, statement))

    # --- tampering --------------------------------------------------------------------------------

    def tampering(self) -> list[Finding]:
        """Everything in the learner's cells that changes the grading tools, in order."""
        findings: list[Finding] = []
        for parsed in self.student:
            visitor = _TamperingVisitor(self, parsed)
            visitor.visit(parsed.tree)
            findings += visitor.findings
        return _unique(findings)

    # --- forbidden --------------------------------------------------------------------------------

    def forbidden(self, task: FunctionTask, name: str, before: int | None = None) -> list[Finding]:
        """What ``name`` (the learner's answer to ``task``) and the code it uses refer to that the
        task forbids, looking only at cells before position ``before`` (the test cell: later
        cells cannot change what it checks); empty for a task that forbids nothing."""
        if not task.forbidden:
            return []
        rules = _Rules(task.forbidden)
        findings = [
            finding for finding in self.unreadable if before is None or finding.position < before
        ]
        for parsed, node in self._reached_from(name, stop=set(task.provided), before=before):
            findings += self._forbidden_in(parsed, node, rules)
        for parsed in self.student:  # code built at run time at top level may define anything
            if before is not None and parsed.cell.position >= before:
                continue
            for statement in _top_level(parsed.tree.body):
                if not isinstance(statement, _SCOPES):
                    findings += self._dynamic_in(parsed, statement, shallow=True)
        return _unique(findings)

    def _reached_from(
        self, name: str, stop: set[str], before: int | None
    ) -> Iterator[tuple[_Parsed, ast.AST]]:
        """The learner's statements (in cells before ``before``) that define ``name`` and, in
        turn, the top-level names they use (a function's own parameters and locals are not
        followed), except ``stop``."""
        seen = {name}
        queue = deque([name])
        while queue:
            for parsed, node in self.definitions.get(queue.popleft(), []):
                if before is not None and parsed.cell.position >= before:
                    continue
                yield parsed, node
                for sub, local in _scoped_walk(node):
                    if (
                        isinstance(sub, ast.Name)
                        and sub.id not in local
                        and sub.id in self.definitions
                        and sub.id not in stop
                        and sub.id not in seen
                    ):
                        seen.add(sub.id)
                        queue.append(sub.id)

    def _forbidden_in(self, parsed: _Parsed, node: ast.AST, rules: _Rules) -> list[Finding]:
        docstrings = {
            id(sub.value)
            for sub in ast.walk(node)
            if isinstance(sub, ast.Expr) and isinstance(sub.value, ast.Constant)
        }
        findings = []
        for sub, local in _scoped_walk(node):
            paths: set[str] = set()
            words: list[str] = []
            if isinstance(sub, ast.Name):
                paths, words = self.resolve(sub, local), [sub.id]
            elif isinstance(sub, ast.Attribute):
                paths, words = self.resolve(sub, local), [sub.attr]
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                paths = {path for _, path in _import_bindings(sub)}
                if isinstance(sub, ast.ImportFrom) and sub.module:
                    paths.add(sub.module)
                    words = [alias.name for alias in sub.names]
                else:
                    paths |= {alias.name for alias in sub.names}
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                if id(sub) not in docstrings and (marker := rules.mentioned_in(sub.value)):
                    findings.append(_finding(parsed, sub, f"names {marker} in a string"))
                continue
            for what in rules.match(paths, words):
                findings.append(_finding(parsed, sub, f"uses {what}"))
        return findings + self._dynamic_in(parsed, node)

    def _dynamic_in(self, parsed: _Parsed, node: ast.AST, shallow: bool = False) -> list[Finding]:
        """Calls that build or import code at run time (``shallow``: not inside functions)."""
        findings = []
        for sub in _walk(node, into_scopes=not shallow):
            if isinstance(sub, ast.Call):
                called = sub.func.id if isinstance(sub.func, ast.Name) else None
                paths = self.resolve(sub.func)
                dynamic = called in DYNAMIC_CALLS or any(
                    path.split(".")[0] in DYNAMIC_MODULES for path in paths
                )
                if called == "getattr" and sub.args and self.resolve(sub.args[0]):
                    name_arg = sub.args[1] if len(sub.args) > 1 else None
                    dynamic = not isinstance(name_arg, ast.Constant)
                if dynamic:
                    what = f"builds the code it runs at run time ({_dotted(sub.func)})"
                    findings.append(_finding(parsed, sub, what))
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                modules = (
                    [alias.name for alias in sub.names]
                    if isinstance(sub, ast.Import)
                    else [sub.module or ""]
                )
                if any(module.split(".")[0] in DYNAMIC_MODULES for module in modules):
                    findings.append(_finding(parsed, sub, f"imports {', '.join(modules)}"))
        return findings


def _walk(node: ast.AST, into_scopes: bool = True) -> Iterator[ast.AST]:
    """``ast.walk``, optionally without looking inside functions, classes and lambdas (which are
    yielded themselves, ``node`` included, but not their contents)."""
    todo = deque([node])
    while todo:
        current = todo.popleft()
        yield current
        if into_scopes or not isinstance(current, _SCOPES):
            todo.extend(ast.iter_child_nodes(current))


class _Rules:
    """What one task forbids, as dotted paths and as words to look for in the source."""

    def __init__(self, forbidden: Iterable[str]):
        # a forbidden method (nn.MultiheadAttention.forward) forbids its class
        self.paths = tuple(dict.fromkeys(name.removesuffix(".forward") for name in forbidden))
        #: The package's modules a forbidden name lives in: none of them may be used at all.
        self.package_modules = tuple(
            sorted(
                {
                    name.rsplit(".", 1)[0]
                    for name in self.paths
                    if name.startswith("selfattn_course.")
                }
            )
        )
        #: The last word of each of torch's forbidden names, found under any alias or path.
        self.words = tuple(
            sorted(
                {
                    name.removesuffix(".forward").rsplit(".", 1)[-1]
                    for name in self.paths
                    if name.startswith("torch.")
                }
            )
        )

    def match(self, paths: Iterable[str], words: Iterable[str]) -> list[str]:
        """What of ``paths`` (dotted names a node may refer to) or, failing that, of ``words``
        (the identifiers it shows) the rules forbid."""
        found = []
        for path in sorted(paths):
            if any(path == name or path.startswith(name + ".") for name in self.paths):
                found.append(path)
            elif any(
                path == module or path.startswith(module + ".") for module in self.package_modules
            ):
                found.append(f"{path} (the package's reference)")
        if found:
            return found
        for word in words:
            if word in self.words or (
                "scaled_dot_product_attention" in self.words
                and word.startswith("_scaled_dot_product")
            ):
                found.append(word)
        return found

    def mentioned_in(self, text: str) -> str | None:
        for word in self.words:
            if word in text:
                return word
        return None


class _TamperingVisitor(ast.NodeVisitor):
    """Walks one learner's cell and collects tampering findings (see the module docstring)."""

    def __init__(self, program: Program, parsed: _Parsed):
        self.program = program
        self.parsed = parsed
        self.findings: list[Finding] = []
        self.depth = 0  # 0 at module level, > 0 inside functions and classes
        self.declared_global: list[set[str]] = [set()]
        self.shell_names = {"get_ipython"}

    def flag(self, what: str, node: ast.AST) -> None:
        self.findings.append(_finding(self.parsed, node, what))

    # scopes: a name bound inside a function is local unless declared global

    def _visit_scope(self, node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for decorator in node.decorator_list:
                self.visit(decorator)
            for base in getattr(node, "bases", []):
                self.visit(base)
            if self.depth == 0 or node.name in self.declared_global[-1]:
                self._rebinds(node.name, node)
        self.depth += 1
        self.declared_global.append(set())
        body = node.body if isinstance(node.body, list) else [node.body]
        for child in body:
            self.visit(child)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    self.visit(default)
        self.declared_global.pop()
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _visit_scope

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global[-1].update(node.names)

    def _rebinds(self, name: str, node: ast.AST) -> None:
        if name in self.program.grading_names:
            self.flag(f"rebinds `{name}`, the grader's helper", node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)) and (
            self.depth == 0 or node.id in self.declared_global[-1]
        ):
            self._rebinds(node.id, node)
        if node.id == "__builtins__":
            self.flag("changes __builtins__", node)
        for path in self.program.resolve(node):
            if path in TAMPERING_NAMES:
                self.flag(f"uses {path}", node)

    # imports

    def _imports_unread_code(self, module: str, node: ast.AST) -> None:
        top = module.split(".")[0]
        if top in self.program.local_modules and top not in self.program.course_imports:
            self.flag(f"imports {module} from a file next to the notebook", node)
        if top in DYNAMIC_MODULES:
            self.flag(f"runs code the grader cannot read (imports {module})", node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith(GRADING_PACKAGE):
                self.flag(f"imports {alias.name}, the grader's own code", node)
            if alias.name.split(".")[0] in TAMPERING_MODULES:
                self.flag(f"imports {alias.name}", node)
            self._imports_unread_code(alias.name, node)
        if self.depth == 0:
            for name, _ in _import_bindings(node):
                self._rebinds(name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        names = [alias.name for alias in node.names]
        same_as_setup = module == GRADING_PACKAGE and all(
            alias.asname is None and alias.name in self.program.grading_names
            for alias in node.names
        )
        grading = module.startswith(GRADING_PACKAGE) or (
            module == "selfattn_course" and "grading" in names
        )
        if grading and not same_as_setup:
            self.flag(f"imports {', '.join(names)} from {module}, the grader's own code", node)
        elif not grading and self.depth == 0:
            for name, _ in _import_bindings(node):
                self._rebinds(name, node)
        if module.split(".")[0] in TAMPERING_MODULES:
            self.flag(f"imports {module}", node)
        if node.level == 0:
            self._imports_unread_code(module, node)
        else:
            self.flag("imports from a file next to the notebook (a relative import)", node)
        for _, path in _import_bindings(node):
            if path in TAMPERING_NAMES:
                self.flag(f"imports {path}", node)

    # attributes

    def visit_Attribute(self, node: ast.Attribute) -> None:
        paths = self.program.resolve(node)
        for path in paths:
            if path == GRADING_PACKAGE or path.startswith(GRADING_PACKAGE + "."):
                self.flag(f"reaches into {GRADING_PACKAGE} ({_dotted(node)})", node)
                break
            if path in TAMPERING_NAMES:
                self.flag(f"uses {path}", node)
        if node.attr in IPYTHON_HOOKS:
            self.flag(f"changes how IPython runs cells or shows results ({_dotted(node)})", node)
        elif node.attr == "events" and self._is_shell(node.value):
            self.flag(f"registers IPython event hooks ({_dotted(node)})", node)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._patches(node.value, node.attr, node)
        self.generic_visit(node)

    def _is_shell(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            return _dotted(node.func).split(".")[-1] == "get_ipython"
        return isinstance(node, ast.Name) and node.id in self.shell_names

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._is_shell(node.value):
            for target in node.targets:
                self.shell_names.update(_bound_names(target))
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                self._writes_into(target.value, target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Subscript):
            self._writes_into(node.target.value, node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                self._writes_into(target.value, target)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        called = _dotted(node.func)
        if called in DYNAMIC_CALLS:
            self.flag(f"runs code the grader cannot read ({called})", node)
        elif any(path.split(".")[0] in DYNAMIC_MODULES for path in self.program.resolve(node.func)):
            self.flag(f"runs code the grader cannot read ({called})", node)
        if (
            called.endswith("run_line_magic")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            magic = node.args[0].value
            argument = node.args[1] if len(node.args) > 1 else None
            if magic in RUNNING_MAGICS:
                self.flag(f"runs code the grader cannot read (%{magic})", node)
            elif magic in IMPORTING_MAGICS and isinstance(argument, ast.Constant):
                for module in str(argument.value).split():
                    self._imports_unread_code(module, node)
        if called in ("setattr", "delattr") and node.args:
            attr = (
                node.args[1].value
                if len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                else None
            )
            self._patches(node.args[0], attr if isinstance(attr, str) else None, node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in (
            "update",
            "setdefault",
            "pop",
            "popitem",
            "clear",
            "__setitem__",
            "__delitem__",
        ):
            self._writes_into(node.func.value, node)
        self.generic_visit(node)

    def _writes_into(self, container: ast.AST, node: ast.AST) -> None:
        """``globals()[...] = ``, ``vars(np)[...] = ``, ``np.__dict__[...] = ``."""
        if isinstance(container, ast.Call) and _dotted(container.func) in (
            "globals",
            "vars",
            "locals",
        ):
            if not container.args or self.program.resolve(container.args[0]):
                self.flag(f"writes into {_dotted(container.func)}()", node)
        elif isinstance(container, ast.Attribute) and container.attr == "__dict__":
            if (
                self.program.resolve(container.value)
                or _root_name(container) in self.program.grading_names
            ):
                self.flag(f"writes into {_dotted(container)}", node)

    def _patches(self, owner: ast.AST, attr: str | None, node: ast.AST) -> None:
        """An attribute of something imported is set or deleted: tampering unless plain data."""
        for path in sorted(self.program.resolve(owner)):
            full = f"{path}.{attr}" if attr else f"{path}.<attribute>"
            if attr is None or attr.startswith("__") or _may_be_code(full):
                self.flag(f"replaces {full}", node)
                return


def _may_be_code(path: str) -> bool:
    """Whether the object at ``path`` is (or may be) a function, class or module. Looked up only in
    modules the grader has already imported; never imports anything."""
    root, *rest = path.split(".")
    target = sys.modules.get(root)
    if target is None:
        return root in GUARDED_LIBRARIES
    for part in rest:
        try:
            target = getattr(target, part)
        except Exception:  # a new attribute: nothing is replaced
            return False
    return not isinstance(target, (bool, int, float, complex, str, bytes, type(None)))


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


@dataclass
class SourceReport:
    """The findings of one notebook: tampering, and per task what it uses that it may not."""

    program: Program
    tampering: list[Finding] = field(default_factory=list)

    def tampering_before(self, position: int) -> list[Finding]:
        """The tampering in cells before ``position`` (what can affect the cell there)."""
        return [finding for finding in self.tampering if finding.position < position]

    def forbidden(self, task: FunctionTask, name: str, before: int | None = None) -> list[Finding]:
        return self.program.forbidden(task, name, before)


def local_modules(folder: str | Path | None) -> set[str]:
    """The module names a notebook in ``folder`` could import from files beside it: ``*.py``
    files, extension modules and folders (packages)."""
    if folder is None or not Path(folder).is_dir():
        return set()
    names = set()
    for entry in Path(folder).iterdir():
        if entry.is_dir() and not entry.name.startswith("."):
            names.add(entry.name)
        elif entry.suffix in (".py", ".pyc", ".so", ".pyd"):
            names.add(entry.name.split(".")[0])
    return names


def inspect_cells(cells: Sequence[CodeCell], folder: str | Path | None = None) -> SourceReport:
    """Read the notebook's code cells and report tampering (forbidden uses are asked per task).
    ``folder`` is the notebook's, to find modules imported from files beside it."""
    program = Program(cells, local_modules(folder))
    return SourceReport(program, program.tampering())
