"""Reduced-precision CPU paths made from an ONNX path (issue 27): ONNX int8 dynamic (weights only),
ONNX int8 static QDQ (calibrated on dataloader samples held apart from the correctness samples), both
run by ONNX Runtime and OpenVINO; and the fp32 ONNX run by OpenVINO at bf16 inference precision, where
the CPU has bf16 instructions. Each is asked for through `target_precisions` and judged by its
accuracy budget (core/budget.py), not by the fp32 element-wise tolerance."""

from __future__ import annotations

from typing import Tuple

from model_navigator.core.enums import Format, RuntimeProvider, TensorRTPrecision
from model_navigator.paths.base import PathSpec

_PRODUCERS = "model_navigator.converters.onnx_precision"
_CPU_RUNTIMES = (RuntimeProvider.CPU, RuntimeProvider.OPENVINO)  # OpenVINO when installed


def _int8(key: str, producer: str, parent: str) -> PathSpec:
    """An int8 ONNX made from `parent` by `producer`, run by ONNX Runtime and OpenVINO on the CPU."""
    return PathSpec(
        key,
        Format.ONNX,
        "model.onnx",
        f"{_PRODUCERS}:{producer}",
        parent=parent,
        precision=TensorRTPrecision.INT8,
        cpu_runtimes=_CPU_RUNTIMES,
        gpu_runtimes=(),
        requires_modules=("onnxruntime", "onnx"),
    )


def reduced_precision_paths(parent: str = "onnx", suffix: str = "") -> Tuple[PathSpec, ...]:
    """`onnx-int8-dynamic`, `onnx-int8-static` and `onnx-bf16` (keys end in `suffix`) made from `parent`.
    CPU only: on a GPU target they are skipped (use target_device="cpu")."""
    return (
        _int8(f"onnx-int8-dynamic{suffix}", "quantize_int8_dynamic", parent),
        _int8(f"onnx-int8-static{suffix}", "quantize_int8_static", parent),
        # The parent's fp32 ONNX, compiled by OpenVINO with INFERENCE_PRECISION_HINT=bf16 (its flags say so).
        PathSpec(
            f"onnx-bf16{suffix}",
            Format.ONNX,
            "model.onnx",
            f"{_PRODUCERS}:bf16_onnx",
            parent=parent,
            precision=TensorRTPrecision.BF16,
            cpu_runtimes=(RuntimeProvider.OPENVINO,),
            gpu_runtimes=(),
            requires_modules=("openvino",),
            extra="openvino",
            availability=f"{_PRODUCERS}:bf16_unavailable",
        ),
    )
