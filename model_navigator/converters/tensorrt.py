"""ONNX -> TensorRT plan (trt-fp32 / trt-fp16) with Polygraphy's TensorRT loaders.

Optimization profiles come from `trt_dynamic_axes` when given, otherwise from the conversion
samples' smallest and largest shapes and the largest batch size a later step runs. Inputs
TensorRT cannot take as int64 (TensorRT < 10) are cast to int32 in a copy of the ONNX model and
recorded in the path's `reported`; the runner casts feeds to the engine's dtypes.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.batching import default_check_batch_sizes, select_batch_sizes
from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import TensorRTPrecision
from model_navigator.core.logging import LOGGER
from model_navigator.core.samples import load_sample_dir
from model_navigator.core.status import NavigatorStatus
from model_navigator.paths.base import PathSpec, ProduceRequest

DEFAULT_WORKSPACE_SIZE = 8 * 2**30
Shape = Tuple[int, ...]


def engine_batch_sizes(config: ExportConfig, status: NavigatorStatus) -> List[int]:
    """Every batch size a later step runs the engine at: the correctness check's (1 and the
    dataloader's batch, 2 when that is 1) and the profiler's (its batch sizes or sweep). A TensorRT
    or TF-TRT engine must accept all of them."""
    sizes = set(default_check_batch_sizes(status))
    sizes.update(
        select_batch_sizes(config.profiler_config, int(status.dataloader.get("batch_size", 1)), config.batch_dim)
    )
    return sorted(sizes)


def profile_shapes(
    input_shapes: Dict[str, List[Shape]],
    batch_dim: Optional[int],
    max_batch: int,
    trt_dynamic_axes: Optional[Mapping[str, Mapping[int, Sequence[int]]]] = None,
    static_dims: Optional[Dict[str, List[Optional[int]]]] = None,
) -> Dict[str, Tuple[Shape, Shape, Shape]]:
    """(min, opt, max) per input from the single-sample shapes seen (and user overrides).

    Axes default to the smallest and largest size seen (opt = largest); the batch axis spans
    1..max_batch with opt = max_batch; `trt_dynamic_axes` {name: {axis: (min, opt, max)}} wins,
    except over an axis the model itself fixes (`static_dims`, None where dynamic): TensorRT
    rejects a profile that disagrees with a static dimension.
    """
    result = {}
    for name, shapes in input_shapes.items():
        arr = np.array(shapes)
        low, high = arr.min(axis=0).tolist(), arr.max(axis=0).tolist()
        opt = list(high)
        if batch_dim is not None and batch_dim < len(low):
            low[batch_dim], opt[batch_dim], high[batch_dim] = 1, max_batch, max_batch
        for axis, (a, b, c) in ((trt_dynamic_axes or {}).get(name) or {}).items():
            low[int(axis)], opt[int(axis)], high[int(axis)] = int(a), int(b), int(c)
        for axis, size in enumerate((static_dims or {}).get(name) or []):
            if size is not None and axis < len(low):
                low[axis] = opt[axis] = high[axis] = int(size)
        result[name] = (tuple(low), tuple(opt), tuple(high))
    return result


def conversion_profile_shapes(
    workspace: Any,
    status: NavigatorStatus,
    config: ExportConfig,
    static_dims: Optional[Dict[str, List[Optional[int]]]] = None,
) -> Dict[str, Tuple[Shape, Shape, Shape]]:
    """profile_shapes() from the workspace's conversion samples and the export's config: what the
    TensorRT and Torch-TensorRT conversions build their optimization profile from."""
    samples = load_sample_dir(workspace.input_dir("conversion"))
    return profile_shapes(
        {m.name: [s[m.name].shape for s in samples] for m in status.inputs},
        config.batch_dim,
        max(engine_batch_sizes(config, status)),
        config.trt_dynamic_axes,
        static_dims,
    )


def onnx_static_dims(onnx_path: Path) -> Dict[str, List[Optional[int]]]:
    """Per graph input, each axis' fixed size, or None where the ONNX model leaves it dynamic."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return {
        graph_input.name: [
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in graph_input.type.tensor_type.shape.dim
        ]
        for graph_input in model.graph.input
    }


def static_axes_overruling(
    trt_dynamic_axes: Optional[Mapping[str, Mapping[int, Sequence[int]]]], static_dims: Dict[str, List[Optional[int]]]
) -> Dict[str, Dict[int, int]]:
    """The `trt_dynamic_axes` entries that name an axis the ONNX model fixes: {name: {axis: size}}."""
    result: Dict[str, Dict[int, int]] = {}
    for name, axes in (trt_dynamic_axes or {}).items():
        dims = static_dims.get(name) or []
        fixed = {int(a): d for a in axes if int(a) < len(dims) and (d := dims[int(a)]) is not None}
        if fixed:
            result[name] = fixed
    return result


def tensorrt_unavailable(spec: PathSpec) -> Optional[str]:
    """Why this TensorRT cannot build the path, or None: it must import (an error here is the skip
    reason), and trt-fp16 needs the weakly typed FP16 builder flag, which TensorRT 11 removed."""
    import tensorrt as trt

    if spec.precision != TensorRTPrecision.FP16 or hasattr(trt.BuilderFlag, "FP16"):
        return None
    return (
        f"TensorRT {trt.__version__} has no FP16 builder flag (removed in TensorRT 11 for strongly typed "
        f"networks); use trt-fp32 or pip install 'tensorrt>=10,<11'"
    )


def _shape_arg(shapes: Dict[str, Tuple[Shape, Shape, Shape]], which: int) -> List[str]:
    return [f"{name}:[{','.join(str(d) for d in s[which])}]" for name, s in shapes.items()]


def polygraphy_command(
    onnx_path: str,
    plan_path: str,
    shapes: Dict[str, Tuple[Shape, Shape, Shape]],
    precision: TensorRTPrecision,
    workspace_size: int,
) -> List[str]:
    """The `polygraphy convert` command line equivalent to this conversion (for reproduce scripts)."""
    command = ["polygraphy", "convert", onnx_path, "--convert-to", "trt", "-o", plan_path]
    if shapes:
        command += [
            "--trt-min-shapes",
            *_shape_arg(shapes, 0),
            "--trt-opt-shapes",
            *_shape_arg(shapes, 1),
            "--trt-max-shapes",
            *_shape_arg(shapes, 2),
        ]
    if precision == TensorRTPrecision.FP16:
        command.append("--fp16")
    command.append(f"--pool-limit=workspace:{workspace_size}")
    return command


def int64_inputs(status: NavigatorStatus) -> List[str]:
    return [m.name for m in status.inputs if m.dtype == "int64"]


def cast_int64_inputs_to_int32(onnx_path: Path, out_path: Path, names: Sequence[str]) -> None:
    """Copy of the ONNX model whose int64 inputs are int32 followed by a Cast back to int64."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    for graph_input in graph.input:
        if graph_input.name not in names:
            continue
        original = graph_input.name
        renamed = f"{original}__int64"
        for node in graph.node:
            node.input[:] = [renamed if i == original else i for i in node.input]
        graph_input.type.tensor_type.elem_type = TensorProto.INT32
        graph.node.insert(0, helper.make_node("Cast", [original], [renamed], to=TensorProto.INT64))
    onnx.save(model, str(out_path))


def convert_onnx_to_trt(request: ProduceRequest) -> Dict[str, Any]:
    """Build and save the TensorRT engine; returns what it reports (recorded in the path's `reported`)."""
    workspace, status, config = request.workspace, request.status, request.config
    spec, parent_path, out_path = request.spec, request.parent_path, request.out_path
    if parent_path is None or spec.precision is None:
        raise ValueError(f"{spec.key}: a TensorRT conversion needs the parent's artifact and a precision")
    import tensorrt as trt
    from polygraphy.backend.trt import (
        CreateConfig,
        Profile,
        engine_from_network,
        network_from_onnx_path,
        save_engine,
    )

    static = onnx_static_dims(parent_path)
    shapes = conversion_profile_shapes(workspace, status, config, static)
    workspace_size = config.max_workspace_size or DEFAULT_WORKSPACE_SIZE
    flags: Dict[str, Any] = {
        "profile_shapes": {k: [list(s) for s in v] for k, v in shapes.items()},
        "max_workspace_size": workspace_size,
    }
    overruled = static_axes_overruling(config.trt_dynamic_axes, static)
    if overruled:  # the ONNX fixes these axes: TensorRT builds for that size only
        LOGGER.warning(
            "trt_dynamic_axes %s name axes the ONNX model fixes; the profile keeps the fixed sizes", overruled
        )
        flags["trt_dynamic_axes_overruled_by_static_dims"] = overruled
    onnx_path = parent_path
    casts = int64_inputs(status) if int(trt.__version__.split(".")[0]) < 10 else []
    if casts:
        onnx_path = out_path.with_name("model_int32_inputs.onnx")
        cast_int64_inputs_to_int32(parent_path, onnx_path, casts)
        flags["int64_inputs_cast_to_int32"] = casts
    profile = Profile()
    for name, (low, opt, high) in shapes.items():
        profile.add(name, min=low, opt=opt, max=high)
    engine = engine_from_network(
        network_from_onnx_path(str(onnx_path)),
        config=CreateConfig(
            fp16=spec.precision == TensorRTPrecision.FP16,
            profiles=[profile],
            memory_pool_limits={trt.MemoryPoolType.WORKSPACE: workspace_size},
        ),
    )
    from model_navigator.core.diskspace import written_atomically

    with written_atomically(out_path) as tmp:  # never half an engine under its final name
        save_engine(engine, str(tmp))
    command = polygraphy_command(
        workspace.relative(onnx_path), workspace.relative(out_path), shapes, spec.precision, workspace_size
    )
    (out_path.parent / "reproduce_conversion_polygraphy.sh").write_text(
        "#!/usr/bin/env bash\n# The same conversion with Polygraphy's CLI; run from the workspace root.\n"
        f"set -euo pipefail\n{' '.join(shlex.quote(c) for c in command)}\n"
    )
    return flags
