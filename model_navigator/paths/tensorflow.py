"""TensorFlow 2 paths: the SavedModel exported from the user's Keras model / tf.Module and the
conversions that follow it (ONNX with tf2onnx, TF-TRT, and TensorRT from the ONNX)."""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.paths.base import PathSpec

_CUDA = (RuntimeProvider.CUDA,)


def tensorflow_paths() -> Tuple[PathSpec, ...]:
    """Every TensorFlow path, parents before children."""
    paths = [
        PathSpec("tf-savedmodel", Format.TF_SAVEDMODEL, "model.savedmodel",
                 "model_navigator.exporters.tensorflow:export_savedmodel",
                 requires_modules=("tensorflow",), extra="tensorflow"),
        PathSpec("onnx", Format.ONNX, "model.onnx", "model_navigator.converters.tf2onnx:convert_savedmodel_to_onnx",
                 parent="tf-savedmodel",
                 cpu_runtimes=(RuntimeProvider.CPU, RuntimeProvider.OPENVINO),  # OpenVINO when installed
                 gpu_runtimes=(RuntimeProvider.CUDA, RuntimeProvider.TRT),
                 requires_modules=("tf2onnx", "onnx"), extra="tensorflow"),
    ]
    for precision in (TensorRTPrecision.FP32, TensorRTPrecision.FP16):
        paths.append(
            PathSpec(f"tf-trt-{precision.value}", Format.TF_TRT, "model.savedmodel",
                     "model_navigator.converters.tf_trt:convert_savedmodel_to_tftrt", parent="tf-savedmodel",
                     availability="model_navigator.converters.tf_trt:tftrt_unavailable",
                     precision=precision, cpu_runtimes=(), gpu_runtimes=_CUDA, requires_modules=("tensorflow",),
                     requires_gpu=True, extra="tensorflow")
        )
    for precision in (TensorRTPrecision.FP32, TensorRTPrecision.FP16):
        paths.append(
            PathSpec(f"trt-{precision.value}", Format.TENSORRT, "model.plan",
                     "model_navigator.converters.tensorrt:convert_onnx_to_trt", parent="onnx", precision=precision,
                     cpu_runtimes=(), gpu_runtimes=(RuntimeProvider.TRT,), requires_modules=("tensorrt",),
                     availability="model_navigator.converters.tensorrt:tensorrt_unavailable",
                     requires_gpu=True, extra="tensorrt")
        )
    return tuple(paths)
