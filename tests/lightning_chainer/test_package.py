"""The library's shape: it needs nothing of the example project, its modules import one another without a cycle,
and only ``_lightning.py`` touches Lightning's private API.

The checks read the source with ``ast`` (one subprocess imports each module), so they run on any copy of the
package; each check also runs on a temporary copy, or a small source, with a violation put in, and must see it.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "lightning_chainer"
EXAMPLE = "mnist_lightning"
#: The only library module allowed to read Lightning's private attributes and modules.
LIGHTNING_INTERNALS = f"{PACKAGE}._lightning"
#: What a copy of the package leaves out.
CACHES = shutil.ignore_patterns("__pycache__")
#: Top-level names of Lightning's distributions, whose ``_``-names are private API.
LIGHTNING_PACKAGES = frozenset({"lightning", "pytorch_lightning", "lightning_fabric", "lightning_utilities"})


@dataclass(frozen=True)
class Module:
    """One module of a package on disk: its dotted name, its file and whether it is a package's ``__init__``."""

    name: str
    path: Path
    is_package: bool

    def tree(self) -> ast.Module:
        """The module's parsed source."""
        return ast.parse(self.path.read_text(), filename=str(self.path))


def package_modules(root: Path, package: str = PACKAGE) -> dict[str, Module]:
    """Every module of ``package`` under the folder ``root``, the package itself and each subpackage included.

    The walk uses ``pkgutil.iter_modules`` folder by folder and imports nothing, so it also lists a copy of the
    package that is not the one ``import`` finds.
    """
    top = root / package
    modules = {package: Module(package, top / "__init__.py", True)}

    def walk(folder: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(folder)]):
            name = f"{prefix}.{info.name}"
            if info.ispkg:
                modules[name] = Module(name, folder / info.name / "__init__.py", True)
                walk(folder / info.name, name)
            else:
                modules[name] = Module(name, folder / f"{info.name}.py", False)

    walk(top, package)
    return modules


#: What a block of code holds that can itself hold imports.
STATEMENTS = (ast.stmt, ast.excepthandler, ast.match_case)


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` tests ``TYPE_CHECKING`` (or ``typing.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported.

    Imports inside functions (and lambdas) run later, those under ``if TYPE_CHECKING:`` never; an ``else`` of such
    an ``if``, class bodies and ``try``/``with`` blocks run at import time and count.
    """
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, STATEMENTS))


def imported_names(module: Module, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute dotted names an import statement of ``module`` asks for (``from a import b`` gives ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.name if module.is_package else module.name.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Which of ``modules`` each one imports at module level (a package ``__init__`` is a module of its own).

    ``from a import b`` points to the module ``a.b`` when there is one, else to ``a``; the parent packages that
    Python initialises on the way are not edges (they are what importing any submodule does).
    """
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        targets: set[str] = set()
        for node in module_level_imports(module.tree()):
            asked = imported_names(module, node)
            if isinstance(node, ast.Import):
                found = [_nearest(modules, n) for n in asked]
            else:
                submodules = [n for n in asked[1:] if n in modules]
                found = submodules if len(submodules) == len(asked) - 1 else [*submodules, _nearest(modules, asked[0])]
            targets.update(t for t in found if t is not None and t != name)
        graph[name] = targets
    return graph


def _nearest(modules: dict[str, Module], dotted: str) -> str | None:
    """``dotted`` or its longest prefix that is one of ``modules``; None for a module outside them."""
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic (depth-first, in sorted order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _is_private(name: str) -> bool:
    """A single-underscore name: ``_x``, not ``__x__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def own_names(trees: list[ast.Module]) -> set[str]:
    """The names the library itself makes: anything it assigns (``x._name = ...``, ``_name = ...``) or defines."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def private_uses(tree: ast.Module, filename: str, own: set[str]) -> list[str]:
    """``file:line: what`` for each use of another library's private name in ``tree``.

    Flagged: (a) ``from lightning... import _name`` and any import of a Lightning module path with a ``_`` part;
    (b) ``x._name`` where ``x`` is not ``self``/``cls`` and ``_name`` is not in ``own``; (c) ``getattr``,
    ``hasattr``, ``setattr`` or ``delattr`` with such a name as a string.
    """
    found: list[tuple[int, int, str]] = []

    def flag(node: ast.expr | ast.stmt, what: str) -> None:
        found.append((node.lineno, node.col_offset, f"{filename}:{node.lineno}: {what}"))

    def foreign(owner: ast.expr, name: str) -> bool:
        is_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
        return _is_private(name) and not is_self and name not in own

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in LIGHTNING_PACKAGES and any(_is_private(p) for p in parts):
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            parts = node.module.split(".")
            if parts[0] in LIGHTNING_PACKAGES:
                names = [alias.name for alias in node.names]
                if any(_is_private(p) for p in parts) or any(_is_private(n) for n in names):
                    flag(node, f"from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Attribute) and foreign(node.value, node.attr):
            flag(node, f"{ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and foreign(node.args[0], node.args[1].value)
        ):
            flag(node, f"{ast.unparse(node)}")
    return [what for *_, what in sorted(found)]


def library_private_uses(root: Path) -> list[str]:
    """Every private use (see :func:`private_uses`) in the modules of the package under ``root`` but ``_lightning``."""
    modules = package_modules(root)
    trees = {name: module.tree() for name, module in modules.items()}
    own = own_names(list(trees.values()))
    found = []
    for name, module in sorted(modules.items()):
        if name != LIGHTNING_INTERNALS:
            found += private_uses(trees[name], str(module.path.relative_to(root)), own)
    return found


#: Run by one interpreter: import the third-party packages the library needs, then, for each ``(root, module)``,
#: fork a child that has never imported the library or the example project, import the module there from
#: ``root`` and print one JSON line: the module's file and the example project's modules it loaded.
PROBE = r"""
import importlib, json, os, sys

jobs, dependencies, (library, example) = (json.loads(argument) for argument in sys.argv[1:4])
for dependency in dependencies:
    importlib.import_module(dependency)
early = sorted(m for m in sys.modules if m.split(".")[0] in (library, example))
if early:
    print(json.dumps({"loaded_before_any_job": early}), flush=True)
    sys.exit(1)
for root, module in jobs:
    pid = os.fork()
    if pid == 0:
        try:
            sys.path.insert(0, root)
            file = importlib.import_module(module).__file__
            loaded = sorted(m for m in sys.modules if m.split(".")[0] == example)
            result = {"root": root, "module": module, "file": file, "example": loaded}
        except BaseException as error:
            result = {"root": root, "module": module, "error": repr(error)}
        print(json.dumps(result), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
"""


def third_party_dependencies(modules: dict[str, Module]) -> list[str]:
    """The top-level packages outside the standard library that the modules import at module level."""
    found = set()
    for module in modules.values():
        for node in module_level_imports(module.tree()):
            if isinstance(node, ast.ImportFrom):
                names = [] if node.level else [node.module or ""]
            else:
                names = [alias.name for alias in node.names]
            found.update(name.split(".")[0] for name in names)
    return sorted(found - set(sys.stdlib_module_names) - {PACKAGE, EXAMPLE, "__future__"})


def import_each_alone(jobs: list[tuple[Path, str]], dependencies: list[str], cwd: Path) -> dict[tuple[str, str], dict]:
    """Run :data:`PROBE` once for all ``(root, module)`` jobs; the JSON result of each, keyed by ``(root, module)``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    arguments = [json.dumps([[str(r), m] for r, m in jobs]), json.dumps(dependencies), json.dumps([PACKAGE, EXAMPLE])]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {(line["root"], line["module"]): line for line in lines}


@pytest.fixture(scope="module")
def import_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[str, str], dict], Path, list[str]]:
    """Each library module imported alone, and a copy's ``triggers.interval`` that imports the example project.

    One subprocess serves both, so the copy costs one more fork, not another interpreter.
    """
    copy = tmp_path_factory.mktemp("copy")
    shutil.copytree(SRC / PACKAGE, copy / PACKAGE, ignore=CACHES)
    leaf = copy / PACKAGE / "triggers" / "interval.py"
    leaf.write_text(leaf.read_text() + f"\nimport {EXAMPLE}  # noqa: E402\n")
    modules = package_modules(SRC)
    jobs = [(SRC, name) for name in sorted(modules)] + [(copy, f"{PACKAGE}.triggers.interval")]
    results = import_each_alone(jobs, third_party_dependencies(modules), tmp_path_factory.mktemp("cwd"))
    return results, copy, sorted(modules)


def test_every_library_module_imported_alone_loads_nothing_of_the_example_project(
    import_results: tuple[dict[tuple[str, str], dict], Path, list[str]],
) -> None:
    results, _, names = import_results
    assert len(names) > 20 and f"{PACKAGE}.extensions.log_report" in names
    problems = []
    for name in names:
        line = results.get((str(SRC), name))
        if line is None or "error" in line:
            problems.append(f"{name}: did not import: {line and line['error']}")
        elif not Path(line["file"]).is_relative_to(SRC):
            problems.append(f"{name}: imported from {line['file']}, not {SRC}")
        elif line["example"]:
            problems.append(f"{name}: loads {', '.join(line['example'])}")
    assert not problems, "\n".join(problems)


def test_the_import_check_sees_a_module_that_loads_the_example_project(
    import_results: tuple[dict[tuple[str, str], dict], Path, list[str]],
) -> None:
    results, copy, _ = import_results
    line = results[(str(copy), f"{PACKAGE}.triggers.interval")]
    assert Path(line["file"]).is_relative_to(copy) and line["example"] == [EXAMPLE]


def test_third_party_dependencies_are_what_the_library_imports_at_module_level() -> None:
    assert {"lightning", "numpy", "torch"} <= set(third_party_dependencies(package_modules(SRC)))


def test_library_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph(package_modules(SRC))
    assert f"{PACKAGE}.driver" in graph[f"{PACKAGE}.extension"]  # the graph holds the library's real edges
    assert f"{PACKAGE}.triggers" in graph[f"{PACKAGE}.extensions"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_follows_module_level_imports_only(tmp_path: Path) -> None:
    """A small package: relative and absolute imports count; function-level and TYPE_CHECKING imports do not."""
    files = {
        "__init__.py": "from pkg.a import A\n",
        "a.py": "from . import b\nA = 1\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n"
        "def late():\n    import pkg.a\n",
        "sub/__init__.py": "from ..b import late\n",
        "sub/c.py": "import pkg.sub\ntry:\n    from pkg import a as _a\nexcept ImportError:\n    pass\n",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    modules = package_modules(tmp_path, "pkg")
    graph = import_graph(modules)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": set(),
        "pkg.sub": {"pkg.b"},
        "pkg.sub.c": {"pkg.sub", "pkg.a"},
    }
    assert find_cycle(graph) is None
    (tmp_path / "pkg" / "b.py").write_text("import pkg.sub.c\n")
    assert find_cycle(import_graph(modules)) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_the_cycle_check_sees_a_cycle_put_into_a_copy_of_the_library(tmp_path: Path) -> None:
    shutil.copytree(SRC / PACKAGE, tmp_path / PACKAGE, ignore=CACHES)
    step = tmp_path / PACKAGE / "step.py"
    step.write_text(step.read_text() + f"\nfrom {PACKAGE}.driver import Driver  # noqa: E402\n")
    cycle = find_cycle(import_graph(package_modules(tmp_path)))
    assert cycle is not None and {f"{PACKAGE}.driver", f"{PACKAGE}.step"} <= set(cycle)


def test_only_the_lightning_module_touches_lightnings_private_api() -> None:
    uses = library_private_uses(SRC)
    assert not uses, f"private API outside {LIGHTNING_INTERNALS} (move it there):\n" + "\n".join(uses)


def test_the_private_api_check_flags_each_kind_of_use() -> None:
    source = """
from lightning.pytorch.trainer.connectors import _checkpoint_connector
from lightning.pytorch.utilities import _pytree, move_data_to_device
import lightning.fabric.utilities._private
from lightning.pytorch.callbacks import Callback
from ._lightning import read_lightning
value = trainer._results
fine = self._mine + cls._mine + trainer._ours + obj.__dict__
getattr(trainer, "_val_check_time_interval", None)
hasattr(trainer, "_ours"), getattr(trainer, "public"), hasattr(self, "_anything")
super()._generate_state_key()
"""
    uses = private_uses(ast.parse(source), "m.py", own={"_ours"})
    assert uses == [
        "m.py:2: from lightning.pytorch.trainer.connectors import _checkpoint_connector",
        "m.py:3: from lightning.pytorch.utilities import _pytree, move_data_to_device",
        "m.py:4: import lightning.fabric.utilities._private",
        "m.py:7: trainer._results",
        "m.py:9: getattr(trainer, '_val_check_time_interval', None)",
        "m.py:11: super()._generate_state_key",
    ]


def test_the_private_api_check_sees_a_use_put_into_a_copy_of_the_library(tmp_path: Path) -> None:
    shutil.copytree(SRC / PACKAGE, tmp_path / PACKAGE, ignore=CACHES)
    report = tmp_path / PACKAGE / "extensions" / "log_report.py"
    text = report.read_text()
    report.write_text(text + "\n\ndef _peek(trainer):\n    return trainer._results\n")
    line = len(text.splitlines()) + 4
    assert library_private_uses(tmp_path) == [f"{PACKAGE}/extensions/log_report.py:{line}: trainer._results"]
    lightning = tmp_path / PACKAGE / "_lightning.py"
    assert "trainer._results" in lightning.read_text()  # the same use inside _lightning.py is allowed
