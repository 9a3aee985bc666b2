"""Export producer of the direct JAX -> ONNX path: the predict function and its params converted
by jax2onnx (no SavedModel, no tf2onnx), so it works on jax >= 0.7.2 where jax2tf only
serializes natively (one XlaCallModule op that tf2onnx cannot convert).

- The params are closed over: jax2onnx stores them as initializers of the graph.
- Shapes: the batch axis is the symbolic dimension `batch`, and every other axis that varies
  across the samples gets a symbol shared with the axes whose sizes agree in every sample
  (the jax2tf paths' dimension_symbols), so one model serves every batch and length.
- Dict samples are passed as keyword arguments; pytree outputs are flattened and named as the
  SavedModel paths name them (jax_utils.flatten_outputs), and the graph's inputs and outputs carry
  the export's names and input dtypes (JAX without x64 traces int64 inputs as int32: a Cast
  follows the int64 graph input).
- The opset is the export's, at least 18 (MIN_OPSET).
- A primitive jax2onnx cannot lower fails this path with jax2onnx's own message (it names the
  primitive); the other paths go on.

jax2onnx is imported here only, when the path runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from model_navigator.core.errors import FrameworkMissingError
from model_navigator.core.diskspace import written_in_staging
from model_navigator.core.logging import LOGGER
from model_navigator.frameworks.jax_utils import call_predict, flatten_outputs, import_jax
from model_navigator.paths.base import ProduceRequest

# jax2onnx 0.17 writes ReduceMean & co. with their axes as an input, opset 18's form, whatever
# opset it is given: a lower opset (the export's default is 17) makes an invalid model.
MIN_OPSET = 18
# Above this the model is saved with its initializers in model.onnx.data (protobuf's 2 GiB limit).
_EXTERNAL_DATA_BYTES = 1_800_000_000


def import_jax2onnx() -> Any:
    """`import jax2onnx`, or an error naming the extra."""
    import_jax()
    try:
        import jax2onnx
    except ImportError as e:
        raise FrameworkMissingError(
            f"The direct JAX -> ONNX path needs jax2onnx (which needs jax >= 0.8.1): "
            f"pip install 'model-navigator[jax]' ({e})."
        ) from e
    return jax2onnx


def jax2onnx_version() -> str:
    """The installed jax2onnx version, or 'unknown'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jax2onnx")
    except PackageNotFoundError:
        return "unknown"


def symbolic_shape(polymorphic: Optional[str], shape: Sequence[Optional[int]]) -> Tuple[Union[int, str], ...]:
    """jax2onnx's shape for one input from the jax2tf polymorphic spec shared with the SavedModel
    paths: symbolic_shape('(batch, d0, 6)', (None, None, 6)) == ('batch', 'd0', 6)."""
    if polymorphic is None:
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]
    dims = [d.strip() for d in polymorphic.strip().strip("()").split(",") if d.strip()]
    return tuple(int(d) if d.isdigit() else d for d in dims)


def _rename_value(graph: Any, old: str, new: str) -> None:
    """Rename a value everywhere in the graph (node inputs/outputs, graph inputs/outputs)."""
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def name_graph_io(
    model: Any, input_names: Sequence[str], input_dtypes: Sequence[str], output_names: Sequence[str]
) -> None:
    """Give the graph's inputs and outputs the export's names, and its inputs the export's dtypes
    (a Cast to the traced dtype after an input whose dtype JAX narrowed)."""
    import onnx
    from onnx import helper

    graph = model.graph
    if len(graph.input) != len(input_names) or len(graph.output) != len(output_names):
        raise RuntimeError(
            f"jax2onnx made a graph with {len(graph.input)} inputs and {len(graph.output)} outputs; the predict "
            f"function has {len(input_names)} inputs {tuple(input_names)} and {len(output_names)} outputs "
            f"{tuple(output_names)}"
        )
    for value, name in zip(list(graph.output), output_names, strict=True):
        if value.name != name:
            _rename_value(graph, value.name, name)
    casts = []
    for value, name, dtype in zip(list(graph.input), input_names, input_dtypes, strict=True):
        if value.name != name:
            _rename_value(graph, value.name, name)
        wanted = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        traced = value.type.tensor_type.elem_type
        if traced != wanted:
            inner = f"{name}__as_{onnx.TensorProto.DataType.Name(traced).lower()}"
            _rename_value(graph, name, inner)
            value.name = name
            value.type.tensor_type.elem_type = wanted  # its users now read `inner`, the Cast's output
            casts.append(helper.make_node("Cast", [name], [inner], to=traced, name=f"{inner}_cast"))
    if casts:
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)


def export_jax_onnx(request: ProduceRequest) -> Dict[str, Any]:
    """jax2onnx.to_onnx of the predict function with its params closed over, symbolic dimensions for
    the batch and varying axes, the export's input/output names; saved as model.onnx."""
    ctx, spec, out_path = request.context, request.spec, request.out_path
    jax = import_jax()
    jax2onnx = import_jax2onnx()
    import onnx

    model, names, keyword = ctx.model, ctx.call_names, ctx.keyword

    def flat_predict(*inputs: Any) -> Tuple[Any, ...]:
        tensors, _ = flatten_outputs(call_predict(model, inputs, names, keyword))
        return tuple(tensors)

    shapes = [symbolic_shape(poly, shape) for poly, shape in zip(ctx.polymorphic_shapes, ctx.input_shapes, strict=True)]
    specs = [
        jax.ShapeDtypeStruct(shape, np.dtype(dtype)) for shape, dtype in zip(shapes, ctx.input_dtypes, strict=True)
    ]
    version = jax2onnx_version()
    opset = max(ctx.opset, MIN_OPSET)
    if opset != ctx.opset:
        LOGGER.info(
            "%s: opset %d raised to %d, the lowest jax2onnx writes valid models for", spec.key, ctx.opset, opset
        )
    try:
        proto = jax2onnx.to_onnx(flat_predict, specs, model_name=spec.key.replace("-", "_"), opset=opset)
    except Exception as e:  # jax2onnx's reason names the primitive it cannot lower
        first = (str(e).strip().splitlines() or [""])[0]
        raise RuntimeError(
            f"jax2onnx {version} could not convert the predict function: {type(e).__name__}: {first}"
        ) from e
    name_graph_io(proto, ctx.input_names, ctx.input_dtypes, ctx.output_names)  # the export's names
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    external = proto.ByteSize() > _EXTERNAL_DATA_BYTES
    if not external:
        onnx.checker.check_model(proto)
    with written_in_staging(out_path) as staged:  # never half a model.onnx under its final name
        onnx.save_model(
            proto, str(staged), save_as_external_data=external, location=f"{out_path.name}.data" if external else None
        )
    if external:  # a model over 2 GiB is checked from its file
        onnx.checker.check_model(str(out_path))
    dims: List[str] = sorted({d for shape in shapes for d in shape if isinstance(d, str)})
    return {
        "exporter": "jax2onnx",
        "jax2onnx_version": version,
        "opset": opset,
        "symbolic_dims": dims,
        "input_shapes": dict(zip(ctx.input_names, [list(s) for s in shapes], strict=True)),
    }
