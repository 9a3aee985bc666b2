"""End-to-end .nav packages: save, load into a new folder, re-test, re-profile, refusals."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import model_navigator as nav
import helpers
from model_navigator.core.enums import StepStatus
from model_navigator.core.status import FORMAT_VERSION, NavigatorStatus
from model_navigator.core.serialization import to_plain

CPU = nav.RuntimeProvider.CPU
FIXTURES = Path(__file__).parent / "fixtures"


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pkg")
    model = _model()
    desc = nav.torch.export(
        model,
        [torch.randn(4, 5) for _ in range(3)],
        workdir=tmp / "navigator_workdir",
        target_formats=("onnx", "torchscript"),
        jit_options=("trace",),
        verbose=False,
        profiler_config=helpers.light_profiler(),
    )
    desc.set_verified(format=nav.Format.ONNX, runtime=CPU)
    package = tmp / "model.nav"
    nav.save(desc, package)
    return model, desc, package


def _statuses(status: NavigatorStatus):
    return {
        k: (
            p.status,
            {rt: (r.verified, r.correctness.status if r.correctness else None) for rt, r in p.runtimes.items()},
        )
        for k, p in status.paths.items()
    }


def test_round_trip_into_new_folder(exported, tmp_path):
    model, desc, package = exported
    copy = tmp_path / "copy.nav"
    shutil.copy(package, copy)
    loaded = nav.load(copy, verbose=False)
    assert loaded.workdir == tmp_path / "copy_workdir"
    assert _statuses(loaded.status) == _statuses(desc.status)
    onnx = loaded.status.paths["onnx"].runtimes[CPU]
    assert onnx.verified is True
    assert onnx.performance is not None and onnx.performance.results  # earlier results survive
    x = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    for fmt, jit in ((nav.Format.ONNX, None), (nav.Format.TORCHSCRIPT, nav.JitType.TRACE)):
        with loaded.get_runner(format=fmt, jit_type=jit, runtime=CPU) as runner:
            out = runner.infer({"input__0": x})
        np.testing.assert_allclose(out["output__0"], expected, rtol=1e-5, atol=1e-6)


def test_save_after_deleting_workspace_and_keep_workdir_false(tmp_path):
    desc = nav.torch.export(
        _model(),
        [torch.randn(2, 5)],
        workdir=tmp_path / "w",
        target_formats=("onnx",),
        verbose=False,
        run_profiling=False,
    )
    package = tmp_path / "m.nav"
    nav.save(desc, package, keep_workdir=False)
    assert package.is_file() and not (tmp_path / "w").exists()
    loaded = nav.load(package, workdir=tmp_path / "again", verbose=False)
    assert loaded.get_status(format=nav.Format.ONNX, runtime_provider=CPU)


def test_load_refuses_existing_workdir_unless_override(exported, tmp_path):
    _, _, package = exported
    target = tmp_path / "existing"
    target.mkdir()
    (target / "mine.txt").write_text("user data")
    with pytest.raises(nav.UserInputError, match="override_workdir=True"):
        nav.load(package, workdir=target, verbose=False)
    assert (target / "mine.txt").read_text() == "user data"
    loaded = nav.load(package, workdir=target, override_workdir=True, retest_conversions=False, verbose=False)
    assert not (target / "mine.txt").exists() and loaded.status.paths["onnx"].ok


def test_save_refuses_existing_path_unless_override(exported, tmp_path):
    _, desc, _ = exported
    target = tmp_path / "taken.nav"
    target.write_bytes(b"keep me")
    with pytest.raises(nav.UserInputError, match="override=True"):
        desc.save(target)
    assert target.read_bytes() == b"keep me"
    desc.save(target, override=True)
    assert zipfile.is_zipfile(target)


def test_save_data_false(exported, tmp_path):
    _, desc, _ = exported
    package = tmp_path / "nodata.nav"
    nav.save(desc, package, save_data=False)
    assert not any(n.startswith(("model_input/", "model_output/")) for n in zipfile.ZipFile(package).namelist())
    loaded = nav.load(package, verbose=False)
    # nothing to re-test against: earlier correctness results are kept as they were
    assert _statuses(loaded.status) == _statuses(desc.status)
    log = (loaded.workdir / "navigator.log").read_text()
    assert "correctness cannot be re-tested" in log


def test_tampered_model_is_refused(exported, tmp_path):
    _, _, package = exported
    tampered = tmp_path / "tampered.nav"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "onnx/model.onnx":
                data = data[:-8] + b"\x00" * 8
            dst.writestr(info, data)
    with pytest.raises(nav.PackageError, match="onnx/model.onnx"):
        nav.load(tampered, verbose=False)
    assert not (tmp_path / "tampered_workdir").exists()


def test_tampered_package_leaves_a_new_workdir_unmade_and_an_old_one_untouched(exported, tmp_path):
    # Into a new workdir the entries are checked while written: a refused one removes everything,
    # the folders made for it included. An existing workdir is kept: the package is checked first.
    _, _, package = exported
    tampered = tmp_path / "tampered.nav"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "onnx/model.onnx":
                data = data[:-8] + b"\x00" * 8
            dst.writestr(info, data)
    with pytest.raises(nav.PackageError, match="onnx/model.onnx.*sha256"):
        nav.load(tampered, workdir=tmp_path / "a" / "b" / "w", verbose=False)
    assert not (tmp_path / "a").exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "keep.txt").write_text("mine")
    with pytest.raises(nav.PackageError, match="onnx/model.onnx"):
        nav.load(tampered, workdir=old, override_workdir=True, verbose=False)
    assert (old / "keep.txt").read_text() == "mine"


def test_retest_updates_a_conversion_that_now_fails(exported, tmp_path):
    """A package made on a GPU machine (trt-fp32 ok) re-tested here: the conversion is re-run and
    the status now says why it cannot be made on this machine."""
    _, desc, _ = exported
    workdir = tmp_path / "gpu_made"
    shutil.copytree(desc.workdir, workdir)
    data = yaml.safe_load((workdir / "status.yaml").read_text())
    data["paths"]["trt-fp32"] = {
        "key": "trt-fp32",
        "format": "trt",
        "status": "ok",
        "precision": "fp32",
        "parent": "onnx",
        "model_path": "trt-fp32/model.plan",
        "runtimes": {"TensorrtExecutionProvider": {"verified": True}},
    }
    (workdir / "trt-fp32").mkdir()
    (workdir / "trt-fp32" / "model.plan").write_bytes(b"plan")
    (workdir / "status.yaml").write_text(yaml.safe_dump(data))
    package = tmp_path / "gpu_made.nav"
    nav.save(nav.PackageDescriptor.from_workdir(workdir), package)
    loaded = nav.load(package, verbose=False)
    trt = loaded.status.paths["trt-fp32"]
    assert trt.status.value == "skipped"
    assert "tensorrt not installed" in trt.reason
    assert loaded.status.paths["onnx"].runtimes[CPU].correctness.status.value == "ok"


def test_profile_loaded_package_with_new_config(exported, tmp_path):
    _, _, package = exported
    config = nav.ProfilerConfig(batch_sizes=(1, 8), measurement_request_count=10, max_trials=4)
    loaded = nav.load(package, workdir=tmp_path / "p", retest_conversions=False, profiler_config=config, verbose=False)
    sizes = [r.batch_size for r in loaded.status.paths["onnx"].runtimes[CPU].performance.results]
    assert sizes == [1, 8]
    nav.profile(loaded, nav.ProfilerConfig(batch_sizes=(2,), measurement_request_count=10, max_trials=4), verbose=False)
    on_disk = NavigatorStatus.load(loaded.workdir)
    assert [r.batch_size for r in on_disk.paths["onnx"].runtimes[CPU].performance.results] == [2]
    assert on_disk.paths["onnx"].runtimes[CPU].verified is True
    assert loaded.get_formats_performance()["onnx-CPUExecutionProvider"] > 0


def test_old_format_package_loads_and_upgrades(tmp_path):
    package = tmp_path / "linear_v1.nav"
    shutil.copy(FIXTURES / "linear_v1.nav", package)
    with zipfile.ZipFile(package) as zf:
        assert yaml.safe_load(zf.read("status.yaml"))["format_version"] == 1
    loaded = nav.load(package, verbose=False)
    assert loaded.status.format_version == FORMAT_VERSION
    onnx = loaded.status.paths["onnx"].runtimes[CPU]
    assert onnx.verified is True
    assert onnx.correctness.status.value == "ok"  # re-tested against the saved outputs
    assert set(onnx.correctness.per_output) == {"output__0"}
    assert yaml.safe_load((loaded.workdir / "status.yaml").read_text())["format_version"] == FORMAT_VERSION


def test_a_version_2_package_loads_with_its_flags_split(tmp_path):
    """Written by the previous release (tests/fixtures/make_v2_package.py): one `flags` mapping per path."""
    package = tmp_path / "linear_v2.nav"
    shutil.copy(FIXTURES / "linear_v2.nav", package)
    with zipfile.ZipFile(package) as zf:
        old = yaml.safe_load(zf.read("status.yaml"))
    assert old["format_version"] == 2 and old["paths"]["onnx"]["flags"] == {"opset": 17, "exporter": "torchscript"}
    loaded = nav.load(package, verbose=False)
    onnx = loaded.status.paths["onnx"]
    assert (onnx.selectors, onnx.reported) == ({}, {"opset": 17, "exporter": "torchscript"})
    assert onnx.runtimes[CPU].verified is True and onnx.runtimes[CPU].correctness.status.value == "ok"
    on_disk = yaml.safe_load((loaded.workdir / "status.yaml").read_text())
    assert on_disk["format_version"] == FORMAT_VERSION == 3
    assert on_disk["paths"]["onnx"]["reported"] == {"opset": 17, "exporter": "torchscript"}
    assert "flags" not in on_disk["paths"]["onnx"] and on_disk["paths"]["onnx"]["selectors"] == {}


def test_version_2_flags_split_into_selectors_and_reported_values():
    """JAX's variants were the only selectors version 2 knew; everything else in `flags` was reported."""
    status = NavigatorStatus(model_name="m", framework="jax")
    data = to_plain(status)
    data["format_version"] = 2
    data["paths"] = {
        "tf-savedmodel-xla": {
            "key": "tf-savedmodel-xla",
            "format": "tf-savedmodel",
            "status": "ok",
            "flags": {"enable_xla": True, "jit_compile": False, "native_serialization": True},
        },
        "onnx-jax2onnx": {"key": "onnx-jax2onnx", "format": "onnx", "status": "ok", "flags": {"opset": 17}},
    }
    paths = NavigatorStatus.from_dict(data).paths
    assert paths["tf-savedmodel-xla"].selectors == {"enable_xla": True, "jit_compile": False}
    assert paths["tf-savedmodel-xla"].reported == {"native_serialization": True}
    assert (paths["onnx-jax2onnx"].selectors, paths["onnx-jax2onnx"].reported) == ({}, {"opset": 17})


def test_newer_format_is_refused(tmp_path):
    workdir = tmp_path / "w"
    NavigatorStatus(model_name="m", framework="torch").save(workdir)
    data = yaml.safe_load((workdir / "status.yaml").read_text())
    data["format_version"] = FORMAT_VERSION + 1
    (workdir / "status.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(nav.PackageError, match="newer"):
        NavigatorStatus.load(workdir)


def test_crafted_path_keys_and_model_paths_are_refused(tmp_path):
    """A status.yaml must never steer reads or writes outside the workspace."""
    for key, model_path in (("../../evil", None), ("onnx", "/etc/passwd"), ("onnx", "../../outside/model.onnx")):
        workdir = tmp_path / f"w{abs(hash((key, model_path)))}"
        NavigatorStatus(model_name="m", framework="torch").save(workdir)
        data = yaml.safe_load((workdir / "status.yaml").read_text())
        data["paths"] = {key: {"key": key, "format": "onnx", "status": "ok", "model_path": model_path}}
        (workdir / "status.yaml").write_text(yaml.safe_dump(data))
        with pytest.raises(nav.PackageError, match="outside the workspace|plain folder name"):
            NavigatorStatus.load(workdir)


def test_load_validates_before_deleting_an_existing_workdir(tmp_path):
    target = tmp_path / "existing"
    target.mkdir()
    (target / "mine.txt").write_text("user data")
    broken = tmp_path / "broken.nav"
    broken.write_bytes(b"not a zip")
    with pytest.raises(nav.PackageError):
        nav.load(broken, workdir=target, override_workdir=True, verbose=False)
    assert (target / "mine.txt").read_text() == "user data"
    with pytest.raises(nav.UserInputError, match="holds the package"):
        nav.load(broken, workdir=tmp_path, override_workdir=True, verbose=False)
    assert broken.exists()


def test_save_refuses_to_delete_a_workspace_holding_the_package(exported):
    _, desc, _ = exported
    inside = desc.workdir / "inside.nav"
    with pytest.raises(nav.UserInputError, match="inside the workspace"):
        nav.save(desc, inside, keep_workdir=False)
    assert desc.workdir.is_dir() and not inside.exists()


def test_status_yaml_is_readable_by_others(exported):
    """An ordinary file (0666 less the umask: 0644 under the usual 022), not the temporary file's private 0600."""
    _, desc, _ = exported
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((desc.workdir / "status.yaml").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_status_yaml_mode_follows_the_umask(tmp_path, umask, mode):
    from model_navigator.core.status import NavigatorStatus

    previous = os.umask(umask)
    try:
        NavigatorStatus(model_name="m", framework="torch", config={"target_device": "cpu"}).save(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "status.yaml").stat().st_mode) == mode


class _RunsCode:
    """Unpickling this runs a shell command: what a hostile model.pt would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_torchscript(good: Path, marker: Path) -> bytes:
    """A TorchScript archive whose pickles are replaced by one that runs code (a valid zip otherwise)."""
    import io
    import pickle

    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith((".pkl",)):
                data = pickle.dumps(_RunsCode(marker), protocol=2)
            dst.writestr(info, data)
    return out.getvalue()


@pytest.mark.slow
def test_a_hostile_artifact_in_a_package_is_never_run_by_inspect_report_or_load(tmp_path):
    """model.pt / model.pt2 that run a command when unpickled, packed with a matching manifest (so only the
    artifacts are hostile): inspect, report and nav.load (without and with re-testing) never run it; the
    re-test records the TorchScript and ExportedProgram paths as failed with the loader's reason instead."""
    import subprocess
    import sys

    marker = tmp_path / "the_artifact_ran_code"
    desc = nav.torch.export(
        _model(),
        [torch.randn(4, 5) for _ in range(2)],
        workdir=tmp_path / "w",
        target_formats=("torchscript", "torch-exportedprogram"),
        jit_options=("trace",),
        run_profiling=False,
        verbose=False,
        target_device="cpu",
    )
    script = desc.workdir / "torchscript-trace" / "model.pt"
    script.write_bytes(_hostile_torchscript(script, marker))
    torch.save({"model": _RunsCode(marker)}, desc.workdir / "torch-exportedprogram" / "model.pt2")
    package = tmp_path / "hostile.nav"
    nav.save(desc, package)

    env = helpers.repo_env()
    for command in (
        ["inspect", str(package)],
        ["inspect", str(package), "--json"],
        ["report", str(package), "--output", str(tmp_path / "report")],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "model_navigator", *command], capture_output=True, text=True, env=env, timeout=120
        )
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert not marker.exists(), command
    nav.load(package, workdir=tmp_path / "plain", retest_conversions=False, verbose=False)
    assert not marker.exists()
    loaded = nav.load(package, workdir=tmp_path / "retested", verbose=False)
    assert not marker.exists()
    for key in ("torchscript-trace", "torch-exportedprogram"):
        correctness = loaded.status.paths[key].runtimes[CPU].correctness
        assert correctness.status == StepStatus.FAILED, (key, correctness)
        assert correctness.reason, key
    assert loaded.get_status(format=nav.Format.TORCHSCRIPT) is False
