"""Where the extensions, the triggers and the summaries put their tensors: on the module's or the observation's device.

A CPU cannot tell a tensor that landed on the CPU by mistake from one that belongs there, so these tests make
torch's default device a third one: the library's hooks run under ``torch.device("meta")``, where every factory
call without ``device=`` (``torch.tensor(x)``, ``torch.zeros(n)``, ...) makes a meta tensor. Such a tensor either
breaks the first operation that mixes it with the CPU's (the run fails) or stays in an extension's state, where
the walk after the run finds it. On a GPU the same mistake is a CPU tensor next to CUDA ones: a host-to-device
copy and a sync per step, or an error. A static check adds that the library's source makes no tensor without a
device, besides a short list of places that mean the CPU.
"""

from __future__ import annotations

import ast
import functools
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO
from torch import nn

from lightning_chainer import extensions as E
from lightning_chainer.driver import DRIVERS
from mnist_lightning import cli
from mnist_lightning.data import ImageDataModule

SRC = REPO / "src"
#: The library and the example's data path, whose tensors meet the module's on every step.
SCANNED = [*sorted((SRC / "lightning_chainer").rglob("*.py")), SRC / "mnist_lightning" / "data.py"]
#: torch functions that make a new tensor on the default device unless given ``device=``.
FACTORIES = {
    "tensor", "as_tensor", "asarray", "scalar_tensor", "zeros", "ones", "full", "empty", "empty_strided",
    "arange", "range", "linspace", "logspace", "eye", "rand", "randn", "randint", "randperm",
}  # fmt: skip
#: Factory calls that may use torch's default device: (file under src/, enclosing function, torch function) -> why.
#: None at present. The CPU-bound places call no factory: state_dicts convert with ``.cpu()``, the RNG states come
#: from torch's getters and ``torch.from_numpy``, and the data path's epoch order names ``device="cpu"``.
CPU_ON_PURPOSE: dict[tuple[str, str, str], str] = {}


def factory_calls(source: str) -> list[tuple[str, str, int, bool]]:
    """(enclosing function, torch function, line, has ``device=``) of every ``torch.<factory>(...)`` call."""
    found: list[tuple[str, str, int, bool]] = []

    class Visitor(ast.NodeVisitor):
        def __init__(self) -> None:
            self.scope: list[str] = []

        def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            self.scope.append(node.name)
            self.generic_visit(node)
            self.scope.pop()

        visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped  # noqa: N815

        def visit_Call(self, node: ast.Call) -> None:
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "torch"
                and func.attr in FACTORIES
            ):
                # ``**kwargs`` may carry the device: counted as given.
                device = any(k.arg in ("device", None) for k in node.keywords)
                found.append((".".join(self.scope) or "<module>", func.attr, node.lineno, device))
            self.generic_visit(node)

    Visitor().visit(ast.parse(source))
    return found


def test_the_library_makes_no_tensor_without_a_device() -> None:
    """Every torch factory call in the library and the data path names its device, or is on the CPU list."""
    bare, seen = [], []
    for path in SCANNED:
        name = path.relative_to(SRC).as_posix()
        for scope, function, line, device in factory_calls(path.read_text()):
            seen.append((name, scope, function))
            if not device and (name, scope, function) not in CPU_ON_PURPOSE:
                bare.append(f"{name}:{line} torch.{function} in {scope}")
    assert bare == [], "give these calls device= (the module's or the observation's): " + ", ".join(bare)
    # The scan reads the calls it should: the held losses' positions and the summary's packed numbers.
    assert ("lightning_chainer/extensions/fail_on_non_number.py", "FailOnNonNumber._reduce", "arange") in seen
    assert ("lightning_chainer/summary.py", "Summary.compute_mean", "tensor") in seen


def test_the_static_check_flags_a_bare_factory() -> None:
    source = (
        "import torch\n"
        "class S:\n"
        "    def f(self, x):\n"
        "        a = torch.tensor(1.0)\n"
        "        b = torch.zeros(3, device=x.device)\n"
        "        return torch.full((2,), 0.0, **{'device': x.device}), a, b\n"
    )
    assert factory_calls(source) == [("S.f", "tensor", 4, False), ("S.f", "zeros", 5, True), ("S.f", "full", 6, True)]


def tensors_held(root: Any, path: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor reachable from ``root`` through containers and the library's own objects (not modules).

    Modules, trainers and loaders belong to the model and the data; the walk stays in the extensions' state:
    their ``__dict__``, their triggers and summaries, and the lists, dicts, tuples and deques inside them.
    """
    seen: set[int] = set()
    todo: deque[tuple[str, Any]] = deque([(path, root)])
    while todo:
        where, obj = todo.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            yield where, obj
        elif isinstance(obj, dict):
            todo.extend((f"{where}[{k!r}]", v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple, set, frozenset, deque)):
            todo.extend((f"{where}[{i}]", v) for i, v in enumerate(obj))
        elif (obj is root or type(obj).__module__.startswith("lightning_chainer")) and hasattr(obj, "__dict__"):
            todo.extend((f"{where}.{k}", v) for k, v in vars(obj).items())


HOOKS = (
    "setup", "teardown", "state_dict", "load_state_dict", "on_fit_start", "on_fit_end", "on_train_start",
    "on_train_end", "on_train_epoch_start", "on_train_epoch_end", "on_train_batch_start", "on_train_batch_end",
    "on_validation_start", "on_validation_end", "on_validation_epoch_start", "on_validation_epoch_end",
    "on_save_checkpoint", "on_load_checkpoint", "on_exception",
)  # fmt: skip


def under_meta_default(extension: E.Extension) -> None:
    """Run each Lightning hook of ``extension`` with ``meta`` as torch's default device."""
    for name in HOOKS:
        hook = getattr(extension, name, None)
        if not callable(hook):
            continue  # Extension switches the per-batch hooks it does not use off (None)

        def wrapped(*args: Any, _hook: Callable[..., Any] = hook, **kwargs: Any) -> Any:
            with torch.device("meta"):
                return _hook(*args, **kwargs)

        setattr(extension, name, functools.wraps(hook)(wrapped))


def test_a_bare_factory_under_the_meta_default_is_found() -> None:
    """The trick can fail: a tensor made without a device inside a hook ends up on meta, and the walk sees it."""
    made_on_default: dict[str, Any] = {}

    class Careless(E.Extension):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            made_on_default["held"] = torch.tensor(0.0)
            self.held = made_on_default["held"]

    careless = Careless()
    under_meta_default(careless)
    careless.on_train_start(None, None)
    assert [(where, t.device.type) for where, t in tensors_held(careless, "careless")] == [("careless.held", "meta")]


def every_iteration(extension: E.Extension) -> E.Extension:
    """``extension`` under a name of its own, next to train.py's instance of the same class."""
    extension.name = "every_iteration"
    return extension


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from ``tmp_path``: the TensorBoard logger writes ``lightning_logs/`` into the current folder."""
    monkeypatch.chdir(tmp_path)


def test_every_tensor_the_extensions_hold_is_on_the_modules_device(tiny_mnist: Path, tmp_path: Path) -> None:
    """20 steps with train.py's extensions, an Evaluator and the device-holding ones, all hooks under meta."""
    data = ImageDataModule(tiny_mnist, batch_size=16, test_batch_size=20)
    data.setup("fit")
    extra = [
        E.Evaluator(data.val_dataloader(), name="eval", weighted=True),
        E.MicroAverage("main/accuracy", "main/loss", "main/ratio", trigger=(5, "iteration")),
        E.observe_lr(trigger=(1, "iteration")),
        E.ExponentialShift("lr", 0.99),
        every_iteration(E.FailOnNonNumber()),  # as Chainer: a reduction each step, not only at each epoch's end
        E.LogReport(trigger=(1000, "iteration"), log_name=None),  # never reports: its sums are still held at the end
        E.EarlyStoppingTrigger(monitor="validation/main/loss", patience=100, max_trigger=(100, "epoch")),
    ]
    out = tmp_path / "out"
    argv = ["--data-dir", str(tiny_mnist), "-e", "2", "-b", "16", "--accelerator", "cpu", "-o", str(out)]
    run = cli.build(cli.build_parser().parse_args(argv), extra_callbacks=extra)
    model = run.model
    extra.append(E.snapshot_object(model.predictor, "best", trigger=E.MinValueTrigger("eval/main/loss"), out=str(out)))
    run.trainer.callbacks.append(extra[-1])
    extensions = [cb for cb in run.trainer.callbacks if isinstance(cb, E.Extension)]
    assert {type(e).__name__ for e in extensions} >= {"LogReport", "PrintReport", "ProgressBar", "PlotReport"}
    for extension in extensions:
        under_meta_default(extension)
    run.trainer.fit(model, datamodule=run.datamodule)
    run.close(failed=False)
    assert run.trainer.global_step == 20 and (out / "best").is_file()

    held = [
        (where, tensor)
        for i, extension in enumerate(extensions)
        for where, tensor in tensors_held(extension, f"{type(extension).__name__}#{i}")
    ]
    driver = DRIVERS.get(run.trainer)
    if driver is not None:
        held += list(tensors_held(driver, "driver"))
    wrong = [f"{where} on {tensor.device}" for where, tensor in held if tensor.device != model.device]
    assert wrong == [], f"not on the module's device {model.device}: {wrong}"
    places = {where for where, _ in held}
    # The walk reached device state: a summary's running sums, FailOnNonNumber's first bad iteration.
    assert any("_summary._sums" in where for where in places), places
    assert any(where.endswith("._first_bad") for where in places), places
    assert all(isinstance(p, nn.Parameter) and p.device == model.device for p in model.parameters())
