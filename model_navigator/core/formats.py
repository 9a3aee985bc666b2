"""What is known about each format and each runtime, declared once as data.

A FormatSpec says how a format is run (a runner factory per runtime), loaded (get_model), served
by Triton, where its checks run, what a worker preloads for it, when a runtime cannot run it here,
its default tolerance and the packages status.yaml reports for it; a RuntimeSpec says the same of a
runtime. Functions are named as "module:function" and imported only when used, as PathSpec's
producer is, so importing this module imports no framework. Everything that used to be an if-chain
over formats (runners/registry.make_runner, PackageDescriptor.get_model, triton backend_for, the
executor's local formats, the worker's preloads, pipeline.runtime_unavailable_reason) looks here;
which formats a framework offers is derived from its path declarations (paths/registry.formats_of).

A new format is a Format member, a FormatSpec in DECLARATIONS, its paths with their producer, and a
runner module with the factory (and loader) named here.

DECLARATIONS' order (kept by FORMATS, their index by format) is the order formats are listed in (a
framework's default target_formats, messages).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from model_navigator.core.enums import Format, Framework, RuntimeProvider


@dataclass(frozen=True)
class TritonBackend:
    """How Triton serves one format on one runtime. indexed_names: the backend finds tensors by
    `<name>__<index>` (PyTorch's), so other names are given that form."""

    platform: Optional[str]
    backend: str
    filename: str
    is_dir: bool = False
    default_model_filename: Optional[str] = None
    parameters: Tuple[Tuple[str, str], ...] = ()
    gpu_execution_accelerators: Tuple[str, ...] = ()
    indexed_names: bool = False


@dataclass(frozen=True)
class FormatSpec:
    """One format.

    runners: (runtime, "module:function") pairs; runtime None stands for every runtime not named.
        The function takes (model, RunnerArgs) and returns an inactive NavigatorRunner; model is the
        artifact's path, or for a source format the user's model object.
    loader: "module:function" taking the artifact's path and returning what get_model gives; None:
        the path itself (a TensorRT plan).
    triton: (runtime, TritonBackend) pairs, None as for runners; none: Triton cannot serve it.
    source_of: the framework whose export() takes this as the user's model (a source format).
    local_checks: frameworks whose process (isolation 'auto') checks and profiles it itself; the
        others send it to the worker.
    preload: modules a worker imports ahead for it: for an artifact, what running it needs; for a
        source format, what its framework's worker needs besides its artifacts' (the converters).
    availability: (runtime, "module:function") pairs; the function takes the runtime and returns
        why that runtime cannot run the format here, or None.
    gpu_only: exists only on a GPU (the TensorRT family).
    tolerance: the DEFAULT_TOLERANCES entry for its fp32 paths; None: the runtime's.
    packages: distributions whose versions status.yaml reports for it.
    """

    format: Format
    runners: Tuple[Tuple[Optional[RuntimeProvider], str], ...]
    loader: Optional[str] = None
    triton: Tuple[Tuple[Optional[RuntimeProvider], TritonBackend], ...] = ()
    source_of: Optional[Framework] = None
    local_checks: Tuple[Framework, ...] = ()
    preload: Tuple[str, ...] = ()
    availability: Tuple[Tuple[RuntimeProvider, str], ...] = ()
    gpu_only: bool = False
    tolerance: Optional[str] = None
    packages: Tuple[str, ...] = ()

    @property
    def is_source(self) -> bool:
        return self.source_of is not None

    def runner_for(self, runtime: RuntimeProvider) -> Optional[str]:
        return _by_runtime(self.runners, runtime)

    def names_runtime(self, runtime: RuntimeProvider) -> bool:
        """Is `runtime` declared by name (not only covered by the catch-all runner)?"""
        return any(r == runtime for r, _ in self.runners)

    def triton_backend(self, runtime: RuntimeProvider) -> Optional[TritonBackend]:
        return _by_runtime(self.triton, runtime)

    def availability_check(self, runtime: RuntimeProvider) -> Optional[str]:
        return dict(self.availability).get(runtime)


@dataclass(frozen=True)
class RuntimeSpec:
    """One runtime.

    on_cpu: runs on the CPU, whatever its name says (devices, Triton's instance kind, validation).
    tolerance: the DEFAULT_TOLERANCES entry for fp32 paths on it (a format's own entry wins).
    opt_in: checked and profiled only when named in `runtimes=` (it costs more than it tells).
    requires: (module, extra): the Python module it needs and the extra that installs it.
    """

    runtime: RuntimeProvider
    on_cpu: bool
    tolerance: str
    opt_in: bool = False
    requires: Optional[Tuple[str, str]] = None
    packages: Tuple[str, ...] = ()


def _by_runtime(pairs: Tuple[Tuple[Optional[RuntimeProvider], Any], ...], runtime: RuntimeProvider) -> Any:
    table = dict(pairs)
    return table.get(runtime, table.get(None))


def load_function(reference: str) -> Callable[..., Any]:
    """The function a "module:function" declaration names (imported now)."""
    module_name, func_name = reference.split(":")
    return getattr(importlib.import_module(module_name), func_name)


_RP = RuntimeProvider
_FW = Framework
_TORCH = "model_navigator.runners.torch"
_TF = "model_navigator.runners.tensorflow"
_ONNX = "model_navigator.runners.onnx"

_ONNX_BACKEND = TritonBackend("onnxruntime_onnx", "onnxruntime", "model.onnx")
_TORCHSCRIPT_BACKEND = TritonBackend(
    "pytorch_libtorch", "pytorch", "model.pt", parameters=(("INFERENCE_MODE", "true"),), indexed_names=True
)
_SAVEDMODEL_BACKEND = TritonBackend("tensorflow_savedmodel", "tensorflow", "model.savedmodel", is_dir=True)

# In the order formats are listed (a framework's default target_formats and its error messages).
DECLARATIONS = (
    FormatSpec(
        Format.TORCHSCRIPT,
        runners=((None, f"{_TORCH}:torchscript_runner"),),
        loader=f"{_TORCH}:load_torchscript",
        triton=((None, _TORCHSCRIPT_BACKEND),),
        local_checks=(_FW.TORCH,),
        preload=("torch",),
        packages=("torch",),
    ),
    FormatSpec(
        Format.TORCH_EXPORTEDPROGRAM,
        runners=((None, f"{_TORCH}:exportedprogram_runner"),),
        loader=f"{_TORCH}:load_exportedprogram",
        local_checks=(_FW.TORCH,),
        # torch.export.load needs torch._export.serde and it costs ~1 s; imported while the
        # user's process exports, it is off the critical path.
        preload=("torch", "torch._export.serde.serialize"),
        packages=("torch",),
    ),
    FormatSpec(
        Format.TF_SAVEDMODEL,
        runners=((None, f"{_TF}:savedmodel_runner"),),
        loader=f"{_TF}:load_savedmodel",
        triton=((None, _SAVEDMODEL_BACKEND),),
        local_checks=(_FW.TENSORFLOW, _FW.JAX),
        preload=("tensorflow",),
        packages=("tensorflow", "tensorflow-cpu"),
    ),
    FormatSpec(
        Format.TF_TRT,
        runners=((None, f"{_TF}:savedmodel_runner"),),  # a TF-TRT artifact is a SavedModel
        loader=f"{_TF}:load_savedmodel",
        triton=((None, _SAVEDMODEL_BACKEND),),
        gpu_only=True,
        tolerance="fp32-gpu",
        packages=("tensorflow", "tensorrt"),
    ),
    FormatSpec(
        Format.ONNX,
        runners=(
            (_RP.OPENVINO, "model_navigator.runners.openvino:openvino_runner"),
            (None, f"{_ONNX}:onnxruntime_runner"),
        ),
        loader=f"{_ONNX}:load_onnx",
        triton=(
            # Triton's OpenVINO backend reads ONNX directly; the hint matches how it was profiled.
            (
                _RP.OPENVINO,
                TritonBackend(
                    None,
                    "openvino",
                    "model.onnx",
                    default_model_filename="model.onnx",
                    parameters=(("PERFORMANCE_HINT", "LATENCY"),),
                ),
            ),
            # ONNX Runtime's TensorRT execution provider
            (
                _RP.TRT,
                TritonBackend(
                    "onnxruntime_onnx", "onnxruntime", "model.onnx", gpu_execution_accelerators=("tensorrt",)
                ),
            ),
            (None, _ONNX_BACKEND),
        ),
        preload=("onnxruntime", "openvino"),  # openvino: only where installed
        availability=((_RP.CUDA, f"{_ONNX}:provider_unavailable"), (_RP.TRT, f"{_ONNX}:provider_unavailable")),
        packages=("onnx", "onnxruntime", "onnxscript"),
    ),
    FormatSpec(
        Format.TORCH_TRT,
        runners=((None, f"{_TORCH}:torch_trt_runner"),),
        loader=f"{_TORCH}:load_torchscript",
        triton=((None, _TORCHSCRIPT_BACKEND),),
        gpu_only=True,
        tolerance="fp32-gpu",
        packages=("torch", "torch-tensorrt", "tensorrt"),
    ),
    FormatSpec(
        Format.TENSORRT,
        runners=((None, "model_navigator.runners.tensorrt:tensorrt_runner"),),
        triton=((None, TritonBackend("tensorrt_plan", "tensorrt", "model.plan")),),
        gpu_only=True,
        tolerance="fp32-gpu",
        packages=("tensorrt", "polygraphy"),
    ),
    # The user's models: their runners exist only in the process that called export().
    FormatSpec(
        Format.TORCH,
        source_of=_FW.TORCH,
        runners=((_RP.TORCH_COMPILE, f"{_TORCH}:torch_compile_runner"), (None, f"{_TORCH}:torch_source_runner")),
        packages=("torch",),
    ),
    FormatSpec(
        Format.TENSORFLOW,
        source_of=_FW.TENSORFLOW,
        runners=((None, f"{_TF}:tensorflow_source_runner"),),
        preload=("tf2onnx",),
        packages=("tensorflow", "tensorflow-cpu", "tf2onnx"),
    ),
    # The SavedModels run on TensorFlow (which runs jax2tf's XlaCallModule without jax), tf2onnx
    # converts them: a JAX worker never imports jax.
    FormatSpec(
        Format.JAX,
        source_of=_FW.JAX,
        runners=((None, "model_navigator.runners.jax:jax_source_runner"),),
        preload=("tf2onnx",),
        packages=("jax", "jaxlib", "flax", "tensorflow", "tf2onnx"),
    ),
    FormatSpec(
        Format.ONNX_SOURCE,
        source_of=_FW.ONNX,
        runners=((None, f"{_ONNX}:onnx_source_runner"),),
        preload=("onnx",),
        packages=("onnx", "onnxruntime"),
    ),
)

FORMATS: Dict[Format, FormatSpec] = {spec.format: spec for spec in DECLARATIONS}

RUNTIMES: Dict[RuntimeProvider, RuntimeSpec] = {
    spec.runtime: spec
    for spec in (
        RuntimeSpec(_RP.CPU, on_cpu=True, tolerance="fp32"),
        # cuDNN and ONNX Runtime's CUDA provider use TF32 by default (see core/tolerance.py).
        RuntimeSpec(_RP.CUDA, on_cpu=False, tolerance="fp32-gpu"),
        RuntimeSpec(_RP.TRT, on_cpu=False, tolerance="fp32-gpu", packages=("tensorrt",)),
        RuntimeSpec(
            _RP.OPENVINO, on_cpu=True, tolerance="fp32", requires=("openvino", "openvino"), packages=("openvino",)
        ),
        RuntimeSpec(_RP.TORCH_COMPILE, on_cpu=True, tolerance="fp32", opt_in=True, packages=("torch",)),
        # The reference's names for the framework's own runtime, resolved to CPU / CUDA before use.
        RuntimeSpec(_RP.PYT, on_cpu=False, tolerance="fp32", packages=("torch",)),
        RuntimeSpec(_RP.TF, on_cpu=False, tolerance="fp32", packages=("tensorflow",)),
    )
}


def format_spec(fmt: Any) -> FormatSpec:
    """The declaration of a format (a Format or its value)."""
    return FORMATS[Format(fmt)]


def runtime_spec(runtime: Any) -> RuntimeSpec:
    """The declaration of a runtime (a RuntimeProvider or its value)."""
    return RUNTIMES[RuntimeProvider(runtime)]


def source_format(framework: Framework) -> FormatSpec:
    """The source format of a framework's export() (Framework.ONNX -> ONNX_SOURCE)."""
    return next(spec for spec in FORMATS.values() if spec.source_of == framework)


def formats_checked_locally(framework: str) -> Tuple[str, ...]:
    """Format values a framework's own process checks and profiles (isolation 'auto')."""
    return tuple(spec.format.value for spec in FORMATS.values() if framework in spec.local_checks)


def declared_packages() -> Tuple[str, ...]:
    """Every distribution a format or runtime declares, once, in declaration order."""
    names = [p for spec in FORMATS.values() for p in spec.packages]
    names += [p for spec in RUNTIMES.values() for p in spec.packages]
    return tuple(dict.fromkeys(names))


# Derived lists (also importable from core.enums, where they used to be written out).
SOURCE_FORMATS = tuple(spec.format for spec in FORMATS.values() if spec.is_source)
GPU_FORMATS = tuple(spec.format for spec in FORMATS.values() if spec.gpu_only)
CPU_RUNTIMES = tuple(spec.runtime for spec in RUNTIMES.values() if spec.on_cpu)
OPT_IN_RUNTIMES = tuple(spec.runtime for spec in RUNTIMES.values() if spec.opt_in)
# Python modules a runtime needs, and the extra that installs them (a dict: tests patch it).
RUNTIME_MODULES: Dict[RuntimeProvider, Tuple[str, str]] = {
    spec.runtime: spec.requires for spec in RUNTIMES.values() if spec.requires is not None
}
