"""The path declarations (model_navigator/paths/): every framework's graph is well formed, its
producers and availability checks resolve, and unavailable_reason says why a path cannot run."""

from __future__ import annotations

import importlib

import pytest

from model_navigator.core.enums import Format, Framework, RuntimeProvider
from model_navigator.core.errors import UserInputError
from model_navigator.paths.base import PathSpec, load_producer
from model_navigator.paths.registry import find_spec, paths_for

FRAMEWORKS = [Framework.TORCH, Framework.TENSORFLOW, Framework.JAX, Framework.ONNX]


def _available(spec: PathSpec):
    return None


def _unavailable(spec: PathSpec):
    return f"{spec.key} wants something else"


def _broken(spec: PathSpec):
    raise OSError("libnvinfer.so: cannot open shared object file")


def _spec(**kwargs) -> PathSpec:
    return PathSpec(**{"key": "p", "format": Format.ONNX, "artifact": "model.onnx", "producer": "m:f", **kwargs})


@pytest.mark.parametrize("framework", FRAMEWORKS, ids=lambda f: f.value)
def test_keys_are_unique_and_parents_come_first(framework):
    specs = paths_for(framework)
    keys = [s.key for s in specs]
    assert len(keys) == len(set(keys)), keys
    for index, spec in enumerate(specs):
        if spec.parent is not None:
            assert spec.parent in keys[:index], f"{spec.key}: parent {spec.parent!r} is not declared before it"
    assert any(s.is_export for s in specs)


@pytest.mark.parametrize("framework", FRAMEWORKS, ids=lambda f: f.value)
def test_producers_and_availability_checks_resolve(framework):
    for spec in paths_for(framework):
        assert callable(load_producer(spec)), spec.producer
        if spec.availability:
            module, function = spec.availability.split(":")
            assert callable(getattr(importlib.import_module(module), function)), spec.availability
        assert find_spec(framework, spec.key) == spec


@pytest.mark.parametrize("framework", FRAMEWORKS, ids=lambda f: f.value)
def test_gpu_paths_have_no_cpu_runtime_and_are_unavailable_without_a_gpu(framework):
    for spec in paths_for(framework):
        if spec.requires_gpu:
            assert spec.cpu_runtimes == () and spec.runtimes_for("cpu") == ()
            assert spec.unavailable_reason("cpu", gpu_present=False) is not None
        else:
            assert spec.runtimes_for("cpu"), spec.key


def test_unknown_path_is_a_user_error():
    with pytest.raises(UserInputError, match="Unknown path 'nope' for torch"):
        find_spec(Framework.TORCH, "nope")


def test_unavailable_reason_for_a_missing_module():
    spec = _spec(requires_modules=("numpy", "no_such_module_xyz"), extra="tensorrt")
    assert (
        spec.unavailable_reason("cpu", gpu_present=True)
        == "no_such_module_xyz not installed (pip install 'model-navigator[tensorrt]')"
    )
    assert (
        _spec(requires_modules=("no_such_module_xyz",)).unavailable_reason("cpu", True)
        == "no_such_module_xyz not installed"
    )


def test_unavailable_reason_for_a_missing_gpu():
    spec = _spec(requires_gpu=True, cpu_runtimes=(), gpu_runtimes=(RuntimeProvider.TRT,))
    assert spec.unavailable_reason("cpu", gpu_present=False) == "needs a CUDA GPU; none found"
    assert spec.unavailable_reason("cpu", gpu_present=True) == "needs a CUDA GPU; target_device is 'cpu'"
    assert spec.unavailable_reason("cuda:1", gpu_present=True) is None
    assert spec.runtimes_for("cuda:1") == (RuntimeProvider.TRT,)


def test_unavailable_reason_without_a_runtime_on_the_device():
    assert _spec(cpu_runtimes=()).unavailable_reason("cpu", gpu_present=False) == "no runtime runs onnx on 'cpu'"


def test_unavailable_reason_from_the_availability_check():
    here = __name__
    assert _spec(availability=f"{here}:_available").unavailable_reason("cpu", False) is None
    assert _spec(availability=f"{here}:_unavailable").unavailable_reason("cpu", False) == "p wants something else"
    assert (
        _spec(availability=f"{here}:_broken").unavailable_reason("cpu", False)
        == "checking p failed: OSError: libnvinfer.so: cannot open shared object file"
    )
    # the cheaper checks come first: a missing module is said before the availability check runs
    assert (
        _spec(requires_modules=("no_such_module_xyz",), availability=f"{here}:_broken").unavailable_reason("cpu", False)
        == "no_such_module_xyz not installed"
    )


# Selectors (which variant a path is) and what producers report -----------------------------------
def _reports(request):
    return {"opset": 17, "exporter": "test"}


def _reports_a_selector(request):
    return {"enable_xla": False}


def test_declared_selectors_are_export_options():
    """A selector names the export option that asks for the variant (steps.scope.requested reads it)."""
    from dataclasses import fields

    from model_navigator.core.config import ExportConfig

    options = {f.name for f in fields(ExportConfig)}
    declared = {name for fw in FRAMEWORKS for spec in paths_for(fw) for name, _ in spec.selectors}
    assert declared and declared <= options


def test_a_path_keeps_its_selectors_and_what_its_producer_reported_apart(tmp_path):
    from model_navigator.core.enums import StepStatus
    from model_navigator.core.status import PathStatus
    from model_navigator.paths.base import ProduceRequest, produce

    spec = _spec(producer="test_paths:_reports", selectors=(("enable_xla", True), ("jit_compile", False)))
    path = PathStatus(key=spec.key, format=spec.format, status=StepStatus.OK, selectors=spec.selector_dict)
    path.record_reported(produce(ProduceRequest(spec, tmp_path / "model.onnx", None, None)))
    assert path.selectors == {"enable_xla": True, "jit_compile": False}
    assert path.reported == {"opset": 17, "exporter": "test"}
    assert path.flags == {**path.selectors, **path.reported}  # the read-only view of both
    with pytest.raises(TypeError):
        path.flags["opset"] = 18  # type: ignore[index]
    with pytest.raises(ValueError, match="selectors"):
        path.record_reported({"jit_compile": True})
    bad = _spec(producer="test_paths:_reports_a_selector", selectors=(("enable_xla", True),))
    with pytest.raises(ValueError, match=r"reported \['enable_xla'\], which select the path's variant"):
        produce(ProduceRequest(bad, tmp_path / "model.onnx", None, None))
    assert path.selectors["jit_compile"] is False
    plain = _spec(producer="test_paths:_reports_a_selector")  # no selectors: a reported value like any other
    assert produce(ProduceRequest(plain, tmp_path / "model.onnx", None, None)) == {"enable_xla": False}
