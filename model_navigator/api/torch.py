"""nav.torch.export: PyTorch nn.Module -> TorchScript, torch.export (.pt2), ONNX and the TensorRT family."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

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
    JitType,
    RuntimeProvider,
    TensorRTPrecision,
    TensorRTPrecisionMode,
    parse_enum,
    parse_enum_tuple,
)
from model_navigator.core.errors import (
    FrameworkMissingError,
    ModelNavigatorError,
    UserInputError,
)
from model_navigator.core.samples import (
    collect_samples,
    select_samples,
)
from model_navigator.steps.executor import normalize_isolation

TORCH_FORMATS = (Format.TORCHSCRIPT, Format.TORCH_EXPORTEDPROGRAM, Format.ONNX, Format.TORCH_TRT, Format.TENSORRT)
DEFAULT_OPSET = 17


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise FrameworkMissingError(
            "nav.torch needs PyTorch: pip install 'model-navigator[torch]' (pin torch to the build you use)."
        ) from e
    return torch


def _forward_order(model: Any, names: Tuple[str, ...]) -> Tuple[str, ...]:
    """Keyword inputs in the order forward() declares them (exporters number inputs in that order)."""
    try:
        params = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return names
    known = [p for p in params if p in names]
    return tuple(known + [n for n in names if n not in known])


def run_source_model(model: Any, sample_set: Any, indices: List[int], device: str,
                     output_names: Optional[Tuple[str, ...]]) -> Tuple[Dict[int, Dict[str, np.ndarray]], Tuple[str, ...]]:
    """Run the user's model once per needed sample (eval, inference mode, own precision)."""
    torch = _import_torch()
    from model_navigator.frameworks.torch_utils import flatten_outputs, to_torch_inputs

    results: Dict[int, Dict[str, np.ndarray]] = {}
    names: Optional[Tuple[str, ...]] = None
    with torch.inference_mode():
        for index in indices:
            args, kwargs = to_torch_inputs(sample_set.samples[index], sample_set.input_names, device, sample_set.keyword,
                                           sample_set.forward_names)
            try:
                out = model(*args, **kwargs)
            except Exception as e:
                shapes = {k: tuple(v.shape) for k, v in sample_set.samples[index].items()}
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
            results[index] = {n: t.detach().cpu().numpy() for n, t in zip(names, tensors)}
    assert names is not None
    return results, names


def export(
    model: Any,
    dataloader: Any,
    model_name: Optional[str] = None,
    opset: Optional[int] = None,
    target_formats: Optional[Union[Union[str, Format], Tuple[Union[str, Format], ...]]] = None,
    jit_options: Optional[Union[Union[str, JitType], Tuple[Union[str, JitType], ...]]] = None,
    workdir: Optional[Union[str, Path]] = None,
    override_workdir: bool = False,
    sample_count: Optional[int] = None,
    atol: Optional[Union[float, Dict[str, float]]] = None,
    rtol: Optional[Union[float, Dict[str, float]]] = None,
    input_names: Optional[Tuple[str, ...]] = None,
    output_names: Optional[Tuple[str, ...]] = None,
    dynamic_axes: Optional[Dict[str, Union[Dict[int, str], List[int]]]] = None,
    trt_dynamic_axes: Optional[Dict[str, Dict[int, Tuple[int, int, int]]]] = None,
    target_precisions: Optional[Union[Union[str, TensorRTPrecision], Tuple[Union[str, TensorRTPrecision], ...]]] = None,
    precison_mode: Optional[Union[str, TensorRTPrecisionMode]] = None,
    max_workspace_size: Optional[int] = None,
    target_device: Optional[str] = None,
    disable_git_info: bool = False,
    batch_dim: Optional[int] = 0,
    runtimes: Optional[Union[Union[str, RuntimeProvider], Tuple[Union[str, RuntimeProvider], ...]]] = None,
    run_profiling: bool = True,
    profiler_config: Optional[ProfilerConfig] = None,
    *,
    precision_mode: Optional[Union[str, TensorRTPrecisionMode]] = None,
    onnx_dynamo: bool = False,
    allow_nonfinite_outputs: bool = False,
    isolation: Union[bool, str] = "auto",
    step_timeout_s: Optional[float] = 600.0,
    verbose: bool = True,
    debug: bool = False,
) -> Any:
    """Export a torch.nn.Module to every requested format, check each against the model on the
    dataloader's samples, profile it, and return the PackageDescriptor of the workspace.

    `atol` / `rtol`: a number or a dict output name -> number; None (default) judges every path by
    its precision's default tolerance (README, "Correctness"); `atol=float("inf")` only measures.
    `allow_nonfinite_outputs`: accept NaN/inf in the source model's outputs (compared by value);
    by default they stop the export before anything is exported.
    Beyond the reference: `precision_mode` (the reference spells it `precison_mode`; both work),
    `onnx_dynamo` (use the torch.export-based ONNX exporter), `isolation` ('auto': conversions
    and foreign runtimes such as ONNX Runtime run in a worker process, TorchScript/ExportedProgram
    checks run here where torch is already loaded; True/'full': every step in the worker;
    False/'off': everything here),
    `step_timeout_s` (a step running longer fails), `verbose` (progress lines and the table),
    `debug` (model_navigator's DEBUG logs, worker output included, on the terminal too).
    """
    torch = _import_torch()
    if not isinstance(model, torch.nn.Module):
        raise UserInputError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    if precison_mode is not None and precision_mode is not None:
        raise UserInputError("Pass `precision_mode` or the reference's `precison_mode`, not both.")
    mode = parse_enum(TensorRTPrecisionMode, precision_mode or precison_mode or TensorRTPrecisionMode.HIERARCHY,
                      "precision_mode")
    from model_navigator.paths.torch import torch_paths

    formats = check_formats(parse_enum_tuple(Format, target_formats, "target_formats"), TORCH_FORMATS, "PyTorch",
                            torch_paths())
    jit = parse_enum_tuple(JitType, jit_options, "jit_options") or (JitType.SCRIPT, JitType.TRACE)
    precisions = parse_enum_tuple(TensorRTPrecision, target_precisions, "target_precisions") or (
        TensorRTPrecision.FP32, TensorRTPrecision.FP16)
    device = check_target_device(target_device, torch.cuda.is_available())
    runtime_tuple = check_runtimes(parse_enum_tuple(RuntimeProvider, runtimes, "runtimes"), device)
    opset_value = check_opset(opset if opset is not None else DEFAULT_OPSET)
    count = check_positive_int(sample_count if sample_count is not None else 100, "sample_count")
    if max_workspace_size is not None:
        check_positive_int(max_workspace_size, "max_workspace_size")
    atol, rtol = check_user_tolerance(atol, "atol"), check_user_tolerance(rtol, "rtol")
    in_names = check_names(input_names, "input_names")
    out_names = check_names(output_names, "output_names")
    profiler = check_profiler_config(profiler_config)
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise UserInputError(f"`model_name` must be a non-empty string, got {model_name!r}.")
    if step_timeout_s is not None and step_timeout_s <= 0:
        raise UserInputError("`step_timeout_s` must be > 0 or None.")
    root = check_workdir(workdir, override_workdir)

    # Samples: validated before anything is written.
    sample_set = collect_samples(dataloader, in_names, batch_dim, rename_keywords=True)
    if sample_set.keyword:  # in the order forward() declares its parameters
        forward = sample_set.forward_names or sample_set.input_names
        to_input = dict(zip(forward, sample_set.input_names))
        ordered_forward = _forward_order(model, tuple(forward))
        ordered = tuple(to_input[f] for f in ordered_forward)
        sample_set.samples = [{n: s[n] for n in ordered} for s in sample_set.samples]
        sample_set.input_names, sample_set.forward_names = ordered, ordered_forward
    selected = select_samples(sample_set, count)
    needed = sorted({i for idx in selected.values() for i in idx})
    model.eval()
    if device != "cpu":
        model.to(device)
    outputs, final_out_names = run_source_model(model, sample_set, needed, device, out_names)
    check_source_outputs(outputs, final_out_names, atol, rtol, bool(allow_nonfinite_outputs))

    axes, trt_axes, inputs_meta, outputs_meta = axes_and_metadata(
        sample_set, outputs, final_out_names, dynamic_axes, trt_dynamic_axes)

    config = ExportConfig(
        framework=Framework.TORCH,
        model_name=model_name or type(model).__name__,
        target_formats=formats,
        jit_options=jit,
        target_precisions=precisions,
        precision_mode=mode,
        runtimes=runtime_tuple,
        opset=opset_value,
        onnx_dynamo=bool(onnx_dynamo),
        atol=atol,
        rtol=rtol,
        max_workspace_size=max_workspace_size,
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
    from model_navigator.exporters import torch as torch_exporters
    from model_navigator.paths.base import load_producer
    from model_navigator.paths.torch import torch_paths

    def exporter_factory(workspace, status):
        ctx = torch_exporters.context_from_status(model, workspace, status)

        def export_path(spec, out_path):
            return load_producer(spec)(ctx, spec, out_path)

        return export_path

    def reproduce_factory(workspace):
        return lambda spec: torch_exporters.write_export_reproduce(workspace, spec)

    return run_export(
        config=config, workdir=root, override_workdir=override_workdir, sample_set=sample_set, outputs=outputs,
        inputs_meta=inputs_meta, outputs_meta=outputs_meta, specs=list(torch_paths()), source_format=Format.TORCH,
        source_model=model, exporter_factory=exporter_factory, export_reproduce_factory=reproduce_factory,
        verbose=verbose, debug=bool(debug),
    )
