"""JAX paths: the direct ONNX path, exported with jax2onnx from the user's predict function and
params (`onnx-jax2onnx`, and TensorRT plans from it: `trt-fp32-jax2onnx`, `trt-fp16-jax2onnx`);
then one SavedModel per (enable_xla, jit_compile) variant, exported with jax2tf, and the
conversions that follow each (ONNX with tf2onnx, TF-TRT, TensorRT from the ONNX), as for TensorFlow.

The direct paths carry no selectors: PackageDescriptor.get_status / get_model / get_runner(format=ONNX)
without enable_xla / jit_compile select them; with either flag, the SavedModel-based variant.

Folder names are the reference's: TensorFlow's name, then `-xla` when enable_xla is True and `-jit`
when jit_compile is True: `tf-savedmodel` (enable_xla=False, jit_compile=False), `tf-savedmodel-jit`,
`tf-savedmodel-xla`, `tf-savedmodel-xla-jit`, the ONNX made from each `onnx`, `onnx-jit`, `onnx-xla`,
`onnx-xla-jit`, then `tf-trt-fp16-xla`, `trt-fp32-jit`, ... Every path carries the selectors
(("enable_xla", ...), ("jit_compile", ...)), which PackageDescriptor.get_status / get_model /
get_runner(enable_xla=..., jit_compile=...) select on. The names of earlier versions
(`tf-savedmodel-xla-nojit`, `onnx-noxla-jit`, ...) are mapped on load (core/jax_keys.py).
"""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.paths.base import PathSpec
from model_navigator.paths.cpu_precision import reduced_precision_paths
from model_navigator.paths.gpu import tensorrt_plan_path, tf_trt_path

# (enable_xla, jit_compile), in the order the paths run.
VARIANTS: Tuple[Tuple[bool, bool], ...] = ((True, False), (True, True), (False, False), (False, True))
_PRECISIONS = (TensorRTPrecision.FP32, TensorRTPrecision.FP16)
DIRECT_ONNX = "onnx-jax2onnx"


def variant_suffix(enable_xla: bool, jit_compile: bool) -> str:
    """The reference's suffix: '-xla' when enable_xla, '-jit' when jit_compile ('' for neither)."""
    return f"{'-xla' if enable_xla else ''}{'-jit' if jit_compile else ''}"


def path_key(base: str, enable_xla: bool, jit_compile: bool) -> str:
    """Folder name of a JAX path: path_key('tf-savedmodel', True, False) == 'tf-savedmodel-xla'."""
    return f"{base}{variant_suffix(enable_xla, jit_compile)}"


def jax_paths() -> Tuple[PathSpec, ...]:
    """Every JAX path, parents before children."""
    paths = [
        PathSpec(
            DIRECT_ONNX,
            Format.ONNX,
            "model.onnx",
            "model_navigator.exporters.jax_onnx:export_jax_onnx",
            cpu_runtimes=(RuntimeProvider.CPU, RuntimeProvider.OPENVINO),
            gpu_runtimes=(RuntimeProvider.CUDA, RuntimeProvider.TRT),
            requires_modules=("jax", "jax2onnx", "onnx"),
            extra="jax",
        )
    ]
    paths += [
        tensorrt_plan_path(precision, parent=DIRECT_ONNX, key=f"trt-{precision.value}-jax2onnx")
        for precision in _PRECISIONS
    ]
    paths += reduced_precision_paths(parent=DIRECT_ONNX, suffix="-jax2onnx")
    for enable_xla, jit_compile in VARIANTS:
        selectors = (("enable_xla", enable_xla), ("jit_compile", jit_compile))
        savedmodel = path_key("tf-savedmodel", enable_xla, jit_compile)
        onnx = path_key("onnx", enable_xla, jit_compile)
        paths.append(
            PathSpec(
                savedmodel,
                Format.TF_SAVEDMODEL,
                "model.savedmodel",
                "model_navigator.exporters.jax:export_savedmodel",
                selectors=selectors,
                requires_modules=("jax", "tensorflow"),
                extra="jax",
                availability="model_navigator.exporters.jax:variant_unavailable",
            )
        )
        paths.append(
            PathSpec(
                onnx,
                Format.ONNX,
                "model.onnx",
                "model_navigator.converters.tf2onnx:convert_savedmodel_to_onnx",
                parent=savedmodel,
                selectors=selectors,
                cpu_runtimes=(RuntimeProvider.CPU, RuntimeProvider.OPENVINO),
                gpu_runtimes=(RuntimeProvider.CUDA, RuntimeProvider.TRT),
                requires_modules=("tf2onnx", "onnx"),
                extra="jax",
                availability="model_navigator.exporters.jax:savedmodel_onnx_unavailable",
            )
        )
        paths += [
            tf_trt_path(
                precision,
                parent=savedmodel,
                extra="jax",
                selectors=selectors,
                key=path_key(f"tf-trt-{precision.value}", enable_xla, jit_compile),
            )
            for precision in _PRECISIONS
        ]
        paths += [
            tensorrt_plan_path(
                precision,
                parent=onnx,
                selectors=selectors,
                key=path_key(f"trt-{precision.value}", enable_xla, jit_compile),
            )
            for precision in _PRECISIONS
        ]
    return tuple(paths)
