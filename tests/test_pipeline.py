"""The orchestration (steps/pipeline.py): which paths and runtimes run, the skip reasons on this
machine, and a run in which one producer fails: it is recorded and the other paths go on."""

from __future__ import annotations

import importlib.util
from typing import Any, Dict, List

import pytest

from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import Format, Framework, JitType, RuntimeProvider, StepStatus, TensorRTPrecision
from model_navigator.core.environment import gpu_present
from model_navigator.core.logging import Progress
from model_navigator.core.status import NavigatorStatus, PathStatus
from model_navigator.core.workspace import Workspace
from model_navigator.paths.base import ExportContext, PathSpec, ProduceRequest
from model_navigator.paths.torch import torch_paths
from model_navigator.steps.executor import RoutingExecutor
from model_navigator.steps.execution import Run
from model_navigator.steps.pipeline import Pipeline
from model_navigator.steps.scope import requested, runtime_unavailable_reason, selected_runtimes

CPU, CUDA, TRT, OPENVINO = (RuntimeProvider.CPU, RuntimeProvider.CUDA, RuntimeProvider.TRT, RuntimeProvider.OPENVINO)
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


def _config(**kwargs: Any) -> ExportConfig:
    return ExportConfig(**{"framework": Framework.TORCH, "model_name": "m", "target_formats": (Format.ONNX,), **kwargs})


def _torch_spec(key: str) -> PathSpec:
    return next(s for s in torch_paths() if s.key == key)


class RecordingProgress(Progress):
    """The progress lines, kept instead of printed."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.lines: List[tuple] = []

    def line(self, ok, path, step, detail, seconds=None) -> None:
        self.lines.append((ok, path, step, detail))


# ------------------------------------------------------------------------------------------------
# What runs
# ------------------------------------------------------------------------------------------------


def test_requested_follows_formats_jit_types_precisions_and_flags():
    config = _config(
        target_formats=(Format.TORCHSCRIPT, Format.TENSORRT),
        jit_options=(JitType.TRACE,),
        target_precisions=(TensorRTPrecision.FP16,),
    )
    assert requested(_torch_spec("torchscript-trace"), config)
    assert not requested(_torch_spec("torchscript-script"), config)  # jit type not asked for
    assert not requested(_torch_spec("onnx"), config)  # format not asked for
    assert requested(_torch_spec("trt-fp16"), config) and not requested(_torch_spec("trt-fp32"), config)
    flagged = PathSpec("x", Format.ONNX, "model.onnx", "m:f", selectors=(("enable_xla", False),))
    assert requested(flagged, _config(enable_xla=(False,))) and requested(flagged, _config())
    assert not requested(flagged, _config(enable_xla=(True,)))


def test_selected_runtimes_on_the_cpu():
    onnx = _torch_spec("onnx")
    assert selected_runtimes(onnx, _config()) == [CPU] + ([OPENVINO] if HAS_OPENVINO else [])
    assert selected_runtimes(onnx, _config(runtimes=(CPU,))) == [CPU]
    assert selected_runtimes(onnx, _config(runtimes=(CUDA,))) == []  # not a runtime of the CPU target
    assert selected_runtimes(_torch_spec("trt-fp32"), _config()) == []  # GPU only
    assert selected_runtimes(onnx, _config(target_device="cuda")) == [CUDA, TRT]


def test_runtime_unavailable_reason():
    from model_navigator.runners.onnx import available_providers

    assert runtime_unavailable_reason(Format.ONNX, CPU) is None
    assert runtime_unavailable_reason(Format.TORCHSCRIPT, CUDA) is None  # said by torch itself when it runs
    if CUDA.value in available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    reason = runtime_unavailable_reason(Format.ONNX, CUDA)
    assert reason.startswith("this ONNX Runtime has no CUDAExecutionProvider (it has ")
    assert reason.endswith("pip install onnxruntime-gpu in place of onnxruntime")


# ------------------------------------------------------------------------------------------------
# A run
# ------------------------------------------------------------------------------------------------

SPECS = [
    PathSpec("broken", Format.TORCHSCRIPT, "model.pt", "test_pipeline:_export"),
    PathSpec("fine", Format.ONNX, "model.onnx", "test_pipeline:_export"),
    PathSpec("after-broken", Format.ONNX, "model.onnx", "unused:convert", parent="broken"),
    PathSpec(
        "gpu-only",
        Format.TENSORRT,
        "model.plan",
        "unused:convert",
        parent="fine",
        cpu_runtimes=(),
        gpu_runtimes=(TRT,),
        requires_gpu=True,
    ),
]


def _export(request: ProduceRequest) -> Dict[str, Any]:
    """The producer of the export paths above."""
    if request.spec.key == "broken":
        raise RuntimeError("boom: this exporter cannot take the model")
    request.out_path.write_bytes(b"not really onnx")
    return {"written_by": "test"}


class _Context(ExportContext):
    """A framework's export context, as exporters/<framework>.py makes them."""

    def write_reproduce(self, workspace, spec) -> None:
        (workspace.path_dir(spec.key) / "reproduce_export.sh").write_text("# the framework's script\n")


def _pipeline(tmp_path, executor) -> Pipeline:
    workspace = Workspace.create(tmp_path / "w", override=False)
    config = _config(target_formats=(Format.TORCHSCRIPT, Format.ONNX, Format.TENSORRT), runtimes=(CPU,))
    status = NavigatorStatus(model_name="m", framework="torch", config=config.to_dict())
    return Pipeline.create(
        Run(workspace, status, config), SPECS, executor, RecordingProgress(), export_context=_Context()
    )


@pytest.fixture
def executor():
    executor = RoutingExecutor("off", "torch", set())
    yield executor
    executor.close()


@pytest.fixture
def pipeline(tmp_path, executor):
    return _pipeline(tmp_path, executor)


def _lines(pipeline: Pipeline) -> List[tuple]:
    return pipeline.recorder.progress.lines


def test_a_failing_export_is_recorded_and_the_others_go_on(pipeline):
    pipeline.run_exports()
    paths = pipeline.status.paths
    assert paths["broken"].status == StepStatus.FAILED
    assert paths["broken"].reason == "RuntimeError: boom: this exporter cannot take the model"
    assert paths["fine"].status == StepStatus.OK and paths["fine"].model_path == "fine/model.onnx"
    assert paths["fine"].reported == {"written_by": "test"} and paths["fine"].selectors == {}
    root = pipeline.run.workspace.root
    assert (root / "fine" / "config.yaml").is_file() and (root / "fine" / "reproduce_export.sh").is_file()
    assert (False, "broken", "export") in [line[:3] for line in _lines(pipeline)]
    saved = NavigatorStatus.load(root)  # recorded as it happened
    assert saved.paths["broken"].status == StepStatus.FAILED and saved.paths["fine"].status == StepStatus.OK


def test_children_of_a_failed_path_and_gpu_paths_are_skipped_with_their_reason(tmp_path, executor, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for this run, on any machine
    pipeline = _pipeline(tmp_path, executor)
    assert not gpu_present()
    pipeline.run_exports()
    child = pipeline.produce_path(SPECS[2])
    assert (child.status, child.reason) == (StepStatus.SKIPPED, "parent path 'broken' failed")
    gpu = pipeline.produce_path(SPECS[3])
    assert (gpu.status, gpu.reason) == (StepStatus.SKIPPED, "needs a CUDA GPU; none found")
    pipeline.recorder.gpu_skips_done()  # said once for all of them
    assert _lines(pipeline)[-1] == (None, "GPU paths", "skipped", "no GPU here: gpu-only")
    assert (
        NavigatorStatus.load(pipeline.run.workspace.root).paths["after-broken"].reason == "parent path 'broken' failed"
    )


def test_a_runtime_this_machine_lacks_is_skipped_without_running_a_step(pipeline):
    from model_navigator.runners.onnx import available_providers

    if CUDA.value in available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    path = PathStatus(key="fine", format=Format.ONNX, status=StepStatus.OK, model_path="fine/model.onnx")
    pipeline.status.paths["fine"] = path
    pipeline.check_and_profile(path, CUDA, profile=True)
    result = path.runtimes[CUDA]
    assert result.correctness.status == StepStatus.SKIPPED and result.performance.status == StepStatus.SKIPPED
    assert result.correctness.reason == runtime_unavailable_reason(Format.ONNX, CUDA)


def test_correctness_failure_skips_profiling_and_the_run_goes_on(pipeline, executor):
    """The whole run, through the export's own sequence (steps/export_run.run_paths): this workspace
    holds no correctness samples, so the check fails (recorded, with the reproduce command);
    profiling is skipped, never run on an unchecked artifact."""
    from model_navigator.steps.export_run import run_paths

    run_paths(pipeline, executor)
    fine = pipeline.status.paths["fine"].runtimes[CPU]
    assert fine.correctness.status == StepStatus.FAILED
    assert fine.correctness.reason.startswith("FileNotFoundError: correctness samples missing")
    assert "(reproduce: bash fine/reproduce_correctness.sh CPUExecutionProvider)" in fine.correctness.reason
    assert fine.performance.status == StepStatus.SKIPPED and fine.performance.reason == "correctness failed"
    assert (pipeline.run.workspace.root / "fine" / "reproduce_correctness.sh").is_file()
    assert pipeline.status.paths["after-broken"].status == StepStatus.SKIPPED
    on_disk = NavigatorStatus.load(pipeline.run.workspace.root).paths["fine"].runtimes[CPU]
    assert on_disk.performance.reason == "correctness failed"


def test_status_yaml_is_written_when_the_status_changed_and_only_then(pipeline):
    """Atomic writes replace the file (a new inode): an unchanged status leaves it as it was."""
    status_file = pipeline.run.workspace.root / "status.yaml"
    pipeline.recorder.save()
    first = status_file.stat().st_ino
    pipeline.recorder.save()
    assert status_file.stat().st_ino == first
    pipeline.status.paths["fine"] = PathStatus(key="fine", format=Format.ONNX, status=StepStatus.NOT_RUN)
    pipeline.recorder.save()
    assert status_file.stat().st_ino != first
    assert NavigatorStatus.load(pipeline.run.workspace.root).paths["fine"].status == StepStatus.NOT_RUN


# ------------------------------------------------------------------------------------------------
# What the frameworks add
# ------------------------------------------------------------------------------------------------


def test_export_hints_and_batch_knowledge_are_the_frameworks():
    """A torch exporter's hint is shown for torch exports only, and only where it applies."""
    from model_navigator.exporters.jax import _HINTS as JAX_HINTS
    from model_navigator.exporters.tensorflow import TensorFlowExportContext
    from model_navigator.exporters.torch import TorchExportContext
    from model_navigator.paths.base import match_hint
    from model_navigator.steps.correctness import DEFAULT_BATCH_HINT, export_batch_of

    onnx = PathSpec("onnx", Format.ONNX, "model.onnx", "m:f")
    reason = "UnsupportedOperatorError: aten::foo to ONNX opset version 17"
    torch_ctx = TorchExportContext(model=None, example={}, input_names=(), output_names=(), keyword=False)
    assert "onnx_dynamo=True" in torch_ctx.failure_hint(onnx, reason)
    torch_ctx.onnx_dynamo = True  # the hint is about the other exporter
    assert torch_ctx.failure_hint(onnx, reason) is None
    tf_ctx = TensorFlowExportContext(
        model=None, input_names=(), input_shapes=(), input_dtypes=(), output_names=(), keyword=False
    )
    assert tf_ctx.failure_hint(onnx, reason) is None
    assert match_hint(JAX_HINTS, PathSpec("onnx-jax2onnx", Format.ONNX, "m", "m:f"), "_DynamicDimSentinel")
    assert export_batch_of(Framework.TORCH)[0] == 2 and "forward()" in export_batch_of(Framework.TORCH)[1]
    for framework in (Framework.TENSORFLOW, Framework.JAX, Framework.ONNX):
        assert export_batch_of(framework) == (None, DEFAULT_BATCH_HINT)
