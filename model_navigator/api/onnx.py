"""nav.onnx.export: an .onnx file and a dataloader -> the same checks, profiling, workspace and
.nav package as the other frameworks; the `onnx` path (ONNX Runtime, OpenVINO; CUDA and TensorRT
providers on a GPU) and the TensorRT plans built from it on a GPU."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from model_navigator.api.frontend import ExportArguments, FrameworkAdapter
from model_navigator.api.frontend import export as run_export
from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import Format, Framework, RuntimeProvider, TensorRTPrecision
from model_navigator.core.errors import FrameworkMissingError, UserInputError
from model_navigator.core.samples import SampleSet, collect_samples
from model_navigator.paths.registry import formats_of

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
            raise UserInputError(
                f"The dataloader's dict samples hold {tuple(first)}, but the ONNX graph's inputs are "
                f"{names}; use the graph's input names as keys."
            )
    elif isinstance(first, (tuple, list)) and len(first) != len(names):
        raise UserInputError(
            f"The dataloader's samples hold {len(first)} tensors, but the ONNX graph has "
            f"{len(names)} inputs {names}; give one tensor per input, in the graph's order."
        )


class OnnxAdapter(FrameworkAdapter):
    """nav.onnx: an .onnx file, run on ONNX Runtime's CPU provider as the reference. Inputs, outputs,
    dtypes and dynamic axes come from the graph."""

    framework = Framework.ONNX
    source_format = Format.ONNX_SOURCE
    label = "ONNX"
    formats = ONNX_FORMATS
    what = "ONNX Runtime"

    def check_model(self) -> None:
        from model_navigator.exporters import onnx as onnx_exporters

        if not isinstance(self.model, (str, Path)):
            raise UserInputError(f"`model` must be the path of an .onnx file, got {type(self.model).__name__}.")
        self.path = Path(self.model).absolute()
        proto = onnx_exporters.load_checked(self.path)
        self.graph_inputs, self.graph_outputs = onnx_exporters.graph_tensors(proto)
        self.file_opset = onnx_exporters.opset_of(proto)
        try:
            import onnxruntime  # noqa: F401  (runs the reference)
        except ImportError as e:
            raise FrameworkMissingError("nav.onnx needs onnxruntime: pip install 'model-navigator[onnx]'.") from e

    def gpu_available(self) -> bool:
        from model_navigator.core.environment import gpu_present

        return gpu_present()

    def opset(self, requested: Optional[int]) -> int:
        if requested is not None and requested != self.file_opset:
            warnings.warn(
                f"`opset` {requested} is not applied: nav.onnx keeps the file's opset {self.file_opset}.",
                UserWarning,
                stacklevel=4,
            )
        return self.file_opset

    def collect(self, dataloader: Any, input_names: Optional[Tuple[str, ...]], batch_dim: Optional[int]) -> SampleSet:
        from model_navigator.exporters import onnx as onnx_exporters

        names = tuple(t.name for t in self.graph_inputs)
        _check_item_names(dataloader, names)
        sample_set = collect_samples(dataloader, names, batch_dim)
        onnx_exporters.check_samples(sample_set.samples, self.graph_inputs, batch_dim, sample_set.describe)
        return sample_set

    @property
    def source(self) -> Any:
        return self.path

    def source_runner(self, sample_set: SampleSet, inputs: List[Any], device: str) -> Any:
        from model_navigator.runners.onnx import OnnxSourceRunner

        return OnnxSourceRunner(self.path, inputs, [], provider=RuntimeProvider.CPU, name="onnx-source")

    def describe_call(self, sample: Dict[str, Any], keyword: bool) -> str:
        return f"inputs { {k: tuple(v.shape) for k, v in sample.items()} }"

    def output_names(self, requested: Optional[Tuple[str, ...]]) -> Optional[Tuple[str, ...]]:
        return tuple(t.name for t in self.graph_outputs)

    def dynamic_axes(self, requested: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        return {t.name: t.dynamic_axes for t in self.graph_inputs + self.graph_outputs if t.dynamic_axes}

    def default_name(self) -> str:
        return self.path.stem

    def export_context(self, config: Any, inputs: List[Any], outputs: List[Any], sample_set: SampleSet) -> Any:
        from model_navigator.exporters import onnx as onnx_exporters

        return onnx_exporters.OnnxExportContext(self.path)


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
    accuracy_budget: Optional[Dict[str, Any]] = None,
    task_metric: Optional[str] = None,
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
    return run_export(OnnxAdapter(model), ExportArguments.take(locals()))
