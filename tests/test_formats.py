"""The format and runtime declarations (core/formats.py): one per member, every named function
resolves, the lists derived from them hold what the declarations say, and every consumer (runners,
get_model, Triton, executor, worker, tolerance, availability) reads a declaration and nothing else."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from model_navigator.core import formats
from model_navigator.core.enums import Format, Framework, RuntimeProvider, StepStatus, TensorRTPrecision
from model_navigator.core.errors import UserInputError
from model_navigator.core.formats import FORMATS, RUNTIMES, FormatSpec, TritonBackend
from model_navigator.core.status import NavigatorStatus, PathStatus
from model_navigator.core.tensor import TensorMetadata
from model_navigator.paths.registry import formats_of, paths_for

F, RP = Format, RuntimeProvider
FRAMEWORKS = (Framework.TORCH, Framework.TENSORFLOW, Framework.JAX, Framework.ONNX)


def _resolve(reference: str):
    """The function a "module:function" string names, or None when a library it needs is missing here."""
    module_name, func_name = reference.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("model_navigator"):
            raise
        return None
    return getattr(module, func_name)


# One declaration per member ---------------------------------------------------------------------
def test_every_format_has_exactly_one_declaration():
    declared = [spec.format for spec in formats.DECLARATIONS]
    assert sorted(declared) == sorted(Format)
    assert len(declared) == len(set(declared)) == len(FORMATS)


def test_every_runtime_has_a_declaration():
    assert set(RUNTIMES) == set(RuntimeProvider)
    assert all(spec.runtime == runtime for runtime, spec in RUNTIMES.items())


def test_every_path_format_and_runtime_is_declared():
    for framework in FRAMEWORKS:
        for spec in paths_for(framework):
            assert spec.format in FORMATS and not FORMATS[spec.format].is_source, spec.key
            assert set(spec.cpu_runtimes + spec.gpu_runtimes) <= set(RUNTIMES), spec.key


def test_every_source_format_names_its_framework_once():
    assert [formats.source_format(fw).format for fw in FRAMEWORKS] == [F.TORCH, F.TENSORFLOW, F.JAX, F.ONNX_SOURCE]
    assert all(
        not spec.loader and not spec.triton and not spec.local_checks for spec in FORMATS.values() if spec.is_source
    )


def test_every_declared_function_resolves():
    references = []
    for spec in FORMATS.values():
        assert spec.runners, f"{spec.format.value} declares no runner"
        references += [ref for _, ref in spec.runners] + [ref for _, ref in spec.availability]
        references += [spec.loader] if spec.loader else []
    for framework in FRAMEWORKS:
        for path in paths_for(framework):
            references += [path.producer] + ([path.availability] if path.availability else [])
    resolved = {ref: _resolve(ref) for ref in references}
    assert all(callable(f) for f in resolved.values() if f is not None)
    # Everything but the TensorRT family resolves on a machine without TensorRT.
    missing = sorted(ref for ref, f in resolved.items() if f is None)
    assert all(ref.split(":")[0].endswith(("torch_trt", "tensorrt")) for ref in missing), missing
    assert "model_navigator.runners.onnx:onnxruntime_runner" in resolved


def test_declared_tolerances_and_packages_exist():
    from model_navigator.core.environment import PACKAGES
    from model_navigator.core.tolerance import DEFAULT_TOLERANCES

    assert {spec.tolerance for spec in FORMATS.values() if spec.tolerance} <= set(DEFAULT_TOLERANCES)
    assert {spec.tolerance for spec in RUNTIMES.values()} <= set(DEFAULT_TOLERANCES)
    assert set(formats.declared_packages()) <= set(PACKAGES)


# The derived lists: properties of the declarations, not copies of them --------------------------
@pytest.mark.parametrize(
    "framework, module, name",
    [
        (Framework.TORCH, "model_navigator.api.torch", "TORCH_FORMATS"),
        (Framework.TENSORFLOW, "model_navigator.api.tensorflow", "TF_FORMATS"),
        (Framework.JAX, "model_navigator.api.jax", "JAX_FORMATS"),
        (Framework.ONNX, "model_navigator.api.onnx", "ONNX_FORMATS"),
    ],
)
def test_target_formats_are_what_the_frameworks_paths_make_in_the_listing_order(framework, module, name):
    offered = getattr(importlib.import_module(module), name)
    specs = paths_for(framework)
    assert offered == formats_of(framework)
    assert set(offered) == {spec.format for spec in specs}  # every format a path makes, and nothing else
    assert len(offered) == len(set(offered))
    assert list(offered) == sorted(offered, key=list(FORMATS).index)  # FORMATS' order, whatever the paths' order
    assert not set(offered) & set(formats.SOURCE_FORMATS)  # the source model is not a target
    by_key = {spec.key: spec for spec in specs}
    for spec in specs:  # a derived format's parent is made by this framework too
        assert spec.parent is None or by_key[spec.parent].format in offered, spec.key
    assert F.ONNX in offered  # every framework exports ONNX


def test_derived_lists_come_from_the_declarations():
    assert set(formats.SOURCE_FORMATS) == {formats.source_format(fw).format for fw in FRAMEWORKS}
    gpu_only = {spec.format for fw in FRAMEWORKS for spec in paths_for(fw) if spec.requires_gpu}
    made_on_cpu = {spec.format for fw in FRAMEWORKS for spec in paths_for(fw) if not spec.requires_gpu}
    assert set(formats.GPU_FORMATS) == gpu_only - made_on_cpu and formats.GPU_FORMATS  # formats no CPU path makes
    assert formats.CPU_RUNTIMES[0] == RP.CPU and not {RP.CUDA, RP.TRT} & set(formats.CPU_RUNTIMES)
    assert set(formats.OPT_IN_RUNTIMES) <= set(formats.CPU_RUNTIMES) and RP.CPU not in formats.OPT_IN_RUNTIMES


def test_the_enums_hold_no_derived_lists():
    """core/formats.py is their one home (enums is imported by formats, never the reverse)."""
    from model_navigator.core import enums

    for name in ("SOURCE_FORMATS", "GPU_FORMATS", "CPU_RUNTIMES", "OPT_IN_RUNTIMES", "RUNTIME_MODULES"):
        assert not hasattr(enums, name), name


def test_status_yaml_reports_every_package_a_path_can_use():
    """status.yaml's environment names the version of every distribution the framework extras install
    (what a path or runtime can run on) and everything a declaration names, once, this package first."""
    import re
    import tomllib

    from model_navigator.core.environment import PACKAGES

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in ("torch", "tensorflow", "jax", "onnx", "openvino", "tensorrt"):
        names = {re.split(r"[<>=!~\[ ;]", requirement)[0] for requirement in extras[extra]}
        assert names <= set(PACKAGES), (extra, names - set(PACKAGES))
    assert set(formats.declared_packages()) <= set(PACKAGES)
    assert PACKAGES[0] == "model-navigator" and len(PACKAGES) == len(set(PACKAGES))


def test_local_formats_and_worker_preloads_are_derived():
    from model_navigator.steps.worker import preload_modules

    assert {fw.value: set(formats.formats_checked_locally(fw.value)) for fw in FRAMEWORKS} == {
        "torch": {"torchscript", "torch-exportedprogram"},
        "tensorflow": {"tf-savedmodel"},
        "onnx": set(),
        "jax": {"tf-savedmodel"},
    }
    base = ("numpy", "onnxruntime", "openvino")
    assert preload_modules("runtimes") == base
    assert preload_modules("torch") == base + ("torch", "torch._export.serde.serialize")
    assert preload_modules("onnx") == base + ("onnx",)
    assert preload_modules("tensorflow") == preload_modules("jax") == base + ("tensorflow", "tf2onnx")
    assert preload_modules("unknown") == ("numpy",)


def test_default_tolerance_follows_the_old_rule():
    from model_navigator.core.tolerance import default_tolerance_name

    for fmt in Format:
        for runtime in RuntimeProvider:
            for precision in (None, TensorRTPrecision.FP32, TensorRTPrecision.FP16):
                if precision == TensorRTPrecision.FP16:
                    expected = "fp16"
                elif fmt in (F.TENSORRT, F.TORCH_TRT, F.TF_TRT) or runtime in (RP.CUDA, RP.TRT):
                    expected = "fp32-gpu"
                else:
                    expected = "fp32"
                assert default_tolerance_name(fmt, precision, runtime) == expected, (fmt, runtime, precision)


def test_only_onnx_on_a_gpu_provider_has_an_availability_check():
    from model_navigator.steps.pipeline import runtime_unavailable_reason

    checked = {(fmt, rt) for fmt in Format for rt in RuntimeProvider if FORMATS[fmt].availability_check(rt)}
    assert checked == {(F.ONNX, RP.CUDA), (F.ONNX, RP.TRT)}
    assert all(runtime_unavailable_reason(fmt, rt) is None for fmt in Format for rt in (RP.CPU, RP.OPENVINO))


# Triton ------------------------------------------------------------------------------------------
def test_triton_backends_per_format_and_runtime_are_as_before():
    from model_navigator.triton import backend_for

    onnx = TritonBackend("onnxruntime_onnx", "onnxruntime", "model.onnx")
    script = TritonBackend(
        "pytorch_libtorch", "pytorch", "model.pt", parameters=(("INFERENCE_MODE", "true"),), indexed_names=True
    )
    saved = TritonBackend("tensorflow_savedmodel", "tensorflow", "model.savedmodel", is_dir=True)
    assert backend_for(F.ONNX, RP.CPU) == backend_for(F.ONNX, RP.CUDA) == onnx
    assert backend_for(F.ONNX, RP.TRT) == TritonBackend(
        "onnxruntime_onnx", "onnxruntime", "model.onnx", gpu_execution_accelerators=("tensorrt",)
    )
    assert backend_for(F.ONNX, RP.OPENVINO) == TritonBackend(
        None,
        "openvino",
        "model.onnx",
        default_model_filename="model.onnx",
        parameters=(("PERFORMANCE_HINT", "LATENCY"),),
    )
    for runtime in (RP.CPU, RP.CUDA):
        assert backend_for(F.TORCHSCRIPT, runtime) == backend_for(F.TORCH_TRT, runtime) == script
        assert backend_for(F.TF_SAVEDMODEL, runtime) == backend_for(F.TF_TRT, runtime) == saved
    assert backend_for(F.TENSORRT, RP.TRT) == TritonBackend("tensorrt_plan", "tensorrt", "model.plan")
    for fmt in (F.TORCH_EXPORTEDPROGRAM, F.TORCH, F.TENSORFLOW, F.JAX, F.ONNX_SOURCE):
        with pytest.raises(UserInputError, match=f"Triton has no backend for format '{fmt.value}'"):
            backend_for(fmt, RP.CPU)


# Runners -----------------------------------------------------------------------------------------
def _status(target: str = "cpu", kw_names=None) -> NavigatorStatus:
    status = NavigatorStatus(
        model_name="m", framework="torch", config={"target_device": target, "forward_kw_names": kw_names}
    )
    status.inputs = [TensorMetadata("a", (-1, 3), "float32"), TensorMetadata("b", (-1, 3), "float32")]
    status.outputs = [TensorMetadata("y", (-1, 2), "float32")]
    return status


def _path(fmt: Format, key: str = "p", **kwargs) -> PathStatus:
    return PathStatus(key=key, format=fmt, status=StepStatus.OK, model_path=f"{key}/model", **kwargs)


@pytest.mark.parametrize(
    "fmt, runtime, cls, device",
    [
        (F.TORCHSCRIPT, RP.CPU, "TorchScriptRunner", "cpu"),
        (F.TORCHSCRIPT, RP.CUDA, "TorchScriptRunner", "cuda:1"),
        (F.TORCH_EXPORTEDPROGRAM, RP.CUDA, "TorchExportedProgramRunner", "cuda:1"),
        (F.ONNX, RP.CPU, "OnnxRuntimeRunner", "cpu"),
        (F.ONNX, RP.TRT, "OnnxRuntimeRunner", "cuda:1"),
        (F.ONNX, RP.OPENVINO, "OpenVINORunner", "cpu"),
        (F.TF_SAVEDMODEL, RP.CUDA, "TensorFlowSavedModelRunner", "cuda:1"),
        (F.TF_TRT, RP.CUDA, "TensorFlowSavedModelRunner", "cuda:1"),
        (F.TENSORRT, RP.TRT, "TensorRTRunner", "cuda"),
    ],
)
def test_make_runner_builds_the_declared_runner_for_an_artifact(tmp_path, fmt, runtime, cls, device):
    from model_navigator.runners.registry import make_runner

    runner = make_runner(tmp_path, _status("cuda:1"), _path(fmt), runtime)
    assert type(runner).__name__ == cls and runner.device == device and runner.name == f"p:{runtime.value}"
    assert runner.model_path == tmp_path / "p" / "model" and runner.input_names == ["a", "b"]
    if fmt == F.ONNX and runtime != RP.OPENVINO:
        assert runner.provider == runtime


def test_make_runner_passes_keywords_and_torch_trt_input_order(tmp_path):
    from model_navigator.runners.registry import make_runner

    status = _status("cpu", kw_names=["x", "z"])
    script = make_runner(tmp_path, status, _path(F.TORCHSCRIPT), RP.CPU)
    assert script.keyword is True and script.kw_names == ("x", "z")
    trt = make_runner(tmp_path, status, _path(F.TORCH_TRT, reported={"input_order": ["b", "a"]}), RP.CUDA)
    assert type(trt).__name__ == "TorchTensorRTRunner" and trt.input_names == ["b", "a"] and trt.keyword is False


@pytest.mark.parametrize(
    "fmt, runtime, cls, device",
    [
        (F.TORCH, RP.CUDA, "TorchSourceRunner", "cuda:1"),
        (F.TORCH, RP.TORCH_COMPILE, "TorchCompileRunner", "cuda:1"),  # compiles for the target device
        (F.TENSORFLOW, RP.CPU, "TensorFlowSourceRunner", "cpu"),
        (F.JAX, RP.CPU, "JaxSourceRunner", "cpu"),
        (F.ONNX_SOURCE, RP.CUDA, "OnnxSourceRunner", "cuda:1"),
    ],
)
def test_make_runner_builds_the_declared_source_runner(tmp_path, fmt, runtime, cls, device):
    from model_navigator.runners.registry import make_runner

    source = object() if fmt != F.ONNX_SOURCE else str(tmp_path / "model.onnx")
    runner = make_runner(tmp_path, _status("cuda:1"), _path(fmt, key=fmt.value), runtime, source_model=source)
    assert type(runner).__name__ == cls and runner.device == device
    if fmt == F.ONNX_SOURCE:
        assert runner.model_path == tmp_path / "model.onnx" and runner.provider == RP.CUDA
    else:
        assert runner.model is source


def test_make_runner_refuses_a_missing_model(tmp_path):
    from model_navigator.runners.registry import make_runner

    with pytest.raises(UserInputError, match="only in the process that called export"):
        make_runner(tmp_path, _status(), _path(F.TORCH), RP.CPU)
    failed = PathStatus(key="onnx", format=F.ONNX, status=StepStatus.FAILED, reason="boom")
    with pytest.raises(UserInputError, match="Path 'onnx' has no model \\(failed\\): boom"):
        make_runner(tmp_path, _status(), failed, RP.CPU)


# A new format is a declaration -------------------------------------------------------------------
class ToyRunner:
    def __init__(self, model, args):
        self.model, self.args = model, args


def toy_runner(model, args):
    return ToyRunner(model, args)


def toy_loader(model_path):
    return ("loaded", Path(model_path).name)


def toy_unavailable(runtime):
    return f"no toy runtime {runtime.value} here"


def test_every_consumer_reads_only_the_declaration(tmp_path, monkeypatch):
    """Re-declare TF_SAVEDMODEL as a toy format that torch also makes: runner, get_model, Triton,
    local checks, worker preloads, tolerance, availability and target formats all follow."""
    from model_navigator.package.descriptor import PackageDescriptor
    from model_navigator.paths import torch as torch_paths
    from model_navigator.paths.base import PathSpec
    from model_navigator.runners.registry import make_runner
    from model_navigator.steps.pipeline import runtime_unavailable_reason
    from model_navigator.steps.worker import preload_modules
    from model_navigator.core.tolerance import default_tolerance_name
    from model_navigator.triton import backend_for

    here = __name__
    backend = TritonBackend("toy_platform", "toy", "model.toy")
    toy = FormatSpec(
        F.TF_SAVEDMODEL,
        runners=((None, f"{here}:toy_runner"),),
        loader=f"{here}:toy_loader",
        triton=((RP.CPU, backend),),
        local_checks=(Framework.TORCH,),
        preload=("toy_module",),
        availability=((RP.CUDA, f"{here}:toy_unavailable"),),
        tolerance="fp16",
    )
    monkeypatch.setitem(FORMATS, F.TF_SAVEDMODEL, toy)
    real_paths = torch_paths.torch_paths
    toy_path = PathSpec("toy", F.TF_SAVEDMODEL, "model.toy", f"{here}:toy_runner")
    monkeypatch.setattr(torch_paths, "torch_paths", lambda: real_paths() + (toy_path,))

    status = _status()
    status.paths = {"toy": _path(F.TF_SAVEDMODEL, key="toy")}
    runner = make_runner(tmp_path, status, status.paths["toy"], RP.CPU)
    assert isinstance(runner, ToyRunner) and runner.model == tmp_path / "toy" / "model"
    assert runner.args.name == "toy:CPUExecutionProvider" and runner.args.device == "cpu"
    assert PackageDescriptor(status, tmp_path).get_model(F.TF_SAVEDMODEL) == ("loaded", "model")
    assert backend_for(F.TF_SAVEDMODEL, RP.CPU) == backend
    with pytest.raises(UserInputError, match="Triton has no backend"):
        backend_for(F.TF_SAVEDMODEL, RP.CUDA)
    assert "tf-savedmodel" in formats.formats_checked_locally("torch")
    assert "tf-savedmodel" not in formats.formats_checked_locally("tensorflow")
    assert "toy_module" in preload_modules("torch") and "tensorflow" not in preload_modules("tensorflow")
    assert default_tolerance_name(F.TF_SAVEDMODEL, TensorRTPrecision.FP32, RP.CPU) == "fp16"
    assert runtime_unavailable_reason(F.TF_SAVEDMODEL, RP.CUDA) == "no toy runtime CUDAExecutionProvider here"
    assert runtime_unavailable_reason(F.TF_SAVEDMODEL, RP.CPU) is None
    assert formats_of(Framework.TORCH) == (
        F.TORCHSCRIPT,
        F.TORCH_EXPORTEDPROGRAM,
        F.TF_SAVEDMODEL,
        F.ONNX,
        F.TORCH_TRT,
        F.TENSORRT,
    )


def test_importing_the_declarations_imports_no_framework():
    import subprocess
    import sys

    code = (
        "import sys, model_navigator.core.formats, model_navigator.runners.registry, model_navigator.triton; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'onnx', 'onnxruntime', 'openvino') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"
