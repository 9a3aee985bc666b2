"""nav.onnx.export: an .onnx file and a dataloader -> the same checks, profiling, workspace and
.nav package as the other frameworks; the `onnx` path (ONNX Runtime, OpenVINO; CUDA and TensorRT
providers on a GPU) and the TensorRT plans built from it on a GPU."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from model_navigator.api.common import (
    axes_and_metadata,
    check_formats,
    check_positive_int,
    check_profiler_config,
    check_runtimes,
    check_source_outputs,
    check_target_device,
    check_workdir,
    sample_config_fields,
)
from model_navigator.core.config import ExportConfig, ProfilerConfig
from model_navigator.core.enums import (
    Format,
    Framework,
    RuntimeProvider,
    TensorRTPrecision,
    parse_enum_tuple,
)
from model_navigator.core.errors import UserInputError
from model_navigator.core.samples import collect_samples, select_samples
from model_navigator.core.tolerance import check_user_tolerance
from model_navigator.paths.registry import formats_of
from model_navigator.steps.executor import normalize_isolation

ONNX_FORMATS = formats_of(Framework.ONNX)


def _check_item_names(dataloader: Any, names: Tuple[str, ...]) -> None:
    """The dataloader's items name (dict) or count (tuple, tensor) the graph's inputs: said before
    collect_samples, whose message speaks of `input_names`, which nav.onnx does not take."""
    try:
        first = next(iter(dataloader))
    except (TypeError, StopIteration):
        return  # collect_samples says what is wrong
    if isinstance(first, dict):
        if set(first) != set(names):
            raise UserInputError(f"The dataloader's dict samples hold {tuple(first)}, but the ONNX graph's inputs are "
                                 f"{names}; use the graph's input names as keys.")
    elif isinstance(first, (tuple, list)) and len(first) != len(names):
        raise UserInputError(f"The dataloader's samples hold {len(first)} tensors, but the ONNX graph has "
                             f"{len(names)} inputs {names}; give one tensor per input, in the graph's order.")


def export(
    model: Union[str, Path],
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
    disable_git_info: bool = False,
    batch_dim: Optional[int] = 0,
    runtimes: Optional[Union[Union[str, RuntimeProvider], Tuple[Union[str, RuntimeProvider], ...]]] = None,
    run_profiling: bool = True,
    profiler_config: Optional[ProfilerConfig] = None,
    verbose: bool = False,
    *,
    target_device: Optional[str] = None,
    allow_nonfinite_outputs: bool = False,
    isolation: Union[bool, str] = "auto",
    step_timeout_s: Optional[float] = 600.0,
    debug: bool = False,
) -> Any:
    """Check an ONNX model (a path) on the dataloader's samples against itself on ONNX Runtime CPU,
    on every runtime that runs ONNX here, build TensorRT plans on a GPU, profile, and return the
    PackageDescriptor. The reference's signature; `verbose` defaults to False as there.

    Inputs, outputs, dtypes and dynamic axes come from the graph; samples (tensors, tuples in the
    graph's input order, or dicts by input name) are checked against it before any work. An
    unreadable or invalid file fails at once with onnx's checker message. `opset` is recorded
    only: the file keeps its own. `minimum_segment_size` applies to TF-TRT, which ONNX has not.
    Beyond the reference, keyword-only: `target_device`, `allow_nonfinite_outputs`, `isolation`,
    `step_timeout_s`, `debug`; `atol`/`rtol` as for nav.torch.export.
    """
    from model_navigator.core.environment import gpu_present
    from model_navigator.exporters import onnx as onnx_exporters
    from model_navigator.paths.onnx import onnx_paths

    if not isinstance(model, (str, Path)):
        raise UserInputError(f"`model` must be the path of an .onnx file, got {type(model).__name__}.")
    source = Path(model).absolute()
    proto = onnx_exporters.load_checked(source)
    graph_inputs, graph_outputs = onnx_exporters.graph_tensors(proto)
    file_opset = onnx_exporters.opset_of(proto)
    if opset is not None and opset != file_opset:
        warnings.warn(f"`opset` {opset} is not applied: nav.onnx keeps the file's opset {file_opset}.", UserWarning,
                      stacklevel=2)
    formats = check_formats(parse_enum_tuple(Format, target_formats, "target_formats"), ONNX_FORMATS, "ONNX",
                            onnx_paths())
    precisions = parse_enum_tuple(TensorRTPrecision, target_precisions, "target_precisions") or (
        TensorRTPrecision.FP32, TensorRTPrecision.FP16)
    device = check_target_device(target_device, gpu_present())
    runtime_tuple = check_runtimes(parse_enum_tuple(RuntimeProvider, runtimes, "runtimes"), device)
    count = check_positive_int(sample_count if sample_count is not None else 100, "sample_count")
    if max_workspace_size is not None:
        check_positive_int(max_workspace_size, "max_workspace_size")
    atol, rtol = check_user_tolerance(atol, "atol"), check_user_tolerance(rtol, "rtol")
    profiler = check_profiler_config(profiler_config)
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise UserInputError(f"`model_name` must be a non-empty string, got {model_name!r}.")
    if step_timeout_s is not None and step_timeout_s <= 0:
        raise UserInputError("`step_timeout_s` must be > 0 or None.")
    root = check_workdir(workdir, override_workdir)

    # Samples against the graph: validated before anything is written.
    names = tuple(t.name for t in graph_inputs)
    _check_item_names(dataloader, names)
    sample_set = collect_samples(dataloader, names, batch_dim)
    onnx_exporters.check_samples(sample_set.samples, graph_inputs, batch_dim)
    selected = select_samples(sample_set, count)
    needed = sorted({i for idx in selected.values() for i in idx})
    output_names = tuple(t.name for t in graph_outputs)
    outputs = onnx_exporters.run_source(source, sample_set.samples, needed, output_names)
    check_source_outputs(outputs, output_names, atol, rtol, bool(allow_nonfinite_outputs))
    graph_axes = {t.name: t.dynamic_axes for t in graph_inputs + graph_outputs if t.dynamic_axes}
    axes, trt_axes, inputs_meta, outputs_meta = axes_and_metadata(sample_set, outputs, output_names, graph_axes, None)

    config = ExportConfig(
        framework=Framework.ONNX,
        model_name=model_name or source.stem,
        target_formats=formats,
        jit_options=(),
        target_precisions=precisions,
        runtimes=runtime_tuple,
        opset=file_opset,
        atol=atol,
        rtol=rtol,
        max_workspace_size=max_workspace_size,
        minimum_segment_size=minimum_segment_size,
        target_device=device,
        sample_count=count,
        run_profiling=bool(run_profiling),
        profiler_config=profiler,
        disable_git_info=bool(disable_git_info),
        isolation=normalize_isolation(isolation),
        step_timeout_s=step_timeout_s,
        **sample_config_fields(sample_set, output_names, axes, trt_axes),
    )

    from model_navigator.api.flow import run_export
    from model_navigator.paths.base import load_producer

    def exporter_factory(workspace, status):
        ctx = onnx_exporters.OnnxExportContext(source)
        return lambda spec, out_path: load_producer(spec)(ctx, spec, out_path)

    def reproduce_factory(workspace):
        return lambda spec: onnx_exporters.write_export_reproduce(workspace, spec, source)

    return run_export(
        config=config, workdir=root, override_workdir=override_workdir, sample_set=sample_set, outputs=outputs,
        inputs_meta=inputs_meta, outputs_meta=outputs_meta, specs=list(onnx_paths()), source_format=Format.ONNX_SOURCE,
        source_model=source, exporter_factory=exporter_factory, export_reproduce_factory=reproduce_factory,
        verbose=verbose, debug=bool(debug),
    )
