"""The direct JAX -> ONNX path (`onnx-jax2onnx`) end to end on real JAX, Flax, jax2onnx, ONNX
Runtime and OpenVINO: a Flax MLP next to the SavedModel paths (selectors with and without the JAX
flags), a Flax CNN with BatchNorm saved and loaded back with a retest, dict inputs with a varying
sequence length and target_formats=(ONNX,) alone, the T5-like encoder of tests/jax_models.py
(int64 token inputs), and the failures jax2onnx reports: an unsupported primitive (eigh of a 4x4
matrix) and jax2onnx's known limits, each failing that path only, with a hint where one exists.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("jax2onnx")
onnx = pytest.importorskip("onnx")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")

import jax.numpy as jnp  # noqa: E402
import jax_models  # noqa: E402  (tests/jax_models.py)

import model_navigator as nav  # noqa: E402
import helpers  # noqa: E402  (tests/helpers.py)
from model_navigator.core.enums import StepStatus  # noqa: E402

CPU = nav.RuntimeProvider.CPU
OPENVINO = nav.RuntimeProvider.OPENVINO
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
RUNTIMES = (CPU, OPENVINO) if HAS_OPENVINO else (CPU,)
DIRECT = "onnx-jax2onnx"

# Every export here asks for target_device="cpu": the CPU paths and runtimes exist on a GPU machine too, so these
# tests run and mean the same there (GPU paths skipped for the CPU target; their own tests are elsewhere).


def _assert_direct_correct(package, atol=1e-4, profiled=True):
    path = package.status.paths[DIRECT]
    assert path.status == StepStatus.OK, path.reason
    assert path.reported["exporter"] == "jax2onnx" and path.selectors == {}
    assert set(path.runtimes) == set(RUNTIMES)
    for runtime in RUNTIMES:
        result = path.runtimes[runtime].correctness
        assert result.status == StepStatus.OK, (runtime, result.reason)
        for name, err in result.per_output.items():
            assert err.max_abs_error < atol, (runtime, name, err)
        perf = path.runtimes[runtime].performance
        if profiled:
            assert perf.status == StepStatus.OK, (runtime, perf.reason)
            assert perf.results[0].batch_size == 1 and all(r.p50_ms > 0 for r in perf.results)
    return path


def _graph(package):
    return onnx.load(str(package.workdir / DIRECT / "model.onnx")).graph


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


# ------------------------------------------------------------------------------------------------
# A Flax MLP with every path: the direct ONNX next to the SavedModels, and the selectors
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    predict, params = jax_models.mlp()
    rng = np.random.default_rng(0)
    dataloader = [rng.standard_normal((4, 64)).astype(np.float32) for _ in range(3)]
    package = nav.jax.export(
        predict,
        params,
        dataloader,
        enable_xla=True,
        sample_count=6,
        verbose=False,
        profiler_config=helpers.light_profiler(),
        disable_git_info=True,
        workdir=tmp_path_factory.mktemp("mlp") / "navigator_workdir",
        target_device="cpu",
    )
    return package, predict, params


@pytest.mark.slow
def test_mlp_direct_onnx_next_to_the_savedmodels(mlp):
    package, _, params = mlp
    paths = package.status.paths
    _assert_direct_correct(package)
    for key in ("tf-savedmodel-xla", "tf-savedmodel-xla-jit"):
        assert paths[key].status == StepStatus.OK and paths[key].runtimes[CPU].correctness.status == StepStatus.OK
    if not paths["onnx-xla"].ok:  # jax >= 0.7.2: tf2onnx cannot convert XlaCallModule
        assert "XlaCallModule" in paths["onnx-xla"].reason
    for key in ("trt-fp32-jax2onnx", "trt-fp16-jax2onnx"):  # TensorRT plans from it, on a GPU
        assert paths[key].parent == DIRECT and paths[key].status == StepStatus.SKIPPED, key
    graph = _graph(package)
    assert [i.name for i in graph.input] == ["input__0"] and [o.name for o in graph.output] == ["output__0"]
    assert _dims(graph.input[0]) == ["batch", 64] and _dims(graph.output[0]) == ["batch", 4]
    params_bytes = sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(params))
    initializer_bytes = sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer)
    assert initializer_bytes >= params_bytes > 100_000
    assert package.get_formats_performance()[f"{DIRECT}-CPUExecutionProvider"] > 0


@pytest.mark.slow
def test_mlp_selectors_without_flags_find_the_direct_path(mlp):
    package, predict, params = mlp
    batch = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    expected = np.asarray(predict(batch, params))
    assert package.get_status(format=nav.Format.ONNX) is True
    assert package.get_status(format=nav.Format.ONNX, runtime_provider=OPENVINO) is HAS_OPENVINO
    assert package.get_path(format=nav.Format.ONNX).key == DIRECT
    assert package.get_path(format=nav.Format.ONNX, enable_xla=True, jit_compile=False).key == "onnx-xla"
    assert package.get_status(format=nav.Format.ONNX, enable_xla=True) is package.status.paths["onnx-xla"].ok
    assert package.get_path(format=nav.Format.TENSORRT, precision="fp32").key == "trt-fp32-jax2onnx"
    model = package.get_model(format=nav.Format.ONNX)
    assert isinstance(model, onnx.ModelProto) and model.graph.input[0].name == "input__0"
    for runtime in RUNTIMES:
        with package.get_runner(format=nav.Format.ONNX, runtime=runtime) as runner:
            out = runner.infer({"input__0": batch})  # a batch size no sample had
        np.testing.assert_allclose(out["output__0"], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_mlp_reproduce_export_of_the_direct_path(mlp, tmp_path):
    import shutil

    from model_navigator.exporters.jax import reproduce_export_main

    package, predict, params = mlp
    assert "def get_model_params():" in (package.workdir / DIRECT / "reproduce_export.py").read_text()
    root = tmp_path / "copy"
    shutil.copytree(package.workdir, root)
    (root / DIRECT / "model.onnx").unlink()
    assert reproduce_export_main(lambda: predict, lambda: params, ["--workdir", str(root), "--path", DIRECT]) == 0
    again = onnx.load(str(root / DIRECT / "model.onnx"))
    assert [i.name for i in again.graph.input] == ["input__0"] and again.opset_import[0].version == 18


# ------------------------------------------------------------------------------------------------
# A Flax CNN with BatchNorm: saved, loaded back and retested
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cnn_direct_onnx_save_load_retest(tmp_path):
    predict, variables = jax_models.cnn()
    package = nav.jax.export(
        predict,
        variables,
        jax_models.cnn_dataloader(),
        enable_xla=True,
        jit_compile=False,
        sample_count=8,
        workdir=tmp_path / "w",
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    _assert_direct_correct(package)
    assert package.status.paths["tf-savedmodel-xla"].ok
    package.set_verified(format=nav.Format.ONNX, runtime=CPU)
    nav.save(package, tmp_path / "cnn.nav")
    loaded = nav.load(tmp_path / "cnn.nav", workdir=tmp_path / "loaded", retest_conversions=True, verbose=False)
    _assert_direct_correct(loaded, profiled=False)
    assert loaded.status.paths[DIRECT].runtimes[CPU].verified is True
    batch = np.random.default_rng(3).standard_normal((5, 16, 16, 3)).astype(np.float32)
    with loaded.get_runner(format=nav.Format.ONNX, runtime=CPU) as runner:
        out = runner.infer({"input__0": batch})
    np.testing.assert_allclose(out["output__0"], np.asarray(predict(batch, variables)), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------
# Dict inputs (keyword arguments) sharing a varying sequence axis; ONNX alone, no SavedModel
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dict_inputs_varying_length_onnx_alone(tmp_path):
    score, weights = jax_models.two_input_score()
    dataloader = jax_models.two_input_dataloader()  # the dict's order differs from score()'s: keyword arguments
    package = nav.jax.export(
        score,
        weights,
        dataloader,
        target_formats=(nav.Format.ONNX,),
        workdir=tmp_path / "w",
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    _assert_direct_correct(package, atol=1e-5)
    paths = package.status.paths
    assert not any(key.startswith("tf-savedmodel") for key in paths), sorted(paths)  # ONNX needs no SavedModel
    assert "was not requested" in paths["onnx"].reason  # the enable_xla=False SavedModel's ONNX
    assert paths["onnx-xla"].status == StepStatus.SKIPPED  # known impossible: XlaCallModule
    graph = _graph(package)
    assert [(i.name, _dims(i)) for i in graph.input] == [("mask", ["batch", "d0"]), ("tokens", ["batch", "d0", 6])]
    assert [(o.name, _dims(o)) for o in graph.output] == [("pooled", ["batch", 5]), ("scores", ["batch", "d0", 5])]
    rng = np.random.default_rng(1)
    feed = {"mask": np.ones((3, 11), np.float32), "tokens": rng.standard_normal((3, 11, 6)).astype(np.float32)}
    expected = score(feed["tokens"], feed["mask"], weights)
    for runtime in RUNTIMES:
        with package.get_runner(format=nav.Format.ONNX, runtime=runtime) as runner:
            out = runner.infer(feed)  # a length and batch size no sample had
        for name in ("pooled", "scores"):
            np.testing.assert_allclose(out[name], np.asarray(expected[name]), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# The T5-like encoder: int64 token ids, a varying sequence length
# ------------------------------------------------------------------------------------------------


def _t5_call(iota_positions: bool):
    encode, params = jax_models.t5_encoder(iota_positions=iota_positions)

    def call_wrapper(input_ids, attention_mask, params):
        return encode(input_ids=input_ids, attention_mask=attention_mask, params=params)

    return encode, call_wrapper, params


@pytest.mark.slow
def test_t5_like_encoder_direct_onnx(tmp_path):
    encode, call_wrapper, params = _t5_call(iota_positions=True)
    package = nav.jax.export(
        model=call_wrapper,
        model_params=params,
        dataloader=jax_models.t5_dataloader(),
        enable_xla=True,
        jit_compile=False,
        workdir=tmp_path / "w",
        verbose=False,
        profiler_config=helpers.light_profiler(),
        target_device="cpu",
    )
    _assert_direct_correct(package)
    assert package.status.paths["tf-savedmodel-xla"].ok
    graph = _graph(package)
    int64 = onnx.TensorProto.INT64
    assert [(i.name, i.type.tensor_type.elem_type, _dims(i)) for i in graph.input] == [
        ("input_ids", int64, ["batch", "d0"]),
        ("attention_mask", int64, ["batch", "d0"]),
    ]
    assert [(o.name, _dims(o)) for o in graph.output] == [("last_hidden_state", ["batch", "d0", 32])]
    batch = jax_models.t5_dataloader(lengths=(15,), batch_size=3)[0]
    expected = np.asarray(encode(batch["input_ids"], batch["attention_mask"], params)["last_hidden_state"])
    for runtime in RUNTIMES:
        with package.get_runner(format=nav.Format.ONNX, runtime=runtime) as runner:
            np.testing.assert_allclose(runner.infer(batch)["last_hidden_state"], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_t5_arange_positions_fail_the_direct_path_only_with_a_hint(tmp_path):
    _, call_wrapper, params = _t5_call(iota_positions=False)  # jnp.arange(n)[:, None], as Flax T5 writes it
    package = nav.jax.export(
        call_wrapper,
        params,
        jax_models.t5_dataloader(),
        enable_xla=True,
        jit_compile=False,
        target_formats=(nav.Format.TF_SAVEDMODEL, nav.Format.ONNX),
        run_profiling=False,
        workdir=tmp_path / "w",
        verbose=False,
        target_device="cpu",
    )
    direct = package.status.paths[DIRECT]
    assert direct.status == StepStatus.FAILED
    assert direct.reason.startswith("RuntimeError: jax2onnx ") and "could not convert" in direct.reason, direct.reason
    assert "broadcasted_iota" in direct.reason, direct.reason  # the hint
    assert package.status.paths["tf-savedmodel-xla"].runtimes[CPU].correctness.status == StepStatus.OK


# ------------------------------------------------------------------------------------------------
# A primitive jax2onnx does not lower fails that path with its name; the others go on
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unsupported_primitive_fails_the_direct_path_only(tmp_path):
    def spectrum(x, params):
        return jnp.linalg.eigvalsh(x @ jnp.swapaxes(x, 1, 2) + params["shift"])  # eigh of 4x4 matrices

    dataloader = [np.random.default_rng(i).standard_normal((2, 4, 4)).astype(np.float32) for i in range(2)]
    package = nav.jax.export(
        spectrum,
        {"shift": jnp.eye(4)},
        dataloader,
        enable_xla=True,
        jit_compile=False,
        target_formats=(nav.Format.TF_SAVEDMODEL, nav.Format.ONNX),
        run_profiling=False,
        workdir=tmp_path / "w",
        verbose=False,
        target_device="cpu",
    )
    direct = package.status.paths[DIRECT]
    assert direct.status == StepStatus.FAILED and not direct.runtimes
    assert "could not convert the predict function: NotImplementedError: eigh " in direct.reason, direct.reason
    saved = package.status.paths["tf-savedmodel-xla"]  # exported and checked after it (TensorFlow's own
    assert saved.status == StepStatus.OK and saved.runtimes[CPU].correctness is not None  # verdict: its affair)
    assert package.get_status(format=nav.Format.ONNX) is False


@pytest.mark.slow
def test_positional_pool_window_fails_with_a_hint(tmp_path):
    import flax.linen as nn

    def pooled(x, params):
        return nn.max_pool(x * params["scale"], (2, 2), strides=(2, 2))  # Flax accepts it; jax2onnx 0.17 not

    dataloader = [np.ones((2, 4, 4, 3), np.float32)]
    package = nav.jax.export(
        pooled,
        {"scale": jnp.float32(2.0)},
        dataloader,
        target_formats=(nav.Format.ONNX,),
        run_profiling=False,
        workdir=tmp_path / "w",
        verbose=False,
        target_device="cpu",
    )
    reason = package.status.paths[DIRECT].reason
    assert package.status.paths[DIRECT].status == StepStatus.FAILED
    assert "positional argument" in reason and "Hint: " in reason and "window_shape=(2, 2)" in reason, reason


# ------------------------------------------------------------------------------------------------
# Nothing imports jax2onnx until the path runs
# ------------------------------------------------------------------------------------------------


def test_jax2onnx_imported_only_when_the_path_runs():
    env = helpers.repo_env()
    code = (
        "import sys, model_navigator as nav\n"
        "nav.jax\n"
        "from model_navigator.paths.jax import jax_paths\n"
        "specs = {s.key: s for s in jax_paths()}\n"
        "print(specs['onnx-jax2onnx'].unavailable_reason('cpu', False))\n"
        "print(sorted(m for m in ('jax', 'jax2onnx', 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["None", "[]"], out.stdout


def test_onnx_alone_pulls_in_no_savedmodel():
    from model_navigator.api.common import check_formats
    from model_navigator.api.jax import JAX_FORMATS
    from model_navigator.paths.jax import jax_paths
    from model_navigator.paths.tensorflow import tensorflow_paths

    F = nav.Format
    assert check_formats((F.ONNX,), JAX_FORMATS, "JAX", jax_paths()) == (F.ONNX,)
    assert check_formats((F.TENSORRT,), JAX_FORMATS, "JAX", jax_paths()) == (F.ONNX, F.TENSORRT)
    assert check_formats((F.TF_TRT,), JAX_FORMATS, "JAX", jax_paths()) == (F.TF_SAVEDMODEL, F.TF_TRT)
    tf_formats = (F.TF_SAVEDMODEL, F.ONNX, F.TF_TRT, F.TENSORRT)  # TensorFlow's ONNX still needs its SavedModel
    assert check_formats((F.ONNX,), tf_formats, "TensorFlow 2", tensorflow_paths()) == (F.TF_SAVEDMODEL, F.ONNX)
