"""nav.torch.export: PyTorch nn.Module -> TorchScript, torch.export (.pt2), ONNX and the TensorRT family."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from model_navigator.api.frontend import ExportArguments, FrameworkAdapter
from model_navigator.api.frontend import export as run_export
from model_navigator.core.config import ProfilerConfig
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
from model_navigator.core.errors import FrameworkMissingError, UserInputError
from model_navigator.core.samples import SampleSet, collect_samples
from model_navigator.paths.registry import formats_of

TORCH_FORMATS = formats_of(Framework.TORCH)


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


class TorchAdapter(FrameworkAdapter):
    """nav.torch: an nn.Module, called with the samples as positional or keyword arguments."""

    framework = Framework.TORCH
    source_format = Format.TORCH
    label = "PyTorch"
    formats = TORCH_FORMATS

    def __init__(self, model: Any, jit_options: Any, precision_mode: Any, onnx_dynamo: bool):
        super().__init__(model)
        self.jit_options, self.precision_mode, self.onnx_dynamo = jit_options, precision_mode, onnx_dynamo

    def check_model(self) -> None:
        torch = _import_torch()
        if not isinstance(self.model, torch.nn.Module):
            raise UserInputError(f"`model` must be a torch.nn.Module, got {type(self.model).__name__}.")
        meta = next((n for n, t in [*self.model.named_parameters(), *self.model.named_buffers()] if t.is_meta), None)
        if meta is not None:
            raise UserInputError(
                f"`model` has tensor {meta!r} on the meta device, which holds no values: load its "
                f"weights first (e.g. model.to_empty(device='cpu') then load_state_dict(...))."
            )
        self.precision_mode = parse_enum(TensorRTPrecisionMode, self.precision_mode, "precision_mode")
        self.jit_options = parse_enum_tuple(JitType, self.jit_options, "jit_options") or (JitType.SCRIPT, JitType.TRACE)

    def gpu_available(self) -> bool:
        return bool(_import_torch().cuda.is_available())

    def collect(self, dataloader: Any, input_names: Optional[Tuple[str, ...]], batch_dim: Optional[int]) -> SampleSet:
        sample_set = collect_samples(dataloader, input_names, batch_dim, rename_keywords=True)
        if sample_set.keyword:  # in the order forward() declares its parameters
            forward = sample_set.forward_names or sample_set.input_names
            to_input = dict(zip(forward, sample_set.input_names, strict=True))
            ordered_forward = _forward_order(self.model, tuple(forward))
            ordered = tuple(to_input[f] for f in ordered_forward)
            sample_set.samples = [{n: s[n] for n in ordered} for s in sample_set.samples]
            sample_set.input_names, sample_set.forward_names = ordered, ordered_forward
        return sample_set

    def prepare(self, sample_set: SampleSet, device: str) -> None:
        self.model.eval()
        if device != "cpu":
            self.model.to(device)

    def source_runner(self, sample_set: SampleSet, inputs: List[Any], device: str) -> Any:
        from model_navigator.runners.torch import TorchSourceRunner

        return TorchSourceRunner(
            self.model, inputs, [], device=device, keyword=sample_set.keyword, kw_names=sample_set.forward_names
        )

    def config_fields(self) -> Dict[str, Any]:
        return {
            "jit_options": self.jit_options,
            "precision_mode": self.precision_mode,
            "onnx_dynamo": bool(self.onnx_dynamo),
        }

    def export_context(self, config: Any, inputs: List[Any], outputs: List[Any], sample_set: SampleSet) -> Any:
        from model_navigator.exporters import torch as torch_exporters

        return torch_exporters.make_context(self.model, config, inputs, outputs, sample_set.of_set("conversion"))


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
    accuracy_budget: Optional[Dict[str, Any]] = None,
    task_metric: Optional[str] = None,
) -> Any:
    """Export a torch.nn.Module to every requested format, check each against the model on the
    dataloader's samples, profile it, and return the PackageDescriptor of the workspace.

    `atol` / `rtol`: a number or a dict output name -> number; None (default) judges every path by
    its precision's default tolerance (README, "Correctness"); `atol=float("inf")` only measures.
    `allow_nonfinite_outputs`: accept NaN/inf in the source model's outputs (compared by value);
    by default the export then records every path as not produced, with the reason, and returns.
    Beyond the reference: `precision_mode` (the reference spells it `precison_mode`; both work),
    `onnx_dynamo` (use the torch.export-based ONNX exporter), `isolation` ('auto': conversions
    and foreign runtimes such as ONNX Runtime run in a worker process, TorchScript/ExportedProgram
    checks run here where torch is already loaded; True/'full': every step in the worker;
    False/'off': everything here),
    `step_timeout_s` (a step running longer fails), `verbose` (progress lines and the table),
    `debug` (model_navigator's DEBUG logs, worker output included, on the terminal too),
    `accuracy_budget` / `task_metric` (how int8 / bf16 paths of `target_precisions` are judged;
    README "Faster on the CPU: int8 and bf16").
    """
    if precison_mode is not None and precision_mode is not None:
        raise UserInputError("Pass `precision_mode` or the reference's `precison_mode`, not both.")
    adapter = TorchAdapter(
        model, jit_options, precision_mode or precison_mode or TensorRTPrecisionMode.HIERARCHY, onnx_dynamo
    )
    return run_export(adapter, ExportArguments.take(locals()))
