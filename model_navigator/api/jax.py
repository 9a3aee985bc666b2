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

from model_navigator.api.common import check_bool_options
from model_navigator.api.frontend import ExportArguments, FrameworkAdapter
from model_navigator.api.frontend import export as run_export
from model_navigator.core.config import ProfilerConfig
from model_navigator.core.enums import Format, Framework, RuntimeProvider, TensorRTPrecision
from model_navigator.core.logging import LOGGER
from model_navigator.core.samples import SampleSet, collect_samples
from model_navigator.frameworks.jax_utils import (
    PREALLOCATE_AT_IMPORT,
    PREALLOCATE_ENV,
    JaxModel,
    check_params,
    check_predict,
    configure_memory,
    describe_inputs,
    import_jax,
    import_jax2tf,
    jax_gpu_available,
    set_tf_memory_growth,
)
from model_navigator.frameworks.tensorflow_utils import check_tf_names
from model_navigator.paths.registry import formats_of

# Nothing above imports jax or TensorFlow: set the memory variables before model-navigator does.
_JAX_STARTED_BEFORE_US = bool(getattr(sys.modules.get("jax._src.xla_bridge"), "_backends", None))
configure_memory()

JAX_FORMATS = formats_of(Framework.JAX)


class JaxAdapter(FrameworkAdapter):
    """nav.jax: predict(*inputs, params) (dict samples: keywords, params by its parameter's name)."""

    framework = Framework.JAX
    source_format = Format.JAX
    label = "JAX"
    formats = JAX_FORMATS  # ONNX is exported directly; TF-TRT needs the SavedModel
    what = "The predict function"

    def __init__(self, model: Any, model_params: Any, enable_xla: Any, jit_compile: Any):
        super().__init__(model)
        self.model_params, self.enable_xla, self.jit_compile = model_params, enable_xla, jit_compile
        self._source: Any = None

    def check_model(self) -> None:
        import_jax()
        import_jax2tf()  # a jax without jax2tf stops here, naming its version and the ones that work
        from model_navigator.frameworks.tensorflow_utils import import_tensorflow

        set_tf_memory_growth(import_tensorflow())
        self.enable_xla = check_bool_options(self.enable_xla, "enable_xla")
        self.jit_compile = check_bool_options(self.jit_compile, "jit_compile")

    def gpu_available(self) -> bool:
        return jax_gpu_available()

    def check_late(self) -> None:
        if not callable(self.model):
            check_predict(self.model, (), False)  # raises the error that says what `model` must be
        check_params(self.model_params)

    def collect(self, dataloader: Any, input_names: Optional[Tuple[str, ...]], batch_dim: Optional[int]) -> SampleSet:
        sample_set = collect_samples(dataloader, input_names, batch_dim, rename_keywords=True)
        check_tf_names(sample_set.input_names, "Input names")
        params_arg = check_predict(self.model, sample_set.forward_names or sample_set.input_names, sample_set.keyword)
        self._source = JaxModel(self.model, self.model_params, params_arg)
        return sample_set

    def prepare(self, sample_set: SampleSet, device: str) -> None:
        if device.startswith("cuda") and _JAX_STARTED_BEFORE_US and PREALLOCATE_AT_IMPORT is None:
            LOGGER.warning(
                "JAX started on the GPU before model-navigator could set %s=false: it may hold most of the GPU "
                "memory TensorFlow needs for the SavedModels; set it before importing jax (export %s=false).",
                PREALLOCATE_ENV,
                PREALLOCATE_ENV,
            )

    @property
    def source(self) -> Any:
        return self._source

    def source_runner(self, sample_set: SampleSet, inputs: List[Any], device: str) -> Any:
        from model_navigator.runners.jax import JaxSourceRunner

        return JaxSourceRunner(
            self._source, inputs, [], device=device, keyword=sample_set.keyword, kw_names=sample_set.forward_names
        )

    def describe_call(self, sample: Dict[str, np.ndarray], keyword: bool) -> str:
        return f"inputs {describe_inputs(sample)}, {'keyword' if keyword else 'positional'} arguments, params last"

    def default_name(self) -> str:
        name = getattr(self.model, "__name__", None)
        return name if isinstance(name, str) and name.isidentifier() else "jax_model"

    def config_fields(self) -> Dict[str, Any]:
        return {"jit_options": (), "enable_xla": self.enable_xla, "jit_compile": self.jit_compile}

    def export_context(self, config: Any, inputs: List[Any], outputs: List[Any], sample_set: SampleSet) -> Any:
        from model_navigator.exporters import jax as jax_exporters

        samples = sample_set.of_set("conversion") + sample_set.of_set("correctness")
        return jax_exporters.make_context(self._source, config, inputs, outputs, samples)


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
    accuracy_budget: Optional[Dict[str, Any]] = None,
    task_metric: Optional[str] = None,
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
    `trt-<fp32|fp16>-jax2onnx`, `tf-savedmodel[-xla][-jit]` (the reference's names), `onnx[-xla][-jit]`, ...

    `atol` / `rtol`: a number or a dict output name -> number; None (default) judges every path by
    its precision's default tolerance (README, "Correctness"); `atol=float("inf")` only measures.
    `allow_nonfinite_outputs`: accept NaN/inf in the source model's outputs (compared by value);
    by default the export then records every path as not produced, with the reason, and returns.
    Beyond the reference, keyword-only: `input_names`, `output_names`, `dynamic_axes`,
    `trt_dynamic_axes` (as for nav.tensorflow), `target_device` ('cpu' or 'cuda'; default the GPU
    when JAX sees one), `isolation`, `step_timeout_s`, `verbose`, `debug`.
    """
    return run_export(JaxAdapter(model, model_params, enable_xla, jit_compile), ExportArguments.take(locals()))


__all__: Sequence[str] = ("export",)
