"""The shared export front-end: every framework's export() hands each argument to the common flow or
to its adapter, the reference outputs are what the source runner computes, and status.config is the
typed ExportConfig, also in status.yaml."""

from __future__ import annotations

import inspect
from dataclasses import fields

import numpy as np
import pytest
import yaml

import model_navigator as nav
from model_navigator.api.frontend import ExportArguments
from model_navigator.core.config import ExportConfig, ProfilerConfig
from model_navigator.core.enums import Format, Framework, JitType
from model_navigator.core.errors import PackageError
from model_navigator.core.samples import load_sample_dir
from model_navigator.core.status import NavigatorStatus
from model_navigator.core.workspace import Workspace

# The arguments each framework's adapter takes itself (everything else is an ExportArguments field).
ADAPTER_ARGUMENTS = {
    "model_navigator.api.torch": {"model", "jit_options", "precison_mode", "precision_mode", "onnx_dynamo"},
    "model_navigator.api.tensorflow": {"model"},
    "model_navigator.api.jax": {"model", "model_params", "enable_xla", "jit_compile"},
    "model_navigator.api.onnx": {"model"},
}


@pytest.mark.parametrize("module_name", sorted(ADAPTER_ARGUMENTS))
def test_every_export_argument_reaches_the_flow_or_the_adapter(module_name):
    import importlib

    # import the module's source without importing its framework: signatures only
    module = importlib.import_module(module_name)
    parameters = set(inspect.signature(module.export).parameters)
    common = {f.name for f in fields(ExportArguments)} - {"dataloader"}
    taken = parameters - ADAPTER_ARGUMENTS[module_name] - {"dataloader"}
    assert taken <= common, f"{module_name}.export takes {sorted(taken - common)}, which nothing reads"
    assert ADAPTER_ARGUMENTS[module_name] <= parameters


def test_reference_outputs_are_what_the_source_runner_computes(workdir, linear_model, linear_dataloader):
    package = nav.torch.export(
        linear_model,
        linear_dataloader,
        workdir=workdir,
        target_formats=("torchscript",),
        jit_options=("trace",),
        run_profiling=False,
        verbose=False,
    )
    workspace = Workspace(workdir)
    inputs = load_sample_dir(workspace.input_dir("correctness"))
    outputs = load_sample_dir(workspace.output_dir("correctness"))
    assert inputs and len(inputs) == len(outputs)
    runner = package.get_runner(format=nav.Format.TORCH, runtime=nav.RuntimeProvider.CPU)
    with runner:
        for sample, expected in zip(inputs, outputs, strict=True):
            got = runner.infer(sample)
            assert list(got) == list(expected)
            for name in expected:
                np.testing.assert_array_equal(got[name], expected[name])  # the same computation, bit for bit


def test_status_config_is_typed_and_round_trips_through_status_yaml(workdir, linear_model, linear_dataloader):
    package = nav.torch.export(
        linear_model,
        linear_dataloader,
        workdir=workdir,
        target_formats=("torchscript",),
        jit_options=("script",),
        run_profiling=False,
        verbose=False,
        opset=15,
    )
    config = package.status.config
    assert isinstance(config, ExportConfig)
    assert config.opset == 15 and config.target_device == "cpu" and config.batch_dim == 0
    assert isinstance(config.profiler_config, ProfilerConfig)
    assert config.target_formats == (Format.TORCHSCRIPT,) and config.jit_options == (JitType.SCRIPT,)
    assert not hasattr(config, "__getitem__")  # typed fields only: no second, dict-style way to read it
    on_disk = yaml.safe_load((workdir / "status.yaml").read_text())["config"]
    assert on_disk == config.to_dict()
    assert NavigatorStatus.load(workdir).config == config


def test_a_hand_written_status_without_config_gets_one_and_a_malformed_one_is_refused(tmp_path, caplog):
    status = NavigatorStatus(model_name="m", framework="torch")
    assert status.config.framework.value == "torch" and status.config.model_name == "m"
    status = NavigatorStatus(model_name="m", framework="torch", config={"target_device": "cpu", "batch_dim": None})
    assert status.config.batch_dim is None
    status.save(tmp_path)
    data = yaml.safe_load((tmp_path / "status.yaml").read_text())
    data["config"]["no_such_option"] = 1  # written by a newer model-navigator: read, the option dropped, said
    with caplog.at_level("WARNING", logger="model_navigator"):
        assert NavigatorStatus.from_dict(data).config.batch_dim is None
    assert "no_such_option" in caplog.text
    data["config"]["batch_dim"] = "not an int"
    with pytest.raises(PackageError, match="malformed"):
        NavigatorStatus.from_dict(data)
    data["config"] = ["not", "a", "mapping"]
    with pytest.raises(PackageError, match="mapping"):
        NavigatorStatus.from_dict(data)


def test_an_error_that_surfaces_when_outputs_are_read_names_the_sample(workdir):
    """JAX computes asynchronously: a failure shows when the arrays are read (flatten), and it is
    reported as the model's failure on that sample, like one raised by the call itself."""
    from model_navigator.api.frontend import FrameworkAdapter, reference_outputs
    from model_navigator.core.errors import ModelNavigatorError
    from model_navigator.core.samples import collect_samples
    from model_navigator.runners.base import SourceRunner

    class LateFailure(SourceRunner):
        def _load(self):
            pass

        def call(self, feed):
            return feed["input__0"]

        def flatten(self, output):
            raise RuntimeError("XlaRuntimeError: INTERNAL: the kernel failed")

    class Adapter(FrameworkAdapter):
        what = "The predict function"

        def source_runner(self, sample_set, inputs, device):
            return LateFailure(inputs, [], device)

    samples = collect_samples([np.ones((2, 3), np.float32)], None, 0)
    failed = r"The predict function failed on dataloader item 0, position 1 in its batch .*XlaRuntime"
    with pytest.raises(ModelNavigatorError, match=failed):
        reference_outputs(Adapter(None), samples, [1], "cpu", None)


def test_nav_onnx_records_minimum_segment_size_unchecked(workdir, tmp_path, linear_model):
    """It applies to TF-TRT, which ONNX has not: any value is recorded, as before, not refused."""
    import torch

    path = tmp_path / "linear.onnx"
    torch.onnx.export(
        linear_model.eval(),
        (torch.randn(2, 5),),
        str(path),
        input_names=["x"],
        dynamo=False,
        dynamic_axes={"x": {0: "batch"}},
    )
    package = nav.onnx.export(
        str(path), [np.ones((2, 5), np.float32)], workdir=workdir, minimum_segment_size=0, run_profiling=False
    )
    assert package.status.config.minimum_segment_size == 0 and package.get_status(nav.Format.ONNX)


def test_minimum_segment_size_is_checked_only_where_the_framework_declares_tf_trt(workdir, linear_model):
    """TF-TRT's option: TensorFlow and JAX declare TF-TRT paths, PyTorch none (its export() does not
    even take the option), so a value PyTorch receives through the shared flow is recorded, not checked."""
    from model_navigator.api.frontend import export
    from model_navigator.api.torch import TorchAdapter
    from model_navigator.paths.registry import paths_for

    declares = {fw: any(s.format == Format.TF_TRT for s in paths_for(fw)) for fw in Framework}
    assert declares == {Framework.TORCH: False, Framework.TENSORFLOW: True, Framework.JAX: True, Framework.ONNX: False}
    args = ExportArguments(
        dataloader=[np.ones((2, 5), np.float32)],
        workdir=workdir,
        target_formats=("torchscript",),
        minimum_segment_size=0,
        run_profiling=False,
        verbose=False,
    )
    package = export(TorchAdapter(linear_model, ("script",), "hierarchy", False), args)
    assert package.status.config.minimum_segment_size == 0 and package.get_status(nav.Format.TORCHSCRIPT)


def test_the_export_context_is_built_from_the_samples_in_memory(linear_model):
    """export() hands the exporters its own samples: nothing is read back from a workspace (there is none here)."""
    from model_navigator.api.torch import TorchAdapter
    from model_navigator.core.config import ExportConfig
    from model_navigator.core.samples import collect_samples, infer_metadata, select_samples

    rng = np.random.default_rng(0)
    sample_set = collect_samples([rng.standard_normal((3, 5)).astype(np.float32) for _ in range(2)], None, 0)
    select_samples(sample_set, 100)
    inputs = infer_metadata(sample_set.samples, sample_set.input_names, 0, {})
    outputs = infer_metadata([{"output__0": np.zeros((1, 3), np.float32)}], ["output__0"], 0, {})
    config = ExportConfig(framework=Framework.TORCH, model_name="m", target_formats=(Format.ONNX,))
    context = TorchAdapter(linear_model, ("trace",), "hierarchy", False).export_context(
        config, inputs, outputs, sample_set
    )
    largest = max(sample_set.of_set("conversion"), key=lambda s: sum(a.size for a in s.values()))
    assert context.example["input__0"].shape == (2, 5)  # the largest conversion sample, as a batch of 2
    np.testing.assert_array_equal(context.example["input__0"][1], largest["input__0"][0])
    assert (context.input_names, context.output_names) == (("input__0",), ("output__0",))
