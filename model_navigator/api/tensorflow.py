"""nav.tensorflow.export: a Keras 3 model or a tf.Module with a tf.function -> TensorFlow SavedModel,
ONNX (tf2onnx, from the SavedModel), TF-TRT and TensorRT (GPU only)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from model_navigator.api.common import (
    axes_and_metadata,
    check_source_outputs,
    check_formats,
    check_names,
    check_opset,
    check_positive_int,
    check_profiler_config,
    check_runtimes,
    check_target_device,
    check_workdir,
    sample_config_fields,
)
from model_navigator.core.tolerance import check_user_tolerance
from model_navigator.core.config import ExportConfig, ProfilerConfig
from model_navigator.core.enums import (
    Format,
    Framework,
    RuntimeProvider,
    TensorRTPrecision,
    parse_enum_tuple,
)
from model_navigator.core.errors import ModelNavigatorError, UserInputError
from model_navigator.core.samples import (
    SampleSet,
    collect_samples,
    select_samples,
)
from model_navigator.frameworks.tensorflow_utils import (
    call_model,
    check_model,
    check_tf_names,
    device_name,
    flatten_outputs,
    gpu_available,
    import_tensorflow,
    is_keras_model,
    module_function,
    tf_quiet,
    to_numpy,
    to_tf_inputs,
)
from model_navigator.steps.executor import normalize_isolation

TF_FORMATS = (Format.TF_SAVEDMODEL, Format.TF_TRT, Format.ONNX, Format.TENSORRT)
DEFAULT_OPSET = 17


# ------------------------------------------------------------------------------------------------
# What the model expects, checked against the samples before anything is exported or written
# ------------------------------------------------------------------------------------------------


def _keras_input_name(tensor: Any, index: int) -> str:
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None) if history is not None else None
    return str(getattr(operation, "name", None) or getattr(tensor, "name", None) or f"input {index}")


def expected_inputs(model: Any) -> Optional[List[Tuple[str, Tuple[Optional[int], ...]]]]:
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
        return [(_keras_input_name(t, i), tuple(None if d is None else int(d) for d in t.shape))
                for i, t in enumerate(inputs)]
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
    return [(s.name or params[i], tuple(s.shape.as_list()) if s.shape.rank is not None else None)
            for i, s in enumerate(specs)]


def _model_input_order(model: Any, sample_set: SampleSet) -> None:
    """Dict samples: keep the inputs in the order the model declares them (the signature's order)."""
    if not sample_set.keyword:
        return
    expected = expected_inputs(model)
    declared = tuple(n for n, _ in expected or ())
    if set(declared) == set(sample_set.input_names) and len(declared) == len(sample_set.input_names):
        sample_set.samples = [{n: s[n] for n in declared} for s in sample_set.samples]
        sample_set.input_names = declared


def _fits(expected: Tuple[Optional[int], ...], shape: Tuple[int, ...], batch_dim: Optional[int]) -> bool:
    if len(expected) != len(shape):
        return False
    return all(e is None or e == s or axis == batch_dim for axis, (e, s) in enumerate(zip(expected, shape)))


def check_input_shapes(model: Any, sample_set: SampleSet) -> None:
    """Refuse samples the model cannot take, naming the model's and the samples' shapes."""
    expected = expected_inputs(model)
    if expected is None:
        return
    names = sample_set.input_names
    if sample_set.keyword:
        declared = dict(expected)
        if set(declared) != set(names):
            raise UserInputError(
                f"The dataloader's dict samples hold inputs {tuple(names)} but the model's inputs are named "
                f"{tuple(declared)}; use the model's input names as the dict keys."
            )
        pairs = [(n, n, declared[n]) for n in names]  # (dataloader name, model's name, model's shape)
    else:
        if len(expected) != len(names):
            raise UserInputError(
                f"The model takes {len(expected)} inputs {tuple(n for n, _ in expected)} but dataloader samples "
                f"hold {len(names)} tensors {tuple(names)}; give one tensor per model input."
            )
        pairs = [(n, model_input, shape) for n, (model_input, shape) in zip(names, expected)]
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
                hint = (f"fix the model's Input shape or the dataloader; Keras Input shapes leave the batch axis "
                        f"out: keras.Input({actual[1:]}) takes batches of shape (N, {', '.join(map(str, actual[1:]))})")
            raise UserInputError(
                f"The model expects input {label} of shape {shape} but dataloader samples have shape "
                f"{actual}; {hint}."
            )


# ------------------------------------------------------------------------------------------------
# The source model, run once per saved sample
# ------------------------------------------------------------------------------------------------


def run_source_model(model: Any, sample_set: SampleSet, indices: List[int], device: str,
                     output_names: Optional[Tuple[str, ...]]) -> Tuple[Dict[int, Dict[str, np.ndarray]], Tuple[str, ...]]:
    """Run the user's model once per needed sample (Keras: training=False) on `device`."""
    tf = import_tensorflow()
    results: Dict[int, Dict[str, np.ndarray]] = {}
    names: Optional[Tuple[str, ...]] = None
    with tf_quiet("the model"), tf.device(device_name(device)):
        for index in indices:
            sample = sample_set.samples[index]
            try:
                out = call_model(model, to_tf_inputs(sample, sample_set.input_names), sample_set.input_names,
                                 sample_set.keyword)
            except Exception as e:
                shapes = {k: tuple(v.shape) for k, v in sample.items()}
                raise ModelNavigatorError(
                    f"The model failed on dataloader sample {index} (inputs {shapes}, "
                    f"{'keyword' if sample_set.keyword else 'positional'} arguments): {type(e).__name__}: {e}"
                ) from e
            try:
                tensors, default_names = flatten_outputs(out)
            except TypeError as e:
                raise UserInputError(f"Unsupported model output: {e}; return tensors, tuples/lists or dicts of tensors.") from e
            if names is None:
                if output_names is not None and len(output_names) != len(tensors):
                    raise UserInputError(
                        f"`output_names` has {len(output_names)} names {output_names} but the model returns "
                        f"{len(tensors)} tensors {tuple(default_names)}."
                    )
                names = output_names or tuple(default_names)
            arrays = {n: to_numpy(t) for n, t in zip(names, tensors)}
            bad = [n for n, a in arrays.items() if a.dtype == object or a.dtype.kind in "SUV"]
            if bad:
                raise UserInputError(f"Model outputs {bad} are not numeric tensors (strings?); return numeric tensors.")
            results[index] = arrays
    assert names is not None
    return results, names


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
    by default they stop the export before anything is exported.
    Beyond the reference: `target_device` ('cpu' or 'cuda'; default: the GPU when TensorFlow sees
    one), `isolation` ('auto': the SavedModel is checked here, where TensorFlow is loaded, while
    the ONNX conversion and ONNX Runtime run in a worker process; True/'full': every step in the
    worker; False/'off': everything here), `step_timeout_s`, `verbose`.
    """
    tf = import_tensorflow()
    check_model(model)
    from model_navigator.paths.tensorflow import tensorflow_paths

    formats = check_formats(parse_enum_tuple(Format, target_formats, "target_formats"), TF_FORMATS, "TensorFlow 2",
                            tensorflow_paths())  # every other TensorFlow path is made from the SavedModel
    precisions = parse_enum_tuple(TensorRTPrecision, target_precisions, "target_precisions") or (
        TensorRTPrecision.FP32, TensorRTPrecision.FP16)
    device = check_target_device(target_device, gpu_available())
    runtime_tuple = check_runtimes(parse_enum_tuple(RuntimeProvider, runtimes, "runtimes"), device)
    opset_value = check_opset(opset if opset is not None else DEFAULT_OPSET)
    count = check_positive_int(sample_count if sample_count is not None else 100, "sample_count")
    if max_workspace_size is not None:
        check_positive_int(max_workspace_size, "max_workspace_size")
    segment = check_positive_int(minimum_segment_size, "minimum_segment_size")
    atol, rtol = check_user_tolerance(atol, "atol"), check_user_tolerance(rtol, "rtol")
    in_names = check_names(input_names, "input_names")
    out_names = check_names(output_names, "output_names")
    profiler = check_profiler_config(profiler_config)
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise UserInputError(f"`model_name` must be a non-empty string, got {model_name!r}.")
    if step_timeout_s is not None and step_timeout_s <= 0:
        raise UserInputError("`step_timeout_s` must be > 0 or None.")
    root = check_workdir(workdir, override_workdir)

    # Samples and the model's declared inputs: validated before anything is written.
    sample_set = collect_samples(dataloader, in_names, batch_dim)
    check_tf_names(sample_set.input_names, "Input names")
    _model_input_order(model, sample_set)
    check_input_shapes(model, sample_set)
    selected = select_samples(sample_set, count)
    needed = sorted({i for idx in selected.values() for i in idx})
    outputs, final_out_names = run_source_model(model, sample_set, needed, device, out_names)
    check_source_outputs(outputs, final_out_names, atol, rtol, bool(allow_nonfinite_outputs))

    axes, trt_axes, inputs_meta, outputs_meta = axes_and_metadata(
        sample_set, outputs, final_out_names, dynamic_axes, trt_dynamic_axes)

    config = ExportConfig(
        framework=Framework.TENSORFLOW,
        model_name=model_name or _default_name(model),
        target_formats=formats,
        jit_options=(),
        target_precisions=precisions,
        runtimes=runtime_tuple,
        opset=opset_value,
        atol=atol,
        rtol=rtol,
        max_workspace_size=max_workspace_size,
        minimum_segment_size=segment,
        target_device=device,
        sample_count=count,
        run_profiling=bool(run_profiling),
        profiler_config=profiler,
        disable_git_info=bool(disable_git_info),
        isolation=normalize_isolation(isolation),
        step_timeout_s=step_timeout_s,
        **sample_config_fields(sample_set, final_out_names, axes, trt_axes),
    )

    from model_navigator.api.flow import run_export
    from model_navigator.exporters import tensorflow as tf_exporters
    from model_navigator.frameworks.tensorflow_utils import flush_pending
    from model_navigator.paths.base import load_producer
    from model_navigator.paths.tensorflow import tensorflow_paths

    def exporter_factory(workspace, status):
        flush_pending()  # TensorFlow's start-up lines, now that navigator.log is open
        ctx = tf_exporters.context_from_status(model, workspace, status)

        def export_path(spec, out_path):
            with tf.device(device_name(device)):
                return load_producer(spec)(ctx, spec, out_path)

        return export_path

    def reproduce_factory(workspace):
        return lambda spec: tf_exporters.write_export_reproduce(workspace, spec)

    return run_export(
        config=config, workdir=root, override_workdir=override_workdir, sample_set=sample_set, outputs=outputs,
        inputs_meta=inputs_meta, outputs_meta=outputs_meta, specs=list(tensorflow_paths()),
        source_format=Format.TENSORFLOW, source_model=model, exporter_factory=exporter_factory,
        export_reproduce_factory=reproduce_factory, verbose=verbose,
    )


def _default_name(model: Any) -> str:
    name = getattr(model, "name", None)
    return name if isinstance(name, str) and name.strip() else type(model).__name__


__all__: Sequence[str] = ("export",)
