"""End-to-end nav.torch.export on real torch + onnxruntime (CPU): paths, workspace, status.yaml,
correctness, profiling and the PackageDescriptor API.

Most exports run with isolation=False (steps in this process) to stay fast; one test runs the
default isolation=True (the worker process).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import helpers
import models
import numpy as np
import pytest
import yaml

import model_navigator as nav
from model_navigator import PackageDescriptor, UserInputError
from model_navigator.core.enums import StepStatus
from model_navigator.core.samples import load_sample, load_sample_dir
from model_navigator.core.serialization import to_plain

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

CPU = nav.RuntimeProvider.CPU
CPU_PATHS = ("torchscript-script", "torchscript-trace", "torch-exportedprogram", "onnx")
TRACED_PATHS = ("torchscript-trace", "torch-exportedprogram", "onnx")
TRACED_CHECKED_PATHS = ("torchscript-trace", "onnx")  # torch.export refuses to specialise a dynamic axis
TRT_PATHS = (
    "trt-fp32",
    "trt-fp16",
    "torch-trt-script-fp32",
    "torch-trt-script-fp16",
    "torch-trt-trace-fp32",
    "torch-trt-trace-fp16",
)
ARTIFACTS = {
    "torchscript-script": "model.pt",
    "torchscript-trace": "model.pt",
    "torch-exportedprogram": "model.pt2",
    "onnx": "model.onnx",
}
SELECTORS = {
    "torchscript-script": dict(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.SCRIPT),
    "torchscript-trace": dict(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.TRACE),
    "torch-exportedprogram": dict(format=nav.Format.TORCH_EXPORTEDPROGRAM),
    "onnx": dict(format=nav.Format.ONNX),
}

# Every export here asks for target_device="cpu": the CPU paths and runtimes exist on a GPU machine too, so these
# tests run and mean the same there (GPU paths skipped for the CPU target; their own tests are elsewhere).


def _status_yaml(root: Path) -> dict:
    return yaml.safe_load((root / "status.yaml").read_text())


def _correctness(package: PackageDescriptor, key: str):
    return package.status.paths[key].runtimes[CPU].correctness


def _torch_out(model, *args, **kwargs):
    with torch.inference_mode():
        return model(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# The reference PyTorch example (Linear 5 -> 7), exported once for this module
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.manual_seed(models.SEED)
    model = models.linear_model()
    dataloader = models.linear_dataloader(batches=10, batch_size=3, random=True)
    workdir = tmp_path_factory.mktemp("reference") / "navigator_workdir"
    package = nav.torch.export(
        model=model,
        model_name="example_model",
        dataloader=dataloader,
        opset=13,
        input_names=("input",),
        dynamic_axes={"input": {0: "batch"}},
        workdir=workdir,
        isolation=False,
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    return package, model, dataloader


def test_reference_cpu_paths_ok(reference):
    package, _, _ = reference
    assert isinstance(package, PackageDescriptor)
    formats = package.get_formats_status()
    for key in CPU_PATHS:
        assert formats[key] is True, (key, package.status.paths[key].reason)
        assert package.status.paths[key].status == StepStatus.OK
        assert package.status.paths[key].reason is None
    assert package.get_status(format=nav.Format.ONNX) is True
    assert package.get_status(format=nav.Format.ONNX, runtime_provider=CPU) is True
    assert package.get_status(format="torchscript", jit_type="trace", runtime_provider="CPUExecutionProvider")
    assert package.get_status(format=nav.Format.TORCH_EXPORTEDPROGRAM, runtime_provider=CPU)


def test_reference_trt_family_skipped_with_reason(reference):
    package, _, _ = reference
    formats = package.get_formats_status()
    for key in TRT_PATHS:
        path = package.status.paths[key]
        assert formats[key] is False
        assert path.status == StepStatus.SKIPPED, key
        assert path.reason and ("tensorrt" in path.reason.lower() or "gpu" in path.reason.lower()), path.reason
        assert path.model_path is None
    assert package.get_status(format=nav.Format.TENSORRT) is False
    assert package.get_status(format=nav.Format.TORCH_TRT) is False


def test_reference_correctness_recorded_per_output(reference):
    package, _, _ = reference
    for key in CPU_PATHS:
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        assert set(result.per_output) == {"output__0"}
        err = result.per_output["output__0"]
        assert math.isfinite(err.max_abs_error) and 0.0 <= err.max_abs_error < 1e-4
        assert math.isfinite(err.max_rel_error) and err.max_rel_error >= 0.0
        assert result.sample_count == 30  # 10 batches of 3, fewer than the default sample_count 100
        assert result.batch_sizes == [1, 3]  # 1 and the dataloader's batch size
        assert result.atol is None and result.rtol is None


def test_reference_status_yaml(reference):
    package, _, _ = reference
    data = _status_yaml(package.workdir)
    assert isinstance(data["format_version"], int) and data["format_version"] >= 1
    assert data["model_name"] == "example_model"
    assert data["framework"] == "torch"
    env = data["environment"]
    assert env["python"].count(".") == 2
    assert env["os"] and env["cpu"]
    assert env["packages"]["torch"] == torch.__version__
    assert "onnxruntime" in env["packages"] and "onnx" in env["packages"] and "numpy" in env["packages"]
    assert "git" in data
    config = data["config"]
    assert config["opset"] == 13 and config["batch_dim"] == 0 and config["target_device"] == "cpu"
    assert data["inputs"] == [{"name": "input", "shape": [-1, 5], "dtype": "float32"}]
    assert data["outputs"] == [{"name": "output__0", "shape": [-1, 7], "dtype": "float32"}]
    for key in CPU_PATHS:
        path = data["paths"][key]
        assert path["status"] == "ok"
        assert path["model_path"] == f"{key}/{ARTIFACTS[key]}"
        runtime = path["runtimes"]["CPUExecutionProvider"]
        assert runtime["verified"] is False  # nothing is verified until the user says so (set_verified)
        assert runtime["correctness"]["status"] == "ok"
        assert set(runtime["correctness"]["per_output"]["output__0"]) >= {"max_abs_error", "max_rel_error"}
        assert runtime["performance"]["status"] == "ok"
    assert data["paths"]["torchscript-script"]["jit_type"] == "script"
    assert data["paths"]["torchscript-trace"]["jit_type"] == "trace"
    assert data["paths"]["onnx"]["format"] == "onnx"
    for key in TRT_PATHS:
        assert data["paths"][key]["status"] == "skipped" and data["paths"][key]["reason"]
    assert data["paths"]["trt-fp16"]["precision"] == "fp16"


def test_reference_workspace_layout(reference):
    package, model, _ = reference
    root = package.workdir
    assert (root / "status.yaml").is_file()
    assert (root / "navigator.log").stat().st_size > 0
    data = _status_yaml(root)
    for kind in ("model_input", "model_output"):
        for sample_set in ("conversion", "correctness", "profiling"):
            files = sorted(p.name for p in (root / kind / sample_set).glob("*.npz"))
            expected = [f"{i}.npz" for i in range(len(files))]
            assert sorted(files) == sorted(expected), (kind, sample_set)
            assert sorted(data["samples"][sample_set]) == sorted(expected)
    assert len(list((root / "model_input" / "correctness").glob("*.npz"))) == 30
    assert len(list((root / "model_input" / "profiling").glob("*.npz"))) == 1
    assert len(list((root / "model_input" / "conversion").glob("*.npz"))) >= 1
    # Saved outputs are the source model's outputs on the saved inputs.
    inputs = load_sample_dir(root / "model_input" / "correctness")
    outputs = load_sample_dir(root / "model_output" / "correctness")
    for x, y in zip(inputs[:5], outputs[:5], strict=True):
        assert list(x) == ["input"] and list(y) == ["output__0"]
        expected = _torch_out(model, torch.from_numpy(x["input"])).numpy()
        np.testing.assert_allclose(y["output__0"], expected, rtol=0, atol=0)
    for key in CPU_PATHS:
        folder = root / key
        assert (folder / ARTIFACTS[key]).is_file() and (folder / ARTIFACTS[key]).stat().st_size > 0
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["path"] == key
        assert (folder / "format.log").is_file()
        for step in ("export", "correctness", "profiling"):
            assert (folder / f"reproduce_{step}.py").is_file(), (key, step)
            sh = folder / f"reproduce_{step}.sh"
            assert sh.is_file() and os.access(sh, os.X_OK), (key, step)


def test_reference_get_runner_matches_source(reference):
    package, model, _ = reference
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 5):
        x = torch.randn(batch, 5, generator=generator)
        expected = _torch_out(model, x).numpy()
        for key in CPU_PATHS:
            runner = package.get_runner(runtime=CPU, **SELECTORS[key])
            with runner:
                out = runner.infer({"input": x.numpy()})
            assert list(out) == ["output__0"], key
            np.testing.assert_allclose(out["output__0"], expected, rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.filterwarnings("ignore:Returning NumPy data types:DeprecationWarning")
def test_reference_runner_works_with_polygraphy_comparator(reference):
    from polygraphy.backend.base import BaseRunner
    from polygraphy.comparator import Comparator

    package, _, _ = reference
    runners = [package.get_runner(runtime=CPU, **SELECTORS[key]) for key in ("onnx", "torchscript-trace")]
    assert all(isinstance(r, BaseRunner) for r in runners)
    with runners[0]:
        meta = runners[0].get_input_metadata()
        assert list(meta.keys()) == ["input"]
    feed = [{"input": np.ones((2, 5), np.float32)}]
    results = Comparator.run(runners, data_loader=feed)
    assert bool(Comparator.compare_accuracy(results))


def test_reference_runner_metadata_uses_polygraphy_datatypes(reference):
    import warnings

    package, _, _ = reference
    runner = package.get_runner(format=nav.Format.ONNX, runtime=CPU)
    with runner, warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        meta = runner.get_input_metadata()
    assert meta["input"].shape == [None, 5] or tuple(meta["input"].shape) == (None, 5)


def test_reference_get_model_returns_loadable_objects(reference):
    import onnx

    package, model, _ = reference
    x = torch.randn(4, 5)
    expected = _torch_out(model, x)
    script = package.get_model(format=nav.Format.TORCHSCRIPT, jit_type=nav.JitType.SCRIPT)
    traced = package.get_model(format="torchscript", jit_type="trace")
    for module in (script, traced):
        assert isinstance(module, torch.jit.ScriptModule)
        torch.testing.assert_close(_torch_out(module, x), expected)
    program = package.get_model(format=nav.Format.TORCH_EXPORTEDPROGRAM)
    assert isinstance(program, torch.export.ExportedProgram)
    torch.testing.assert_close(_torch_out(program.module(), x), expected)
    proto = package.get_model(format=nav.Format.ONNX)
    assert isinstance(proto, onnx.ModelProto)
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output__0"]
    assert any(op.domain in ("", "ai.onnx") and op.version == 13 for op in proto.opset_import)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the batch axis is symbolic
    assert package.get_model(format="torch") is model


def test_reference_get_model_errors(reference):
    package, _, _ = reference
    with pytest.raises(UserInputError, match=r"jit_type"):  # script and trace both match
        package.get_model(format=nav.Format.TORCHSCRIPT)
    # a skipped path has no model: None, as the reference (its file is missing); get_runner says why
    assert package.get_model(format=nav.Format.TENSORRT, precision=nav.TensorRTPrecision.FP32) is None
    with pytest.raises(UserInputError, match=r"trt-fp32.*skipped"):
        package.get_runner(format=nav.Format.TENSORRT, precision=nav.TensorRTPrecision.FP32)
    with pytest.raises(UserInputError, match=r"format"):
        package.get_model(format="not-a-format")


def test_reference_set_verified_persists(reference):
    package, _, _ = reference
    before = _status_yaml(package.workdir)
    assert before["paths"]["onnx"]["runtimes"]["CPUExecutionProvider"]["verified"] is False
    package.set_verified(format=nav.Format.ONNX, runtime=CPU)
    after = _status_yaml(package.workdir)
    assert after["paths"]["onnx"]["runtimes"]["CPUExecutionProvider"]["verified"] is True
    assert after["paths"]["torchscript-trace"]["runtimes"]["CPUExecutionProvider"]["verified"] is False
    reloaded = PackageDescriptor.from_workdir(package.workdir)
    assert reloaded.status.paths["onnx"].runtimes[CPU].verified is True
    assert reloaded.get_formats_status() == package.get_formats_status()
    with pytest.raises(UserInputError, match=r"skipped"):
        package.set_verified(format=nav.Format.TENSORRT, precision="fp16", runtime="TensorrtExecutionProvider")


def test_reference_formats_performance(reference):
    package, _, _ = reference
    performance = package.get_formats_performance()
    assert not [k for k in performance if k.startswith("torch-CPU")]  # the source model is no format
    for key in CPU_PATHS:
        figure = performance[f"{key}-CPUExecutionProvider"]
        assert isinstance(figure, float) and figure > 0, key
        perf = package.status.paths[key].runtimes[CPU].performance
        assert perf.status == StepStatus.OK
        assert [r.batch_size for r in perf.results] == [1, 3]
        for r in perf.results:
            assert 0 < r.p50_ms <= r.p90_ms <= r.p95_ms <= r.p99_ms
            assert r.throughput > 0 and r.windows >= 3 and isinstance(r.stable, bool)
        assert figure == min(perf.results, key=lambda r: r.batch_size).p50_ms
    for key in TRT_PATHS:  # skipped here: no figures, no entries
        assert not [k for k in performance if k.startswith(f"{key}-")]


@pytest.mark.slow
def test_reference_reproduce_scripts_run_from_the_workspace_root(reference, tmp_path):
    package, _, _ = reference
    root = tmp_path / "copy"
    shutil.copytree(package.workdir, root)
    for step in ("correctness", "profiling"):
        out = subprocess.run(
            ["bash", f"onnx/reproduce_{step}.sh"],
            cwd=root,
            capture_output=True,
            text=True,
            env=helpers.repo_env(),
            timeout=300,
        )
        assert out.returncode == 0, (step, out.stdout[-2000:], out.stderr[-2000:])
        assert '"status": "ok"' in out.stdout, step


@pytest.mark.slow
def test_reference_reproduce_export_needs_only_get_model(reference, tmp_path):
    package, _, _ = reference
    root = tmp_path / "copy"
    shutil.copytree(package.workdir, root)
    script = root / "onnx" / "reproduce_export.py"
    text = script.read_text()
    assert "def get_model():" in text
    (root / "onnx" / "model.onnx").unlink()
    patched = text.replace(
        "def get_model():\n",
        f"def get_model():\n    sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"    import models\n    return models.linear_model()\n\n\ndef _unused():\n",
    )
    script.write_text(patched)
    out = subprocess.run(
        ["bash", "onnx/reproduce_export.sh"],
        cwd=root,
        capture_output=True,
        text=True,
        env=helpers.repo_env(),
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    assert (root / "onnx" / "model.onnx").is_file()


# ------------------------------------------------------------------------------------------------
# Small CNN: profiling at batch 1 and the dataloader's batch size
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    model = models.cnn_model()
    package = nav.torch.export(
        model=model,
        dataloader=models.cnn_dataloader(batches=3, batch_size=4),
        workdir=tmp_path_factory.mktemp("cnn") / "navigator_workdir",
        isolation=False,
        verbose=False,
        disable_git_info=True,
        sample_count=5,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    return package, model


@pytest.mark.slow
def test_cnn_paths_ok_and_profiled_at_1_and_dataloader_batch(cnn):
    package, _ = cnn
    assert package.status.dataloader["batch_size"] == 4
    for key in CPU_PATHS:
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, (key, path.reason)
        result = path.runtimes[CPU]
        assert result.correctness.status == StepStatus.OK
        assert result.correctness.sample_count == 5
        assert result.correctness.batch_sizes == [1, 4]
        assert result.performance.status == StepStatus.OK
        assert [r.batch_size for r in result.performance.results] == [1, 4]
        assert all(r.p50_ms > 0 and r.throughput > 0 for r in result.performance.results)


@pytest.mark.slow
def test_cnn_metadata_and_git_disabled(cnn):
    package, _ = cnn
    data = _status_yaml(package.workdir)
    assert data["inputs"] == [{"name": "input__0", "shape": [-1, 3, 32, 32], "dtype": "float32"}]
    assert data["outputs"] == [{"name": "output__0", "shape": [-1, 4], "dtype": "float32"}]
    assert data["git"] is None
    assert len(data["samples"]["correctness"]) == 5


@pytest.mark.slow
def test_cnn_runner_on_a_new_batch(cnn):
    package, model = cnn
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    expected = _torch_out(model, x).numpy()
    for key in CPU_PATHS:
        with package.get_runner(runtime=CPU, **SELECTORS[key]) as runner:
            out = runner.infer({"input__0": x.numpy()})
        np.testing.assert_allclose(out["output__0"], expected, rtol=1e-4, atol=1e-5, err_msg=key)


# ------------------------------------------------------------------------------------------------
# Keyword inputs, int64 token ids of varying length, two named outputs
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    model = models.token_model()
    package = nav.torch.export(
        model=model,
        dataloader=models.token_dataloader(),
        workdir=tmp_path_factory.mktemp("tok") / "wd",
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_device="cpu",
    )
    return package, model


def test_dict_inputs_all_paths_pass_correctness(tokens):
    package, _ = tokens
    for key in CPU_PATHS:
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, (key, path.reason)
        result = path.runtimes[CPU].correctness
        assert result.status == StepStatus.OK, (key, result.reason)
        assert set(result.per_output) == {"logits", "pooled"}
        assert result.batch_sizes == [1, 2]
        assert path.runtimes[CPU].performance is None  # run_profiling=False


def test_dict_inputs_metadata(tokens):
    package, _ = tokens
    data = _status_yaml(package.workdir)
    # forward()'s order, although the dataloader's dicts list attention_mask first
    assert data["inputs"] == [
        {"name": "input_ids", "shape": [-1, -1], "dtype": "int64"},
        {"name": "attention_mask", "shape": [-1, -1], "dtype": "int64"},
    ]
    assert [o["name"] for o in data["outputs"]] == ["logits", "pooled"]
    assert data["outputs"][0]["shape"] == [-1, -1, 3]
    assert data["outputs"][1]["shape"] == [-1, 8]
    assert data["config"]["forward_kw_names"] == ["input_ids", "attention_mask"]


def test_dict_inputs_conversion_samples_hold_shortest_and_longest(tokens):
    package, _ = tokens
    lengths = {s["input_ids"].shape[1] for s in load_sample_dir(package.workdir / "model_input" / "conversion")}
    assert min(models.TOKEN_SEQ_LENS) in lengths and max(models.TOKEN_SEQ_LENS) in lengths
    outputs = load_sample(package.workdir / "model_output" / "conversion" / "0.npz")
    assert list(outputs) == ["logits", "pooled"]


def test_dict_inputs_runner_on_an_unseen_length(tokens):
    package, model = tokens
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 50, (3, 15), generator=generator)
    mask = torch.ones(3, 15, dtype=torch.int64)
    mask[:, 10:] = 0
    expected = _torch_out(model, input_ids=ids, attention_mask=mask)
    for key in CPU_PATHS:
        with package.get_runner(runtime=CPU, **SELECTORS[key]) as runner:
            out = runner.infer({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        assert list(out) == ["logits", "pooled"], key
        for name in ("logits", "pooled"):
            np.testing.assert_allclose(out[name], expected[name].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)


# ------------------------------------------------------------------------------------------------
# A model TorchScript cannot script
# ------------------------------------------------------------------------------------------------


def test_script_failure_is_recorded_and_other_paths_go_on(workdir, script_failing_model, capfd):
    package = nav.torch.export(
        model=script_failing_model,
        dataloader=models.linear_dataloader(random=True),
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_device="cpu",
    )
    assert capfd.readouterr().out == ""  # verbose=False: the user's stdout stays clean, failure or not
    script = package.status.paths["torchscript-script"]
    assert script.status == StepStatus.FAILED
    assert "Lambda" in script.reason and "UnsupportedNodeError" in script.reason, script.reason
    assert script.model_path is None
    assert package.get_status(format="torchscript", jit_type="script") is False
    assert not script.runtimes  # no correctness/profiling on a failed path
    for key in TRACED_PATHS:
        assert package.status.paths[key].status == StepStatus.OK, key
        assert _correctness(package, key).status == StepStatus.OK, key
    folder = workdir / "torchscript-script"
    assert (folder / "reproduce_export.py").is_file() and (folder / "reproduce_export.sh").is_file()
    assert (folder / "config.yaml").is_file()
    assert "Lambda" in (folder / "format.log").read_text()
    data = _status_yaml(workdir)
    assert data["paths"]["torchscript-script"]["status"] == "failed"
    assert "Lambda" in data["paths"]["torchscript-script"]["reason"]


# ------------------------------------------------------------------------------------------------
# atol / rtol
# ------------------------------------------------------------------------------------------------


class NoisyLinear(torch.nn.Module):
    """Linear 5 -> 7 plus uniform noise of at most NOISE: every run (and so every exported path)
    differs from the saved reference outputs by a small, bounded amount."""

    NOISE = 1e-3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(models.SEED)
        self.linear = torch.nn.Linear(5, 7)

    def forward(self, x):
        y = self.linear(x)
        return y + torch.rand_like(y) * 1e-3


def _export_noisy(workdir: Path, **kwargs) -> PackageDescriptor:
    return nav.torch.export(
        model=NoisyLinear(),
        dataloader=models.linear_dataloader(batches=4, random=True),
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        **kwargs,
        target_device="cpu",
    )


def test_without_tolerances_the_fp32_default_judges_and_records_the_errors(workdir):
    package = _export_noisy(workdir)  # noise of up to 1e-3 is far beyond float32 rounding
    for key in CPU_PATHS:
        result = _correctness(package, key)
        assert result.status == StepStatus.FAILED, (key, result.reason)
        assert result.tolerance == "default fp32" and "atol=0.0001, rtol=0.001" in result.reason
        err = result.per_output["output__0"]
        assert 1e-6 < err.max_abs_error <= NoisyLinear.NOISE + 1e-5, (key, err)
        assert (err.atol, err.rtol) == (1e-4, 1e-3)
        assert package.get_status(**SELECTORS[key]) is False
    assert not any(package.get_formats_status().values())


def test_infinite_atol_only_measures(workdir):
    package = _export_noisy(workdir, atol=float("inf"))
    for key in CPU_PATHS:
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        err = result.per_output["output__0"].max_abs_error
        assert 1e-6 < err <= NoisyLinear.NOISE + 1e-5, (key, err)
        assert result.per_output["output__0"].max_rel_error > 0


def test_per_output_tolerances_must_name_outputs(workdir):
    with pytest.raises(nav.UserInputError, match=r"`atol` names \['logits'\].*outputs: \['output__0'\]"):
        _export_noisy(workdir, atol={"logits": 1e-2})
    assert not workdir.exists()
    package = _export_noisy(workdir, atol={"output__0": 1e-2})
    result = _correctness(package, "onnx")
    assert result.status == StepStatus.OK and result.per_output["output__0"].atol == 1e-2


def test_generous_atol_passes(workdir):
    package = _export_noisy(workdir, atol=1e-2)
    for key in CPU_PATHS:
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        assert result.atol == 1e-2


@pytest.mark.parametrize(
    "tolerances", [dict(atol=1e-7, rtol=1e-7), dict(atol=1e-7), dict(rtol=1e-8)], ids=["atol+rtol", "atol", "rtol"]
)
def test_tight_tolerances_fail_with_a_reason(workdir, tolerances):
    package = _export_noisy(workdir, **tolerances)
    for key in CPU_PATHS:
        path = package.status.paths[key]
        assert path.status == StepStatus.OK  # the export itself worked
        result = path.runtimes[CPU].correctness
        assert result.status == StepStatus.FAILED, key
        assert "output__0" in result.reason and "exceed" in result.reason, result.reason
        assert "reproduce_correctness.sh" in result.reason
        assert result.per_output["output__0"].max_abs_error > 0
        assert package.get_status(runtime_provider=CPU, **SELECTORS[key]) is False


def test_tight_tolerances_skip_profiling(workdir):
    package = nav.torch.export(
        model=NoisyLinear(),
        dataloader=models.linear_dataloader(batches=2, random=True),
        workdir=workdir,
        isolation=False,
        verbose=False,
        atol=1e-9,
        rtol=1e-9,
        target_formats=("onnx",),
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    result = package.status.paths["onnx"].runtimes[CPU]
    assert result.correctness.status == StepStatus.FAILED
    assert result.performance.status == StepStatus.SKIPPED
    assert "correctness" in result.performance.reason


# ------------------------------------------------------------------------------------------------
# Exports specialised to the batch size they were traced with
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unrolled(tmp_path_factory):
    return nav.torch.export(
        model=models.batch_unrolled_model(),
        dataloader=models.linear_dataloader(batches=4, batch_size=3, random=True),
        workdir=tmp_path_factory.mktemp("unrolled") / "wd",
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_device="cpu",
    )


def test_batch_specialised_export_fails_at_export_with_torchs_message(unrolled):
    # torch.export marks the batch axis Dim.DYNAMIC: specialising it fails the export itself
    path = unrolled.status.paths["torch-exportedprogram"]
    assert path.status == StepStatus.FAILED
    assert "specialized it to be a constant (2)" in path.reason, path.reason
    assert unrolled.get_status(format=nav.Format.TORCH_EXPORTEDPROGRAM) is False


def test_batch_specialised_traced_exports_fail_correctness(unrolled):
    package = unrolled
    for key in TRACED_CHECKED_PATHS:
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, key  # the export itself does not notice
        result = path.runtimes[CPU].correctness
        assert result.status == StepStatus.FAILED, key
        assert result.reason
    # Scripting keeps the Python loop, so it generalises over the batch size.
    script = _correctness(package, "torchscript-script")
    assert script.status == StepStatus.OK, script.reason
    assert script.batch_sizes == [1, 3]


def test_batch_specialised_failure_reasons_carry_the_framework_message(unrolled):
    assert "out of data bounds" in _correctness(unrolled, "onnx").reason


def test_torchscript_failure_reason_keeps_the_root_cause(unrolled):
    reason = _correctness(unrolled, "torchscript-trace").reason
    assert "out of range" in reason, reason


def test_batch_specialised_failure_reason_says_so(unrolled):
    for key in TRACED_CHECKED_PATHS:
        reason = _correctness(unrolled, key).reason
        assert "batch size" in reason.lower(), (key, reason)


# ------------------------------------------------------------------------------------------------
# Default isolation: steps run in the worker process
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_with_default_isolation(workdir):
    model = models.linear_model()
    package = nav.torch.export(
        model=model,
        model_name="isolated",
        dataloader=models.linear_dataloader(batches=4, random=True),
        opset=13,
        input_names=("input",),
        dynamic_axes={"input": {0: "batch"}},
        workdir=workdir,
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    # The default runs conversions and foreign runtimes (ONNX Runtime) in a worker process.
    assert to_plain(package.status.config.isolation) in (True, "auto", "full")
    for key in CPU_PATHS:
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, (key, path.reason)
        result = path.runtimes[CPU]
        assert result.correctness.status == StepStatus.OK, (key, result.correctness.reason)
        assert result.performance.status == StepStatus.OK, (key, result.performance.reason)
        assert [r.batch_size for r in result.performance.results] == [1, 3]
    for key in TRT_PATHS:
        assert package.status.paths[key].status == StepStatus.SKIPPED
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    with package.get_runner(format=nav.Format.ONNX, runtime=CPU) as runner:
        out = runner.infer({"input": x})
    np.testing.assert_allclose(out["output__0"], _torch_out(model, torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Keyword samples for a forward whose decorator injects keywords (transformers 5's pattern)
# ------------------------------------------------------------------------------------------------


def _injects_use_cache(forward):
    import functools

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        kwargs.setdefault("use_cache", False)
        return forward(self, *args, **kwargs)

    return wrapper


class KeywordForward(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(models.SEED)
        self.embedding = torch.nn.Embedding(50, 8)

    @_injects_use_cache
    def forward(self, input_ids, attention_mask=None, use_cache=None, *, scale: float = 1.0, **kwargs):
        hidden = self.embedding(input_ids) * attention_mask.unsqueeze(-1).to(torch.float32) * scale
        return {"hidden": hidden, "pooled": hidden.mean(dim=1)}


def test_keyword_samples_export_to_onnx_through_a_positional_adapter(workdir):
    dataloader = [
        {"input_ids": torch.randint(0, 50, (2, seq)), "attention_mask": torch.ones(2, seq, dtype=torch.long)}
        for seq in (4, 7)
    ]
    package = nav.torch.export(
        model=KeywordForward(),
        dataloader=dataloader,
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        runtimes=("CPUExecutionProvider",),
        target_formats=("torchscript", "torch-exportedprogram", "onnx"),
        jit_options=("trace",),
        target_device="cpu",
    )
    for key in ("torchscript-trace", "torch-exportedprogram", "onnx"):
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, (key, path.reason)
        assert _correctness(package, key).status == StepStatus.OK, (key, _correctness(package, key).reason)
    import onnx

    graph = onnx.load(str(workdir / "onnx" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["hidden", "pooled"]


# ------------------------------------------------------------------------------------------------
# Known exporter limits: the reason keeps what failed and says what works instead
# ------------------------------------------------------------------------------------------------


def test_known_exporter_limits_get_a_hint(workdir):
    namespace: dict = {}
    exec("def forward(self, x):\n    return torch.diff(x, dim=-1) * 2.0\n", {"torch": torch}, namespace)
    SourceLess = type("SourceLess", (torch.nn.Module,), {"forward": namespace["forward"]})  # no source file
    package = nav.torch.export(
        model=SourceLess(),
        dataloader=models.linear_dataloader(batches=2),
        workdir=workdir,
        isolation=False,
        verbose=False,
        run_profiling=False,
        target_formats=("torchscript", "onnx"),
        runtimes=("CPUExecutionProvider",),
        target_device="cpu",
    )
    script = package.status.paths["torchscript-script"]
    assert script.status == StepStatus.FAILED
    assert "Hint: torch.jit.script cannot read this model's source" in script.reason, script.reason
    onnx = package.status.paths["onnx"]
    assert onnx.status == StepStatus.FAILED and "aten::diff" in onnx.reason
    assert "Hint: " in onnx.reason and "onnx_dynamo=True" in onnx.reason
    assert package.status.paths["torchscript-trace"].status == StepStatus.OK


def test_a_failure_headline_keeps_the_line_that_says_what_failed():
    from model_navigator.steps.base import headline

    openvino = (
        "RuntimeError: Exception from src/inference/src/cpp/infer_request.cpp:75:\n"
        "Exception from src/plugins/intel_cpu/src/node.cpp:628:\n"
        "[CPU] Add node with name 'add' Check 'input_shape[1] == 3' failed: shapes [1,4] and [1,3] differ\n"
    )
    assert headline(openvino) == (
        "RuntimeError: [CPU] Add node with name 'add' Check 'input_shape[1] == 3' failed: shapes [1,4] and [1,3] differ"
    )
    assert headline("TypeError: bad argument") == "TypeError: bad argument"
    assert len(headline("ValueError: " + "x" * 500)) == 160
