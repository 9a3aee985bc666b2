"""The GPU family's path declarations shared by the frameworks: TensorRT plans built from an ONNX
path and TF-TRT SavedModels converted from a SavedModel path (torch's Torch-TensorRT paths are
torch's own, in paths/torch.py)."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.paths.base import PathSpec


def tensorrt_plan_path(
    precision: TensorRTPrecision,
    parent: str = "onnx",
    key: Optional[str] = None,
    selectors: Tuple[Tuple[str, Any], ...] = (),
) -> PathSpec:
    """`trt-<precision>`: the ONNX path built into a TensorRT engine, run by TensorRT on the GPU."""
    return PathSpec(
        key or f"trt-{precision.value}",
        Format.TENSORRT,
        "model.plan",
        "model_navigator.converters.tensorrt:convert_onnx_to_trt",
        parent=parent,
        precision=precision,
        selectors=selectors,
        cpu_runtimes=(),
        gpu_runtimes=(RuntimeProvider.TRT,),
        requires_modules=("tensorrt",),
        requires_gpu=True,
        extra="tensorrt",
        availability="model_navigator.converters.tensorrt:tensorrt_unavailable",
    )


def tf_trt_path(
    precision: TensorRTPrecision,
    parent: str,
    extra: str,
    key: Optional[str] = None,
    selectors: Tuple[Tuple[str, Any], ...] = (),
) -> PathSpec:
    """`tf-trt-<precision>`: the SavedModel path converted by TF-TRT, run by TensorFlow on the GPU."""
    return PathSpec(
        key or f"tf-trt-{precision.value}",
        Format.TF_TRT,
        "model.savedmodel",
        "model_navigator.converters.tf_trt:convert_savedmodel_to_tftrt",
        parent=parent,
        precision=precision,
        selectors=selectors,
        cpu_runtimes=(),
        gpu_runtimes=(RuntimeProvider.CUDA,),
        requires_modules=("tensorflow",),
        requires_gpu=True,
        extra=extra,
        availability="model_navigator.converters.tf_trt:tftrt_unavailable",
    )
