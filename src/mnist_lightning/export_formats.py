"""The export formats: a predictor as ONNX or torch.export (``.pt2``) bytes, and each file run again for ``--check``.

Both take the preprocessed float32 batch (N, C, H, W), N dynamic (1 or more), and return the logits (N, classes).
ONNX goes through ``torch.onnx.export(..., dynamo=True)``, which needs ``onnx`` and ``onnxscript``; running the
ONNX file needs ``onnxruntime``. ``pt2`` needs torch alone (``torch.export.export`` / ``save`` / ``load``).
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mnist_lightning.checks import UsageError

FORMATS = ("onnx", "pt2")
#: The ONNX graph's input and output names.
INPUT_NAME, OUTPUT_NAME = "input", "logits"
INSTALL = "pip install -e '.[export]'"

#: A loaded export: float inputs (N, C, H, W) on the CPU -> logits (N, classes) on the CPU.
Runner = Callable[[torch.Tensor], torch.Tensor]


class ExportError(Exception):
    """The model could not be exported; the message is one sentence."""


def needed_packages(fmt: str, check: bool) -> list[str]:
    """The Python packages that exporting to ``fmt`` (and running the file for ``--check``) imports.

    Args:
        fmt: one of :data:`FORMATS`.
        check: whether the exported file is run again.
    """
    if fmt != "onnx":
        return []
    return ["onnx", "onnxscript", *(["onnxruntime"] if check else [])]


def require_packages(fmt: str, check: bool) -> None:
    """Refuse to start when a package the export needs cannot be imported, before anything is read or written.

    Args:
        fmt: one of :data:`FORMATS`.
        check: whether the exported file is run again (``onnxruntime`` for ONNX).

    Raises:
        UsageError: naming the first missing package and the install command.
    """
    needed = needed_packages(fmt, check)
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            raise UsageError(
                f"--format {fmt}{' --check' if check else ''} needs the packages {', '.join(needed)}, and {name} "
                f"cannot be imported: install them with {INSTALL}."
            ) from None


def example_input(input_shape: Sequence[int]) -> torch.Tensor:
    """A batch of two zero images: an example batch of more than one, so that N is not specialised to 1."""
    return torch.zeros(2, *input_shape)


def _batch_dim() -> tuple[dict[int, torch.export.Dim], ...]:
    """The dynamic shapes of the one input: dimension 0 (N) is any size from 1 up."""
    return ({0: torch.export.Dim("batch", min=1)},)


def onnx_bytes(predictor: nn.Module, input_shape: Sequence[int]) -> bytes:
    """The predictor as an ONNX model (``dynamo=True``): input ``input`` (N, C, H, W), output ``logits`` (N, K).

    Args:
        predictor: the module to export, in eval mode on the CPU.
        input_shape: (C, H, W) of one example.
    """
    try:
        program = torch.onnx.export(
            predictor,
            (example_input(input_shape),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=_batch_dim(),
            verbose=False,
        )
    except Exception as error:
        raise ExportError(f"torch.onnx.export could not export the model: {_first_line(error)}.") from error
    if program is None:  # only a TorchScript export returns nothing, and dynamo=True is not one
        raise ExportError("torch.onnx.export returned no ONNX program.")
    return program.model_proto.SerializeToString()


def pt2_bytes(predictor: nn.Module, input_shape: Sequence[int]) -> bytes:
    """The predictor as a ``torch.export`` program saved by ``torch.export.save``, N dynamic.

    Args:
        predictor: the module to export, in eval mode on the CPU.
        input_shape: (C, H, W) of one example.
    """
    try:
        program = torch.export.export(predictor, (example_input(input_shape),), dynamic_shapes=_batch_dim())
    except Exception as error:
        raise ExportError(f"torch.export.export could not export the model: {_first_line(error)}.") from error
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__).rstrip(".")


EXPORTERS: dict[str, Callable[[nn.Module, Sequence[int]], bytes]] = {"onnx": onnx_bytes, "pt2": pt2_bytes}


def onnx_runner(path: str) -> Runner:
    """The ONNX file at ``path`` in an onnxruntime CPU session, as a function of float batches.

    Args:
        path: the exported file.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        return torch.from_numpy(logits)

    return run


def pt2_runner(path: str) -> Runner:
    """The ``.pt2`` file at ``path``, loaded by ``torch.export.load``, as a function of float batches.

    Args:
        path: the exported file.
    """
    module = torch.export.load(path).module()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


RUNNERS: dict[str, Callable[[str], Runner]] = {"onnx": onnx_runner, "pt2": pt2_runner}
#: What runs the exported file, as the check's line names it.
RUNTIMES = {"onnx": "onnxruntime", "pt2": "torch.export.load"}
