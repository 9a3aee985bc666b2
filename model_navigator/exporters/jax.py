"""Export producer that needs the user's JAX predict function and params: a TensorFlow SavedModel
made with jax.experimental.jax2tf, one per requested (enable_xla, jit_compile) variant (the direct
ONNX path, through jax2onnx, is exporters/jax_onnx.py; both share the context built here).

- The params become tf.Variables (one per pytree leaf) held by the saved tf.Module, so the
  SavedModel stores them once as variables instead of folding them into the graph as constants.
- Shapes are polymorphic: the batch axis is the dimension variable `batch` in every input, and
  other dynamic axes share a variable when their sizes agree in every saved sample (a sequence
  axis of input_ids and attention_mask), so one SavedModel serves every batch and length.
- `enable_xla=True` uses jax2tf's native serialization (the whole function as StableHLO in one
  XlaCallModule op, lowered for CPU and CUDA where it can be); `enable_xla=False` its
  non-native one (plain TensorFlow ops, which tf2onnx converts), which only jax <= 0.7.1 has.
- `jit_compile` is tf.function's: True makes TensorFlow compile the whole function with XLA.
- The SavedModel's one signature, `serving_default`, takes the export's input names and returns a
  dict of the output names, exactly as the TensorFlow exporter's does, so the SavedModel runner,
  tf2onnx and TF-TRT treat both alike.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.diskspace import written_in_staging
from model_navigator.core.logging import LOGGER
from model_navigator.frameworks.jax_utils import (
    JaxModel,
    call_predict,
    enable_xla_false_reason,
    flatten_outputs,
    import_jax,
    import_jax2tf,
    jax_version,
    non_native_supported,
)
from model_navigator.frameworks.tensorflow_utils import SIGNATURE_KEY, import_tensorflow, tf_quiet
from model_navigator.paths.base import ExportContext, Hint, PathSpec, ProduceRequest, match_hint

# Native serialization lowers for these platforms when it can, so the SavedModel runs on both.
SERIALIZATION_PLATFORMS = ("cpu", "cuda")
BATCH_SYMBOL = "batch"


# Known jax2onnx limits and what works instead (paths.base.match_hint).
_HINTS: Tuple[Hint, ...] = (
    (
        ("_DynamicDimSentinel", "JAX2ONNX_DYNAMIC_DIM_SENTINEL"),
        "onnx-jax2onnx",
        "jax2onnx cannot index or broadcast jnp.arange(n) when n is a varying (symbolic) axis, as in T5's relative "
        "positions (jnp.arange(n)[:, None]); jax.lax.broadcasted_iota(jnp.int32, (n, n), 0) or "
        "jnp.arange(n).reshape(n, 1) converts",
    ),
    (
        ("_pool() takes 1 positional argument",),
        "onnx-jax2onnx",
        "jax2onnx's flax.linen max_pool/avg_pool/min_pool take window_shape only by keyword: "
        "nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))",
    ),
)


@dataclass
class JaxExportContext(ExportContext):
    """What the jax2tf export needs: the function and params, and the signature's names and shapes."""

    model: JaxModel
    input_names: Tuple[str, ...]
    input_shapes: Tuple[Tuple[Optional[int], ...], ...]  # None marks a dynamic axis
    input_dtypes: Tuple[str, ...]
    polymorphic_shapes: Tuple[Optional[str], ...]  # jax2tf's spec per input, e.g. "(batch, seq_1, 8)"
    output_names: Tuple[str, ...]
    keyword: bool
    opset: int = 17  # the ONNX opset of the direct jax2onnx path
    kw_names: Optional[Tuple[str, ...]] = None  # dict samples: the function's parameter names, in input order
    device: str = "cpu"

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """TensorFlow's and JAX's device scopes; first, TensorFlow's start-up lines into the log now open."""
        from model_navigator.frameworks.jax_utils import jax_device
        from model_navigator.frameworks.tensorflow_utils import device_name, flush_pending

        flush_pending()
        with import_tensorflow().device(device_name(self.device)), import_jax().default_device(jax_device(self.device)):
            yield

    def write_reproduce(self, workspace: Any, spec: PathSpec) -> None:
        write_export_reproduce(workspace, spec)

    def failure_hint(self, spec: PathSpec, reason: str) -> Optional[str]:
        return match_hint(_HINTS, spec, reason)

    @property
    def call_names(self) -> Tuple[str, ...]:
        """The names the function is called with (input_names may have renamed its keyword inputs)."""
        return self.kw_names or self.input_names


def dimension_symbols(
    input_names: Sequence[str],
    shapes: Sequence[Tuple[Optional[int], ...]],
    batch_dim: Optional[int],
    samples: Sequence[Dict[str, np.ndarray]],
) -> List[Optional[str]]:
    """jax2tf polymorphic shape per input: the batch axis is `batch` everywhere; every other dynamic
    axis gets a variable shared with the axes whose size matches it in every sample (otherwise
    `x + mask` could not be traced: jax2tf must know both axes are equal)."""
    groups: Dict[Tuple[int, ...], str] = {}
    result: List[Optional[str]] = []
    for name, shape in zip(input_names, shapes, strict=True):
        if all(d is not None for d in shape):
            result.append(None)
            continue
        dims = []
        for axis, size in enumerate(shape):
            if size is not None:
                dims.append(str(size))
            elif axis == batch_dim:
                dims.append(BATCH_SYMBOL)
            else:
                signature = tuple(int(s[name].shape[axis]) for s in samples if name in s and s[name].ndim > axis)
                if not signature:  # no samples saved (save_data=False): nothing says two axes agree
                    signature = (-1 - len(groups),)
                symbol = groups.setdefault(signature, f"d{len(groups)}")
                dims.append(symbol)
        result.append("(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")")
    return result


def _lowered(
    build: Callable[[Optional[Sequence[str]]], Any], platforms: Optional[Sequence[str]]
) -> Tuple[Any, Optional[Sequence[str]]]:
    """build(platforms), or build(None) (this machine's platform only) when an op has no lowering
    for one of them (a CPU-only custom call has none for CUDA); returns the result and the platforms."""
    try:
        return build(platforms), platforms
    except Exception as first:
        if not platforms:
            raise
        try:
            result = build(None)
        except Exception:
            raise first from None
        LOGGER.warning(
            "jax2tf could not lower for %s (%s: %s); lowered for this machine's platform only",
            "/".join(platforms),
            type(first).__name__,
            (str(first).splitlines() or [""])[0],
        )
        return result, None


def serving_module(ctx: JaxExportContext, enable_xla: bool, jit_compile: bool) -> Tuple[Any, Any, List[str]]:
    """(tf.Module holding the params as variables, its concrete `serving_default` function, the
    platforms the native serialization was lowered for: [] for non-native)."""
    tf = import_tensorflow()
    jax = import_jax()
    jax2tf = import_jax2tf()
    if not enable_xla and not non_native_supported():
        raise RuntimeError(enable_xla_false_reason())

    leaves, treedef = jax.tree_util.tree_flatten(ctx.model.params)
    variables = [tf.Variable(np.asarray(leaf), trainable=False, name=f"param_{i}") for i, leaf in enumerate(leaves)]
    model, names, keyword, output_names = ctx.model, ctx.call_names, ctx.keyword, ctx.output_names

    def flat_predict(param_leaves, *inputs):
        params = jax.tree_util.tree_unflatten(treedef, list(param_leaves))
        tensors, _ = flatten_outputs(call_predict(model, inputs, names, keyword, params=params))
        return tuple(tensors)

    kwargs: Dict[str, Any] = {
        "polymorphic_shapes": [None, *ctx.polymorphic_shapes],
        # with_gradient=False would add PreventGradient ops, which tf2onnx cannot
        # convert; the gradient itself is not saved (experimental_custom_gradients).
        "with_gradient": True,
    }
    if non_native_supported():  # jax <= 0.7.1: the flags still choose the serialization
        kwargs.update(enable_xla=enable_xla, native_serialization=enable_xla)
    specs = [
        tf.TensorSpec(shape=list(shape), dtype=tf.as_dtype(dtype), name=name)
        for name, shape, dtype in zip(ctx.input_names, ctx.input_shapes, ctx.input_dtypes, strict=True)
    ]

    def build(platforms: Optional[Sequence[str]]) -> Tuple[Any, Any]:
        options = dict(kwargs)
        if platforms:
            options["native_serialization_platforms"] = tuple(platforms)
        converted = jax2tf.convert(flat_predict, **options)

        @tf.function(input_signature=specs, autograph=False, jit_compile=jit_compile)
        def serve(*inputs):
            outputs = converted(variables, *inputs)
            if len(outputs) != len(output_names):
                raise ValueError(
                    f"the predict function returned {len(outputs)} outputs while converting, "
                    f"expected {len(output_names)} {output_names}"
                )
            return {name: tf.identity(t) for name, t in zip(output_names, outputs, strict=True)}

        return serve, serve.get_concrete_function()

    native = enable_xla or not non_native_supported()
    (serve, concrete), platforms = _lowered(build, SERIALIZATION_PLATFORMS if native else None)
    holder = tf.Module()
    holder.params = variables
    holder.serve = serve
    return holder, concrete, (list(platforms or [jax.default_backend()]) if native else [])


def export_savedmodel(request: ProduceRequest) -> Dict[str, Any]:
    """jax2tf.convert + tf.function(jit_compile) + tf.saved_model.save with `serving_default`."""
    ctx, spec, out_path = request.context, request.spec, request.out_path
    tf = import_tensorflow()
    selectors = spec.selector_dict
    enable_xla, jit_compile = bool(selectors.get("enable_xla", True)), bool(selectors.get("jit_compile", False))
    out_path = Path(out_path)
    if out_path.exists():
        shutil.rmtree(out_path)
    with tf_quiet("jax2tf"):
        holder, concrete, platforms = serving_module(ctx, enable_xla, jit_compile)
        ops = sorted({op.type for op in concrete.graph.get_operations()})
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        with written_in_staging(out_path) as staged:  # never half a SavedModel under its final name
            tf.saved_model.save(holder, str(staged), signatures={SIGNATURE_KEY: concrete}, options=options)
    native = "XlaCallModule" in ops
    LOGGER.info(
        "jax2tf SavedModel %s: enable_xla=%s jit_compile=%s native serialization=%s ops=%s",
        spec.key,
        enable_xla,
        jit_compile,
        native,
        ops,
    )
    return {
        "signature": SIGNATURE_KEY,
        "jax_version": jax_version(),
        "native_serialization": native,
        "serialization_platforms": platforms,
        "polymorphic_shapes": dict(zip(ctx.input_names, [p or "static" for p in ctx.polymorphic_shapes], strict=True)),
    }


def variant_unavailable(spec: PathSpec) -> Optional[str]:
    """PathSpec.availability hook: an enable_xla=False variant needs a jax whose jax2tf still has
    non-native serialization; with a newer jax the path is skipped with the reason."""
    if spec.selector_dict.get("enable_xla", True):
        return None
    return enable_xla_false_reason()


def savedmodel_onnx_unavailable(spec: PathSpec) -> Optional[str]:
    """PathSpec.availability hook of the ONNX made from a SavedModel: an enable_xla=True SavedModel is
    jax2tf's native serialization (the only one from jax 0.7.2 on), one XlaCallModule op that tf2onnx
    cannot convert, so that path is known impossible and skipped with the reason instead of tried."""
    if not spec.selector_dict.get("enable_xla", False):
        return None
    return (
        "the enable_xla=True SavedModel holds the function as one XlaCallModule op (jax2tf's native "
        "serialization, the only one since jax 0.7.2), which tf2onnx cannot convert; ONNX comes from "
        "onnx-jax2onnx (format=ONNX without enable_xla / jit_compile)"
    )


def context_from_status(model: JaxModel, workspace: Any, status: Any) -> JaxExportContext:
    """The export context from status.yaml and the saved samples (reproduce_export.py)."""
    from model_navigator.core.samples import load_sample_dir

    samples: List[Dict[str, np.ndarray]] = []
    if _needs_samples(status.inputs, status.config.batch_dim):
        for sample_set in ("conversion", "correctness"):
            samples += load_sample_dir(workspace.input_dir(sample_set))
    return make_context(model, status.config, status.inputs, status.outputs, samples)


def _needs_samples(inputs: Sequence[Any], batch_dim: Optional[int]) -> bool:
    """Does an input have a dynamic axis besides the batch (its sizes in the samples pair the axes)?"""
    return any(d < 0 and axis != batch_dim for m in inputs for axis, d in enumerate(m.shape))


def make_context(
    model: JaxModel,
    config: Any,
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    samples: Sequence[Dict[str, np.ndarray]],
) -> JaxExportContext:
    """The export context of `model` under `config`, tensors described by `inputs`/`outputs`
    (TensorMetadata); `samples` (conversion, then correctness) pair the dynamic axes that vary together."""
    names = tuple(m.name for m in inputs)
    shapes = tuple(tuple(None if d < 0 else int(d) for d in m.shape) for m in inputs)
    batch_dim = config.batch_dim
    if not _needs_samples(inputs, batch_dim):
        samples = []
    return JaxExportContext(
        model=model,
        input_names=names,
        input_shapes=shapes,
        input_dtypes=tuple(m.dtype for m in inputs),
        polymorphic_shapes=tuple(dimension_symbols(names, shapes, batch_dim, samples)),
        output_names=tuple(m.name for m in outputs),
        keyword=bool(config.forward_kw_names),
        opset=config.opset,
        kw_names=tuple(config.forward_kw_names or ()) or None,
        device=config.target_device,
    )


_EXPORT_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce the export of path `{path}` from your JAX predict function and params.

Export needs your predict function and its params: implement get_model() and get_model_params()
below, then run from the workspace root:
    bash {path}/reproduce_export.sh
"""
import sys

from model_navigator.exporters.jax import reproduce_export_main


def get_model():
    raise NotImplementedError(
        "Please implement get_model() to return your JAX predict function (params as its last argument).")


def get_model_params():
    raise NotImplementedError("Please implement get_model_params() to return the params (model weights).")


if __name__ == "__main__":
    sys.exit(reproduce_export_main(get_model, get_model_params, sys.argv[1:]))
'''


def write_export_reproduce(workspace: Any, spec: PathSpec) -> None:
    """Write <path>/reproduce_export.py (needs get_model() and get_model_params()) and its .sh."""
    from model_navigator.exporters import reproduce

    reproduce.write_export_reproduce(workspace, spec, _EXPORT_TEMPLATE, needs="get_model() and get_model_params()")


def reproduce_export_main(get_model: Any, get_model_params: Any, argv: List[str]) -> int:
    """Entry of reproduce_export.py: export the path again with the recorded settings."""
    from model_navigator.core.enums import Framework
    from model_navigator.frameworks.jax_utils import params_argument
    from model_navigator.exporters.reproduce import run_reproduce_export

    def make_context(workspace: Any, status: Any) -> Any:
        predict = get_model()
        return context_from_status(JaxModel(predict, get_model_params(), params_argument(predict)), workspace, status)

    return run_reproduce_export(Framework.JAX, make_context, argv)
