"""Reduced precision on the CPU (issue 27): int8 dynamic / static and bf16 paths, each judged by its
accuracy budget (core/budget.py), chosen only when it passed and is faster (selection.py)."""

from __future__ import annotations

import numpy as np
import pytest

import helpers
import model_navigator as nav
from model_navigator.converters import onnx_precision
from model_navigator.core import budget
from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.errors import UserInputError

CPU, OV = RuntimeProvider.CPU, RuntimeProvider.OPENVINO
INT8_PATHS = ("onnx-int8-dynamic", "onnx-int8-static")


# Budgets, without a model ----------------------------------------------------------------------
def test_judge_records_every_measure_and_applies_the_default_budget():
    rng = np.random.default_rng(0)
    reference = [{"logits": rng.normal(size=(1, 10)).astype(np.float32)} for _ in range(20)]
    close = [{"logits": r["logits"] * 1.001} for r in reference]
    far = [{"logits": r["logits"] + rng.normal(scale=0.3, size=(1, 10)).astype(np.float32)} for r in reference]

    ok = budget.judge("int8", list(zip(reference, close, strict=True)), ["logits"], 0)
    assert ok.failure is None and ok.decided_by == "default int8 budget"
    assert set(ok.measures["logits"]) == {"rel_l2", "cosine", "top1", "max_abs", "max_rel"}
    assert ok.measures["logits"]["rel_l2"] == pytest.approx(1e-3, rel=1e-3)
    assert ok.limits["logits"] == budget.DEFAULT_BUDGETS["int8"]  # class scores by name: top1 judged too
    renamed = [({"hidden": r["logits"]}, {"hidden": c["logits"]}) for r, c in zip(reference, close, strict=True)]
    hidden = budget.judge("int8", renamed, ["hidden"], 0)
    assert "top1" in hidden.measures["hidden"] and "top1" not in hidden.limits["hidden"]  # recorded, not judged

    # rel_l2 and cosine are the worst sample's: one bad sample among good ones fails the budget
    one_bad = close[:-1] + [far[-1]]
    worst = budget.judge("int8", list(zip(reference, one_bad, strict=True)), ["logits"], 0)
    single = budget.measure(far[-1]["logits"], reference[-1]["logits"])
    assert worst.measures["logits"]["rel_l2"] == pytest.approx(single["rel_l2"])
    assert worst.measures["logits"]["cosine"] == pytest.approx(single["cosine"])

    bad = budget.judge("int8", list(zip(reference, far, strict=True)), ["logits"], 0)
    assert bad.failure is not None and "rel_l2" in bad.failure and "'logits'" in bad.failure

    # per output, the user's limit over the default; None takes a measure out of the judgement
    loose = {"int8": {"outputs": {"logits": {"rel_l2": 1.0, "cosine": None, "top1": None}}}}
    assert budget.judge("int8", list(zip(reference, far, strict=True)), ["logits"], 0, loose).failure is None


def test_budget_and_task_metric_are_validated_before_any_work():
    with pytest.raises(UserInputError, match="precision 'fp8'"):
        budget.check_budget({"fp8": {"rel_l2": 0.1}})
    with pytest.raises(UserInputError, match="unknown measures"):
        budget.check_budget({"int8": {"l2": 0.1}})
    with pytest.raises(UserInputError, match="lower bound on cosine"):
        budget.check_budget({"int8": {"cosine": 2}})
    with pytest.raises(UserInputError, match="not outputs of the model"):
        budget.check_budget_outputs(budget.check_budget({"int8": {"outputs": {"nope": {"rel_l2": 0.1}}}}), ["y"])
    with pytest.raises(UserInputError, match="'module:function'"):
        budget.check_task_metric("no_colon")
    with pytest.raises(UserInputError, match="cannot be imported"):
        budget.check_task_metric("json:no_such_function")
    assert budget.check_task_metric("precision_models:top1_metric") == "precision_models:top1_metric"


def test_bf16_flag_check_simulated():
    assert onnx_precision.bf16_reason({"avx2", "fma"}, ("FP32", "INT8")) is not None
    assert "avx512_bf16" in onnx_precision.bf16_reason({"avx2"}, ("FP32",))
    assert onnx_precision.bf16_reason({"avx2", "avx512_bf16"}, ("FP32",)) is None
    assert onnx_precision.bf16_reason({"amx_bf16"}, ()) is None
    assert onnx_precision.bf16_reason(None, ("FP32", "BF16")) is None  # no /proc/cpuinfo: OpenVINO's word


def test_bf16_check_on_this_cpu():
    """The real check agrees with this machine's /proc/cpuinfo."""
    pytest.importorskip("openvino")
    flags = onnx_precision.cpu_flags()
    reason = onnx_precision.bf16_unavailable(None)
    has_bf16 = flags is not None and bool(set(onnx_precision.BF16_FLAGS) & flags)
    assert (reason is None) == has_bf16, reason


# Real exports ---------------------------------------------------------------------------------


def _export(model, data, workdir, precisions=("fp32", "int8"), **kw):
    return nav.torch.export(
        model,
        data,
        workdir=workdir,
        target_formats=("onnx",),
        target_precisions=precisions,
        sample_count=8,
        isolation="off",
        profiler_config=helpers.light_profiler(),
        verbose=False,
        **kw,
    )


@pytest.fixture(scope="module")
def cnn_package(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    import precision_models as pm

    return _export(pm.cnn(), pm.cnn_data(), tmp_path_factory.mktemp("cnn") / "wd")


@pytest.fixture(scope="module")
def transformer_package(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    import precision_models as pm

    return _export(pm.transformer_block(), pm.transformer_data(), tmp_path_factory.mktemp("tr") / "wd")


def _correctness(package, key, runtime=CPU):
    return package.status.paths[key].runtimes[runtime].correctness


def _p50(package, key, runtime=CPU):
    return package.status.paths[key].runtimes[runtime].performance.results[0].p50_ms


@pytest.mark.slow
@pytest.mark.parametrize("which", ["cnn", "transformer"])
def test_int8_dynamic_and_static_pass_their_budget(which, cnn_package, transformer_package):
    package = cnn_package if which == "cnn" else transformer_package
    for key in INT8_PATHS:
        path = package.status.paths[key]
        assert path.ok and path.precision.value == "int8" and path.parent == "onnx"
        corr = _correctness(package, key)
        assert corr.status == StepStatus.OK, corr.reason
        assert corr.tolerance == "default int8 budget"
        for name, error in corr.per_output.items():
            limits = budget.limits_for("int8", name, None)
            assert error.budget == limits and error.rel_l2 <= limits["rel_l2"] and error.cosine >= limits["cosine"]
            assert (error.top1 is not None) == (which == "cnn")  # class scores only
        print(
            f"{which} {key}: p50 {_p50(package, key):.3f} ms vs fp32 {_p50(package, 'onnx'):.3f} ms, "
            f"rel L2 {max(e.rel_l2 for e in corr.per_output.values()):.2%}"
        )
    flags = package.status.paths["onnx-int8-static"].flags
    assert flags["calibration_method"] == "MinMax" and flags["calibration_samples"] == 16  # 24 - 8 correctness
    from model_navigator.converters.onnx_precision import int8_reduce_range

    for key in INT8_PATHS:  # 7-bit weights exactly where the CPU lacks int8 dot-product instructions
        assert package.status.paths[key].flags["reduce_range"] is int8_reduce_range()[0]


@pytest.mark.slow
def test_calibration_samples_are_held_apart(cnn_package):
    from model_navigator.core.samples import load_sample_dir
    from model_navigator.core.workspace import Workspace

    workspace = Workspace(cnn_package.workdir)
    calibration = load_sample_dir(workspace.input_dir("calibration"))
    correctness = load_sample_dir(workspace.input_dir("correctness"))
    assert len(calibration) == 16 and len(correctness) == 8
    assert not any(np.array_equal(a["input__0"], b["input__0"]) for a in calibration for b in correctness)


@pytest.mark.slow
def test_slower_reduced_precision_is_measured_shown_and_never_picked(cnn_package):
    best = cnn_package.get_best()
    status = cnn_package.status
    fp32 = min(_p50(cnn_package, "onnx", rt) for rt in status.paths["onnx"].runtimes)
    slower = [(k, rt) for k in INT8_PATHS for rt in status.paths[k].runtimes if _p50(cnn_package, k, rt) > fp32]
    assert slower, "no int8 result was slower than fp32 here; the rule has nothing to show"
    assert (best.path, best.runtime) not in slower
    reasons = {(r.path, r.runtime): r.reason for r in best.rejected}
    for key in slower:
        assert "not 1.1x faster" in reasons[key] and "chosen only when it pays" in reasons[key]
    if best.path in INT8_PATHS:  # it paid: its gain and its cost are said
        assert "faster than fp32" in best.summary() and "rel L2 error" in best.summary()


@pytest.mark.slow
def test_reduced_precision_can_be_excluded(cnn_package):
    best = cnn_package.get_best(max_precision_loss=None)
    assert cnn_package.status.paths[best.path].precision is None
    assert best.precision_note is None
    with pytest.raises(UserInputError, match="max_precision_loss"):
        cnn_package.get_best(max_precision_loss=-1)


@pytest.mark.slow
def test_get_path_onnx_means_fp32(cnn_package):
    assert cnn_package.get_path("onnx").key == "onnx"


@pytest.mark.slow
def test_int8_breaking_model_fails_its_default_budget(tmp_path):
    import precision_models as pm

    package = _export(pm.outlier_model(), pm.outlier_data(), tmp_path / "wd")
    assert _correctness(package, "onnx").status == StepStatus.OK
    corr = _correctness(package, "onnx-int8-static")
    assert corr.status == StepStatus.FAILED and "over the int8 accuracy budget" in corr.reason
    assert max(e.rel_l2 for e in corr.per_output.values()) > budget.DEFAULT_BUDGETS["int8"]["rel_l2"]
    best = package.get_best()
    assert best.path not in INT8_PATHS


@pytest.mark.slow
def test_task_metric_decides(tmp_path):
    """The CNN's int8 passes its budget; a task metric it cannot pass decides against it."""
    import precision_models as pm

    package = _export(pm.cnn(), pm.cnn_data(), tmp_path / "wd", task_metric="precision_models:strict_metric")
    for key in INT8_PATHS:
        corr = _correctness(package, key)
        assert corr.tolerance == "task metric precision_models:strict_metric"
        assert corr.status == StepStatus.FAILED and corr.task_metric["passed"] is False
        assert corr.task_metric["score"] > 1e-6
        assert max(e.rel_l2 for e in corr.per_output.values()) < budget.DEFAULT_BUDGETS["int8"]["rel_l2"]
    assert _correctness(package, "onnx").status == StepStatus.OK  # fp32 keeps its tolerance

    # a package runs no code it names: its re-test on load is judged by the budget, and says so
    package.save(tmp_path / "m.nav")
    loaded = nav.load(tmp_path / "m.nav", workdir=tmp_path / "loaded", run_profiling=False)
    for key in INT8_PATHS:
        corr = _correctness(loaded, key)
        assert corr.tolerance == "default int8 budget" and corr.task_metric is None
        assert corr.status == StepStatus.OK, corr.reason
        assert any("precision_models:strict_metric recorded by the export was not run" in w for w in corr.warnings)


@pytest.mark.slow
def test_bf16_runs_where_the_cpu_has_it(tmp_path, monkeypatch):
    """Simulated flag: the path is made and run by OpenVINO with the bf16 hint; where the real CPU has
    no bf16, OpenVINO compiles f32 and the result says so."""
    pytest.importorskip("openvino")
    import precision_models as pm

    real = onnx_precision.cpu_flags()
    monkeypatch.setattr(onnx_precision, "cpu_flags", lambda: {"avx512_bf16"})
    package = _export(pm.transformer_block(), pm.transformer_data(), tmp_path / "wd", precisions=("fp32", "bf16"))
    path = package.status.paths["onnx-bf16"]
    assert path.ok and path.flags["inference_precision_hint"] == "bf16" and list(path.runtimes) == [OV]
    corr = path.runtimes[OV].correctness
    assert corr.status == StepStatus.OK and corr.tolerance == "default bf16 budget"
    native = real is not None and bool(set(onnx_precision.BF16_FLAGS) & real)
    assert any("not the bf16 asked for" in w for w in corr.warnings) != native

    from model_navigator.triton.repository import write_model_repository

    model = write_model_repository(package, tmp_path / "repo", path_key="onnx-bf16", runtime=OV)
    assert '"bf16"' in model.config_path.read_text()


@pytest.mark.slow
def test_bf16_skipped_without_the_flag(tmp_path, monkeypatch):
    import precision_models as pm

    monkeypatch.setattr(onnx_precision, "cpu_flags", lambda: {"avx2"})
    package = _export(pm.outlier_model(), pm.outlier_data(), tmp_path / "wd", precisions=("fp32", "bf16"))
    path = package.status.paths["onnx-bf16"]
    assert path.status == StepStatus.SKIPPED and "no bf16 instructions" in path.reason


@pytest.mark.slow
def test_package_round_trip_retests_int8(cnn_package, tmp_path):
    nav.save(cnn_package, tmp_path / "cnn.nav")
    loaded = nav.load(tmp_path / "cnn.nav", workdir=tmp_path / "loaded", run_profiling=False)
    for key in INT8_PATHS:
        corr = loaded.status.paths[key].runtimes[CPU].correctness
        assert corr.status == StepStatus.OK and corr.tolerance == "default int8 budget"
        assert all(e.rel_l2 is not None for e in corr.per_output.values())
    assert (tmp_path / "loaded" / "model_input" / "calibration").is_dir()
    log = (tmp_path / "loaded" / "navigator.log").read_text()  # written only by what ran in the loaded workdir
    assert "onnx-int8-static conversion: ok" in log and "onnx-int8-static correctness: CPUExecutionProvider" in log


@pytest.mark.slow
def test_triton_repository_serves_int8_and_carries_the_openvino_precision(cnn_package, tmp_path):
    from model_navigator.triton.repository import write_model_repository

    ort_model = write_model_repository(cnn_package, tmp_path / "repo", path_key="onnx-int8-static", runtime=CPU)
    text = ort_model.config_path.read_text()
    assert 'backend: "onnxruntime"' in text
    assert ort_model.model_path.name == "model.onnx" and ort_model.model_path.is_file()
    ov_model = write_model_repository(
        cnn_package, tmp_path / "repo", path_key="onnx-int8-static", runtime=OV, model_name="int8_openvino"
    )
    text = ov_model.config_path.read_text()
    assert 'backend: "openvino"' in text and "INFERENCE_PRECISION_HINT" in text and '"f32"' in text


def test_budget_and_task_metric_survive_status_yaml(tmp_path):
    """The user's budget and task metric are part of the export's config: a loaded package (and every
    re-test) judges by them."""
    from model_navigator.core.enums import Format, Framework
    from model_navigator.core.status import NavigatorStatus
    from model_navigator.core.config import ExportConfig

    user = budget.check_budget({"int8": {"rel_l2": 0.02, "outputs": {"y": {"cosine": None, "top1": 0.99}}}})
    config = ExportConfig(
        framework=Framework.TORCH,
        model_name="m",
        target_formats=(Format.ONNX,),
        accuracy_budget=user,
        task_metric="precision_models:top1_metric",
    )
    NavigatorStatus(model_name="m", framework="torch", config=config).save(tmp_path)
    loaded = NavigatorStatus.load(tmp_path).config
    assert loaded.accuracy_budget == user and loaded.task_metric == "precision_models:top1_metric"
    assert budget.limits_for("int8", "y", loaded.accuracy_budget) == {"rel_l2": 0.02, "top1": 0.99}


def _selection_status(int8_p50: float, int8_status: StepStatus = StepStatus.OK, rel_l2: float = 0.005):
    """A status with fp32 onnx at 1 ms and static int8 at `int8_p50` ms (selection's own input, built here)."""
    from model_navigator.core.enums import Format, TensorRTPrecision
    from model_navigator.core.status import (
        CorrectnessResult,
        NavigatorStatus,
        OutputError,
        PathStatus,
        PerformanceResult,
        ProfilingResult,
        RuntimeResult,
    )

    def result(p50, corr_status=StepStatus.OK, error=None):
        figures = ProfilingResult(
            batch_size=1,
            p50_ms=p50,
            p90_ms=p50,
            p95_ms=p50,
            p99_ms=p50,
            mean_ms=p50,
            std_ms=0.0,
            throughput=1000 / p50,
            windows=3,
            stable=True,
        )
        corr = CorrectnessResult(status=corr_status, per_output={"y": error or OutputError(1e-6, 1e-5)})
        return RuntimeResult(correctness=corr, performance=PerformanceResult(status=StepStatus.OK, results=[figures]))

    status = NavigatorStatus(model_name="m", framework="torch")
    status.paths["onnx"] = PathStatus(
        key="onnx", format=Format.ONNX, status=StepStatus.OK, model_path="onnx/model.onnx", runtimes={CPU: result(1.0)}
    )
    error = OutputError(0.1, 0.5, rel_l2=rel_l2, cosine=0.9999, budget={"rel_l2": 0.05})
    status.paths["onnx-int8-static"] = PathStatus(
        key="onnx-int8-static",
        format=Format.ONNX,
        status=StepStatus.OK,
        precision=TensorRTPrecision.INT8,
        parent="onnx",
        model_path="onnx-int8-static/model.onnx",
        runtimes={CPU: result(int8_p50, int8_status, error)},
    )
    return status


@pytest.mark.parametrize(
    "int8_p50, int8_status, expected",
    [
        (0.45, StepStatus.OK, "onnx-int8-static"),  # passed and 2.2x faster: chosen
        (1.5, StepStatus.OK, "onnx"),  # slower: never
        (0.95, StepStatus.OK, "onnx"),  # 1.05x: within noise, does not pay
        (0.45, StepStatus.FAILED, "onnx"),
    ],  # faster but over its budget: never
)
def test_reduced_precision_is_chosen_only_when_it_passed_and_pays(int8_p50, int8_status, expected):
    from model_navigator.selection import select_runtime

    best = select_runtime(_selection_status(int8_p50, int8_status))
    assert best.path == expected
    if expected == "onnx-int8-static":
        assert best.precision_note == "int8 static CPU: 2.2x faster than fp32 onnx on CPU, rel L2 error 0.5%"
        assert select_runtime(_selection_status(int8_p50), max_precision_loss=None).path == "onnx"
        assert select_runtime(_selection_status(int8_p50), max_precision_loss=0.001).path == "onnx"
        assert select_runtime(_selection_status(int8_p50), max_precision_loss=0.01).path == "onnx-int8-static"
    else:
        assert best.precision_note is None
        assert any(r.path == "onnx-int8-static" for r in best.rejected)


def test_reduced_precision_that_alone_meets_the_latency_budget_pays():
    """fp32 over the budget, int8 within it: the int8 result is the only way to meet it, so it is chosen
    (its baseline is every full-precision result, not only those left after the budget)."""
    from model_navigator.selection import select_runtime

    status = _selection_status(0.045)
    status.paths["onnx"].runtimes[CPU].performance.results[0].p99_ms = 0.06
    best = select_runtime(status, latency_budget_ms=0.05)
    assert best.path == "onnx-int8-static"
    assert best.precision_note == "int8 static CPU: no full-precision result qualifies here, rel L2 error 0.5%"
    assert any(r.path == "onnx" and r.reason.startswith("over the latency budget") for r in best.rejected)


def test_a_verified_reduced_precision_result_is_chosen_without_the_gain_test():
    """The user verified the int8 result: the verified rule keeps fp32 out of the ranking, and the int8
    one, faster but by less than MIN_REDUCED_PRECISION_GAIN, is still chosen (it was the user's choice)."""
    from model_navigator.selection import select_runtime

    status = _selection_status(0.95)
    assert select_runtime(status).path == "onnx"  # 1.05x: does not pay on its own
    status.paths["onnx-int8-static"].runtimes[CPU].verified = True
    best = select_runtime(status)
    assert best.path == "onnx-int8-static" and best.verified
    assert best.precision_note.endswith("(verified)")


def test_a_held_mark_on_a_result_that_cannot_be_checked_here_keeps_the_verified_rule():
    """A verified runtime whose result is gone (not checked here, or its path not produced again) still
    decides: nothing unverified is chosen in its place, and it is named as the reason."""
    from model_navigator.core.status import RuntimeResult
    from model_navigator.selection import NoRuntimeQualifiesError, select_runtime

    for lose in ("unchecked", "not produced"):
        status = _selection_status(1.5)
        int8 = status.paths["onnx-int8-static"]
        if lose == "unchecked":
            int8.runtimes[CPU] = RuntimeResult(verified=True)
        else:
            int8.status, int8.reason = StepStatus.FAILED, "export failed"
            int8.runtimes[CPU].verified = True
            int8.runtimes[CPU].correctness = None
        assert status.held_marks() == [("onnx-int8-static", CPU)] and status.verified_runtimes() == []
        with pytest.raises(NoRuntimeQualifiesError) as e:
            select_runtime(status)
        assert "only verified paths qualify: onnx-int8-static on CPUExecutionProvider" in str(e.value)
        assert any(r.path == "onnx-int8-static" and r.reason.startswith("verified, but") for r in e.value.rejected)
        assert any(r.path == "onnx" and r.reason.startswith("not verified") for r in e.value.rejected)


# max_precision_loss on the deployment entry points and the commands that choose -----------------
def _selection_workdir(tmp_path):
    """`_selection_status` (int8 static passed, 2.2x faster, rel L2 0.5%) as a workspace with both artifacts."""
    from model_navigator.core.tensor import TensorMetadata

    status = _selection_status(0.45)
    status.inputs = [TensorMetadata("x", (-1, 4), "float32")]
    status.outputs = [TensorMetadata("y", (-1, 4), "float32")]
    for path in status.paths.values():
        (tmp_path / path.model_path).parent.mkdir(parents=True)
        (tmp_path / path.model_path).write_bytes(b"model bytes")
    status.save(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", ["inspect", "triton", "serve", "loadtest"])
@pytest.mark.parametrize("value", ["-0.1", "abc", "nan"])
def test_max_precision_loss_option_is_refused_when_bad(command, value, tmp_path, capsys):
    from model_navigator.cli.main import main

    extra = ["-o", str(tmp_path / "repo")] if command == "triton" else []
    assert main([command, str(tmp_path), *extra, "--max-precision-loss", value]) == 2
    err = capsys.readouterr().err
    assert "--max-precision-loss" in err and "expected a number >= 0" in err and "'none'" in err


def test_max_precision_loss_option_parses():
    from model_navigator.cli.main import build_parser

    parser = build_parser()
    for command, extra in (("inspect", []), ("triton", ["-o", "r"]), ("serve", []), ("loadtest", [])):

        def parse(*option, command=command, extra=extra):
            return parser.parse_args([command, "w", *extra, *option]).max_precision_loss

        assert parse() == float("inf")  # default: any reduced precision that passed and pays
        assert parse("--max-precision-loss", "none") is None and parse("--max-precision-loss", "None") is None
        assert parse("--max-precision-loss", "0.01") == 0.01 and parse("--max-precision-loss", "0") == 0.0


def test_inspect_picks_int8_by_default_and_fp32_with_max_precision_loss_none(tmp_path, capsys):
    import json

    from model_navigator.cli.main import main

    workdir = _selection_workdir(tmp_path)
    picks = {}
    for option in (
        [],
        ["--max-precision-loss", "none"],
        ["--max-precision-loss", "0.001"],
        ["--max-precision-loss", "0.01"],
    ):
        assert main(["inspect", str(workdir), "--json", *option]) == 0
        picks[" ".join(option)] = json.loads(capsys.readouterr().out)["best"]
    assert picks[""]["path"] == "onnx-int8-static" and "2.2x faster" in picks[""]["precision_note"]
    assert picks["--max-precision-loss none"]["path"] == "onnx"
    assert any(
        r["path"] == "onnx-int8-static" and "max_precision_loss=None" in r["reason"]
        for r in picks["--max-precision-loss none"]["rejected"]
    )
    assert picks["--max-precision-loss 0.001"]["path"] == "onnx"
    assert picks["--max-precision-loss 0.01"]["path"] == "onnx-int8-static"


def test_triton_repository_and_serve_plan_take_max_precision_loss(tmp_path, capsys):
    pytest.importorskip("google.protobuf")
    from model_navigator.cli.main import main
    from model_navigator.serving.plan import plan_serving
    from model_navigator.triton.repository import write_model_repository

    workdir = _selection_workdir(tmp_path / "w")
    assert write_model_repository(workdir, tmp_path / "repo", model_name="best").path == "onnx-int8-static"
    model = write_model_repository(workdir, tmp_path / "repo", model_name="fp32", max_precision_loss=None)
    assert model.path == "onnx" and "from path 'onnx' (onnx)" in model.config_path.read_text()
    assert plan_serving(workdir, [], max_precision_loss=None).path.key == "onnx"
    assert plan_serving(workdir, []).path.key == "onnx-int8-static"
    with pytest.raises(UserInputError, match="max_precision_loss"):  # a named path the cap excludes: refused
        write_model_repository(workdir, tmp_path / "repo", path_key="onnx-int8-static", max_precision_loss=0.001)
    with pytest.raises(UserInputError, match="max_precision_loss"):
        write_model_repository(workdir, tmp_path / "repo", max_precision_loss=-1)
    assert main(["triton", str(workdir), "-o", str(tmp_path / "cli"), "--max-precision-loss", "none"]) == 0
    assert "chosen: onnx on CPUExecutionProvider" in capsys.readouterr().err
    assert not (tmp_path / "repo" / "m").exists()  # nothing written for the refused calls
