"""Producers of the reduced-precision CPU paths (paths/cpu_precision.py) from an fp32 ONNX artifact:
int8 dynamic and int8 static QDQ with `onnxruntime.quantization`, and the bf16 path (the fp32 ONNX,
run by OpenVINO with INFERENCE_PRECISION_HINT=bf16) with the check that the CPU has bf16."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.diskspace import written_in_staging
from model_navigator.core.samples import CALIBRATION_SET, load_sample_dir
from model_navigator.paths.base import PathSpec, ProduceRequest

CALIBRATION_METHOD = "MinMax"
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bfloat16
# CPUs with int8 dot-product instructions. Without them ONNX Runtime's and OpenVINO's u8 x s8 kernels add
# pairs of products in 16 bits and saturate with full 8-bit weights (bench/results/precision_budget_evidence.md:
# an MLP's int8 rel L2 error 0.32 against 0.027 with 7-bit weights): there, weights are quantized to 7 bits.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_reduce_range() -> Tuple[bool, str]:
    """(quantize weights to 7 bits?, why): yes where the CPU has no int8 dot-product instructions (or
    they cannot be read), as ONNX Runtime advises for such CPUs."""
    flags = cpu_flags()
    if flags is None:
        return True, "CPU flags unreadable: 7-bit weights (safe on every CPU)"
    found = [f for f in VNNI_FLAGS if f in flags]
    if found:
        return False, f"CPU has {', '.join(found)}: 8-bit weights"
    return True, f"CPU has none of {', '.join(VNNI_FLAGS)}: 7-bit weights so that int8 kernels do not saturate"


# What ONNX Runtime's symbolic shape inference leaves in the current folder when it gives up.
_STRAYS = ("sym_shape_infer_temp.onnx", "sym_shape_infer_temp.onnx.data")


@contextlib.contextmanager
def _no_strays() -> Iterator[None]:
    """Remove the files a failed symbolic shape inference writes into the current folder (the user's, in
    process), only those it created: never a file that was there before."""
    before = {name for name in _STRAYS if os.path.lexists(name)}
    try:
        yield
    finally:
        for name in set(_STRAYS) - before:
            with contextlib.suppress(OSError):
                os.remove(name)


@contextlib.contextmanager
def _preprocessed(model_path: Path) -> Iterator[Tuple[Path, str]]:
    """The model after `quant_pre_process` (shape inference and graph optimisation, as ONNX Runtime
    advises before quantizing), and what was done; the model as it is where pre-processing fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="nav-quant-") as tmp:
        out = Path(tmp) / "preprocessed.onnx"
        notes = []
        for skip_symbolic in (False, True):
            try:
                with _no_strays():
                    quant_pre_process(str(model_path), str(out), skip_symbolic_shape=skip_symbolic)
                yield out, "quant_pre_process" + (" (without symbolic shape inference)" if skip_symbolic else "")
                return
            except Exception as e:  # a graph shape inference cannot take: quantize it as it is
                notes.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200])
        yield model_path, f"not pre-processed ({'; '.join(notes)})"


def quantize_int8_dynamic(request: ProduceRequest) -> Dict[str, Any]:
    """`onnx-int8-dynamic`: int8 weights, activations quantized per call (quantize_dynamic); pays on
    MatMul-heavy models, can be slower than fp32 on convolutions."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    assert request.parent_path is not None
    reduce_range, why = int8_reduce_range()
    with _preprocessed(request.parent_path) as (model, prepared), written_in_staging(request.out_path) as staged:
        quantize_dynamic(str(model), str(staged), weight_type=QuantType.QInt8, reduce_range=reduce_range)
    return {
        "quantization": "int8 dynamic",
        "weight_type": "int8",
        "reduce_range": reduce_range,
        "reduce_range_reason": why,
        "activations": "quantized per call",
        "pre_process": prepared,
    }


class SampleReader:
    """onnxruntime's CalibrationDataReader over saved samples, fed by the model's input names."""

    def __init__(self, samples: Sequence[Dict[str, np.ndarray]], input_names: Sequence[str]):
        self._feeds = [{name: sample[name] for name in input_names} for sample in samples]
        self._next = iter(self._feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._next, None)

    def rewind(self) -> None:
        self._next = iter(self._feeds)


def calibration_samples(workspace: Any) -> List[Dict[str, np.ndarray]]:
    """The calibration samples of a workspace, or a clear error when the export held none apart."""
    folder = workspace.input_dir(CALIBRATION_SET)
    samples = load_sample_dir(folder) if folder.is_dir() else []
    if not samples:
        raise RuntimeError(
            "static int8 needs calibration samples held apart from the correctness samples, and the "
            "dataloader had none left: give the dataloader more samples than `sample_count` (or lower "
            "`sample_count`)"
        )
    return samples


def quantize_int8_static(request: ProduceRequest) -> Dict[str, Any]:
    """`onnx-int8-static`: weights and activations int8 in QDQ form, activation ranges calibrated
    (MinMax) on the workspace's calibration samples (never the correctness samples)."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    assert request.parent_path is not None
    samples = calibration_samples(request.workspace)
    reduce_range, why = int8_reduce_range()
    with _preprocessed(request.parent_path) as (model, prepared), written_in_staging(request.out_path) as staged:
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        missing = sorted(set(names) - set(samples[0]))
        if missing:
            raise RuntimeError(f"the calibration samples lack inputs {missing} of the ONNX model")
        del session
        quantize_static(
            str(model),
            str(staged),
            SampleReader(samples, names),
            quant_format=QuantFormat.QDQ,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=reduce_range,
        )
    return {
        "quantization": "int8 static",
        "quant_format": "QDQ",
        "weight_type": "int8",
        "activation_type": "int8",
        "calibration_method": CALIBRATION_METHOD,
        "calibration_samples": len(samples),
        "reduce_range": reduce_range,
        "reduce_range_reason": why,
        "pre_process": prepared,
    }


def bf16_onnx(request: ProduceRequest) -> Dict[str, Any]:
    """`onnx-bf16`: the parent's fp32 ONNX (hard-linked where possible, else copied, with its external
    data), which the OpenVINO runner compiles with INFERENCE_PRECISION_HINT=bf16."""
    assert request.parent_path is not None
    source = request.parent_path
    with written_in_staging(request.out_path) as staged:
        for entry in sorted(source.parent.iterdir()):
            if entry == source or entry.name.startswith(source.name + ".data") or entry.suffix == ".data":
                target = staged if entry == source else staged.with_name(entry.name)
                try:
                    os.link(entry, target)
                except OSError:
                    shutil.copy2(entry, target)
    return {"inference_precision_hint": "bf16", "made_from": request.spec.parent}


def cpu_flags() -> Optional[set]:
    """The CPU's feature flags from /proc/cpuinfo (None where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}


def openvino_capabilities() -> Tuple[str, ...]:
    """OpenVINO's CPU OPTIMIZATION_CAPABILITIES (FP32, INT8, BF16, ...)."""
    from model_navigator.runners.openvino import import_openvino

    return tuple(import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def bf16_reason(flags: Optional[set], capabilities: Sequence[str]) -> Optional[str]:
    """Why bf16 cannot run on this CPU, or None: it runs where /proc/cpuinfo lists avx512_bf16 or
    amx_bf16, or (without /proc/cpuinfo) OpenVINO's CPU capabilities include BF16."""
    if flags is not None and any(flag in flags for flag in BF16_FLAGS):
        return None
    if flags is None and "BF16" in capabilities:
        return None
    found = "no /proc/cpuinfo" if flags is None else f"neither {' nor '.join(BF16_FLAGS)} in /proc/cpuinfo"
    return (
        f"the CPU has no bf16 instructions ({found}; OpenVINO's CPU capabilities: "
        f"{', '.join(capabilities) or 'unknown'}); OpenVINO would run it at fp32"
    )


def bf16_unavailable(spec: PathSpec) -> Optional[str]:
    """The bf16 path's availability check (PathSpec.availability)."""
    return bf16_reason(cpu_flags(), openvino_capabilities())
