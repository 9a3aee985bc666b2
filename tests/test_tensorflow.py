"""End-to-end nav.tensorflow.export on real TensorFlow (tensorflow-cpu), tf2onnx and onnxruntime:
the reference's example (as written: a clear error before any export; fixed: ONNX passes), a
Keras CNN, a two-input two-output functional model fed dicts, a tf.Module with a tf.function, a
layer tf2onnx cannot convert, the .nav round trip with retest, reproduce scripts, and that
TensorFlow stays out of torch users' processes and its start-up noise out of the terminal.

Models are built here, tiny and seeded; the CNN and the round trip use the default isolation
('auto': the SavedModel is checked in this process, tf2onnx and ONNX Runtime run in the worker).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import model_navigator as nav
import helpers
from model_navigator import UserInputError
from model_navigator.core.enums import StepStatus
from model_navigator.core.samples import load_sample_dir
from model_navigator.core.serialization import to_plain

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

CPU = nav.RuntimeProvider.CPU
GPU_PATHS = ("tf-trt-fp32", "tf-trt-fp16", "trt-fp32", "trt-fp16")

# Every export here asks for target_device="cpu": the CPU paths and runtimes exist on a GPU machine too, so these
# tests run and mean the same there (GPU paths skipped for the CPU target; their own tests are elsewhere).


def _correctness(package, key, runtime=CPU):
    return package.status.paths[key].runtimes[runtime].correctness


def _reference_example_model(input_shape):
    """The reference's TF example model: three identity Lambda layers."""
    inp = tf.keras.layers.Input(input_shape)
    layer_output = tf.keras.layers.Lambda(lambda x: x)(inp)
    layer_output = tf.keras.layers.Lambda(lambda x: x)(layer_output)
    model_output = tf.keras.layers.Lambda(lambda x: x)(layer_output)
    return tf.keras.Model(inp, model_output)


def _reference_dataloader():
    tf.random.set_seed(0)
    return [tf.random.uniform(shape=[1, 224, 224, 3], minval=0, maxval=1, dtype=tf.dtypes.float32) for _ in range(10)]


def _cnn():
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10)(x)
    return keras.Model(inp, out, name="keras_cnn")


def _cnn_dataloader(batches=3, batch_size=4):
    rng = np.random.default_rng(0)
    return [tf.constant(rng.standard_normal((batch_size, 16, 16, 3)).astype(np.float32)) for _ in range(batches)]


# ------------------------------------------------------------------------------------------------
# The reference example: as written it must fail before any export; with Input((224, 224, 3)) it runs
# ------------------------------------------------------------------------------------------------


def test_reference_example_as_written_fails_before_any_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _reference_example_model((1, 224, 224, 3))
    with pytest.raises(UserInputError) as info:
        nav.tensorflow.export(
            model=model,
            model_name="example_tf2_model",
            dataloader=_reference_dataloader(),
            override_workdir=True,
            input_names=("input",),
        )
    message = str(info.value)
    assert "(None, 1, 224, 224, 3)" in message and "(1, 224, 224, 3)" in message, message
    assert "'input'" in message and "Input((224, 224, 3))" in message, message
    assert not (tmp_path / "navigator_workdir").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference's TF example, run as written (with the Input shape fixed) in an empty folder."""
    folder = tmp_path_factory.mktemp("reference_tf")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        dataloader = _reference_dataloader()
        model = _reference_example_model((224, 224, 3))
        package_desc = nav.tensorflow.export(
            model=model,
            model_name="example_tf2_model",
            dataloader=dataloader,
            override_workdir=True,
            input_names=("input",),
            profiler_config=helpers.light_profiler(),
            verbose=False,
            target_device="cpu",
        )
        onnx_status = package_desc.get_status(format=nav.Format.ONNX)
        outputs = None
        if onnx_status:
            onnx_runner = package_desc.get_runner(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)
            with onnx_runner:
                outputs = onnx_runner.infer({"input": dataloader[0].numpy()})
        package_desc.set_verified(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)
        package_desc.save("example_tf2.nav")
        loaded_package_desc = nav.load("example_tf2.nav", verbose=False)
    finally:
        os.chdir(cwd)
    return folder, dataloader, package_desc, onnx_status, outputs, loaded_package_desc


@pytest.mark.slow
def test_reference_example_fixed_runs_with_onnx_correct(reference):
    folder, dataloader, package, onnx_status, outputs, loaded = reference
    assert onnx_status is True
    for key in ("tf-savedmodel", "onnx"):
        path = package.status.paths[key]
        assert path.status == StepStatus.OK, (key, path.reason)
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        assert result.per_output["output__0"].max_abs_error == 0.0  # identity model
        assert result.sample_count == 10 and result.batch_sizes == [1, 2]
    np.testing.assert_array_equal(outputs["output__0"], dataloader[0].numpy())
    assert package.status.inputs[0].name == "input" and package.status.inputs[0].shape == (-1, 224, 224, 3)
    assert package.status.paths["onnx"].parent == "tf-savedmodel"
    assert package.status.paths["onnx"].reported["converter"] == "tf2onnx"
    for key in GPU_PATHS:
        path = package.status.paths[key]
        assert path.status == StepStatus.SKIPPED and path.reason, key
        assert "GPU" in path.reason or "tensorrt" in path.reason, path.reason
    assert (folder / "navigator_workdir" / "tf-savedmodel" / "model.savedmodel" / "saved_model.pb").is_file()
    assert (folder / "example_tf2.nav").is_file()
    # nav.load("example_tf2.nav") unpacks beside the package and re-tests.
    assert Path(loaded.workdir).name == "example_tf2_workdir"
    assert (folder / "example_tf2_workdir" / "status.yaml").is_file()
    assert loaded.get_status(format=nav.Format.ONNX, runtime_provider=CPU)
    assert loaded.status.paths["onnx"].runtimes[CPU].verified is True
    assert _correctness(loaded, "tf-savedmodel").status == StepStatus.OK


# ------------------------------------------------------------------------------------------------
# A small Keras CNN with the default isolation and profiler
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    model = _cnn()
    package = nav.tensorflow.export(
        model=model,
        dataloader=_cnn_dataloader(),
        workdir=tmp_path_factory.mktemp("cnn") / "navigator_workdir",
        verbose=False,
        disable_git_info=True,
        target_device="cpu",
    )
    return package, model


@pytest.mark.slow
def test_cnn_paths_correct_and_profiled(cnn):
    package, _ = cnn
    formats = package.get_formats_status()
    assert formats["tf-savedmodel"] is True and formats["onnx"] is True
    for key in ("tf-savedmodel", "onnx"):
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        err = result.per_output["output__0"]
        assert math.isfinite(err.max_abs_error) and err.max_abs_error < 1e-4, (key, err)
        assert result.batch_sizes == [1, 4]
        perf = package.status.paths[key].runtimes[CPU].performance
        assert perf.status == StepStatus.OK, (key, perf.reason)
        assert [r.batch_size for r in perf.results] == [1, 4]
        assert all(r.p50_ms > 0 and r.throughput > 0 for r in perf.results)
    source = package.status.paths["tensorflow"].runtimes[CPU].performance
    assert source.status == StepStatus.OK and source.results[0].p50_ms > 0
    latency = package.get_formats_performance()
    assert latency["tf-savedmodel-CPUExecutionProvider"] > 0 and latency["onnx-CPUExecutionProvider"] > 0
    assert not [k for k in latency if k.startswith("tensorflow-")]  # the source model is the baseline, no format
    for key in GPU_PATHS:
        assert formats[key] is False and package.status.paths[key].status == StepStatus.SKIPPED


@pytest.mark.slow
def test_cnn_status_and_workspace(cnn):
    package, _ = cnn
    root = package.workdir
    data = yaml.safe_load((root / "status.yaml").read_text())
    assert data["framework"] == "tensorflow" and data["model_name"] == "keras_cnn"
    assert data["git"] is None
    assert data["inputs"] == [{"name": "input__0", "shape": [-1, 16, 16, 3], "dtype": "float32"}]
    assert data["outputs"] == [{"name": "output__0", "shape": [-1, 10], "dtype": "float32"}]
    packages = data["environment"]["packages"]
    assert "tf2onnx" in packages and ("tensorflow-cpu" in packages or "tensorflow" in packages)
    assert data["paths"]["tf-savedmodel"]["model_path"] == "tf-savedmodel/model.savedmodel"
    assert data["paths"]["onnx"]["model_path"] == "onnx/model.onnx"
    assert data["paths"]["onnx"]["reported"]["opset"] == 17
    for step in ("export", "correctness", "profiling"):
        assert (root / "tf-savedmodel" / f"reproduce_{step}.py").is_file()
        assert (root / "tf-savedmodel" / f"reproduce_{step}.sh").is_file()
    for step in ("conversion", "correctness", "profiling"):
        assert (root / "onnx" / f"reproduce_{step}.sh").is_file()
    assert (root / "tf-savedmodel" / "format.log").is_file() and (root / "onnx" / "format.log").is_file()
    assert len(list((root / "model_input" / "correctness").glob("*.npz"))) == 12


@pytest.mark.slow
def test_cnn_runners_match_the_model(cnn):
    package, model = cnn
    batch = np.random.default_rng(1).standard_normal((3, 16, 16, 3)).astype(np.float32)
    expected = model(batch, training=False).numpy()
    for fmt in (nav.Format.TF_SAVEDMODEL, nav.Format.ONNX, nav.Format.TENSORFLOW):
        with package.get_runner(format=fmt, runtime=CPU) as runner:
            out = runner.infer({"input__0": batch})
        assert list(out) == ["output__0"]
        np.testing.assert_allclose(out["output__0"], expected, atol=1e-4, rtol=1e-4)
    loaded = package.get_model(format=nav.Format.TF_SAVEDMODEL)
    assert "serving_default" in loaded.signatures
    np.testing.assert_allclose(
        loaded.signatures["serving_default"](input__0=tf.constant(batch))["output__0"].numpy(),
        expected,
        atol=1e-4,
        rtol=1e-4,
    )
    onnx_model = package.get_model(format=nav.Format.ONNX)
    assert [i.name for i in onnx_model.graph.input] == ["input__0"]
    assert [o.name for o in onnx_model.graph.output] == ["output__0"]


@pytest.mark.slow
def test_cnn_reproduce_export_needs_only_the_model(cnn, tmp_path):
    package, model = cnn
    from model_navigator.exporters.tensorflow import reproduce_export_main

    root = tmp_path / "copy"
    shutil.copytree(package.workdir, root)
    shutil.rmtree(root / "tf-savedmodel" / "model.savedmodel")
    assert "def get_model():" in (root / "tf-savedmodel" / "reproduce_export.py").read_text()
    assert reproduce_export_main(lambda: model, ["--workdir", str(root), "--path", "tf-savedmodel"]) == 0
    loaded = tf.saved_model.load(str(root / "tf-savedmodel" / "model.savedmodel"))
    assert list(loaded.signatures["serving_default"].structured_outputs) == ["output__0"]


@pytest.mark.slow
def test_cnn_reproduce_scripts_run_from_the_workspace_root(cnn, tmp_path):
    package, _ = cnn
    root = tmp_path / "copy"
    shutil.copytree(package.workdir, root)
    (root / "onnx" / "model.onnx").unlink()
    for script in (
        "onnx/reproduce_conversion.sh",
        "onnx/reproduce_correctness.sh",
        "tf-savedmodel/reproduce_correctness.sh",
        "tf-savedmodel/reproduce_profiling.sh",
    ):
        out = subprocess.run(
            ["bash", script], cwd=root, capture_output=True, text=True, env=helpers.repo_env(), timeout=300
        )
        assert out.returncode == 0, (script, out.stdout[-2000:], out.stderr[-2000:])
        assert '"status": "ok"' in out.stdout, script
    assert (root / "onnx" / "model.onnx").is_file()


@pytest.mark.slow
def test_cnn_save_load_round_trip_retests(cnn, tmp_path):
    package, _ = cnn
    package.set_verified(format=nav.Format.TF_SAVEDMODEL, runtime=CPU)
    nav.save(package, tmp_path / "cnn.nav")
    # A fresh interpreter that never imported TensorFlow: ours is the first import, its start-up
    # lines must land in navigator.log, not on the terminal.
    code = (
        "import sys, model_navigator as nav\n"
        f"p = nav.load({str(tmp_path / 'cnn.nav')!r}, workdir={str(tmp_path / 'loaded')!r})\n"
        "assert 'tensorflow' in sys.modules\n"
        "print({k: v.status.value for k, v in p.status.paths.items()})\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=helpers.repo_env(), timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    for noise in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert noise not in out.stderr, out.stderr
    log = (tmp_path / "loaded" / "navigator.log").read_text()
    # what TensorFlow prints at import with our TF_CPP_MIN_LOG_LEVEL depends on the CPU (oneDNN
    # lines on some, nothing on others): ask it, then every such line must be in the log
    probe = subprocess.run(
        [sys.executable, "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'; import tensorflow"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    printed = [line.strip() for line in probe.stderr.splitlines() if line.strip() and not line.startswith(("I0", "W0"))]
    for line in printed:
        assert line in log, (line, log[-3000:])
    loaded = nav.load(tmp_path / "cnn.nav", workdir=tmp_path / "loaded2", retest_conversions=True, verbose=False)
    for key in ("tf-savedmodel", "onnx"):
        assert loaded.status.paths[key].status == StepStatus.OK, (key, loaded.status.paths[key].reason)
        result = _correctness(loaded, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        assert result.per_output["output__0"].max_abs_error < 1e-4
    assert loaded.status.paths["tf-savedmodel"].runtimes[CPU].verified is True
    assert (tmp_path / "loaded2" / "onnx" / "model.onnx").is_file()
    with pytest.raises(UserInputError):
        loaded.get_runner(format=nav.Format.TENSORFLOW)  # the source model is not in a package
    with loaded.get_runner(format=nav.Format.TF_SAVEDMODEL, runtime=CPU) as runner:
        sample = load_sample_dir(tmp_path / "loaded2" / "model_input" / "profiling")[0]
        assert runner.infer(sample)["output__0"].shape == (1, 10)


# ------------------------------------------------------------------------------------------------
# Two inputs, two outputs, dict samples; a tf.Module; a layer tf2onnx cannot convert
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_input_two_output_functional_model_with_dict_samples(tmp_path):
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), name="tokens")
    extra = keras.Input((4,), name="extra")
    hidden = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(tokens), extra])
    model = keras.Model(
        {"tokens": tokens, "extra": extra},
        {
            "logits": keras.layers.Dense(3, name="logits")(hidden),
            "score": keras.layers.Dense(1, activation="sigmoid", name="score")(hidden),
        },
    )
    rng = np.random.default_rng(0)
    dataloader = [
        {
            "tokens": rng.standard_normal((3, 6)).astype(np.float32),
            "extra": rng.standard_normal((3, 4)).astype(np.float32),
        }
        for _ in range(4)
    ]
    package = nav.tensorflow.export(
        model, dataloader, workdir=tmp_path / "w", run_profiling=False, verbose=False, target_device="cpu"
    )
    declared = [t.name for t in model.inputs]  # Keras orders dict inputs by name
    assert declared == ["extra", "tokens"]
    assert [m.name for m in package.status.inputs] == declared
    assert [m.name for m in package.status.outputs] == ["logits", "score"]
    assert to_plain(package.status.config.forward_kw_names) == declared
    for key in ("tf-savedmodel", "onnx"):
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        assert set(result.per_output) == {"logits", "score"}
        assert all(e.max_abs_error < 1e-5 for e in result.per_output.values())
    onnx_model = package.get_model(format=nav.Format.ONNX)
    assert sorted(i.name for i in onnx_model.graph.input) == ["extra", "tokens"]
    assert sorted(o.name for o in onnx_model.graph.output) == ["logits", "score"]
    feed = {k: v[:2] for k, v in dataloader[0].items()}
    expected = model(feed, training=False)
    with package.get_runner(format=nav.Format.ONNX, runtime=CPU) as runner:
        out = runner.infer(feed)
    for name in ("logits", "score"):
        np.testing.assert_allclose(out[name], expected[name].numpy(), atol=1e-5)


class _Affine(tf.Module):
    """A tf.Module whose __call__ is a tf.function with a signature; returns a tuple."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.random.stateless_normal((5, 2), seed=(1, 2)))
        self.b = tf.Variable([0.5, -0.5])

    @tf.function(input_signature=[tf.TensorSpec((None, 5), tf.float32), tf.TensorSpec((None, 2), tf.float32)])
    def __call__(self, x, y):
        z = tf.matmul(x, self.w) + self.b
        return z * y, tf.reduce_sum(z, axis=1)


@pytest.mark.slow
def test_tf_module_with_tf_function_in_process(tmp_path):
    module = _Affine()
    rng = np.random.default_rng(0)
    dataloader = [
        (tf.constant(rng.standard_normal((2, 5)).astype(np.float32)), rng.standard_normal((2, 2)).astype(np.float32))
        for _ in range(3)
    ]
    package = nav.tensorflow.export(
        module,
        dataloader,
        workdir=tmp_path / "w",
        target_formats=(nav.Format.ONNX,),
        output_names=("scaled", "total"),
        isolation=False,
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    # ONNX alone was asked for: the SavedModel it is made from comes along.
    assert package.get_formats_status() == {"tf-savedmodel": True, "onnx": True}
    assert [m.name for m in package.status.inputs] == ["input__0", "input__1"]
    assert [(m.name, m.shape) for m in package.status.outputs] == [("scaled", (-1, 2)), ("total", (-1,))]
    for key in ("tf-savedmodel", "onnx"):
        result = _correctness(package, key)
        assert result.status == StepStatus.OK, (key, result.reason)
        assert result.per_output["total"].max_abs_error < 1e-5
        assert package.status.paths[key].runtimes[CPU].performance.status == StepStatus.OK
    x, y = (np.asarray(t) for t in dataloader[1])
    expected = module(tf.constant(x), tf.constant(y))
    with package.get_runner(format=nav.Format.ONNX, runtime=CPU) as runner:
        out = runner.infer({"input__0": x, "input__1": y})
    np.testing.assert_allclose(out["scaled"], expected[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["total"], expected[1].numpy(), atol=1e-5)


@pytest.mark.slow
def test_layer_tf2onnx_cannot_convert_fails_onnx_only(tmp_path):
    inp = keras.Input((4, 4), name="matrix")
    spd = keras.layers.Lambda(lambda m: tf.matmul(m, m, transpose_b=True) + tf.eye(4))(inp)
    out = keras.layers.Lambda(lambda m: tf.linalg.sqrtm(m))(spd)  # MatrixSquareRoot: no ONNX handler
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    dataloader = [rng.standard_normal((2, 4, 4)).astype(np.float32) for _ in range(3)]
    package = nav.tensorflow.export(
        model,
        dataloader,
        workdir=tmp_path / "w",
        run_profiling=False,
        verbose=False,
        input_names=("matrix",),
        target_device="cpu",
    )
    saved = package.status.paths["tf-savedmodel"]
    assert saved.status == StepStatus.OK
    assert _correctness(package, "tf-savedmodel").status == StepStatus.OK
    onnx = package.status.paths["onnx"]
    assert onnx.status == StepStatus.FAILED
    assert "MatrixSquareRoot" in onnx.reason and "not supported" in onnx.reason, onnx.reason
    assert "reproduce: bash onnx/reproduce_conversion.sh" in onnx.reason
    assert not (package.workdir / "onnx" / "model.onnx").exists()
    assert package.get_status(format=nav.Format.ONNX) is False
    assert package.get_status(format=nav.Format.TF_SAVEDMODEL, runtime_provider=CPU) is True
    assert "MatrixSquareRoot" in (package.workdir / "navigator.log").read_text()


@pytest.mark.slow
def test_no_batch_dim(tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,), batch_size=2)
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    dataloader = [np.full((2, 3), i, dtype=np.float32) for i in range(3)]
    package = nav.tensorflow.export(
        model,
        dataloader,
        workdir=tmp_path / "w",
        batch_dim=None,
        run_profiling=False,
        verbose=False,
        target_formats=(nav.Format.TF_SAVEDMODEL,),
        target_device="cpu",
    )
    assert package.status.inputs[0].shape == (2, 3)
    result = _correctness(package, "tf-savedmodel")
    assert result.status == StepStatus.OK and result.batch_sizes == [1]
    assert list(package.get_formats_status()) == ["tf-savedmodel"]


# ------------------------------------------------------------------------------------------------
# Validation before anything is written; TensorFlow only where it is needed
# ------------------------------------------------------------------------------------------------


def _two_input_model():
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    return keras.Model([a, b], keras.layers.Concatenate()([a, b]))


@pytest.mark.parametrize(
    "model_factory, dataloader, kwargs, expected",
    [
        (
            _two_input_model,
            [{"a": np.ones((2, 4), np.float32), "c": np.ones((2, 3), np.float32)}],
            {},
            "inputs are named ('a', 'b')",
        ),
        (_two_input_model, [np.ones((2, 4), np.float32)], {}, "takes 2 inputs"),
        (
            _two_input_model,
            [(np.ones((2, 4), np.float32), np.ones((2, 5), np.float32))],
            {},
            "of shape (None, 3) but dataloader samples have shape (1, 5)",
        ),
        (
            _Affine,
            [(np.ones((2, 6), np.float32), np.ones((2, 2), np.float32))],
            {},
            "of shape (None, 5) but dataloader samples have shape (1, 6)",
        ),
        (
            _Affine,
            [{"y": np.ones((2, 2), np.float32), "x": np.ones((2, 6), np.float32)}],
            {},
            "input 'x' of shape (None, 5) but dataloader samples have shape (1, 6)",
        ),
        (lambda: lambda x: x, [np.ones((2, 4), np.float32)], {}, "Keras model or a tf.Module"),
        (_cnn, _cnn_dataloader(1, 2), {"target_formats": ("torchscript",)}, "do not apply to TensorFlow"),
        (_cnn, _cnn_dataloader(1, 2), {"input_names": ("my image",)}, "not valid TensorFlow names"),
    ],
)
def test_invalid_inputs_fail_before_anything_is_written(tmp_path, model_factory, dataloader, kwargs, expected):
    workdir = tmp_path / "w"
    with pytest.raises(UserInputError) as info:
        nav.tensorflow.export(
            model_factory(), dataloader, workdir=workdir, verbose=False, **kwargs, target_device="cpu"
        )
    assert expected in str(info.value)
    assert not workdir.exists()


def test_torch_users_never_import_tensorflow():
    code = (
        "import sys, model_navigator, model_navigator.api.torch, model_navigator.paths.registry, "
        "model_navigator.runners.registry, model_navigator.steps.pipeline, model_navigator.package.nav\n"
        "from model_navigator.core.enums import Framework\n"
        "from model_navigator.paths.registry import paths_for\n"
        "paths_for(Framework.TORCH)\n"
        "assert 'tensorflow' not in sys.modules and 'tf2onnx' not in sys.modules, 'tensorflow imported'\n"
        "import model_navigator.paths.tensorflow\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=helpers.repo_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
