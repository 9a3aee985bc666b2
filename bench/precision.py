"""Reduced-precision benchmark (issue 27): int8 and bf16 on the CPU, their speed and every error measure.

    PYTHONPATH=. python bench/precision.py --quick              # 6 models, fewer samples and rounds (5.5 min)
    PYTHONPATH=. python bench/precision.py                      # 9 models (16 min on 2 loaded cores with NNCF)
    PYTHONPATH=. python bench/precision.py --models cnn5 outlier_mlp   # a subset (merged into the results by name)
    PYTHONPATH=. python bench/precision.py --bf16-emulation-only       # add the torch bf16 rows to the last run

What it does, per model (real architectures from configs / the zoo's builders, random weights, no downloads)
    1. torch.onnx.export (TorchScript exporter, opset 17, dynamic batch and sequence axes, as the library's
       `onnx` path) -> fp32.onnx.
    2. onnxruntime.quantization: quant_pre_process (retried with skip_symbolic_shape=True where symbolic shape
       inference fails) -> pre.onnx; quantize_dynamic (defaults: every op ONNX Runtime quantizes dynamically,
       Conv included) and quantize_static (QDQ, MinMax, per-tensor, QInt8/QInt8), each also with
       reduce_range=True ("-rr": 7-bit weights, for CPUs without VNNI); static calibrated on CALIBRATION
       samples from other seeds than the evaluation samples. With nncf importable: nncf.quantize on the
       OpenVINO model (same samples), with OverflowFix FIRST_LAYER (its default) and ENABLE.
    3. Accuracy through the library's runners (OnnxRuntimeRunner, OpenVINORunner): ONNX Runtime on fp32 / each
       int8 file; the QDQ file with graph optimisations off (float emulation: the quantization error without
       int8 kernels); OpenVINO fp32 (hint f32), on the QDQ files, on the NNCF models; OpenVINO bf16 only where
       the CPU reports BF16 in OPTIMIZATION_CAPABILITIES (else skipped, with what OpenVINO compiles to when
       asked); torch in bfloat16 (an upper bound of bf16 error, accuracy only).
    4. Errors per output against torch fp32 on the held-out samples (batch 1): max abs, max rel (|a-b|/|b|,
       b != 0), max abs / max |ref|, relative L2 (||a-b|| / ||b||; worst sample, mean, pooled), cosine
       similarity (worst sample), top-1 agreement (class-score outputs: share of rows whose argmax agrees).
    5. Latency at batch 1 on sessions of the bench's own with --threads intra-op threads (1 by default: the
       cores are shared): warm-up, then rounds, each running every runtime `repeats` times in a rotated order
       (a burst of load from other jobs hits all alike); p50, p10, p90 over all calls; speedup = p50 of ONNX
       Runtime fp32 / p50 of the row.

Models
    Zoo builders (bench/model_zoo.py): bert (2 layers, hidden 32), gpt2, resnet18, mobilenetv3, vit; issue 27's
    two cases: bert_l4_h256 (BERT encoder, 4 layers, hidden 256, seq 128) and cnn5 (5 conv blocks, 112x112);
    mlp (Linear 64-256-256-10) and outlier_mlp: the same layers with one hidden channel's activation ~1000x the
    others (a large bias on that channel, the next layer's weights for it divided by 1000), the
    massive-activation pattern per-tensor int8 cannot represent.

Results: bench/results/precision.json and precision.md; the budgets drawn from them in
bench/results/precision_budget_evidence.md. Workspaces in bench/results/tmp/precision (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp" / "precision"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import model_zoo  # noqa: E402

CALIBRATION = 16
OPSET = 17
QUICK = {
    "eval": 8,
    "rounds": 5,
    "repeats": 8,
    "models": ("bert", "resnet18", "mlp", "outlier_mlp", "bert_l4_h256", "cnn5"),
}
FULL = {
    "eval": 24,
    "rounds": 12,
    "repeats": 12,
    "models": ("bert", "gpt2", "resnet18", "mobilenetv3", "vit", "mlp", "outlier_mlp", "bert_l4_h256", "cnn5"),
}
# name -> (runtime, file, OpenVINO precision hint); "-rr": quantized with reduce_range=True (7-bit weights).
PLAN: Dict[str, Tuple[str, str, Optional[str]]] = {
    "ort-fp32": ("ort", "fp32", None),
    "ort-int8-dynamic": ("ort", "dynamic", None),
    "ort-int8-dynamic-rr": ("ort", "dynamic-rr", None),
    "ort-int8-static": ("ort", "static", None),
    "ort-int8-static-rr": ("ort", "static-rr", None),
    "qdq-float-emulation": ("ort-noopt", "static", None),
    "ov-fp32": ("ov", "fp32", "f32"),
    "ov-int8-static": ("ov", "static", "f32"),
    "ov-int8-static-rr": ("ov", "static-rr", "f32"),
    "ov-bf16": ("ov", "bf16", "bf16"),
    "nncf-int8": ("ov", "nncf", "f32"),
    "nncf-int8-overflowfix": ("ov", "nncf-overflowfix", "f32"),
}
BF16_EMULATION = "bf16-torch-emulation"  # accuracy only, see bf16_emulation
UNTIMED = ("qdq-float-emulation",)  # accuracy only: the quantization error without the int8 kernels


# ------------------------------------------------------------------------------------------------
# Models: a Spec gives the torch model, a sample maker (seed -> dict of numpy at batch 1), the
# dynamic axes per input and which outputs are class scores.
# ------------------------------------------------------------------------------------------------


class Spec:
    """One benchmark model: torch module, sample maker, input axes, class-score outputs, description."""

    def __init__(
        self,
        model: Any,
        make: Callable[[int], Dict[str, np.ndarray]],
        axes: Dict[str, List[int]],
        class_outputs: Tuple[str, ...],
        description: str,
        keyword: bool = False,
    ) -> None:
        self.model, self.make, self.axes = model, make, axes
        self.class_outputs, self.description, self.keyword = class_outputs, description, keyword


def text_maker(vocab: int, length: int, token_types: bool) -> Callable[[int], Dict[str, np.ndarray]]:
    """Token ids at batch 1; odd seeds pad the last quarter (mask 0), as real batches do."""

    def make(seed: int) -> Dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        ids = rng.integers(4, vocab, (1, length), dtype=np.int64)
        mask = np.ones((1, length), dtype=np.int64)
        if seed % 2:
            mask[0, -length // 4 :] = 0
            ids[0, -length // 4 :] = 0
        item = {"input_ids": ids, "attention_mask": mask}
        if token_types:
            item["token_type_ids"] = (np.arange(length) >= length // 2).astype(np.int64)[None]
        return item

    return make


def array_maker(shape: Tuple[int, ...], name: str = "input") -> Callable[[int], Dict[str, np.ndarray]]:
    def make(seed: int) -> Dict[str, np.ndarray]:
        return {name: np.random.default_rng(seed).standard_normal((1, *shape)).astype(np.float32)}

    return make


def text_axes(names: Tuple[str, ...]) -> Dict[str, List[int]]:
    return {n: [0, 1] for n in names}


def build_zoo_text(name: str, token_types: bool) -> Spec:
    _, model, _, _ = model_zoo.MODELS[name][0]()
    names = ("input_ids", "attention_mask") + (("token_type_ids",) if token_types else ())
    return Spec(
        model,
        text_maker(500, 16, token_types),
        text_axes(names),
        (),
        model_zoo.MODELS[name][1] + ", seq 16",
        keyword=True,
    )


def build_zoo_image(name: str, size: int) -> Spec:
    _, model, _, _ = model_zoo.MODELS[name][0]()
    return Spec(model, array_maker((3, size, size)), {"input": [0]}, ("output",), model_zoo.MODELS[name][1])


def build_bert_l4_h256() -> Spec:
    import transformers

    model_zoo._seed()
    config = transformers.BertConfig(
        vocab_size=1000,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=128,
    )
    model = transformers.BertModel(config).eval()
    names = ("input_ids", "attention_mask", "token_type_ids")
    return Spec(
        model,
        text_maker(1000, 128, True),
        text_axes(names),
        (),
        "transformers BertModel, 4 layers, hidden 256, 4 heads, seq 128 (issue 27's BERT)",
        keyword=True,
    )


def build_cnn5() -> Spec:
    import torch
    from torch import nn

    model_zoo._seed()
    layers: List[nn.Module] = []
    cin = 3
    for cout in (8, 16, 32, 64, 64):
        layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))
    model_zoo._randomize_bn(model)
    torch.manual_seed(0)
    return Spec(
        model.eval(),
        array_maker((3, 112, 112)),
        {"input": [0]},
        ("output",),
        "CNN, 5 blocks Conv3x3-BN-ReLU-MaxPool (8-16-32-64-64 channels), 3x112x112 (issue 27's CNN)",
    )


def mlp_layers(outlier: bool) -> Any:
    """Linear(64,256)-ReLU-Linear(256,256)-ReLU-Linear(256,10); with `outlier`, hidden channel 7 carries a
    bias ~1000x the typical activation and the next layer reads it through weights / 1000."""
    import torch
    from torch import nn

    model_zoo._seed()
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    if outlier:
        with torch.no_grad():
            typical = float(model[1](model[0](torch.randn(64, 64))).abs().mean())
            model[0].bias[7] = 1000.0 * typical
            model[2].weight[:, 7] /= 1000.0
    return model.eval()


def build_mlp(outlier: bool) -> Spec:
    text = (
        "the MLP with hidden channel 7 at ~1000x the others (bias; next layer's weights / 1000): built to break int8"
        if outlier
        else "MLP classifier Linear 64-256-256-10 with ReLU"
    )
    return Spec(mlp_layers(outlier), array_maker((64,)), {"input": [0]}, ("output",), text)


BUILDERS: Dict[str, Callable[[], Spec]] = {
    "bert": lambda: build_zoo_text("bert", True),
    "gpt2": lambda: build_zoo_text("gpt2", False),
    "resnet18": lambda: build_zoo_image("resnet18", 64),
    "mobilenetv3": lambda: build_zoo_image("mobilenetv3", 64),
    "vit": lambda: build_zoo_image("vit", 32),
    "mlp": lambda: build_mlp(False),
    "outlier_mlp": lambda: build_mlp(True),
    "bert_l4_h256": build_bert_l4_h256,
    "cnn5": build_cnn5,
}


# ------------------------------------------------------------------------------------------------
# Export, quantization, torch reference
# ------------------------------------------------------------------------------------------------


def torch_outputs(spec: Spec, sample: Dict[str, np.ndarray]) -> Tuple[List[str], List[np.ndarray]]:
    """Run torch fp32 on one sample; output names from a ModelOutput's keys, else output / output__N."""
    import torch

    tensors = {k: torch.from_numpy(v) for k, v in sample.items()}
    with torch.no_grad():
        out = spec.model(**tensors) if spec.keyword else spec.model(*tensors.values())
    if hasattr(out, "to_tuple"):
        return list(out.keys()), [v.numpy() for v in out.to_tuple()]
    if isinstance(out, (tuple, list)):
        return [f"output__{i}" for i in range(len(out))], [v.numpy() for v in out]
    return ["output"], [out.numpy()]


def bf16_emulation(
    spec: Spec, samples: List[Dict[str, np.ndarray]], refs: List[List[np.ndarray]], names: List[str]
) -> Dict[str, Any]:
    """torch with weights and float inputs in bfloat16 (every op in bf16 on this CPU's emulation): an upper bound
    of what a bf16 runtime's error can be, since OpenVINO keeps some ops and its accumulators in f32."""
    import copy

    import torch

    model = copy.deepcopy(spec.model).to(torch.bfloat16)
    got = []
    for sample in samples:
        t = {
            k: torch.from_numpy(v).to(torch.bfloat16 if v.dtype == np.float32 else torch.int64)
            for k, v in sample.items()
        }
        with torch.no_grad():
            out = model(**t) if spec.keyword else model(*t.values())
        flat = out.to_tuple() if hasattr(out, "to_tuple") else out if isinstance(out, (tuple, list)) else (out,)
        got.append([o.float().numpy() for o in flat])
    errs = {
        n: measures([g[i] for g in got], [r[i] for r in refs], n in spec.class_outputs) for i, n in enumerate(names)
    }
    return {"status": "ok", "accuracy_only": True, "errors": errs}


def export_onnx(spec: Spec, sample: Dict[str, np.ndarray], output_names: List[str], path: Path) -> None:
    """torch.onnx.export (TorchScript exporter) with keyword inputs passed positionally by a wrapper."""
    import torch

    names = list(sample)

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = spec.model

        def forward(self, *tensors: Any) -> Any:
            out = self.inner(**dict(zip(names, tensors, strict=True))) if spec.keyword else self.inner(*tensors)
            return out.to_tuple() if hasattr(out, "to_tuple") else out

    batch2 = tuple(torch.from_numpy(np.concatenate([v, v])) for v in sample.values())
    axes = {n: {a: f"{n}_{a}" for a in spec.axes[n]} for n in names}
    axes.update({n: {0: f"{n}_0"} for n in output_names})
    torch.onnx.export(
        Positional().eval(),
        batch2,
        str(path),
        input_names=names,
        output_names=output_names,
        opset_version=OPSET,
        dynamo=False,
        dynamic_axes=axes,
    )


class Reader:
    """onnxruntime.quantization CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: List[Dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self.feeds, None)


def quantize(fp32: Path, calib: List[Dict[str, np.ndarray]], log: Dict[str, Any]) -> Dict[str, Optional[Path]]:
    """quant_pre_process, then quantize_dynamic and quantize_static (QDQ); a failure is recorded, not raised."""
    pre = fp32.with_name("pre.onnx")
    cwd = os.getcwd()
    os.chdir(fp32.parent)  # quant_pre_process and quantize_static leave temporary files in the working directory
    try:
        return _quantize(fp32, pre, calib, log)
    finally:
        os.chdir(cwd)


def _quantize(fp32: Path, pre: Path, calib: List[Dict[str, np.ndarray]], log: Dict[str, Any]) -> Dict[str, Any]:
    from onnxruntime.quantization import QuantFormat, quant_pre_process, quantize_dynamic, quantize_static

    try:
        quant_pre_process(str(fp32), str(pre))
    except Exception as e:  # noqa: BLE001 - symbolic shape inference fails on some graphs: retry without it
        log["pre_process_error"] = f"{type(e).__name__}: {e}"[:300]
        try:
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            log["pre_process"] = "skip_symbolic_shape=True"
        except Exception as e2:  # noqa: BLE001 - go on with the unprocessed model
            log["pre_process_error"] += f"; then {type(e2).__name__}: {e2}"[:300]
            pre = fp32
    made: Dict[str, Optional[Path]] = {"dynamic": None, "dynamic-rr": None, "static": None, "static-rr": None}
    for kind in made:
        out = fp32.with_name(f"int8_{kind}.onnx")
        start = time.perf_counter()
        try:
            if kind.startswith("dynamic"):
                quantize_dynamic(str(pre), str(out), reduce_range=kind.endswith("-rr"))
            else:
                quantize_static(
                    str(pre), str(out), Reader(calib), quant_format=QuantFormat.QDQ, reduce_range=kind.endswith("-rr")
                )
            made[kind] = out
            log[f"{kind}_s"] = round(time.perf_counter() - start, 2)
        except Exception as e:  # noqa: BLE001
            log[f"{kind}_error"] = f"{type(e).__name__}: {e}"[:300]
    log["static_settings"] = {
        "format": "QDQ",
        "calibrate_method": "MinMax",
        "per_channel": False,
        "activation_type": "QInt8",
        "weight_type": "QInt8",
        "calibration_samples": len(calib),
    }
    return made


# ------------------------------------------------------------------------------------------------
# Runtimes (the library's runners) and measures
# ------------------------------------------------------------------------------------------------


def metadata(sample: Dict[str, np.ndarray], output_names: List[str], refs: List[np.ndarray], spec: Spec) -> Any:
    from model_navigator.core.tensor import TensorMetadata

    inputs = [
        TensorMetadata(n, tuple(-1 if i in spec.axes[n] else d for i, d in enumerate(v.shape)), str(v.dtype))
        for n, v in sample.items()
    ]
    outputs = [TensorMetadata(n, (-1, *r.shape[1:]), str(r.dtype)) for n, r in zip(output_names, refs, strict=True)]
    return inputs, outputs


def bf16_probe(fp32: Path) -> Dict[str, Any]:
    """What this CPU offers OpenVINO, and what OpenVINO compiles to when asked for bf16."""
    from model_navigator.runners.openvino import import_openvino

    core = import_openvino().Core()
    caps = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    compiled = core.compile_model(core.read_model(str(fp32)), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    return {
        "optimization_capabilities": caps,
        "available": "BF16" in caps,
        "compiled_precision_when_bf16_requested": str(compiled.get_property("INFERENCE_PRECISION_HINT")),
    }


def nncf_model(fp32: Path, calib: List[Dict[str, np.ndarray]], overflow_fix: bool) -> Path:
    """nncf.quantize on the OpenVINO model (default preset, the same calibration samples), saved as IR;
    `overflow_fix`: OverflowFix.ENABLE (7-bit weights everywhere, NNCF's fix for CPUs without VNNI) in place of
    the default FIRST_LAYER."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    from model_navigator.runners.openvino import import_openvino

    ov = import_openvino()
    fix = OverflowFix.ENABLE if overflow_fix else OverflowFix.FIRST_LAYER
    quantized = nncf.quantize(
        ov.Core().read_model(str(fp32)),
        nncf.Dataset(calib),
        subset_size=len(calib),
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=fix),
    )
    out = fp32.with_name(f"nncf_int8{'_overflowfix' if overflow_fix else ''}.xml")
    ov.save_model(quantized, str(out))
    return out


def make_runners(files: Dict[str, Optional[Path]], meta: Any) -> Dict[str, Any]:
    """The library's runners for every planned runtime whose file exists (ORT without graph optimisations
    for the QDQ float emulation: the library's runner with its session swapped after loading)."""
    from model_navigator.runners.onnx import OnnxRuntimeRunner
    from model_navigator.runners.openvino import OpenVINORunner

    inputs, outputs = meta
    runners = {}
    for name, (kind, key, hint) in PLAN.items():
        path = files.get(key)
        if path is None:
            continue
        if kind.startswith("ort"):
            runners[name] = OnnxRuntimeRunner(path, inputs, outputs, name=name)
        else:
            config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
            runners[name] = OpenVINORunner(path, inputs, outputs, config=config, name=name)
    return runners


def activate(name: str, runner: Any) -> None:
    runner.activate()
    if PLAN[name][0] == "ort-noopt":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        runner._session = onnxruntime.InferenceSession(
            str(runner.model_path), options, providers=["CPUExecutionProvider"]
        )


def timer(name: str, path: Path, threads: int) -> Callable[[Dict[str, np.ndarray]], Any]:
    """A session of its own for timing, with `threads` intra-op threads (0: the runtime's default)."""
    kind, _, hint = PLAN[name]
    if kind == "ort":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda feed: session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
    from model_navigator.runners.openvino import import_openvino

    config: Dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    request = import_openvino().Core().compile_model(str(path), "CPU", config).create_infer_request()
    names = [next(iter(port.get_names())) for port in request.model_inputs]
    return lambda feed: request.infer({n: feed[n] for n in names}, share_inputs=True)


def measures(actual: List[np.ndarray], expected: List[np.ndarray], classes: bool) -> Dict[str, Any]:
    """Every error measure of one output over the evaluation samples (one array per sample)."""
    diffs = [a.astype(np.float64) - b.astype(np.float64) for a, b in zip(actual, expected, strict=True)]
    ref = np.concatenate([b.ravel() for b in expected]).astype(np.float64)
    diff = np.concatenate([d.ravel() for d in diffs])
    nonzero = ref != 0
    rel_l2 = [float(np.linalg.norm(d) / max(np.linalg.norm(b), 1e-30)) for d, b in zip(diffs, expected, strict=True)]
    cosines = [
        float(np.dot(a.ravel(), b.ravel()) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))
        for a, b in ((a.astype(np.float64), b.astype(np.float64)) for a, b in zip(actual, expected, strict=True))
    ]
    out = {
        "max_abs": float(np.abs(diff).max()),
        "max_rel": float((np.abs(diff[nonzero]) / np.abs(ref[nonzero])).max()) if nonzero.any() else 0.0,
        "max_abs_over_scale": float(np.abs(diff).max() / max(np.abs(ref).max(), 1e-30)),
        "rel_l2_worst": max(rel_l2),
        "rel_l2_mean": float(np.mean(rel_l2)),
        "rel_l2_pooled": float(np.linalg.norm(diff) / max(np.linalg.norm(ref), 1e-30)),
        "cosine_worst": min(cosines),
        "ref_max_abs": float(np.abs(ref).max()),
    }
    if classes:
        agree = [np.argmax(a, axis=-1) == np.argmax(b, axis=-1) for a, b in zip(actual, expected, strict=True)]
        out["top1_agreement"] = float(np.mean(np.concatenate([x.ravel() for x in agree])))
    return out


def errors(
    runner: Any,
    samples: List[Dict[str, np.ndarray]],
    refs: List[List[np.ndarray]],
    names: List[str],
    classes: Tuple[str, ...],
) -> Dict[str, Dict[str, Any]]:
    got = [runner.infer(s) for s in samples]
    return {n: measures([g[n] for g in got], [r[i] for r in refs], n in classes) for i, n in enumerate(names)}


def latency(
    timers: Dict[str, Callable[[Any], Any]], feed: Dict[str, np.ndarray], rounds: int, repeats: int
) -> Dict[str, Any]:
    """Interleaved timing: each round runs every runtime `repeats` times, the order rotating per round."""
    names = list(timers)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for n in names:
        for _ in range(5):
            timers[n](feed)
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            infer = timers[n]
            for _ in range(repeats):
                start = time.perf_counter()
                infer(feed)
                times[n].append(time.perf_counter() - start)
    return {
        n: {
            "p50_ms": 1e3 * float(np.median(t)),
            "p10_ms": 1e3 * float(np.percentile(t, 10)),
            "p90_ms": 1e3 * float(np.percentile(t, 90)),
            "calls": len(t),
        }
        for n, t in times.items()
    }


# ------------------------------------------------------------------------------------------------
# One model, the whole run, the tables
# ------------------------------------------------------------------------------------------------


def prepare(name: str, spec: Spec, n_eval: int, rec: Dict[str, Any]) -> Tuple[Any, ...]:
    """Samples (evaluation and calibration from disjoint seeds), torch references, fp32 and int8 ONNX files."""
    work = TMP / name
    work.mkdir(parents=True, exist_ok=True)
    samples = [spec.make(1000 + i) for i in range(n_eval)]
    calib = [spec.make(5000 + i) for i in range(CALIBRATION)]
    names, _ = torch_outputs(spec, samples[0])
    refs = [torch_outputs(spec, s)[1] for s in samples]
    fp32 = work / "fp32.onnx"
    start = time.perf_counter()
    export_onnx(spec, samples[0], names, fp32)
    rec["export_s"] = round(time.perf_counter() - start, 2)
    rec["quantization"] = {}
    files: Dict[str, Optional[Path]] = {"fp32": fp32, **quantize(fp32, calib, rec["quantization"])}
    for fix in (False, True) if nncf_available() else ():
        key = "nncf-overflowfix" if fix else "nncf"
        try:
            files[key] = nncf_model(fp32, calib, fix)
        except Exception as e:  # noqa: BLE001
            rec["quantization"][f"{key}_error"] = f"{type(e).__name__}: {e}"[:300]
    rec["file_mb"] = {k: round(p.stat().st_size / 2**20, 3) for k, p in files.items() if p is not None}
    return samples, refs, names, files


def run_model(name: str, cfg: Dict[str, Any], bf16: Dict[str, Any]) -> Dict[str, Any]:
    start = time.perf_counter()
    spec = BUILDERS[name]()
    rec: Dict[str, Any] = {"description": spec.description, "load_average_at_start": os.getloadavg()}
    samples, refs, names, files = prepare(name, spec, cfg["eval"], rec)
    files["bf16"] = files["fp32"] if bf16["available"] else None
    rec["outputs"], rec["class_outputs"] = names, list(spec.class_outputs)
    runners = make_runners(files, metadata(samples[0], names, refs[0], spec))
    rec["runtimes"] = {rt: {"status": "skipped", "reason": skip_reason(rt, rec, bf16)} for rt in PLAN}
    timers = {}
    for rt, runner in runners.items():
        try:
            activate(rt, runner)
            rec["runtimes"][rt] = {"status": "ok", "errors": errors(runner, samples, refs, names, spec.class_outputs)}
            runner.deactivate()
            if rt not in UNTIMED:
                timers[rt] = timer(rt, files[PLAN[rt][1]], cfg["threads"])  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - a failing runtime is recorded and the run goes on
            rec["runtimes"][rt] = {"status": "failed", "reason": f"{type(e).__name__}: {e}"[:300]}
    rec["runtimes"][BF16_EMULATION] = bf16_emulation(spec, samples, refs, names)
    timing = latency(timers, samples[0], cfg["rounds"], cfg["repeats"])
    base = timing.get("ort-fp32", {}).get("p50_ms")
    for rt, t in timing.items():
        rec["runtimes"][rt]["latency"] = {**t, "speedup_vs_ort_fp32": base / t["p50_ms"] if base else None}
    rec["load_average_at_end"] = os.getloadavg()
    rec["wall_s"] = round(time.perf_counter() - start, 1)
    return rec


def skip_reason(rt: str, rec: Dict[str, Any], bf16: Dict[str, Any]) -> str:
    if rt == "ov-bf16":
        return (
            f"not available on this CPU: OpenVINO reports OPTIMIZATION_CAPABILITIES "
            f"{bf16['optimization_capabilities']} (no BF16); asked for bf16 it compiles to "
            f"{bf16['compiled_precision_when_bf16_requested']}, so a 'bf16' result here would be fp32"
        )
    if rt.startswith("nncf"):
        return rec["quantization"].get(f"{PLAN[rt][1]}_error", "nncf is not installed (pip install nncf)")
    key = PLAN[rt][1]
    return rec["quantization"].get(f"{key}_error", rec["quantization"].get("pre_process_error", "not made"))


def nncf_available() -> bool:
    try:
        import nncf  # noqa: F401
    except ImportError:
        return False
    return True


def environment() -> Dict[str, Any]:
    import importlib.metadata as metadata

    versions = {}
    for dist in ("torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = {f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx"))}
                break
    return {
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "cpu_flags": sorted(flags),
        "python": sys.version.split()[0],
        "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }


def fmt(value: Optional[float], spec: str = ".1e") -> str:
    return "-" if value is None else format(value, spec)


def worst(errs: Dict[str, Dict[str, Any]], key: str) -> Optional[float]:
    """The worst value of one measure over a runtime's outputs (largest error, smallest cosine/agreement)."""
    values = [e[key] for e in errs.values() if key in e]
    if not values:
        return None
    return min(values) if key in ("cosine_worst", "top1_agreement") else max(values)


ROW_KEYS = (
    ("max_abs", ".1e"),
    ("max_abs_over_scale", ".1e"),
    ("max_rel", ".1e"),
    ("rel_l2_worst", ".1e"),
    ("cosine_worst", ".6f"),
    ("top1_agreement", ".3f"),
)


def table(records: Dict[str, Dict[str, Any]]) -> str:
    head = (
        "| model | runtime, precision | p50 ms (p10-p90) | speedup vs ORT fp32 | max abs | max abs / max abs ref | "
        "max rel | rel L2 (worst sample) | cosine (worst sample) | top-1 agreement |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model, rec in records.items():
        if "error" in rec:
            lines.append(f"| {model} | failed: {rec['error'][:120]} |" + " |" * 8)
            continue
        for i, (rt, r) in enumerate(rec["runtimes"].items()):
            label = model if i == 0 else ""
            if r["status"] != "ok":
                reason = r["reason"] if rt != "ov-bf16" else "not available on this CPU (no BF16 capability)"
                lines.append(f"| {label} | {rt}: {r['status']} ({reason[:100]}) |" + " |" * 8)
                continue
            lat = r.get("latency", {})
            cells = [fmt(worst(r["errors"], k), s) for k, s in ROW_KEYS]
            speed = lat.get("speedup_vs_ort_fp32")
            lines.append(
                f"| {label} | {rt} | {fmt(lat.get('p50_ms'), '.3f')} ({fmt(lat.get('p10_ms'), '.3f')}-"
                f"{fmt(lat.get('p90_ms'), '.3f')}) | {fmt(speed, '.2f')}x | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def write_results(records: Dict[str, Dict[str, Any]], meta: Dict[str, Any]) -> None:
    """precision.json (everything; models of earlier runs kept unless rerun) and precision.md (the table)."""
    path = RESULTS / "precision.json"
    old = json.loads(path.read_text()).get("models", {}) if path.exists() else {}
    models = {**old, **records}
    (RESULTS / "precision.json").write_text(json.dumps({**meta, "models": models}, indent=1, default=str) + "\n")
    env = meta["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    bf16 = meta["bf16"]
    text = [
        "# Reduced precision on the CPU (bench/precision.py)",
        "",
        f"{meta['date']}; {env['machine']}, CPU flags {', '.join(env['cpu_flags'])}; {versions}.",
        "",
        f"Mode {meta['mode']}: {meta['config']['eval']} held-out evaluation samples at batch 1, {CALIBRATION} "
        f"calibration samples (other seeds) for static int8 (QDQ, MinMax, per-tensor, QInt8 activations and "
        f"weights); latency: {meta['config']['rounds']} interleaved rounds x {meta['config']['repeats']} calls per "
        f"runtime after 5 warm-up calls, p50 and p10-p90 over all calls, on sessions with "
        f"{meta['config']['threads'] or 'the default number of'} intra-op thread(s). The 2 cores were shared with "
        f"other jobs "
        f"(load average {env['load_average_at_start'][0]:.1f} at start, {meta['load_average_at_end'][0]:.1f} at "
        f"end): latencies are indicative, ratios within a model are more trustworthy than absolute numbers.",
        "",
        f"OpenVINO bf16: CPU OPTIMIZATION_CAPABILITIES {bf16['optimization_capabilities']}; asked for bf16, "
        f"OpenVINO compiles to {bf16['compiled_precision_when_bf16_requested']}"
        + (
            " (bf16 is available)."
            if bf16["available"]
            else " — bf16 is not available on this CPU and is not reported (a 'bf16' row would be an fp32 run)."
        ),
        "NNCF: "
        + (
            f"nncf {meta['environment']['versions'].get('nncf')} (imported from outside the project's venv for "
            "this run)."
            if meta["nncf_available"]
            else "not installed in the project's venv (pip install nncf); rows skipped."
        ),
        "",
        "Errors are against torch fp32 and, per measure, the worst over the model's outputs (every output's "
        "measures are in precision.json). max rel is |a-b|/|b| over b != 0 (huge wherever the reference is near "
        "0); rel L2 = ||a-b||/||b|| and cosine per sample, worst sample shown; top-1 agreement only for "
        "class-score outputs.",
        "",
        "Rows: `-rr` = quantized with reduce_range=True (7-bit weights, ONNX Runtime's advice for CPUs without "
        "VNNI, where its u8s8 int8 kernels can saturate 16-bit intermediate sums); `qdq-float-emulation` = the "
        "same QDQ model on ONNX Runtime with graph optimisations off, so QuantizeLinear/DequantizeLinear run as "
        "float ops: the quantization error alone, without the int8 kernels (accuracy only, not timed); "
        "`nncf-int8`: nncf.quantize (default preset, OverflowFix.FIRST_LAYER) on the OpenVINO model, "
        "`-overflowfix`: OverflowFix.ENABLE (7-bit weights in every layer); `bf16-torch-emulation`: the torch "
        "model in bfloat16 (every op rounded to bf16): an upper bound of a bf16 runtime's error, accuracy only, "
        "the only bf16 evidence this CPU can give (added by `--bf16-emulation-only` to a run without it).",
        "",
        table(models),
        "",
        f"Run time of this invocation: {meta['wall_s']:.0f} s.",
        "",
    ]
    (RESULTS / "precision.md").write_text("\n".join(text))


def add_bf16_emulation(models: Optional[List[str]]) -> None:
    """The bf16-torch-emulation row for models of an earlier run, with that run's samples (same seeds)."""
    data = json.loads((RESULTS / "precision.json").read_text())
    records = data.pop("models")
    for name in models or list(records):
        if "runtimes" not in records.get(name, {}):
            continue
        spec = BUILDERS[name]()
        samples = [spec.make(1000 + i) for i in range(data["config"]["eval"])]
        outs = [torch_outputs(spec, x) for x in samples]
        rt = records[name]["runtimes"]
        rt[BF16_EMULATION] = bf16_emulation(spec, samples, [o[1] for o in outs], outs[0][0])
        print(f"[precision] {name}: bf16 emulation rel L2 {worst(rt[BF16_EMULATION]['errors'], 'rel_l2_worst'):.1e}")
    write_results(records, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer models, samples and rounds")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads of the timed sessions (0: runtime "
        "default); 1 by default because the 2 cores are shared with other jobs",
    )
    parser.add_argument(
        "--bf16-emulation-only",
        action="store_true",
        help="add the bf16-torch-emulation row to the models already in precision.json (no export, no timing)",
    )
    parser.add_argument("--models", nargs="+", choices=sorted(BUILDERS), help="a subset (results merged by name)")
    args = parser.parse_args()
    cfg = dict(QUICK if args.quick else FULL, threads=args.threads)
    start = time.perf_counter()
    meta: Dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "config": cfg,
        "environment": environment(),
        "nncf_available": nncf_available(),
    }
    if args.bf16_emulation_only:
        add_bf16_emulation(args.models)
        return
    records: Dict[str, Dict[str, Any]] = {}
    for name in args.models or cfg["models"]:
        print(f"[precision] {name} ...", flush=True)
        try:
            if "bf16" not in meta:
                spec = build_mlp(False)
                TMP.mkdir(parents=True, exist_ok=True)
                probe = TMP / "probe.onnx"
                sample = spec.make(0)
                export_onnx(spec, sample, torch_outputs(spec, sample)[0], probe)
                meta["bf16"] = bf16_probe(probe)
            records[name] = run_model(name, cfg, meta["bf16"])
        except Exception as e:  # noqa: BLE001 - one model's failure is recorded, the others still run
            records[name] = {"error": f"{type(e).__name__}: {e}"[:500], "traceback": traceback.format_exc()[-2000:]}
        print(f"[precision] {name}: {records[name].get('wall_s', 'failed')} s", flush=True)
    meta["load_average_at_end"] = os.getloadavg()
    meta["wall_s"] = time.perf_counter() - start
    write_results(records, meta)
    print(table(records))


if __name__ == "__main__":
    main()
