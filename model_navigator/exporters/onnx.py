"""ONNX as a source (nav.onnx.export): reading and checking the user's .onnx file, its graph's
inputs and outputs, the reference outputs from ONNX Runtime, and the `onnx` path's producer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.diskspace import written_in_staging
from model_navigator.core.errors import FrameworkMissingError, UserInputError
from model_navigator.paths.base import ExportContext, PathSpec, ProduceRequest

# Above this the graph cannot live in one protobuf file: its weights go to model.onnx.data.
_PROTOBUF_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class GraphTensor:
    """A graph input or output: its name, dtype and shape (None on a dynamic axis)."""

    name: str
    dtype: np.dtype
    shape: Tuple[Optional[int], ...]

    @property
    def dynamic_axes(self) -> List[int]:
        return [axis for axis, size in enumerate(self.shape) if size is None]


@dataclass
class OnnxExportContext(ExportContext):
    """What the `onnx` path's producer needs: the user's file."""

    source: Path

    def write_reproduce(self, workspace: Any, spec: PathSpec) -> None:
        write_export_reproduce(workspace, spec, self.source)


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise FrameworkMissingError("nav.onnx needs onnx and onnxruntime: pip install 'model-navigator[onnx]'.") from e
    return onnx


def load_checked(path: Path) -> Any:
    """The ModelProto of `path` (external data included), or a UserInputError with onnx's checker message."""
    onnx = import_onnx()
    if not path.is_file():
        raise UserInputError(f"`model` {str(path)!r} is not a file; give the path of an .onnx model.")
    try:
        onnx.checker.check_model(str(path))  # by path: works for models with external data too
        return onnx.load(str(path))
    except Exception as e:  # ValidationError, protobuf's DecodeError, OSError ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserInputError(f"`model` {str(path)!r} is not a valid ONNX model: {type(e).__name__}: {first}") from e


def _tensor(value_info: Any) -> GraphTensor:
    from onnx.helper import tensor_dtype_to_np_dtype

    tensor_type = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type"):
        raise UserInputError(f"ONNX input/output {value_info.name!r} is not a tensor; only tensors are supported.")
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return GraphTensor(value_info.name, np.dtype(tensor_dtype_to_np_dtype(tensor_type.elem_type)), shape)


def graph_tensors(model: Any) -> Tuple[List[GraphTensor], List[GraphTensor]]:
    """The graph's real inputs (initializers listed as inputs by old exporters left out) and outputs."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [_tensor(v) for v in model.graph.input if v.name not in initializers]
    return inputs, [_tensor(v) for v in model.graph.output]


def opset_of(model: Any) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def check_samples(
    samples: Sequence[Dict[str, np.ndarray]],
    inputs: Sequence[GraphTensor],
    batch_dim: Optional[int],
    describe: Optional[Callable[[int], str]] = None,
) -> None:
    """Every sample fits the graph's inputs (rank, fixed sizes, dtype), checked before any work;
    errors name the input, both shapes and what to change, and the sample as `describe` says
    (SampleSet.describe: the dataloader item and position). Samples are single (batch axis 1) when
    `batch_dim` is set."""
    for index, sample in enumerate(samples):
        where = describe(index) if describe is not None else f"sample {index}"
        where = where[0].upper() + where[1:]
        for tensor in inputs:
            value = sample[tensor.name]
            expected = tuple("?" if s is None else s for s in tensor.shape)
            if value.ndim != len(tensor.shape):
                raise UserInputError(
                    f"{where}: input {tensor.name!r} has shape {value.shape}, but the "
                    f"ONNX graph takes rank {len(tensor.shape)} {expected}."
                )
            for axis, size in enumerate(tensor.shape):
                if size is None or value.shape[axis] == size:
                    continue
                if axis == batch_dim:
                    raise UserInputError(
                        f"Input {tensor.name!r}: the ONNX graph fixes its batch axis {axis} to {size} {expected}, so "
                        f"model-navigator cannot split and rebuild batches along it; pass batch_dim=None to feed "
                        f"whole batches of {size}, or give a model with a dynamic batch axis."
                    )
                shown = (
                    value.shape
                    if batch_dim is None
                    else value.shape[:batch_dim] + ("b",) + value.shape[batch_dim + 1 :]
                )
                raise UserInputError(
                    f"{where}: input {tensor.name!r} has shape {shown}, but the ONNX "
                    f"graph takes {expected} (axis {axis} is fixed to {size})."
                )
            if value.dtype != tensor.dtype:
                raise UserInputError(
                    f"{where}: input {tensor.name!r} has dtype {value.dtype}, but the "
                    f"ONNX graph takes {tensor.dtype}; feed {tensor.dtype} tensors."
                )


def copy_onnx(request: ProduceRequest) -> Dict[str, Any]:
    """The `onnx` path: the user's model as it is, saved into the workspace (weights kept in external
    data when the graph is over protobuf's 2 GiB)."""
    ctx, out_path = request.context, request.out_path
    onnx = import_onnx()
    model = onnx.load(str(ctx.source))  # loads external data from beside the source
    with written_in_staging(out_path) as staged:  # never half a model.onnx under its final name
        if model.ByteSize() > _PROTOBUF_LIMIT:
            onnx.save(model, str(staged), save_as_external_data=True, location=f"{out_path.name}.data")
        else:
            onnx.save(model, str(staged))
    return {"source": str(ctx.source), "opset": opset_of(model)}


_EXPORT_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce the `{path}` path: copy the ONNX file given to nav.onnx.export into the workspace.

Run from the workspace root:
    bash {path}/reproduce_export.sh
"""
import sys

from model_navigator.exporters.onnx import reproduce_export_main


def get_model():
    return __SOURCE__  # the .onnx file given to nav.onnx.export


if __name__ == "__main__":
    sys.exit(reproduce_export_main(get_model, sys.argv[1:]))
'''


def write_export_reproduce(workspace: Any, spec: PathSpec, source: Path) -> None:
    """Write <path>/reproduce_export.py (it names the source file) and its .sh."""
    from model_navigator.exporters import reproduce

    template = _EXPORT_TEMPLATE.replace("__SOURCE__", repr(str(source)))
    reproduce.write_export_reproduce(workspace, spec, template, needs="the source path in get_model()")


def reproduce_export_main(get_model: Any, argv: List[str]) -> int:
    """Entry of reproduce_export.py: copy the file get_model() names again."""
    from model_navigator.core.enums import Framework
    from model_navigator.exporters.reproduce import run_reproduce_export

    return run_reproduce_export(Framework.ONNX, lambda workspace, status: OnnxExportContext(Path(get_model())), argv)
