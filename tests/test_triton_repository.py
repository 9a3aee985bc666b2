"""Triton model repositories from packages: layout, config.pbtxt (checked against Triton's
ModelConfig schema) for ONNX, TorchScript and SavedModel paths, runtimes, batching and the CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest

import model_navigator as nav
import helpers
from model_navigator.core.enums import Format, RuntimeProvider, StepStatus
from model_navigator.core.status import (
    CorrectnessResult,
    NavigatorStatus,
    PathStatus,
    PerformanceResult,
    ProfilingResult,
    RuntimeResult,
)
from model_navigator.core.tensor import TensorMetadata
from model_navigator.triton import TritonConfigError, parse_model_config, write_model_repository

pytest.importorskip("google.protobuf")

REPO_ROOT = Path(__file__).resolve().parents[1]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tensors(config, label: str) -> List[Dict]:
    return [{"name": t.name, "data_type": t.data_type, "dims": list(t.dims)} for t in getattr(config, label)]


def type_name(config, value: int) -> str:
    return (
        config.DESCRIPTOR.fields_by_name["input"]
        .message_type.fields_by_name["data_type"]
        .enum_type.values_by_number[value]
        .name
    )


@pytest.fixture(scope="module")
def cnn_package(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import models

    torch.manual_seed(0)
    workdir = tmp_path_factory.mktemp("triton") / "navigator_workdir"
    return nav.torch.export(
        models.cnn_model(),
        models.cnn_dataloader(),
        workdir=workdir,
        model_name="tiny cnn/v1",
        target_formats=("onnx", "torchscript"),
        jit_options=("trace",),
        profiler_config=helpers.light_profiler(batch_sizes=(1, 2, 4)),
        verbose=False,
    )


def test_onnx_repository_layout_and_config(cnn_package, tmp_path):
    repo = tmp_path / "model_repository"
    model = write_model_repository(cnn_package, repo, path_key="onnx", runtime="CPUExecutionProvider")
    assert model.model_dir == repo / "tiny_cnn_v1"  # the package's name, made a valid folder name
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == [
        "tiny_cnn_v1",
        "tiny_cnn_v1/1",
        "tiny_cnn_v1/1/model.onnx",
        "tiny_cnn_v1/config.pbtxt",
    ]
    assert sha(model.model_path) == sha(cnn_package.workdir / "onnx" / "model.onnx")

    config = parse_model_config(model.config_path.read_text())
    assert config.name == "tiny_cnn_v1"
    assert (config.platform, config.backend) == ("onnxruntime_onnx", "onnxruntime")
    assert config.max_batch_size == 4  # the largest profiled batch size
    expected = [{"name": "input__0", "data_type": config.input[0].data_type, "dims": [3, 32, 32]}]
    assert tensors(config, "input") == expected
    assert type_name(config, config.input[0].data_type) == "TYPE_FP32"
    assert tensors(config, "output")[0]["dims"] == [4] and config.output[0].name == "output__0"
    assert [(g.kind, g.count) for g in config.instance_group] == [(config.instance_group[0].KIND_CPU, 1)]
    assert config.HasField("dynamic_batching")
    measured = {
        r.batch_size: r.throughput
        for r in cnn_package.status.paths["onnx"].runtimes[RuntimeProvider.CPU].performance.results
    }
    best_batch = max((b for b in measured if b > 1), key=measured.get)
    assert list(config.dynamic_batching.preferred_batch_size) == [best_batch]

    # the served model is the exported one: ONNX Runtime runs the copied file with Triton's dims
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model.model_path), providers=["CPUExecutionProvider"])
    batch = np.zeros((config.max_batch_size, *config.input[0].dims), dtype=np.float32)
    assert session.run(None, {config.input[0].name: batch})[0].shape == (4, *config.output[0].dims)


def test_openvino_runtime_uses_tritons_openvino_backend(cnn_package, tmp_path):
    pytest.importorskip("openvino")
    model = write_model_repository(cnn_package, tmp_path, path_key="onnx", runtime="OpenVINO", model_name="cnn_ov")
    config = parse_model_config(model.config_path.read_text())
    assert config.backend == "openvino" and config.platform == ""
    assert config.default_model_filename == "model.onnx" and model.model_path.name == "model.onnx"
    assert config.parameters["PERFORMANCE_HINT"].string_value == "LATENCY"
    assert config.instance_group[0].kind == config.instance_group[0].KIND_CPU


def test_torchscript_repository_and_config(cnn_package, tmp_path):
    torch = pytest.importorskip("torch")
    model = write_model_repository(cnn_package, tmp_path, path_key="torchscript-trace", version=3, model_name="cnn_ts")
    assert model.version_dir == tmp_path / "cnn_ts" / "3" and model.model_path == model.version_dir / "model.pt"
    config = parse_model_config(model.config_path.read_text())
    assert (config.platform, config.backend) == ("pytorch_libtorch", "pytorch")
    assert [t.name for t in config.input] == ["input__0"] and [t.name for t in config.output] == ["output__0"]
    assert model.renamed == {}
    assert config.parameters["INFERENCE_MODE"].string_value == "true"
    assert config.max_batch_size == 4 and list(config.input[0].dims) == [3, 32, 32]
    module = torch.jit.load(str(model.model_path))
    assert tuple(module(torch.zeros(3, 3, 32, 32)).shape) == (3, 4)


def test_best_path_by_strategy_from_a_nav_package(cnn_package, tmp_path):
    package = tmp_path / "cnn.nav"
    cnn_package.save(package)
    model = write_model_repository(package, tmp_path / "repo", strategy="max-throughput")
    best = cnn_package.get_best("max-throughput")
    assert (model.path, model.runtime) == (best.path, best.runtime)
    assert model.selection is not None and model.selection.strategy == nav.SelectionStrategy.MAX_THROUGHPUT
    text = model.config_path.read_text()
    assert text.startswith("# written by model-navigator from path") and "highest throughput" in text
    assert not list(tmp_path.glob("nav-triton-*"))  # the unpacked package is gone


def test_existing_model_folder_is_refused_unless_override(cnn_package, tmp_path):
    write_model_repository(cnn_package, tmp_path, path_key="onnx", model_name="m")
    marker = tmp_path / "m" / "1" / "model.onnx"
    before = marker.stat().st_mtime_ns
    with pytest.raises(nav.UserInputError, match="already exists and was left untouched"):
        write_model_repository(cnn_package, tmp_path, path_key="torchscript-trace", model_name="m")
    assert marker.stat().st_mtime_ns == before and not (tmp_path / "m" / "1" / "model.pt").exists()
    (tmp_path / "other").mkdir()  # another model in the repository is never touched
    write_model_repository(cnn_package, tmp_path, path_key="torchscript-trace", model_name="m", override=True)
    assert sorted(p.name for p in (tmp_path / "m" / "1").iterdir()) == ["model.pt"]
    assert (tmp_path / "other").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "other"]  # no staging folder left


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path_key": "torch"}, "is the source model"),
        ({"path_key": "nope"}, "No path 'nope'"),
        ({"path_key": "onnx", "model_name": "../escape"}, "is not a folder name Triton accepts"),
        ({"path_key": "onnx", "version": 0}, "`version` must be an integer >= 1"),
        ({"strategy": "max-throughput-within-latency", "latency_budget_ms": 1e-6}, "No path and runtime qualifies"),
    ],
)
def test_bad_requests_are_refused_before_writing(cnn_package, tmp_path, kwargs, message):
    with pytest.raises(nav.ModelNavigatorError, match=message):
        write_model_repository(cnn_package, tmp_path / "repo", **kwargs)
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


# ------------------------------------------------------------------------------------------------
# Synthetic packages: status data plus artifact files, for formats and runtimes this machine lacks
# ------------------------------------------------------------------------------------------------


def synthetic(
    tmp_path: Path,
    key: str,
    fmt: Format,
    artifact: str,
    runtime: RuntimeProvider,
    inputs: List[TensorMetadata],
    outputs: List[TensorMetadata],
    batch_dim: Optional[int] = 0,
    batch_sizes=(1, 8, 16),
    throughputs=(100.0, 700.0, 650.0),
    config: Optional[Dict] = None,
    p99s: Optional[tuple] = None,
) -> Path:
    """A workspace whose status.yaml records one ok path with correctness and profiling results."""
    workdir = tmp_path / "workdir"
    folder = workdir / key
    folder.mkdir(parents=True)
    target = folder / artifact
    if artifact.endswith(".savedmodel"):  # the layout tf.saved_model.save writes
        (target / "variables").mkdir(parents=True)
        (target / "saved_model.pb").write_bytes(b"\x08\x01")
        (target / "variables" / "variables.index").write_bytes(b"index")
        (target / "fingerprint.pb").write_bytes(b"fp")
    else:
        target.write_bytes(b"model bytes")
    status = NavigatorStatus(
        model_name="synthetic",
        framework="tensorflow" if "saved" in artifact else "torch",
        config={"batch_dim": batch_dim, "target_device": "cpu", **(config or {})},
        dataloader={"batch_size": 4},
        inputs=inputs,
        outputs=outputs,
    )
    p99s = p99s or (2,) * len(batch_sizes)
    results = [
        ProfilingResult(
            batch_size=b,
            p50_ms=1.0 + b / 10,
            p90_ms=2,
            p95_ms=2,
            p99_ms=p99,
            mean_ms=1,
            std_ms=0,
            throughput=t,
            windows=3,
            stable=True,
        )
        for b, t, p99 in zip(batch_sizes, throughputs, p99s, strict=True)
    ]
    status.paths[key] = PathStatus(
        key=key,
        format=fmt,
        status=StepStatus.OK,
        model_path=f"{key}/{artifact}",
        runtimes={
            runtime: RuntimeResult(
                correctness=CorrectnessResult(status=StepStatus.OK),
                performance=PerformanceResult(status=StepStatus.OK, results=results),
            )
        },
    )
    status.save(workdir)
    return workdir


def test_savedmodel_repository_layout_and_config(tmp_path):
    workdir = synthetic(
        tmp_path,
        "tf-savedmodel",
        Format.TF_SAVEDMODEL,
        "model.savedmodel",
        RuntimeProvider.CPU,
        inputs=[TensorMetadata("images", (-1, 224, 224, 3), "float32"), TensorMetadata("ids", (-1, -1), "int64")],
        outputs=[TensorMetadata("probs", (-1, 1000), "float16"), TensorMetadata("mask", (-1, -1), "bool")],
    )
    model = write_model_repository(workdir, tmp_path / "repo")  # best by min latency: the only path
    root = tmp_path / "repo" / "synthetic"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "1",
        "1/model.savedmodel",
        "1/model.savedmodel/fingerprint.pb",
        "1/model.savedmodel/saved_model.pb",
        "1/model.savedmodel/variables",
        "1/model.savedmodel/variables/variables.index",
        "config.pbtxt",
    ]
    config = parse_model_config(model.config_path.read_text())
    assert (config.platform, config.backend) == ("tensorflow_savedmodel", "tensorflow")
    assert config.max_batch_size == 16
    assert [(t.name, type_name(config, t.data_type), list(t.dims)) for t in config.input] == [
        ("images", "TYPE_FP32", [224, 224, 3]),
        ("ids", "TYPE_INT64", [-1]),
    ]
    assert [(t.name, type_name(config, t.data_type), list(t.dims)) for t in config.output] == [
        ("probs", "TYPE_FP16", [1000]),
        ("mask", "TYPE_BOOL", [-1]),
    ]
    assert list(config.dynamic_batching.preferred_batch_size) == [8]  # the most throughput, not the largest


@pytest.mark.slow
def test_real_savedmodel_from_a_tensorflow_export(tmp_path):
    """A Keras model exported by nav.tensorflow.export: the SavedModel folder is served as is."""
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("keras")

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((6,), name="features")
    outputs = tf.keras.layers.Dense(3, name="scores")(inputs)
    model = tf.keras.Model(inputs, outputs)
    dataloader = [np.random.default_rng(i).random((4, 6), dtype=np.float32) for i in range(2)]
    package = nav.tensorflow.export(
        model,
        dataloader,
        workdir=tmp_path / "w",
        target_formats=("tf-savedmodel",),
        profiler_config=helpers.light_profiler(),
        verbose=False,
    )
    assert package.status.paths["tf-savedmodel"].ok
    model_entry = write_model_repository(package, tmp_path / "repo", model_name="keras_dense")
    assert model_entry.path == "tf-savedmodel" and model_entry.model_path.name == "model.savedmodel"
    assert (model_entry.model_path / "saved_model.pb").is_file()
    config = parse_model_config(model_entry.config_path.read_text())
    assert (config.platform, config.backend) == ("tensorflow_savedmodel", "tensorflow")
    assert config.max_batch_size == 4
    assert [(t.name, list(t.dims)) for t in config.input] == [(m.name, [6]) for m in package.status.inputs]
    assert [list(t.dims) for t in config.output] == [[3]]
    loaded = tf.saved_model.load(str(model_entry.model_path))  # the copy is a working SavedModel
    assert loaded.signatures


def test_gpu_runtimes_and_tensorrt_plans(tmp_path):
    meta_in, meta_out = [TensorMetadata("x", (-1, 5), "float32")], [TensorMetadata("y", (-1, 7), "float32")]
    workdir = synthetic(tmp_path / "a", "onnx", Format.ONNX, "model.onnx", RuntimeProvider.TRT, meta_in, meta_out)
    config = parse_model_config(
        write_model_repository(workdir, tmp_path / "repo", model_name="ort_trt").config_path.read_text()
    )
    assert config.platform == "onnxruntime_onnx"
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert [a.name for a in config.optimization.execution_accelerators.gpu_execution_accelerator] == ["tensorrt"]

    workdir = synthetic(
        tmp_path / "b", "trt-fp16", Format.TENSORRT, "model.plan", RuntimeProvider.TRT, meta_in, meta_out
    )
    model = write_model_repository(workdir, tmp_path / "repo", model_name="plan")
    config = parse_model_config(model.config_path.read_text())
    assert (config.platform, config.backend, model.model_path.name) == ("tensorrt_plan", "tensorrt", "model.plan")
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU


def test_torchscript_names_follow_the_pytorch_backend_convention(tmp_path):
    """Keyword inputs keep forward()'s argument names; other names get Triton's <name>__<index> form."""
    workdir = synthetic(
        tmp_path,
        "torchscript-script",
        Format.TORCHSCRIPT,
        "model.pt",
        RuntimeProvider.CPU,
        inputs=[TensorMetadata("input_ids", (-1, -1), "int64"), TensorMetadata("attention_mask", (-1, -1), "int64")],
        outputs=[TensorMetadata("logits", (-1, -1, 3), "float32"), TensorMetadata("pooled", (-1, 8), "float32")],
        config={"forward_kw_names": ["input_ids", "attention_mask"]},
    )
    model = write_model_repository(workdir, tmp_path / "repo")
    config = parse_model_config(model.config_path.read_text())
    assert [t.name for t in config.input] == ["input_ids", "attention_mask"]
    assert [t.name for t in config.output] == ["logits__0", "pooled__1"]
    assert model.renamed == {"logits": "logits__0", "pooled": "pooled__1"}
    assert "logits -> logits__0" in model.config_path.read_text()


def test_no_batching_without_a_batch_axis_and_scalars_are_reshaped(tmp_path):
    workdir = synthetic(
        tmp_path,
        "onnx",
        Format.ONNX,
        "model.onnx",
        RuntimeProvider.CPU,
        inputs=[TensorMetadata("x", (3, -1), "float32")],
        outputs=[TensorMetadata("total", (), "float64")],
        batch_dim=None,
    )
    model = write_model_repository(workdir, tmp_path / "repo")
    config = parse_model_config(model.config_path.read_text())
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [3, -1]
    assert list(config.output[0].dims) == [1] and config.output[0].HasField("reshape")
    assert list(config.output[0].reshape.shape) == []
    with pytest.raises(nav.UserInputError, match="cannot apply: the model takes no batch"):
        write_model_repository(workdir, tmp_path / "repo2", max_batch_size=8)


def test_max_batch_size_override_and_zero(tmp_path):
    workdir = synthetic(
        tmp_path,
        "onnx",
        Format.ONNX,
        "model.onnx",
        RuntimeProvider.CPU,
        [TensorMetadata("x", (-1, 5), "float32")],
        [TensorMetadata("y", (-1, 7), "float32")],
    )
    config = parse_model_config(
        write_model_repository(workdir, tmp_path / "r", model_name="a", max_batch_size=64).config_path.read_text()
    )
    assert config.max_batch_size == 64 and list(config.dynamic_batching.preferred_batch_size) == [8]
    config = parse_model_config(
        write_model_repository(workdir, tmp_path / "r", model_name="b", max_batch_size=0).config_path.read_text()
    )
    assert config.max_batch_size == 0 and list(config.input[0].dims) == [-1, 5]
    assert not config.HasField("dynamic_batching")


def test_max_batch_size_follows_the_latency_budget_and_says_why(tmp_path):
    """With a budget: the largest profiled batch size whose p99 met it; without: the largest profiled."""
    workdir = synthetic(
        tmp_path,
        "onnx",
        Format.ONNX,
        "model.onnx",
        RuntimeProvider.CPU,
        [TensorMetadata("x", (-1, 5), "float32")],
        [TensorMetadata("y", (-1, 7), "float32")],
        batch_sizes=(1, 8, 16, 32),
        throughputs=(100.0, 700.0, 900.0, 950.0),
        p99s=(1.0, 3.0, 6.0, 12.0),
    )
    model = write_model_repository(workdir, tmp_path / "r", model_name="budget", latency_budget_ms=7)
    config = parse_model_config(model.config_path.read_text())
    assert config.max_batch_size == 16 and list(config.dynamic_batching.preferred_batch_size) == [16]
    assert model.batching == (
        "max_batch_size 16: the largest batch size of onnx on CPUExecutionProvider whose p99 met "
        "the 7 ms budget (profiled: 1, 8, 16, 32); dynamic batching prefers 16 (the most "
        "throughput)"
    )
    assert f"# {model.batching}" in model.config_path.read_text()

    model = write_model_repository(workdir, tmp_path / "r", model_name="largest")
    assert parse_model_config(model.config_path.read_text()).max_batch_size == 32
    assert model.batching.startswith(
        "max_batch_size 32: the largest batch size profiled on onnx on CPUExecutionProvider (profiled: 1, 8, 16, 32)"
    )

    model = write_model_repository(workdir, tmp_path / "r", model_name="tight", path_key="onnx", latency_budget_ms=0.5)
    assert parse_model_config(model.config_path.read_text()).max_batch_size == 1
    assert "no profiled batch size of onnx on CPUExecutionProvider met the 0.5 ms budget" in model.batching


def test_max_batch_size_without_profiling_is_the_checked_batch_not_the_dataloaders(tmp_path):
    workdir = synthetic(
        tmp_path,
        "onnx",
        Format.ONNX,
        "model.onnx",
        RuntimeProvider.CPU,
        [TensorMetadata("x", (-1, 5), "float32")],
        [TensorMetadata("y", (-1, 7), "float32")],
    )
    status = NavigatorStatus.load(workdir)
    assert status.dataloader["batch_size"] == 4
    result = status.paths["onnx"].runtimes[RuntimeProvider.CPU]
    result.performance = None
    result.correctness.batch_sizes = [1, 2]
    status.save(workdir)
    model = write_model_repository(workdir, tmp_path / "r", path_key="onnx")
    assert parse_model_config(model.config_path.read_text()).max_batch_size == 2
    assert model.batching.startswith(
        "max_batch_size 2: onnx on CPUExecutionProvider was not profiled; the largest "
        "batch size its correctness was checked at"
    )


# ------------------------------------------------------------------------------------------------
# The schema check itself
# ------------------------------------------------------------------------------------------------

VALID = """
name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] } ]
dynamic_batching { preferred_batch_size: [ 4 ] }
"""


@pytest.mark.parametrize(
    "change, message",
    [
        (("platform:", "platfrom:"), 'no field named "platfrom"'),
        (("TYPE_FP32 dims: [ 3 ]", "TYPE_FLOAT32 dims: [ 3 ]"), "TYPE_FLOAT32"),
        (("dims: [ 3 ]", "dims: [ 0 ]"), "each must be -1 (dynamic) or >= 1"),
        (("preferred_batch_size: [ 4 ]", "preferred_batch_size: [ 16 ]"), "outside 1..max_batch_size"),
        (
            (
                '{ name: "y" data_type: TYPE_FP32 dims: [ 2 ] }',
                '{ name: "y" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "y" data_type: TYPE_INT64 dims: [ 1 ] }',
            ),
            "duplicate output names",
        ),
        (('platform: "onnxruntime_onnx"', ""), "neither `platform` nor `backend`"),
    ],
)
def test_schema_rejects_what_triton_would(change, message):
    parse_model_config(VALID)
    old, new = change
    with pytest.raises(TritonConfigError) as e:
        parse_model_config(VALID.replace(old, new))
    if message:
        assert message in str(e.value)


def test_vendored_schema_matches_tritonclient_when_installed():
    from model_navigator.triton.schema import model_config_class, serialized_descriptor

    vendored = model_config_class(prefer_tritonclient=False)
    assert vendored.DESCRIPTOR.full_name == "inference.ModelConfig"
    assert {"max_batch_size", "dynamic_batching", "instance_group", "backend", "platform"} <= set(
        vendored.DESCRIPTOR.fields_by_name
    )
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    assert model_config_pb2.DESCRIPTOR.serialized_pb == serialized_descriptor()


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_triton_and_inspect_mark_the_winner(cnn_package, tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "model_navigator", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
        )

    done = cli(
        "triton", str(cnn_package.workdir), "-o", str(tmp_path / "repo"), "--path", "onnx", "--model-name", "cnn"
    )
    assert done.returncode == 0, done.stderr
    assert (
        "max_batch_size 4: the largest batch size profiled on onnx on CPUExecutionProvider (profiled: 1, 2, 4)"
        in done.stderr
    )
    assert done.stdout.split() == [
        str(tmp_path / "repo" / "cnn" / "config.pbtxt"),
        str(tmp_path / "repo" / "cnn" / "1" / "model.onnx"),
    ]
    again = cli("triton", str(cnn_package.workdir), "-o", str(tmp_path / "repo"), "--model-name", "cnn")
    assert again.returncode == 2 and "already exists" in again.stderr

    shown = cli("inspect", str(cnn_package.workdir), "--strategy", "max-throughput")
    assert shown.returncode == 0, shown.stderr
    best = cnn_package.get_best("max-throughput")
    assert f"★ best: {best.path} on {best.runtime.value} (highest throughput)" in shown.stdout
    starred = [line for line in shown.stdout.splitlines() if "★" in line and "│" in line]
    assert len(starred) == 1 and best.path in starred[0]
    none = cli("inspect", str(cnn_package.workdir), "--latency-budget", "0.000001")
    assert none.returncode == 0 and "No best runtime" in none.stdout
