"""nav.jax.export: a JAX predict function and its params -> ONNX straight through jax2onnx
(`onnx-jax2onnx`), TensorFlow SavedModels through jax.experimental.jax2tf (one per enable_xla /
jit_compile variant), ONNX from each (tf2onnx), TF-TRT and TensorRT (GPU only).

Importing this module sets XLA_PYTHON_CLIENT_PREALLOCATE=false and TF_FORCE_GPU_ALLOW_GROWTH=true
unless they are set already (the reference's advice, so JAX and TensorFlow share a GPU).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from model_navigator.api.common import (
    axes_and_metadata,
    check_source_outputs,
    check_bool_options,
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
from model_navigator.core.logging import LOGGER
from model_navigator.core.samples import SampleSet, collect_samples, select_samples
from model_navigator.frameworks.jax_utils import (
    PREALLOCATE_AT_IMPORT,
    PREALLOCATE_ENV,
    JaxModel,
    call_predict,
    check_params,
    check_predict,
    configure_memory,
    describe_inputs,
    flatten_outputs,
    import_jax,
    import_jax2tf,
    jax_device,
    jax_gpu_available,
    set_tf_memory_growth,
)
from model_navigator.frameworks.tensorflow_utils import check_tf_names, device_name
from model_navigator.steps.executor import normalize_isolation

# Nothing above imports jax or TensorFlow: set the memory variables before model-navigator does.
_JAX_STARTED_BEFORE_US = bool(getattr(sys.modules.get("jax._src.xla_bridge"), "_backends", None))
configure_memory()

JAX_FORMATS = (Format.TF_SAVEDMODEL, Format.TF_TRT, Format.ONNX, Format.TENSORRT)
DEFAULT_OPSET = 17


def run_source_model(model: JaxModel, sample_set: SampleSet, indices: List[int], device: str,
                     output_names: Optional[Tuple[str, ...]]
                     ) -> Tuple[Dict[int, Dict[str, np.ndarray]], Tuple[str, ...]]:
    """Call predict(*inputs, params) (dict samples: keywords) once per needed sample on `device`."""
    jax = import_jax()
    target = jax_device(device)
    results: Dict[int, Dict[str, np.ndarray]] = {}
    names: Optional[Tuple[str, ...]] = None
    for index in indices:
        sample = sample_set.samples[index]
        try:
            inputs = [jax.device_put(np.asarray(sample[n]), target) for n in sample_set.input_names]
            leaves, default_names = flatten_outputs(call_predict(model, inputs, sample_set.input_names,
                                                                 sample_set.keyword))
            arrays = [np.asarray(leaf) for leaf in leaves]
        except Exception as e:
            raise ModelNavigatorError(
                f"The predict function failed on dataloader sample {index} (inputs {describe_inputs(sample)}, "
                f"{'keyword' if sample_set.keyword else 'positional'} arguments, params last): "
                f"{type(e).__name__}: {e}"
            ) from e
        if not arrays:
            raise UserInputError("The predict function returned no arrays; return an array, a tuple/list or a dict "
                                 "of arrays.")
        if names is None:
            if output_names is not None and len(output_names) != len(arrays):
                raise UserInputError(
                    f"`output_names` has {len(output_names)} names {output_names} but the predict function returns "
                    f"{len(arrays)} arrays {tuple(default_names)}."
                )
            names = output_names or tuple(default_names)
        bad = [n for n, a in zip(names, arrays) if a.dtype == object or a.dtype.kind in "SUV"]
        if bad:
            raise UserInputError(f"Outputs {bad} of the predict function are not numeric arrays; return numeric "
                                 f"arrays.")
        results[index] = dict(zip(names, arrays))
    assert names is not None
    return results, names


def export(
    model: Callable[..., Any],
    model_params: Any,
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
    jit_compile: Optional[Union[bool, Tuple[bool, ...]]] = None,
    enable_xla: Optional[Union[bool, Tuple[bool, ...]]] = None,
    atol: Optional[Union[float, Dict[str, float]]] = None,
    rtol: Optional[Union[float, Dict[str, float]]] = None,
    disable_git_info: bool = False,
    batch_dim: Optional[int] = 0,
    runtimes: Optional[Union[Union[str, RuntimeProvider], Tuple[Union[str, RuntimeProvider], ...]]] = None,
    run_profiling: bool = True,
    profiler_config: Optional[ProfilerConfig] = None,
    *,
    input_names: Optional[Tuple[str, ...]] = None,
    output_names: Optional[Tuple[str, ...]] = None,
    dynamic_axes: Optional[Dict[str, Union[Dict[int, str], List[int]]]] = None,
    trt_dynamic_axes: Optional[Dict[str, Dict[int, Tuple[int, int, int]]]] = None,
    target_device: Optional[str] = None,
    allow_nonfinite_outputs: bool = False,
    isolation: Union[bool, str] = "auto",
    step_timeout_s: Optional[float] = 600.0,
    verbose: bool = True,
    debug: bool = False,
) -> Any:
    """Export a JAX predict function with its params to ONNX with jax2onnx (`onnx-jax2onnx`) and to a
    TensorFlow SavedModel per requested (enable_xla, jit_compile) variant with jax2tf, and
    everything made from them (ONNX with tf2onnx; TF-TRT and TensorRT with a GPU); check each
    against the function on the dataloader's samples, profile it, and return the PackageDescriptor
    of the workspace.

    `model` is called as `model(*inputs, model_params)` for positional samples and as
    `model(**inputs, <its last parameter>=model_params)` for dict samples.
    `enable_xla` (jax2tf: native serialization, one XlaCallModule op; False: plain TensorFlow ops,
    which needs jax <= 0.7.1) and `jit_compile` (tf.function's) take a bool or a tuple of bools;
    default (True, False) each; they do not apply to the jax2onnx paths. Folders: `onnx-jax2onnx`,
    `trt-<fp32|fp16>-jax2onnx`, `tf-savedmodel-<xla|noxla>-<jit|nojit>`, `onnx-<...>`, ...

    `atol` / `rtol`: a number or a dict output name -> number; None (default) judges every path by
    its precision's default tolerance (README, "Correctness"); `atol=float("inf")` only measures.
    `allow_nonfinite_outputs`: accept NaN/inf in the source model's outputs (compared by value);
    by default they stop the export before anything is exported.
    Beyond the reference, keyword-only: `input_names`, `output_names`, `dynamic_axes`,
    `trt_dynamic_axes` (as for nav.tensorflow), `target_device` ('cpu' or 'cuda'; default the GPU
    when JAX sees one), `isolation`, `step_timeout_s`, `verbose`, `debug`.
    """
    jax = import_jax()
    import_jax2tf()  # a jax without jax2tf stops here, naming its version and the ones that work
    from model_navigator.frameworks.tensorflow_utils import import_tensorflow

    tf = import_tensorflow()
    set_tf_memory_growth(tf)
    from model_navigator.paths.jax import jax_paths

    formats = check_formats(parse_enum_tuple(Format, target_formats, "target_formats"), JAX_FORMATS, "JAX",
                            jax_paths())  # ONNX is exported directly; TF-TRT needs the SavedModel
    xla_options = check_bool_options(enable_xla, "enable_xla")
    jit_options = check_bool_options(jit_compile, "jit_compile")
    precisions = parse_enum_tuple(TensorRTPrecision, target_precisions, "target_precisions") or (
        TensorRTPrecision.FP32, TensorRTPrecision.FP16)
    device = check_target_device(target_device, jax_gpu_available())
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
    if not callable(model):
        check_predict(model, (), False)  # raises the error that says what `model` must be
    check_params(model_params)
    root = check_workdir(workdir, override_workdir)
    if device.startswith("cuda") and _JAX_STARTED_BEFORE_US and PREALLOCATE_AT_IMPORT is None:
        LOGGER.warning(
            "JAX started on the GPU before model-navigator could set %s=false: it may hold most of the GPU "
            "memory TensorFlow needs for the SavedModels; set it before importing jax (export %s=false).",
            PREALLOCATE_ENV, PREALLOCATE_ENV)

    # Samples and the predict function's signature: validated before anything is written.
    sample_set = collect_samples(dataloader, in_names, batch_dim)
    check_tf_names(sample_set.input_names, "Input names")
    params_arg = check_predict(model, sample_set.input_names, sample_set.keyword)
    source = JaxModel(model, model_params, params_arg)
    selected = select_samples(sample_set, count)
    needed = sorted({i for idx in selected.values() for i in idx})
    outputs, final_out_names = run_source_model(source, sample_set, needed, device, out_names)
    check_source_outputs(outputs, final_out_names, atol, rtol, bool(allow_nonfinite_outputs))
    axes, trt_axes, inputs_meta, outputs_meta = axes_and_metadata(sample_set, outputs, final_out_names,
                                                                  dynamic_axes, trt_dynamic_axes)

    config = ExportConfig(
        framework=Framework.JAX,
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
        enable_xla=xla_options,
        jit_compile=jit_options,
        isolation=normalize_isolation(isolation),
        step_timeout_s=step_timeout_s,
        **sample_config_fields(sample_set, final_out_names, axes, trt_axes),
    )

    from model_navigator.api.flow import run_export
    from model_navigator.exporters import jax as jax_exporters
    from model_navigator.frameworks.tensorflow_utils import flush_pending
    from model_navigator.paths.base import load_producer
    from model_navigator.paths.jax import jax_paths

    def exporter_factory(workspace, status):
        flush_pending()  # TensorFlow's start-up lines, now that navigator.log is open
        ctx = jax_exporters.context_from_status(source, workspace, status)

        def export_path(spec, out_path):
            with tf.device(device_name(device)), jax.default_device(jax_device(device)):
                return load_producer(spec)(ctx, spec, out_path)

        return export_path

    def reproduce_factory(workspace):
        return lambda spec: jax_exporters.write_export_reproduce(workspace, spec)

    return run_export(
        config=config, workdir=root, override_workdir=override_workdir, sample_set=sample_set, outputs=outputs,
        inputs_meta=inputs_meta, outputs_meta=outputs_meta, specs=list(jax_paths()), source_format=Format.JAX,
        source_model=source, exporter_factory=exporter_factory, export_reproduce_factory=reproduce_factory,
        verbose=verbose, debug=bool(debug),
    )


def _default_name(model: Any) -> str:
    name = getattr(model, "__name__", None)
    return name if isinstance(name, str) and name.isidentifier() else "jax_model"


__all__: Sequence[str] = ("export",)
