"""The one export flow every framework's export() drives: validate the arguments, collect the
samples, run the source model once per needed sample through its runner, build the ExportConfig
and the framework's export context, and hand them over to the export run (steps/export_run.py),
which calls nothing back here. A framework is a small adapter (FrameworkAdapter) over this."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.api.common import (
    axes_and_metadata,
    check_formats,
    check_names,
    check_opset,
    check_positive_int,
    check_runtimes,
    check_source_outputs,
    check_workdir,
    sample_config_fields,
)
from model_navigator.core.config import ExportConfig, check_profiler_config, check_target_device
from model_navigator.core.enums import (
    Format,
    Framework,
    RuntimeProvider,
    TensorRTPrecision,
    parse_enum_tuple,
)
from model_navigator.core.errors import ModelNavigatorError, UserInputError
from model_navigator.core.budget import check_budget, check_budget_outputs, check_task_metric
from model_navigator.core.samples import CALIBRATION_SET, SampleSet, infer_metadata, select_calibration, select_samples
from model_navigator.core.tolerance import check_user_tolerance
from model_navigator.paths.base import ExportContext, PathSpec

DEFAULT_OPSET = 17
DEFAULT_SAMPLE_COUNT = 100


@dataclass
class ExportArguments:
    """The arguments every framework's export() takes, as the user gave them (validated by `export`)."""

    dataloader: Any
    model_name: Optional[str] = None
    target_formats: Any = None
    target_precisions: Any = None
    max_workspace_size: Optional[int] = None
    minimum_segment_size: int = 3
    workdir: Any = None
    override_workdir: bool = False
    sample_count: Optional[int] = None
    opset: Optional[int] = None
    atol: Any = None
    rtol: Any = None
    input_names: Optional[Tuple[str, ...]] = None
    output_names: Optional[Tuple[str, ...]] = None
    dynamic_axes: Optional[Dict[str, Any]] = None
    trt_dynamic_axes: Optional[Dict[str, Any]] = None
    disable_git_info: bool = False
    batch_dim: Optional[int] = 0
    runtimes: Any = None
    run_profiling: bool = True
    profiler_config: Any = None
    target_device: Optional[str] = None
    allow_nonfinite_outputs: bool = False
    isolation: Any = "auto"
    step_timeout_s: Optional[float] = 600.0
    verbose: bool = True
    debug: bool = False
    accuracy_budget: Any = None
    task_metric: Any = None

    @classmethod
    def take(cls, arguments: Dict[str, Any]) -> "ExportArguments":
        """The common arguments out of an export()'s `locals()` (its other arguments go to its adapter)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in arguments.items() if k in names})


class FrameworkAdapter:
    """What one framework adds to the shared flow. Subclasses set the class attributes and
    implement the methods marked so; `self.model` is the user's model as given to export()."""

    framework: Framework
    source_format: Format
    label: str  # in messages: "PyTorch", "TensorFlow 2", ...
    formats: Tuple[Format, ...]  # target_formats it takes, in their default order
    what: str = "The model"  # the subject of "... failed on dataloader sample N"

    def __init__(self, model: Any):
        self.model = model

    # Before the common arguments are checked -------------------------------------------------
    def check_model(self) -> None:
        """Import the framework and refuse a model it cannot export, with the reason (required)."""
        raise NotImplementedError

    def gpu_available(self) -> bool:
        """Whether the framework sees a CUDA device (the default target_device)."""
        return False

    def opset(self, requested: Optional[int]) -> int:
        """The opset asked for, checked against the installed onnx; the default (17) needs no check: every
        onnx the extras admit (>= 1.16) knows it, and not importing onnx here keeps it (~0.4 s, 12 MiB) out of
        the user's process."""
        return DEFAULT_OPSET if requested is None else check_opset(requested)

    def check_late(self) -> None:
        """Checks that come after the common ones but before the workdir is touched."""

    # Samples and the source model ----------------------------------------------------------------
    def collect(self, dataloader: Any, input_names: Optional[Tuple[str, ...]], batch_dim: Optional[int]) -> SampleSet:
        """The dataloader as single samples, checked against what the model takes (required)."""
        raise NotImplementedError

    def prepare(self, sample_set: SampleSet, device: str) -> None:
        """Get the model ready to run on `device` once the samples are known (eval mode, .to(device))."""

    @property
    def source(self) -> Any:
        """What runners and exporters take as the source model."""
        return self.model

    def source_runner(self, sample_set: SampleSet, inputs: List[Any], device: str) -> Any:
        """A SourceRunner over the model, taking the samples' inputs (required)."""
        raise NotImplementedError

    def running(self) -> ContextManager[Any]:
        """Wraps the reference run (TensorFlow quiets its own logging there)."""
        return contextlib.nullcontext()

    def describe_call(self, sample: Dict[str, np.ndarray], keyword: bool) -> str:
        shapes = {k: tuple(v.shape) for k, v in sample.items()}
        return f"inputs {shapes}, {'keyword' if keyword else 'positional'} arguments"

    def output_names(self, requested: Optional[Tuple[str, ...]]) -> Optional[Tuple[str, ...]]:
        return requested

    def dynamic_axes(self, requested: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        return requested

    # The ExportConfig and the exports ----------------------------------------------------------
    def default_name(self) -> str:
        return type(self.model).__name__

    def config_fields(self) -> Dict[str, Any]:
        """The ExportConfig fields only this framework sets (jit_options, enable_xla, ...)."""
        return {"jit_options": ()}

    def export_context(
        self, config: ExportConfig, inputs: List[Any], outputs: List[Any], sample_set: SampleSet
    ) -> ExportContext:
        """What the framework's producers take as request.context (the model and its settings), built
        from what the flow holds in memory: the config, the tensors' metadata, the samples (required)."""
        raise NotImplementedError


def reference_outputs(
    adapter: FrameworkAdapter,
    sample_set: SampleSet,
    indices: Sequence[int],
    device: str,
    output_names: Optional[Tuple[str, ...]],
) -> Tuple[Dict[int, Dict[str, np.ndarray]], Tuple[str, ...]]:
    """Run the source model once per needed sample through its runner: the outputs every path is
    compared with, named by `output_names` or the model's own (dict keys, else output__N)."""
    inputs = infer_metadata(sample_set.samples, sample_set.input_names, sample_set.batch_dim, {})
    runner = adapter.source_runner(sample_set, inputs, device)
    results: Dict[int, Dict[str, np.ndarray]] = {}
    names: Optional[Tuple[str, ...]] = None
    with adapter.running(), runner:
        for index in indices:
            sample = sample_set.samples[index]
            failed = (
                f"{adapter.what} failed on {sample_set.describe(index)} "
                f"({adapter.describe_call(sample, sample_set.keyword)})"
            )
            try:
                out = runner.call(sample)
            except Exception as e:
                raise ModelNavigatorError(f"{failed}: {type(e).__name__}: {e}") from e
            try:  # JAX computes asynchronously: its errors surface here, when the arrays are read
                arrays, default_names = runner.flatten(out)
            except TypeError as e:
                raise UserInputError(
                    f"Unsupported model output: {e}; return tensors, tuples/lists or dicts of tensors."
                ) from e
            except Exception as e:
                raise ModelNavigatorError(f"{failed}: {type(e).__name__}: {e}") from e
            if not arrays:
                raise UserInputError(
                    f"{adapter.what} returned no tensors; return a tensor, a tuple/list or a dict of tensors."
                )
            if names is None:
                if output_names is not None and len(output_names) != len(arrays):
                    raise UserInputError(
                        f"`output_names` has {len(output_names)} names {output_names} but the model returns "
                        f"{len(arrays)} tensors {tuple(default_names)}."
                    )
                names = output_names or tuple(default_names)
            if len(arrays) != len(names):
                raise UserInputError(
                    f"{failed}: the model returned {len(arrays)} tensors {tuple(default_names)}, "
                    f"the first sample {len(names)}; return the same outputs for every sample."
                )
            bad = [n for n, a in zip(names, arrays, strict=True) if a.dtype == object or a.dtype.kind in "SUV"]
            if bad:
                raise UserInputError(f"Model outputs {bad} are not numeric tensors (strings?); return numeric tensors.")
            results[index] = dict(zip(names, arrays, strict=True))
    assert names is not None
    return results, names


def export(adapter: FrameworkAdapter, args: ExportArguments) -> Any:
    """Validate everything before any work, run the source model on the samples, then export,
    check and profile every requested path; return the PackageDescriptor of the workspace."""
    from model_navigator.paths.registry import paths_for

    adapter.check_model()
    specs = list(paths_for(adapter.framework))
    fields, in_names, out_names = _checked_options(adapter, args, specs)
    adapter.check_late()
    root = check_workdir(args.workdir, args.override_workdir)

    # Samples: checked against the model before anything is written.
    device, atol, rtol = fields["target_device"], fields["atol"], fields["rtol"]
    sample_set = adapter.collect(args.dataloader, in_names, args.batch_dim)
    selected = select_samples(sample_set, fields["sample_count"])
    if TensorRTPrecision.INT8 in fields["target_precisions"]:
        select_calibration(sample_set)
    needed = sorted({i for name, idx in selected.items() if name != CALIBRATION_SET for i in idx})
    adapter.prepare(sample_set, device)
    outputs, final_out_names = reference_outputs(adapter, sample_set, needed, device, out_names)
    problem = check_source_outputs(
        outputs, final_out_names, atol, rtol, bool(args.allow_nonfinite_outputs), sample_set.describe
    )
    check_budget_outputs(fields["accuracy_budget"], final_out_names)
    axes, trt_axes, inputs_meta, outputs_meta = axes_and_metadata(
        sample_set, outputs, final_out_names, adapter.dynamic_axes(args.dynamic_axes), args.trt_dynamic_axes
    )
    config = ExportConfig(
        **fields,
        **adapter.config_fields(),
        **sample_config_fields(sample_set, final_out_names, axes, trt_axes),
    )
    return _run(adapter, config, root, args, sample_set, outputs, inputs_meta, outputs_meta, specs, problem)


def _checked_options(
    adapter: FrameworkAdapter, args: ExportArguments, specs: List[Any]
) -> Tuple[Dict[str, Any], Optional[Tuple[str, ...]], Any]:
    """Every export argument checked in order, the first bad one named: (ExportConfig fields, in/out names)."""
    from model_navigator.steps.executor import normalize_isolation

    formats = check_formats(
        parse_enum_tuple(Format, args.target_formats, "target_formats"), adapter.formats, adapter.label, specs
    )
    precisions = parse_enum_tuple(TensorRTPrecision, args.target_precisions, "target_precisions") or (
        TensorRTPrecision.FP32,
        TensorRTPrecision.FP16,
    )
    device = check_target_device(args.target_device, adapter.gpu_available())
    runtimes = check_runtimes(parse_enum_tuple(RuntimeProvider, args.runtimes, "runtimes"), device)
    opset = adapter.opset(args.opset)
    count = check_positive_int(
        args.sample_count if args.sample_count is not None else DEFAULT_SAMPLE_COUNT, "sample_count"
    )
    if args.max_workspace_size is not None:
        check_positive_int(args.max_workspace_size, "max_workspace_size")
    # minimum_segment_size is TF-TRT's: checked where the framework declares a TF-TRT path, else recorded as given
    has_tf_trt = any(spec.format == Format.TF_TRT for spec in specs)
    segment = (
        check_positive_int(args.minimum_segment_size, "minimum_segment_size")
        if has_tf_trt
        else args.minimum_segment_size
    )
    atol, rtol = check_user_tolerance(args.atol, "atol"), check_user_tolerance(args.rtol, "rtol")
    budget, task_metric = check_budget(args.accuracy_budget), check_task_metric(args.task_metric)
    in_names = check_names(args.input_names, "input_names")
    out_names = adapter.output_names(check_names(args.output_names, "output_names"))
    profiler = check_profiler_config(args.profiler_config)
    name = args.model_name
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise UserInputError(f"`model_name` must be a non-empty string, got {name!r}.")
    if args.step_timeout_s is not None and args.step_timeout_s <= 0:
        raise UserInputError("`step_timeout_s` must be > 0 or None.")
    fields = dict(
        framework=adapter.framework,
        model_name=name or adapter.default_name(),
        target_formats=formats,
        target_precisions=precisions,
        runtimes=runtimes,
        opset=opset,
        atol=atol,
        rtol=rtol,
        max_workspace_size=args.max_workspace_size,
        minimum_segment_size=segment,
        target_device=device,
        sample_count=count,
        run_profiling=bool(args.run_profiling),
        profiler_config=profiler,
        disable_git_info=bool(args.disable_git_info),
        isolation=normalize_isolation(args.isolation),
        step_timeout_s=args.step_timeout_s,
        accuracy_budget=budget,
        task_metric=task_metric,
    )
    return fields, in_names, out_names


def _run(
    adapter: FrameworkAdapter,
    config: ExportConfig,
    root: Path,
    args: ExportArguments,
    sample_set: SampleSet,
    outputs: Dict[int, Dict[str, np.ndarray]],
    inputs_meta: List[Any],
    outputs_meta: List[Any],
    specs: List[PathSpec],
    source_problem: Optional[str] = None,
) -> Any:
    from model_navigator.package.descriptor import PackageDescriptor
    from model_navigator.steps.export_run import ExportJob, run_export

    job = ExportJob(
        config=config,
        workdir=root,
        override_workdir=bool(args.override_workdir),
        sample_set=sample_set,
        outputs=outputs,
        inputs_meta=inputs_meta,
        outputs_meta=outputs_meta,
        specs=specs,
        source_format=adapter.source_format,
        source_model=adapter.source,
        export_context=adapter.export_context(config, inputs_meta, outputs_meta, sample_set),
        source_problem=source_problem,
    )
    status, workdir = run_export(job, verbose=bool(args.verbose), debug=bool(args.debug))
    descriptor = PackageDescriptor(status, workdir, source_model=adapter.source)
    if args.verbose:
        from model_navigator.package.table import print_status_table

        print_status_table(status)
    return descriptor
