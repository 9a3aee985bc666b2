"""One verdict, every reader: the descriptor (get_status, get_formats_status), the status table,
`inspect --json`, the report's data, selection, Triton planning and serving agree on every case a
status can hold (passed, failed, unchecked, the source as reference, an opt-in source runtime,
figures gone stale, verified marks), on statuses from a real export edited for each case; and a
verified mark follows its result through `model-navigator convert`."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil

import helpers
import models
import pytest

torch = pytest.importorskip("torch")

import model_navigator as nav  # noqa: E402
from model_navigator.core.enums import RuntimeProvider, StepStatus  # noqa: E402
from model_navigator.core.errors import UserInputError  # noqa: E402
from model_navigator.core.status import CorrectnessResult, PerformanceResult, RuntimeResult  # noqa: E402

CPU, OV, COMPILE = RuntimeProvider.CPU, RuntimeProvider.OPENVINO, RuntimeProvider.TORCH_COMPILE
ARTIFACTS = ("torchscript-script", "torchscript-trace", "onnx")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """torch Linear exported to TorchScript and ONNX, checked and profiled on the CPU provider."""
    return nav.torch.export(
        model=models.linear_model(),
        dataloader=models.linear_dataloader(batches=2, random=True),
        workdir=tmp_path_factory.mktemp("verdicts") / "wd",
        isolation=False,
        verbose=False,
        target_formats=("torchscript", "onnx"),
        runtimes=("CPUExecutionProvider",),
        profiler_config=helpers.light_profiler(batch_sizes=(1,)),
    )


def _failed(reason: str = "output 'output__0' exceeds atol=0.0001, rtol=0.001") -> CorrectnessResult:
    return CorrectnessResult(status=StepStatus.FAILED, reason=reason)


# Each case edits the exported status and says, in plain words, what every path and runtime is
# ("passed", "failed", "unchecked", "reference", "stale-failed": profiled, then a re-check failed,
# "stale-unchecked": profiled, then its check was dropped) and which of them may be chosen.
def _as_exported(status):
    return {}, set(ARTIFACTS)


def _failed_check(status):
    onnx = status.paths["onnx"].runtimes[CPU]
    onnx.correctness = _failed()
    onnx.performance = PerformanceResult(status=StepStatus.SKIPPED, reason="correctness failed")
    return {("onnx", CPU): "failed"}, {"torchscript-script", "torchscript-trace"}


def _unchecked_new_runtime(status):
    status.paths["onnx"].runtimes[OV] = RuntimeResult()  # installed after the package was made, never checked
    return {("onnx", OV): "unchecked"}, set(ARTIFACTS)


def _opt_in_source_runtime(status):
    source = status.paths["torch"]
    source.runtimes[COMPILE] = RuntimeResult(
        correctness=CorrectnessResult(status=StepStatus.OK), performance=copy.deepcopy(source.runtimes[CPU].performance)
    )
    return {("torch", COMPILE): "passed"}, set(ARTIFACTS)  # checked against the source, never deployed


def _opt_in_source_runtime_failed(status):
    status.paths["torch"].runtimes[COMPILE] = RuntimeResult(correctness=_failed("torch.compile: unsupported op"))
    return {("torch", COMPILE): "failed"}, set(ARTIFACTS)


def _stale_after_new_runtime(status):
    # re-checked after a runtime upgrade: ONNX now fails on it, its old figures stay on record;
    # the trace's check was dropped (a new artifact) while its figures stayed
    status.paths["onnx"].runtimes[CPU].correctness = _failed()
    status.paths["torchscript-trace"].runtimes[CPU].correctness = None
    return ({("onnx", CPU): "stale-failed", ("torchscript-trace", CPU): "stale-unchecked"}, {"torchscript-script"})


def _verified_lost_its_profile(status):
    onnx = status.paths["onnx"].runtimes[CPU]
    onnx.verified, onnx.performance = True, None  # re-checked by `convert`: passed, not profiled again
    return {("onnx", CPU): "passed"}, set()


def _verified_and_profiled(status):
    status.paths["torchscript-script"].runtimes[CPU].verified = True
    return {}, {"torchscript-script"}


def _verified_mark_on_a_failed_check(status):
    onnx = status.paths["onnx"].runtimes[CPU]
    onnx.verified, onnx.correctness = True, _failed()  # written by an older version: the mark no longer counts
    return {("onnx", CPU): "stale-failed"}, {"torchscript-script", "torchscript-trace"}


CASES = [
    _as_exported,
    _failed_check,
    _unchecked_new_runtime,
    _opt_in_source_runtime,
    _opt_in_source_runtime_failed,
    _stale_after_new_runtime,
    _verified_lost_its_profile,
    _verified_and_profiled,
    _verified_mark_on_a_failed_check,
]

TABLE_CORRECTNESS = {
    "passed": "ok",
    "failed": "failed",
    "unchecked": None,
    "reference": "reference",
    "stale-failed": "failed",
    "stale-unchecked": None,
}


def _inspect_json(workdir):
    from model_navigator.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["inspect", str(workdir), "--json"])
    return rc, json.loads(out.getvalue())


def _check_status_model(status, verdicts, verified):
    for (key, rt), verdict in verdicts.items():
        result = status.paths[key].runtimes[rt]
        assert result.passed is (verdict == "passed"), (key, rt)
        assert result.failed is verdict.endswith("failed"), (key, rt)
        assert result.unchecked is (verdict in ("unchecked", "stale-unchecked", "reference")), (key, rt)
        assert status.paths[key].stale(rt) is verdict.startswith("stale"), (key, rt)
        assert status.paths[key].is_reference(rt) is (verdict == "reference"), (key, rt)
    assert set(status.verified_runtimes()) == verified


def _check_descriptor(package, verdicts):
    """get_status on each runtime, and get_formats_status on the default one (the first checked)."""
    good = {pair for pair, verdict in verdicts.items() if verdict in ("passed", "reference")}
    for key, rt in verdicts:
        path = package.status.paths[key]
        assert package.get_status(path.format, rt, jit_type=path.jit_type) is ((key, rt) in good), (key, rt)
    assert package.get_formats_status() == {k: (k, CPU) in good for k in ARTIFACTS}


def _check_table_and_inspect(status, workdir, verdicts, verified):
    """The correctness, Status and Verified cells, the failures, and inspect --json's rows and ok."""
    from model_navigator.package.table import find_failures, status_rows

    rows = {(r["path"], r["runtime"]): r for r in status_rows(status)}
    for (key, rt), verdict in verdicts.items():
        row = rows[(key, rt.value)]
        assert row["correctness"] == TABLE_CORRECTNESS[verdict], (key, rt)
        assert row["verified"] is ((key, rt) in verified), (key, rt)
        assert row["outcome"] == ("correctness failed" if verdict.endswith("failed") else "ok"), (key, rt)
    failed = {(k, rt) for (k, rt), v in verdicts.items() if v.endswith("failed")}
    assert {f for f in find_failures(status) if "correctness" in f} == {
        f"{k} on {rt.value}: correctness failed" for k, rt in failed
    }
    rc, inspected = _inspect_json(workdir)
    assert rc == (1 if failed else 0) and inspected["ok"] is not failed
    assert inspected["rows"] == json.loads(json.dumps(status_rows(status), default=str))
    return inspected


def _check_selection(status, verdicts, verified, qualifying):
    """Exactly the expected paths compete (ranked by their figures); the others are rejected for their verdict."""
    from model_navigator.selection import NoRuntimeQualifiesError, select_runtime

    try:
        best = select_runtime(status)
    except NoRuntimeQualifiesError as e:
        assert not qualifying, str(e)
        best, rejected = None, e.rejected
        if verified:  # the verified path that cannot compete is named, not passed over
            assert "only verified paths qualify: onnx on CPUExecutionProvider" in str(e).splitlines()[0]
            assert any(r.path == "onnx" and r.reason.startswith("verified, but not profiled") for r in rejected)
    else:
        assert {best.path} | {r.path for r in best.rejected if r.reason.startswith("p50 ")} == qualifying
        assert best.verified is ((best.path, best.runtime) in verified)
        rejected = best.rejected
    for r in rejected:
        if r.path == "torch":  # whatever its verdict, the source model is never deployed
            assert r.reason.startswith("the source model"), r
        elif r.runtime is not None and verdicts.get((r.path, r.runtime), "").endswith("failed"):
            assert r.reason.startswith("correctness failed"), r
        elif r.runtime is not None and verdicts.get((r.path, r.runtime), "").endswith("unchecked"):
            assert r.reason.startswith("correctness not checked"), r
    return best


def _check_report(status, verdicts, verified, best):
    """The report's pick is selection's; its series and correctness rows say what the status says."""
    from model_navigator.report.data import build_report_data

    data = build_report_data(status)
    pick = data.latency_pick
    assert (None if pick is None else (pick.series.path, pick.series.runtime)) == (
        None if best is None else (best.path, best.runtime.value)
    )
    assert set(data.verified) == {(k, rt.value) for k, rt in verified}
    for series in data.series:
        verdict = verdicts[(series.path, RuntimeProvider(series.runtime))]
        assert series.correct is (verdict in ("passed", "reference")), series
        assert series.is_source is (verdict == "reference"), series
    rows = {(r.path, r.runtime): r.status for r in data.correctness}
    expected = {"reference": None, "passed": "ok", "failed": "failed", "stale-failed": "failed"}
    for (key, rt), verdict in verdicts.items():
        assert rows.get((key, rt.value)) == expected.get(verdict, "not run"), (key, rt)


def _check_triton_and_serving(status, workdir, verdicts, best):
    """Triton's choice is selection's. On a named path and runtime only one that passed is served;
    Triton refuses a failed one and writes an unchecked one (a config for another machine), saying so."""
    from model_navigator.selection import NoRuntimeQualifiesError
    from model_navigator.serving.plan import plan_serving
    from model_navigator.triton.repository import choose_path

    if best is None:
        with pytest.raises(NoRuntimeQualifiesError):
            choose_path(status, None, None, None, None)
    else:
        chosen, runtime, _ = choose_path(status, None, None, None, None)
        assert (chosen.key, runtime) == (best.path, best.runtime)
    for (key, rt), verdict in verdicts.items():
        if key == "torch":
            continue
        if verdict.endswith("failed"):
            with pytest.raises(UserInputError, match="failed correctness"):
                choose_path(status, key, rt, None, None)
        else:
            assert choose_path(status, key, rt, None, None)[:2] == (status.paths[key], rt)
        if verdict == "passed":
            assert plan_serving(workdir, [], path_key=key, runtime=rt.value).runtime == rt
        else:
            with pytest.raises(UserInputError, match="(failed|has not passed) correctness"):
                plan_serving(workdir, [], path_key=key, runtime=rt.value)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.strip("_"))
def test_every_consumer_gives_the_same_verdict(export, case, tmp_path):
    from model_navigator.package.descriptor import PackageDescriptor

    workdir = tmp_path / "wd"
    shutil.copytree(export.workdir, workdir)
    status = copy.deepcopy(export.status)
    edits, qualifying = case(status)
    status.save(workdir)
    package = PackageDescriptor.from_workdir(workdir)
    status = package.status  # as written and read back
    verdicts = {
        (key, rt): "reference" if key == "torch" and rt == CPU else "passed"
        for key, path in status.paths.items()
        for rt in path.runtimes
    }
    verdicts.update(edits)
    verified = {(k, rt) for (k, rt), v in verdicts.items() if v == "passed" and status.paths[k].runtimes[rt].verified}

    _check_status_model(status, verdicts, verified)
    _check_descriptor(package, verdicts)
    inspected = _check_table_and_inspect(status, workdir, verdicts, verified)
    best = _check_selection(status, verdicts, verified, qualifying)
    star = inspected["best"]  # inspect's star is selection's choice
    assert isinstance(star, str) if best is None else (star["path"], star["runtime"]) == (best.path, best.runtime.value)
    _check_report(status, verdicts, verified, best)
    _check_triton_and_serving(status, workdir, verdicts, best)


def _convert(workdir, *args):
    from model_navigator.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["convert", "--config", str(workdir / "onnx" / "config.yaml"), *args])
    return rc


@pytest.mark.slow
def test_a_verified_mark_follows_its_result_through_convert(export, tmp_path):
    """The issue's steps: set_verified on ONNX, then `model-navigator convert` re-exports it (its profile
    is gone): the mark is kept (the new check passed) and nothing unverified is starred or written for
    Triton in its place. A failing re-check drops the mark with a warning, and the table never shows
    "correctness failed" beside "Verified: yes"."""
    import yaml

    from model_navigator.package.descriptor import PackageDescriptor
    from model_navigator.selection import NoRuntimeQualifiesError
    from model_navigator.triton import write_model_repository

    workdir = tmp_path / "wd"
    shutil.copytree(export.workdir, workdir)
    package = PackageDescriptor.from_workdir(workdir)
    package.set_verified("onnx", "CPUExecutionProvider")
    assert package.get_best().path == "onnx"

    assert _convert(workdir, "--model", "models:linear_model") == 0
    package = PackageDescriptor.from_workdir(workdir)
    onnx = package.status.paths["onnx"].runtimes[CPU]
    assert onnx.passed and onnx.is_verified and onnx.performance is None
    with pytest.raises(NoRuntimeQualifiesError, match="only verified paths qualify: onnx on CPUExecutionProvider"):
        package.get_best()
    with pytest.raises(NoRuntimeQualifiesError):  # `model-navigator triton` writes no unverified model.pt instead
        write_model_repository(workdir, tmp_path / "repo")
    _, inspected = _inspect_json(workdir)
    assert isinstance(inspected["best"], str) and "onnx on CPUExecutionProvider" in inspected["best"]
    log = (workdir / "navigator.log").read_text()
    assert "onnx on CPUExecutionProvider: verified mark kept: the new check passed" in log

    config = yaml.safe_load((workdir / "onnx" / "config.yaml").read_text())
    config["export_config"]["atol"] = config["export_config"]["rtol"] = 1e-12  # nothing passes this
    (workdir / "onnx" / "config.yaml").write_text(yaml.safe_dump(config))
    assert _convert(workdir, "--correctness-only") == 1
    package = PackageDescriptor.from_workdir(workdir)
    onnx = package.status.paths["onnx"].runtimes[CPU]
    assert onnx.failed and not onnx.verified
    assert "verified mark dropped: the new check failed" in (workdir / "navigator.log").read_text()
    row = next(r for r in _inspect_json(workdir)[1]["rows"] if (r["path"], r["runtime"]) == ("onnx", CPU.value))
    assert row["outcome"] == "correctness failed" and row["verified"] is False
    assert package.get_best().path != "onnx"  # no verified path left: the unverified ones compete again
