"""TensorFlow 2 paths: the SavedModel exported from the user's Keras model / tf.Module and the
conversions that follow it (ONNX with tf2onnx, TF-TRT, and TensorRT from the ONNX)."""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.paths.base import PathSpec
from model_navigator.paths.cpu_precision import reduced_precision_paths
from model_navigator.paths.gpu import tensorrt_plan_path, tf_trt_path


def tensorflow_paths() -> Tuple[PathSpec, ...]:
    """Every TensorFlow path, parents before children."""
    paths = [
        PathSpec(
            "tf-savedmodel",
            Format.TF_SAVEDMODEL,
            "model.savedmodel",
            "model_navigator.exporters.tensorflow:export_savedmodel",
            requires_modules=("tensorflow",),
            extra="tensorflow",
        ),
        PathSpec(
            "onnx",
            Format.ONNX,
            "model.onnx",
            "model_navigator.converters.tf2onnx:convert_savedmodel_to_onnx",
            parent="tf-savedmodel",
            cpu_runtimes=(RuntimeProvider.CPU, RuntimeProvider.OPENVINO),  # OpenVINO when installed
            gpu_runtimes=(RuntimeProvider.CUDA, RuntimeProvider.TRT),
            requires_modules=("tf2onnx", "onnx"),
            extra="tensorflow",
        ),
    ]
    precisions = (TensorRTPrecision.FP32, TensorRTPrecision.FP16)
    paths += [tf_trt_path(precision, parent="tf-savedmodel", extra="tensorflow") for precision in precisions]
    paths += [tensorrt_plan_path(precision) for precision in precisions]
    paths += reduced_precision_paths()
    return tuple(paths)
