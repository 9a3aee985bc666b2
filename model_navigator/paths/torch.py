"""PyTorch paths: exports from the user's nn.Module and the conversions that follow them."""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import (
    Format,
    JitType,
    RuntimeProvider,
    TensorRTPrecision,
)
from model_navigator.paths.base import PathSpec
from model_navigator.paths.cpu_precision import reduced_precision_paths
from model_navigator.paths.gpu import tensorrt_plan_path

_CUDA = (RuntimeProvider.CUDA,)


def torch_paths() -> Tuple[PathSpec, ...]:
    """Every PyTorch path, parents before children."""
    paths = [
        PathSpec(
            "torchscript-script",
            Format.TORCHSCRIPT,
            "model.pt",
            "model_navigator.exporters.torch:export_torchscript",
            jit_type=JitType.SCRIPT,
        ),
        PathSpec(
            "torchscript-trace",
            Format.TORCHSCRIPT,
            "model.pt",
            "model_navigator.exporters.torch:export_torchscript",
            jit_type=JitType.TRACE,
        ),
        PathSpec(
            "torch-exportedprogram",
            Format.TORCH_EXPORTEDPROGRAM,
            "model.pt2",
            "model_navigator.exporters.torch:export_exportedprogram",
            forkable=False,  # torch.export.load, which its check runs here, imports torch._dynamo (~100 MiB, ~1.3 s)
        ),
        PathSpec(
            "onnx",
            Format.ONNX,
            "model.onnx",
            "model_navigator.exporters.torch:export_onnx",
            cpu_runtimes=(RuntimeProvider.CPU, RuntimeProvider.OPENVINO),  # OpenVINO when installed
            gpu_runtimes=(RuntimeProvider.CUDA, RuntimeProvider.TRT),
        ),
    ]
    paths += [tensorrt_plan_path(precision) for precision in (TensorRTPrecision.FP32, TensorRTPrecision.FP16)]
    paths += reduced_precision_paths()
    for jit_type in (JitType.SCRIPT, JitType.TRACE):
        for precision in (TensorRTPrecision.FP32, TensorRTPrecision.FP16):
            paths.append(
                PathSpec(
                    f"torch-trt-{jit_type.value}-{precision.value}",
                    Format.TORCH_TRT,
                    "model.pt",
                    "model_navigator.converters.torch_trt:convert_torchscript_to_torch_trt",
                    parent=f"torchscript-{jit_type.value}",
                    jit_type=jit_type,
                    precision=precision,
                    cpu_runtimes=(),
                    gpu_runtimes=_CUDA,
                    requires_modules=("torch_tensorrt",),
                    requires_gpu=True,
                    extra="tensorrt",
                    availability="model_navigator.converters.torch_trt:frontend_unavailable",
                )
            )
    return tuple(paths)
