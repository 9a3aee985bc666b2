"""nav.tensorflow.export: a Keras 3 model or a tf.Module with a tf.function -> TensorFlow SavedModel,
ONNX (tf2onnx, from the SavedModel), TF-TRT and TensorRT (GPU only)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ContextManager, Dict, List, Optional, Sequence, Tuple, Union

from model_navigator.api.frontend import ExportArguments, FrameworkAdapter
from model_navigator.api.frontend import export as run_export
from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import Format, Framework, RuntimeProvider, TensorRTPrecision
from model_navigator.core.errors import UserInputError
from model_navigator.core.samples import SampleSet, collect_samples
from model_navigator.frameworks.tensorflow_utils import (
    check_model,
    check_tf_names,
    gpu_available,
    import_tensorflow,
    is_keras_model,
    module_function,
    tf_quiet,
)
from model_navigator.paths.registry import formats_of

TF_FORMATS = formats_of(Framework.TENSORFLOW)


# ------------------------------------------------------------------------------------------------
# What the model expects, checked against the samples before anything is exported or written
# ------------------------------------------------------------------------------------------------


def _keras_input_name(tensor: Any, index: int) -> str:
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None) if history is not None else None
    return str(getattr(operation, "name", None) or getattr(tensor, "name", None) or f"input {index}")


def expected_inputs(model: Any) -> Optional[List[Tuple[str, Optional[Tuple[Optional[int], ...]]]]]:
    """(name, shape with None for free axes) per model input, when the model declares them: a
    Keras functional/built model's inputs, or a tf.function's input_signature; else None."""
    if is_keras_model(model):
        try:
            inputs = model.inputs
        except Exception:  # a Sequential or subclassed model that was never built declares none
            return None
        if not inputs:
            return None
        if isinstance(inputs, dict):
            inputs = list(inputs.values())
        return [
            (_keras_input_name(t, i), tuple(None if d is None else int(d) for d in t.shape))
            for i, t in enumerate(inputs)
        ]
    tf = import_tensorflow()
    fn = module_function(model)
    signature = getattr(fn, "input_signature", None)
    if not signature:
        return None
    specs = [s for s in tf.nest.flatten(signature) if isinstance(s, tf.TensorSpec)]
    try:  # unnamed specs take the names of the function's parameters (what keyword calls use)
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
    except (TypeError, ValueError):
        params = []
    if len(params) != len(specs):
        params = [f"input {i}" for i in range(len(specs))]
    return [
        (s.name or params[i], tuple(s.shape.as_list()) if s.shape.rank is not None else None)
        for i, s in enumerate(specs)
    ]


def _model_input_order(model: Any, sample_set: SampleSet) -> None:
    """Dict samples: keep the inputs in the order the model declares them (the signature's order);
    inputs that `input_names` renamed keep their new names, in that order."""
    if not sample_set.keyword:
        return
    expected = expected_inputs(model)
    declared = tuple(n for n, _ in expected or ())
    keys = sample_set.forward_names or sample_set.input_names
    if set(declared) == set(keys) and len(declared) == len(keys):
        to_input = dict(zip(keys, sample_set.input_names, strict=True))
        ordered = tuple(to_input[k] for k in declared)
        sample_set.samples = [{n: s[n] for n in ordered} for s in sample_set.samples]
        sample_set.input_names = ordered
        if sample_set.forward_names:
            sample_set.forward_names = declared


def _fits(expected: Tuple[Optional[int], ...], shape: Tuple[int, ...], batch_dim: Optional[int]) -> bool:
    if len(expected) != len(shape):
        return False
    pairs = enumerate(zip(expected, shape, strict=True))
    return all(e is None or e == s or axis == batch_dim for axis, (e, s) in pairs)


def check_input_shapes(model: Any, sample_set: SampleSet) -> None:
    """Refuse samples the model cannot take, naming the model's and the samples' shapes."""
    expected = expected_inputs(model)
    if expected is None:
        return
    names = sample_set.input_names
    if sample_set.keyword:
        declared = dict(expected)
        keys = sample_set.forward_names or names  # the dict keys, when input_names renamed them
        if set(declared) != set(keys):
            raise UserInputError(
                f"The dataloader's dict samples hold inputs {tuple(keys)} but the model's inputs are named "
                f"{tuple(declared)}; use the model's input names as the dict keys (and `input_names` to "
                f"rename them)."
            )
        # (export's name, model's name, model's shape)
        pairs = [(n, k, declared[k]) for n, k in zip(names, keys, strict=True)]
    else:
        if len(expected) != len(names):
            raise UserInputError(
                f"The model takes {len(expected)} inputs {tuple(n for n, _ in expected)} but dataloader samples "
                f"hold {len(names)} tensors {tuple(names)}; give one tensor per model input."
            )
        pairs = [(n, model_input, shape) for n, (model_input, shape) in zip(names, expected, strict=True)]
    batch_dim = sample_set.batch_dim
    for name, model_input, shape in pairs:
        if shape is None:
            continue
        for sample in sample_set.samples:
            actual = tuple(sample[name].shape)
            if _fits(shape, actual, batch_dim):
                continue
            label = f"'{name}'" if name == model_input else f"'{model_input}' (dataloader input '{name}')"
            hint = "fix the model's input shape or the dataloader"
            if is_keras_model(model) and batch_dim == 0 and len(actual) >= 1:
                hint = (
                    f"fix the model's Input shape or the dataloader; Keras Input shapes leave the batch axis "
                    f"out: keras.Input({actual[1:]}) takes batches of shape (N, {', '.join(map(str, actual[1:]))})"
                )
            raise UserInputError(
                f"The model expects input {label} of shape {shape} but dataloader samples have shape {actual}; {hint}."
            )


class TensorFlowAdapter(FrameworkAdapter):
    """nav.tensorflow: a Keras model (training=False) or a tf.Module called through its tf.function."""

    framework = Framework.TENSORFLOW
    source_format = Format.TENSORFLOW
    label = "TensorFlow 2"
    formats = TF_FORMATS  # every other TensorFlow path is made from the SavedModel

    def check_model(self) -> None:
        import_tensorflow()
        check_model(self.model)

    def gpu_available(self) -> bool:
        return gpu_available()

    def collect(self, dataloader: Any, input_names: Optional[Tuple[str, ...]], batch_dim: Optional[int]) -> SampleSet:
        sample_set = collect_samples(dataloader, input_names, batch_dim, rename_keywords=True)
        check_tf_names(sample_set.input_names, "Input names")
        _model_input_order(self.model, sample_set)
        check_input_shapes(self.model, sample_set)
        return sample_set

    def source_runner(self, sample_set: SampleSet, inputs: List[Any], device: str) -> Any:
        from model_navigator.runners.tensorflow import TensorFlowSourceRunner

        return TensorFlowSourceRunner(
            self.model, inputs, [], device=device, keyword=sample_set.keyword, kw_names=sample_set.forward_names
        )

    def running(self) -> ContextManager[Any]:
        return tf_quiet("the model")

    def default_name(self) -> str:
        name = getattr(self.model, "name", None)
        return name if isinstance(name, str) and name.strip() else type(self.model).__name__

    def export_context(self, config: Any, inputs: List[Any], outputs: List[Any], sample_set: SampleSet) -> Any:
        from model_navigator.exporters import tensorflow as tf_exporters

        return tf_exporters.make_context(self.model, config, inputs, outputs)


# ------------------------------------------------------------------------------------------------
# export()
# ------------------------------------------------------------------------------------------------


def export(
    model: Any,
    dataloader: Any,
    target_precisions: Optional[Union[Union[str, TensorRTPrecision], Tuple[Union[str, TensorRTPrecision], ...]]] = None,
    max_workspace_size: Optional[int] = None,
    minimum_segment_size: int = 3,
    model_name: Optional[str] = None,
    target_formats: Optional[Union[Union[str, Format], Tuple[Union[str, Format], ...]]] = None,
    workdir: Optional[Union[str, Path]] = None,
    override_workdir: bool = False,
    sample_count: Optional[int] = None,
    opset: Optional[int] = None,
    atol: Optional[Union[float, Dict[str, float]]] = None,
    rtol: Optional[Union[float, Dict[str, float]]] = None,
    input_names: Optional[Tuple[str, ...]] = None,
    output_names: Optional[Tuple[str, ...]] = None,
    dynamic_axes: Optional[Dict[str, Union[Dict[int, str], List[int]]]] = None,
    trt_dynamic_axes: Optional[Dict[str, Dict[int, Tuple[int, int, int]]]] = None,
    disable_git_info: bool = False,
    batch_dim: Optional[int] = 0,
    runtimes: Optional[Union[Union[str, RuntimeProvider], Tuple[Union[str, RuntimeProvider], ...]]] = None,
    run_profiling: bool = True,
    profiler_config: Optional[ProfilerConfig] = None,
    *,
    target_device: Optional[str] = None,
    allow_nonfinite_outputs: bool = False,
    isolation: Union[bool, str] = "auto",
    step_timeout_s: Optional[float] = 600.0,
    verbose: bool = True,
    accuracy_budget: Optional[Dict[str, Any]] = None,
    task_metric: Optional[str] = None,
) -> Any:
    """Export a Keras model or a tf.Module (called through its tf.function) to a TensorFlow
    SavedModel and everything made from it (ONNX with tf2onnx; TF-TRT and TensorRT with a GPU),
    check each against the model on the dataloader's samples, profile it, and return the
    PackageDescriptor of the workspace.

    The SavedModel's `serving_default` signature takes the export's input names (`input_names`,
    dict keys of the samples, or input__N) with a dynamic batch axis, and returns a dict of the
    output names (`output_names`, dict keys of the model's output, or output__N).

    `atol` / `rtol`: a number or a dict output name -> number; None (default) judges every path by
    its precision's default tolerance (README, "Correctness"); `atol=float("inf")` only measures.
    `allow_nonfinite_outputs`: accept NaN/inf in the source model's outputs (compared by value);
    by default the export then records every path as not produced, with the reason, and returns.
    Beyond the reference: `target_device` ('cpu' or 'cuda'; default: the GPU when TensorFlow sees
    one), `isolation` ('auto': the SavedModel is checked here, where TensorFlow is loaded, while
    the ONNX conversion and ONNX Runtime run in a worker process; True/'full': every step in the
    worker; False/'off': everything here), `step_timeout_s`, `verbose`.
    """
    return run_export(TensorFlowAdapter(model), ExportArguments.take(locals()))


__all__: Sequence[str] = ("export",)
