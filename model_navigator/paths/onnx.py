"""ONNX paths (nav.onnx.export): the user's .onnx file as the `onnx` path, and the TensorRT plans
built from it on a GPU."""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.paths.base import PathSpec
from model_navigator.paths.cpu_precision import reduced_precision_paths
from model_navigator.paths.gpu import tensorrt_plan_path


def onnx_paths() -> Tuple[PathSpec, ...]:
    """Every ONNX-source path, parents before children."""
    return (
        PathSpec(
            "onnx",
            Format.ONNX,
            "model.onnx",
            "model_navigator.exporters.onnx:copy_onnx",
            cpu_runtimes=(RuntimeProvider.CPU, RuntimeProvider.OPENVINO),  # OpenVINO when installed
            gpu_runtimes=(RuntimeProvider.CUDA, RuntimeProvider.TRT),
        ),
        tensorrt_plan_path(TensorRTPrecision.FP32),
        tensorrt_plan_path(TensorRTPrecision.FP16),
        *reduced_precision_paths(),
    )
