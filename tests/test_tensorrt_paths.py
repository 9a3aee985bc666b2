"""The GPU family without a GPU: profile shapes, precisions, int64 casting, command lines, skips."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional

import numpy as np
import pytest
import torch

import model_navigator as nav
from model_navigator.converters.tensorrt import (
    cast_int64_inputs_to_int32,
    engine_batch_sizes,
    onnx_static_dims,
    static_axes_overruling,
    polygraphy_command,
    profile_shapes,
)
from model_navigator.converters.torch_trt import enabled_precisions
from model_navigator.core.config import ExportConfig, ProfilerConfig
from model_navigator.core.enums import Format, Framework, TensorRTPrecision, TensorRTPrecisionMode
from model_navigator.core.serialization import to_plain


def test_profile_shapes_from_samples_span_every_axis():
    shapes = {"ids": [(1, 7), (1, 3), (1, 12)], "image": [(1, 3, 8, 8)] * 3}
    result = profile_shapes(shapes, batch_dim=0, max_batch=16)
    assert result["ids"] == ((1, 3), (16, 12), (16, 12))
    assert result["image"] == ((1, 3, 8, 8), (16, 3, 8, 8), (16, 3, 8, 8))


def test_trt_dynamic_axes_override_sample_shapes():
    result = profile_shapes(
        {"ids": [(1, 7), (1, 3)]}, batch_dim=0, max_batch=4, trt_dynamic_axes={"ids": {0: (1, 8, 32), 1: (1, 64, 128)}}
    )
    assert result["ids"] == ((1, 1), (8, 64), (32, 128))


def test_static_onnx_dims_are_kept_in_the_profile(tmp_path):
    """An ONNX model that fixes an axis (here the batch, exported without dynamic_axes) gets a
    profile equal to it on that axis: TensorRT rejects a profile that disagrees with a static dim."""
    model = torch.nn.Linear(5, 3).eval()
    static, dynamic = tmp_path / "static.onnx", tmp_path / "dynamic.onnx"
    torch.onnx.export(model, (torch.randn(4, 5),), str(static), input_names=["x"], dynamo=False)
    torch.onnx.export(
        model, (torch.randn(4, 5),), str(dynamic), input_names=["x"], dynamo=False, dynamic_axes={"x": {0: "batch"}}
    )
    assert onnx_static_dims(static) == {"x": [4, 5]}
    assert onnx_static_dims(dynamic) == {"x": [None, 5]}
    samples = {"x": [(1, 5)] * 3}
    assert profile_shapes(samples, 0, 16, static_dims=onnx_static_dims(static))["x"] == ((4, 5), (4, 5), (4, 5))
    assert profile_shapes(samples, 0, 16, static_dims=onnx_static_dims(dynamic))["x"] == ((1, 5), (16, 5), (16, 5))
    user_axes = {"x": {0: (1, 8, 32)}}
    assert static_axes_overruling(user_axes, onnx_static_dims(static)) == {"x": {0: 4}}  # recorded in flags
    assert static_axes_overruling(user_axes, onnx_static_dims(dynamic)) == {}


def test_profile_shapes_without_batch_dim_keep_sample_sizes():
    assert profile_shapes({"x": [(5, 2), (9, 2)]}, batch_dim=None, max_batch=8)["x"] == ((5, 2), (9, 2), (9, 2))


def test_engine_batch_sizes_cover_every_later_step():
    """The engines must take every batch the correctness check and the profiler will send: with a
    dataloader batch of 1 the check rebuilds batches of 2, so 2 is in even then."""
    from model_navigator.core.status import NavigatorStatus

    def sizes(batch_size, batch_dim=0, **profiler):
        config = ExportConfig(
            framework=Framework.TORCH,
            model_name="m",
            target_formats=(Format.ONNX,),
            batch_dim=batch_dim,
            profiler_config=ProfilerConfig(**profiler),
        )
        status = NavigatorStatus(
            model_name="m", framework="torch", config=config.to_dict(), dataloader={"batch_size": batch_size}
        )
        return engine_batch_sizes(config, status)

    assert sizes(1) == [1, 2]
    assert sizes(4) == [1, 4]
    assert sizes(4, batch_sizes=(1, 8, 32)) == [1, 4, 8, 32]
    assert sizes(4, max_batch_size=20) == [1, 2, 4, 8, 16, 20]
    assert sizes(4, batch_dim=None) == [1]


def test_polygraphy_command_line():
    shapes = {"input": ((1, 5), (16, 5), (16, 5))}
    command = polygraphy_command("onnx/model.onnx", "trt-fp16/model.plan", shapes, TensorRTPrecision.FP16, 2**30)
    assert command[:7] == [
        "polygraphy",
        "convert",
        "onnx/model.onnx",
        "--convert-to",
        "trt",
        "-o",
        "trt-fp16/model.plan",
    ]
    text = " ".join(command)
    assert "--trt-min-shapes input:[1,5]" in text and "--trt-opt-shapes input:[16,5]" in text
    assert "--trt-max-shapes input:[16,5]" in text and "--fp16" in text and "workspace:1073741824" in text
    fp32 = polygraphy_command("a.onnx", "b.plan", shapes, TensorRTPrecision.FP32, 2**30)
    assert "--fp16" not in fp32


@pytest.mark.parametrize(
    "precision, mode, expected",
    [
        (TensorRTPrecision.FP16, TensorRTPrecisionMode.HIERARCHY, ["fp32", "fp16"]),
        (TensorRTPrecision.FP16, TensorRTPrecisionMode.SINGLE, ["fp16"]),
        (TensorRTPrecision.FP32, TensorRTPrecisionMode.HIERARCHY, ["fp32"]),
    ],
)
def test_torch_trt_enabled_precisions(precision, mode, expected):
    assert enabled_precisions(precision, mode) == expected


def test_int64_inputs_cast_to_int32_keep_results(tmp_path):
    """The rewritten ONNX model takes int32 ids and gives the same outputs as the int64 original."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(20, 4), torch.nn.Flatten()).eval()
    ids = torch.randint(0, 20, (2, 6))
    original = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (ids,),
        str(original),
        input_names=["ids"],
        output_names=["out"],
        dynamo=False,
        dynamic_axes={"ids": {0: "b"}},
    )
    cast = tmp_path / "cast.onnx"
    cast_int64_inputs_to_int32(original, cast, ["ids"])
    a = ort.InferenceSession(str(original)).run(None, {"ids": ids.numpy()})[0]
    session = ort.InferenceSession(str(cast))
    assert session.get_inputs()[0].type == "tensor(int32)"
    b = session.run(None, {"ids": ids.numpy().astype(np.int32)})[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_gpu_paths_are_skipped_with_a_reason_and_nothing_imports_tensorrt(tmp_path):
    code = f"""
import sys, torch, model_navigator as nav
d = nav.torch.export(torch.nn.Linear(3, 2), [torch.randn(2, 3)], workdir={str(tmp_path / "w")!r},
                     run_profiling=False, verbose=False)
for key in ("trt-fp32", "trt-fp16", "torch-trt-script-fp16", "torch-trt-trace-fp32"):
    p = d.status.paths[key]
    print(key, p.status.value, p.reason)
print("imported", [m for m in ("tensorrt", "torch_tensorrt") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    have_trt = all(__import__("importlib").util.find_spec(m) for m in ("tensorrt", "torch_tensorrt"))
    for line in lines[:4]:
        assert " skipped " in line
        assert "not installed" in line or "needs a CUDA GPU" in line
        if not have_trt:
            assert "pip install 'model-navigator[tensorrt]'" in line
    assert lines[-1] == "imported []"
    assert "warning" not in out.stderr.lower()  # no warning storm


@pytest.mark.slow
def test_installed_gpu_libraries_are_not_imported_for_a_cpu_export(tmp_path):
    """With tensorrt and torch_tensorrt installed (here: stand-ins that fail the process if
    imported), a CPU export finds them, skips their paths for the missing GPU, and imports neither;
    a torch export imports no TensorFlow either."""
    stubs = tmp_path / "stubs"
    for name in ("tensorrt", "torch_tensorrt"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(f"raise SystemExit('{name} was imported')\n")
    code = f"""
import sys, torch, model_navigator as nav
d = nav.torch.export(torch.nn.Linear(3, 2), [torch.randn(2, 3)], workdir={str(tmp_path / "w")!r},
                     run_profiling=False, verbose=False, target_device="cpu")
for key in ("trt-fp32", "trt-fp16", "torch-trt-script-fp16", "torch-trt-trace-fp32"):
    p = d.status.paths[key]
    print(key, p.status.value, p.reason)
print("imported", [m for m in ("tensorrt", "torch_tensorrt", "tensorflow") if m in sys.modules])
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    for line in lines[:4]:
        assert " skipped needs a CUDA GPU; " in line, line  # found, so not "not installed"
    assert lines[-1] == "imported []"


def test_trt_precisions_and_formats_follow_the_arguments(tmp_path):
    d = nav.torch.export(
        torch.nn.Linear(3, 2),
        [torch.randn(2, 3)],
        workdir=tmp_path / "w",
        run_profiling=False,
        verbose=False,
        target_formats=("onnx", "trt"),
        target_precisions=("fp16",),
    )
    assert set(d.status.paths) == {"torch", "onnx", "trt-fp16"}
    assert d.status.paths["trt-fp16"].status.value == "skipped"


_ORT_HAS_CUDA = "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers()


@pytest.mark.skipif(_ORT_HAS_CUDA, reason="this ONNX Runtime has the CUDA execution provider")
def test_onnx_runtime_gpu_providers_missing_are_named_not_faked(tmp_path):
    """With the CPU-only onnxruntime, the CUDA / TensorRT providers are a recorded skip with the
    fix, and a runner asked for them refuses instead of running on the CPU under their name."""
    import io

    from rich.console import Console

    from model_navigator.core.enums import RuntimeProvider, StepStatus
    from model_navigator.core.logging import Progress
    from model_navigator.core.workspace import Workspace
    from model_navigator.package.table import print_status_table
    from model_navigator.runners.registry import make_runner
    from model_navigator.steps.executor import make_executor
    from model_navigator.steps.pipeline import Pipeline, runtime_unavailable_reason

    assert runtime_unavailable_reason(Format.TORCHSCRIPT, RuntimeProvider.CUDA) is None  # torch's own device
    reason = runtime_unavailable_reason(Format.ONNX, RuntimeProvider.TRT)
    assert "TensorrtExecutionProvider" in reason and "onnxruntime-gpu" in reason

    d = nav.torch.export(
        torch.nn.Linear(3, 2),
        [torch.randn(2, 3)],
        workdir=tmp_path / "w",
        run_profiling=False,
        verbose=False,
        target_formats=("onnx",),
    )
    onnx_path = d.status.paths["onnx"]
    with pytest.raises(RuntimeError, match="did not load CUDAExecutionProvider"):
        with make_runner(d.workdir, d.status, onnx_path, RuntimeProvider.CUDA):
            pass

    from model_navigator.steps.execution import Run

    config = d.status.config
    executor = make_executor(config, d.workdir)
    try:
        pipeline = Pipeline.create(Run(Workspace(d.workdir), d.status, config), [], executor, Progress(enabled=False))
        pipeline.check_and_profile(onnx_path, RuntimeProvider.CUDA, profile=True)
    finally:
        executor.close()
    result = onnx_path.runtimes[RuntimeProvider.CUDA]
    assert result.correctness.status == StepStatus.SKIPPED and "onnxruntime-gpu" in result.correctness.reason
    assert result.performance.status == StepStatus.SKIPPED
    assert onnx_path.runtimes[RuntimeProvider.CPU].correctness.status == StepStatus.OK  # the CPU result stays
    out = io.StringIO()
    print_status_table(d.status, console=Console(file=out, width=200))
    assert "Skipped onnx on CUDA: this ONNX Runtime has no CUDAExecutionProvider" in out.getvalue()


def test_runtimes_and_skip_reasons_on_a_cuda_target():
    """What target_device='cuda' selects per path (no GPU needed to decide it): torch formats on
    CUDA, ONNX on the CUDA and TensorRT providers, TensorRT plans on TensorRT; `runtimes` narrows;
    a GPU path whose library is missing names it even when a GPU is present."""
    from model_navigator.core.enums import RuntimeProvider as RP
    from model_navigator.paths.tensorflow import tensorflow_paths
    from model_navigator.paths.torch import torch_paths
    from model_navigator.steps.pipeline import selected_runtimes

    def config(runtimes=None):
        return ExportConfig(
            framework=Framework.TORCH,
            model_name="m",
            target_formats=tuple(Format),
            target_device="cuda",
            runtimes=runtimes,
        )

    specs = {s.key: s for s in torch_paths() + tensorflow_paths()}
    assert selected_runtimes(specs["torchscript-trace"], config()) == [RP.CUDA]
    assert selected_runtimes(specs["torch-exportedprogram"], config()) == [RP.CUDA]
    assert selected_runtimes(specs["onnx"], config()) == [RP.CUDA, RP.TRT]  # no OpenVINO on a GPU target
    assert selected_runtimes(specs["onnx"], config((RP.TRT,))) == [RP.TRT]
    assert selected_runtimes(specs["trt-fp16"], config()) == [RP.TRT]
    assert selected_runtimes(specs["torch-trt-script-fp16"], config()) == [RP.CUDA]
    assert selected_runtimes(specs["tf-trt-fp32"], config()) == [RP.CUDA]
    assert (
        selected_runtimes(
            specs["trt-fp32"], ExportConfig(framework=Framework.TORCH, model_name="m", target_formats=tuple(Format))
        )
        == []
    )
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        assert (
            specs["trt-fp32"].unavailable_reason("cuda", gpu_present=True)
            == "tensorrt not installed (pip install 'model-navigator[tensorrt]')"
        )
    assert (
        specs["tf-trt-fp16"].unavailable_reason("cpu", gpu_present=True) == "needs a CUDA GPU; target_device is 'cpu'"
    )
    assert specs["torchscript-script"].unavailable_reason("cuda", gpu_present=True) is None


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorflow") is None, reason="tensorflow not installed")
def test_tftrt_says_which_part_of_tensorflow_is_missing():
    """TF-TRT needs CUDA, a visible GPU and TensorRT inside TensorFlow; the path's skip reason
    names the first one missing (here: the CPU-only build) even when a GPU is present."""
    import tensorflow as tf

    from model_navigator.converters.tf_trt import tftrt_unavailable
    from model_navigator.paths.tensorflow import tensorflow_paths

    if tf.test.is_built_with_cuda():
        pytest.skip("this TensorFlow has CUDA")
    reason = tftrt_unavailable()
    assert reason == f"TF-TRT needs a TensorFlow build with CUDA; TensorFlow {tf.__version__} has none (tensorflow-cpu)"
    spec = next(s for s in tensorflow_paths() if s.key == "tf-trt-fp16")
    assert spec.unavailable_reason("cuda", gpu_present=True) == reason


def test_an_availability_check_that_raises_is_a_skip_reason():
    """A GPU library that is installed but broken (an import error, an ABI mismatch) must not take
    the export down: the availability check's exception becomes the path's skip reason."""
    from model_navigator.paths.base import PathSpec

    spec = PathSpec(
        "trt-fp16",
        Format.TENSORRT,
        "model.plan",
        "x:y",
        parent="onnx",
        precision=TensorRTPrecision.FP16,
        requires_gpu=True,
        availability="model_navigator.no_such_module:check",
    )
    reason = spec.unavailable_reason("cuda", gpu_present=True)
    assert reason.startswith("checking trt-fp16 failed: ModuleNotFoundError") and "no_such_module" in reason


@pytest.mark.skipif(
    __import__("model_navigator.core.environment", fromlist=["x"]).gpu_present(), reason="this machine has a GPU"
)
def test_a_gpu_package_loads_and_retests_on_the_cpu(tmp_path):
    """A package whose export targeted 'cuda' (as one made on a GPU machine records it), loaded on a
    machine without a GPU: re-tested on the CPU with a note, instead of failing every CUDA step."""
    import yaml

    d = nav.torch.export(
        torch.nn.Linear(3, 2),
        [torch.randn(2, 3)],
        workdir=tmp_path / "w",
        run_profiling=False,
        verbose=False,
        target_formats=("torchscript",),
    )
    d.status.config.target_device = "cuda"
    d.save_status()
    nav.save(d, tmp_path / "gpu.nav")
    loaded = nav.load(tmp_path / "gpu.nav", workdir=tmp_path / "loaded", verbose=False)
    assert to_plain(loaded.status.config.target_device) == "cpu"
    for key in ("torchscript-script", "torchscript-trace"):
        result = loaded.status.paths[key].runtimes[nav.RuntimeProvider.CPU].correctness
        assert result.status.value == "ok"
    log = (tmp_path / "loaded" / "navigator.log").read_text()
    assert "made for target_device='cuda' and this machine has no GPU" in log
    on_disk = yaml.safe_load((tmp_path / "loaded" / "status.yaml").read_text())
    assert on_disk["config"]["target_device"] == "cpu"


def test_torch_trt_input_order_follows_the_torchscript_forward(tmp_path):
    """Torch-TensorRT is called positionally: keyword inputs (a tokenizer's dict order) are put in
    the traced forward's argument order; inputs that skip an argument are refused with the reason."""
    from model_navigator.converters.torch_trt import forward_input_order

    class Model(torch.nn.Module):
        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: Optional[torch.Tensor] = None,
            token_type_ids: Optional[torch.Tensor] = None,
        ):
            out = input_ids * 2
            if attention_mask is not None:
                out = out + attention_mask
            if token_type_ids is not None:
                out = out - token_type_ids
            return out

    ids, mask, types = torch.ones(2, 4), torch.full((2, 4), 3.0), torch.full((2, 4), 5.0)
    traced = torch.jit.trace(
        Model().eval(), example_kwarg_inputs={"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    )
    path = tmp_path / "model.pt"
    torch.jit.save(traced, str(path))
    module = torch.jit.load(str(path))
    order = forward_input_order(module, ["input_ids", "token_type_ids", "attention_mask"], keyword=True)
    assert order == ["input_ids", "attention_mask", "token_type_ids"]
    feeds = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    assert torch.equal(module(*[feeds[n] for n in order]), Model()(**feeds))  # positional call == keyword call
    assert forward_input_order(module, ["x", "y"], keyword=False) == ["x", "y"]

    gap = torch.jit.trace(Model().eval(), example_kwarg_inputs={"input_ids": ids, "token_type_ids": types})
    with pytest.raises(ValueError, match="not arguments of the TorchScript forward"):
        forward_input_order(gap, ["input_ids", "attention_mask"], keyword=True)
    scripted = torch.jit.script(Model().eval())  # keeps every argument: a gap would shift the inputs
    with pytest.raises(ValueError, match=r"skip its arguments \['attention_mask'\]"):
        forward_input_order(scripted, ["input_ids", "token_type_ids"], keyword=True)


def test_fp16_plans_are_skipped_on_a_tensorrt_without_the_fp16_flag(monkeypatch):
    """TensorRT 11 removed BuilderFlag.FP16: trt-fp16 is then skipped with the reason (trt-fp32
    still builds); TensorRT 10 keeps both. TensorRT cannot be installed here, so a module with the
    two versions' BuilderFlag attributes stands in for it."""
    import types

    from model_navigator.converters.tensorrt import tensorrt_unavailable
    from model_navigator.paths.torch import torch_paths

    specs = {s.key: s for s in torch_paths()}
    monkeypatch.setitem(
        sys.modules, "tensorrt", types.SimpleNamespace(__version__="11.0.0", BuilderFlag=types.SimpleNamespace(TF32=1))
    )
    assert tensorrt_unavailable(specs["trt-fp32"]) is None
    reason = tensorrt_unavailable(specs["trt-fp16"])
    assert reason.startswith("TensorRT 11.0.0 has no FP16 builder flag") and "tensorrt>=10,<11" in reason
    monkeypatch.setitem(
        sys.modules,
        "tensorrt",
        types.SimpleNamespace(__version__="10.13.0", BuilderFlag=types.SimpleNamespace(TF32=1, FP16=0)),
    )
    assert tensorrt_unavailable(specs["trt-fp16"]) is None


def test_runners_keep_the_gpu_index_of_the_target_device(tmp_path):
    """target_device='cuda:1' reaches every GPU runner (inputs and engines on GPU 1, not 0); the
    runners are built, not loaded, so no GPU is needed to see it."""
    from model_navigator.core.enums import RuntimeProvider as RP
    from model_navigator.runners.registry import make_runner

    d = nav.torch.export(
        torch.nn.Linear(3, 2),
        [torch.randn(2, 3)],
        workdir=tmp_path / "w",
        run_profiling=False,
        verbose=False,
        target_formats=("torchscript", "onnx"),
    )
    d.status.config.target_device = "cuda:1"
    paths = d.status.paths
    assert make_runner(d.workdir, d.status, paths["torchscript-trace"], RP.CUDA).device == "cuda:1"
    assert make_runner(d.workdir, d.status, paths["onnx"], RP.TRT).device == "cuda:1"
    assert make_runner(d.workdir, d.status, paths["onnx"], RP.CPU).device == "cpu"
    assert (
        make_runner(d.workdir, d.status, paths["torch"], RP.CUDA, source_model=torch.nn.Linear(3, 2)).device == "cuda:1"
    )
