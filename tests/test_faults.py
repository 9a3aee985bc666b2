"""Faults leave nothing behind: the worker dies with the user's process, one export owns a workdir,
a full disk or a read-only folder is a clear error, unfinished runs are marked (issue 21)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List, Optional

import pytest

import helpers
from model_navigator.steps.worker import FAULT_ENV


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (here PID 1 may never reap an orphan's corpse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _children(pid: int, needle: str) -> List[int]:
    """Pids of the live children of `pid` whose command line holds `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and needle in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_for(predicate, timeout_s: float, what: str):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


EXPORT_SCRIPT = """
import sys, threading, torch, model_navigator as nav
def export():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 7).eval()
    nav.torch.export(model, [torch.randn(2, 5) for _ in range(3)], workdir={workdir!r}, override_workdir=True,
                     target_formats=("torchscript", "onnx"), jit_options=("trace",), verbose=False)
if {in_thread!r}:
    t = threading.Thread(target=export); t.start(); t.join()
else:
    export()
"""


def _start_export(
    tmp_path: Path, workdir: Path, fault: Optional[str] = None, in_thread: bool = False, name: str = "run.py"
) -> subprocess.Popen:
    script = tmp_path / name
    script.write_text(textwrap.dedent(EXPORT_SCRIPT.format(workdir=str(workdir), in_thread=in_thread)))
    extra = {FAULT_ENV: fault} if fault else {}
    return subprocess.Popen(
        [sys.executable, str(script)], env=helpers.repo_env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _hanging_worker(proc: subprocess.Popen, workdir: Path) -> int:
    """The pid of `proc`'s worker once it hangs in the injected fault (its stderr is in navigator.log)."""
    log = workdir / "navigator.log"

    def hanging() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the export ended early: {proc.communicate()[1].decode()[-2000:]}")
        return log.is_file() and "test fault injection: hang" in log.read_text(errors="replace")

    _wait_for(hanging, 180, "the worker to hang in its step")
    workers = _children(proc.pid, "model_navigator.steps.worker")
    assert len(workers) == 1, workers
    return workers[0]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("in_thread", [False, True], ids=["main-thread", "other-thread"])
def test_worker_dies_with_the_users_process_mid_step(tmp_path, in_thread):
    """kill -9 of the user's process while the worker runs a (hanging) step: the worker is gone
    within seconds, by the parent-death signal (export from the main thread) or the watchdog
    (export from another thread, where the signal would fire when that thread ends)."""
    workdir = tmp_path / "w"
    proc = _start_export(tmp_path, workdir, fault="correctness:onnx:hang", in_thread=in_thread)
    try:
        worker = _hanging_worker(proc, workdir)
        assert _alive(worker)
        proc.kill()  # SIGKILL: no atexit, no finally, nothing of ours runs in the user's process
        proc.wait(timeout=30)
        start = time.monotonic()
        _wait_for(lambda: not _alive(worker), 5, f"worker {worker} to die with its parent")
        print(f"worker gone {time.monotonic() - start:.3f} s after kill -9 of its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    # The killed run is on record as unfinished, and `inspect` says so and exits 1.
    from model_navigator.core.status import NavigatorStatus

    run = NavigatorStatus.load(workdir).runs[-1]
    assert (run.operation, run.pid, run.finished_at, run.outcome) == ("export", proc.pid, None, "running")
    inspect = subprocess.run(
        [sys.executable, "-m", "model_navigator", "inspect", str(workdir)],
        env=helpers.repo_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inspect.returncode == 1, inspect.stderr
    assert f"export run {run.id} (pid {proc.pid} on" in inspect.stderr
    assert "did not finish: it was killed or crashed, or it is still running" in inspect.stderr


# One process per workdir ---------------------------------------------------------------------------
HOLD_SCRIPT = """
import sys
from model_navigator.core.workdir_lock import workdir_lock
with workdir_lock(sys.argv[1], "export"):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes stdin or kills us
"""


def _hold_lock(workdir: Path) -> subprocess.Popen:
    """Another process holding `workdir`'s lock (until its stdin closes)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(workdir)],
        env=helpers.repo_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line = proc.stdout.readline()
    assert line == b"locked\n", proc.communicate()[1].decode()
    return proc


def test_lock_held_by_another_process_is_refused_with_its_name(tmp_path):
    import socket

    from model_navigator.core.errors import UserInputError
    from model_navigator.core.workdir_lock import lock_path, workdir_lock

    workdir = tmp_path / "w"
    holder = _hold_lock(workdir)
    try:
        assert lock_path(workdir) == tmp_path / ".w.lock"  # beside the workdir: override_workdir cannot delete it
        with pytest.raises(UserInputError) as e:
            with workdir_lock(workdir, "export"):
                pass
        message = str(e.value)
        assert f"is in use by process {holder.pid} on host {socket.gethostname()} (export, started 20" in message
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not lock_path(workdir).exists()  # released and removed by its holder
    with workdir_lock(workdir, "export") as previous:
        assert previous is None


def test_lock_of_a_killed_process_is_taken_over_and_named(tmp_path):
    from model_navigator.core.workdir_lock import lock_path, takeover_message, workdir_lock

    workdir = tmp_path / "w"
    holder = _hold_lock(workdir)
    holder.kill()  # kill -9: the lock file stays, its flock goes with the process
    holder.communicate()
    assert lock_path(workdir).exists()
    with workdir_lock(workdir, "load") as previous:
        assert previous is not None and previous.pid == holder.pid and previous.operation == "export"
        assert f"left by process {holder.pid} on host" in takeover_message(workdir, previous)
    assert not lock_path(workdir).exists()


def test_lock_is_reentrant_in_one_thread_and_refused_to_another(tmp_path):
    import threading

    from model_navigator.core.errors import UserInputError
    from model_navigator.core.workdir_lock import lock_path, workdir_lock

    workdir = tmp_path / "w"
    errors = []

    def other_thread():
        try:
            with workdir_lock(workdir, "profile"):
                pass
        except UserInputError as e:
            errors.append(str(e))

    with workdir_lock(workdir, "load"):
        with workdir_lock(workdir, "profile") as inner:  # nav.load re-checks under its own lock
            assert inner is None
        assert lock_path(workdir).exists()  # the inner release keeps the outer lock
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "another thread of this process" in errors[0]
    assert not lock_path(workdir).exists()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_exports_into_one_workdir(tmp_path):
    """A second export (override_workdir=True) while the first runs is refused with the first
    process named, and the first one's files are left alone; once the first is killed, the next
    export takes its lock over and says so."""
    import socket

    import torch

    import model_navigator as nav

    workdir = tmp_path / "w"
    first = _start_export(tmp_path, workdir, fault="correctness:onnx:hang")
    try:
        worker = _hanging_worker(first, workdir)
        status_before = (workdir / "status.yaml").stat()
        model = torch.nn.Linear(5, 7).eval()
        with pytest.raises(nav.UserInputError) as e:
            nav.torch.export(
                model,
                [torch.randn(2, 5)],
                workdir=workdir,
                override_workdir=True,
                verbose=False,
                target_formats=("onnx",),
                run_profiling=False,
            )
        assert f"is in use by process {first.pid} on host {socket.gethostname()} (export, started" in str(e.value)
        assert os.path.samestat((workdir / "status.yaml").stat(), status_before)  # not deleted, not rewritten
        assert (workdir / "torchscript-trace" / "model.pt").is_file()
        first.kill()
        first.wait(timeout=30)
        _wait_for(lambda: not _alive(worker), 5, "the first export's worker to die")
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    desc = nav.torch.export(
        model,
        [torch.randn(2, 5)],
        workdir=workdir,
        override_workdir=True,
        verbose=False,
        target_formats=("onnx",),
        run_profiling=False,
    )
    assert desc.status.paths["onnx"].ok
    assert [(r.operation, r.outcome) for r in desc.status.runs] == [("export", "finished")]
    log = (workdir / "navigator.log").read_text()
    assert f"Took over the lock of workdir {str(workdir)!r} left by process {first.pid}" in log


FIXTURE_PACKAGE = Path(__file__).resolve().parent / "fixtures" / "linear_v1.nav"


def test_load_and_profile_respect_the_lock(tmp_path):
    """nav.load into a workdir another process holds deletes nothing; nav.profile of it is refused."""
    import model_navigator as nav

    workdir = tmp_path / "w"
    desc = nav.load(FIXTURE_PACKAGE, workdir=workdir, retest_conversions=False, verbose=False)
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    holder = _hold_lock(workdir)
    try:
        with pytest.raises(nav.UserInputError, match=f"is in use by process {holder.pid} "):
            nav.load(FIXTURE_PACKAGE, workdir=workdir, override_workdir=True, retest_conversions=False, verbose=False)
        with pytest.raises(nav.UserInputError, match=f"is in use by process {holder.pid} "):
            nav.profile(desc, verbose=False)
        assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# Unfinished runs -------------------------------------------------------------------------------------
def test_interrupted_run_is_recorded_and_inspect_exits_1(tmp_path, capsys):
    """A run that ends by Ctrl-C is marked interrupted in status.yaml; `inspect` says so and exits
    1 until a later run finishes; an unfinished export stays flagged."""
    import model_navigator as nav
    from model_navigator.cli.main import main
    from model_navigator.core.runs import recorded_run, start_run
    from model_navigator.core.status import NavigatorStatus

    desc = nav.load(FIXTURE_PACKAGE, workdir=tmp_path / "w", retest_conversions=False, verbose=False)
    assert main(["inspect", str(desc.workdir)]) == 0  # the load itself is recorded, finished: nothing to flag
    assert [(r.operation, r.outcome) for r in desc.status.runs] == [("load", "finished")]
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        with recorded_run(desc.status, desc.save_status, "profile"):
            raise KeyboardInterrupt
    run = NavigatorStatus.load(desc.workdir).runs[-1]
    assert (run.operation, run.outcome, run.reason) == ("profile", "interrupted", "Ctrl-C")
    assert run.finished_at is not None and run.pid == os.getpid()
    assert main(["inspect", str(desc.workdir)]) == 1
    err = capsys.readouterr().err
    assert f"profile run {run.id} (pid {os.getpid()} on" in err and "did not finish: interrupted (Ctrl-C)" in err
    assert main(["report", str(desc.workdir), "-o", str(tmp_path / "report")]) == 1  # report lists it too
    assert "did not finish: interrupted (Ctrl-C)" in (tmp_path / "report" / "report.md").read_text()
    with recorded_run(desc.status, desc.save_status, "profile"):
        pass
    assert [r.outcome for r in NavigatorStatus.load(desc.workdir).runs] == ["finished", "interrupted", "finished"]
    assert main(["inspect", str(desc.workdir)]) == 0  # the interrupted re-profile was done again
    # An export that never finished (what kill -9 leaves: started, never marked) stays flagged
    # after later runs finish: its workspace lacks what it did not reach.
    export = start_run(desc.status, "export")
    desc.save_status()
    with recorded_run(desc.status, desc.save_status, "profile"):
        pass
    assert main(["inspect", str(desc.workdir)]) == 1
    assert f"export run {export.id} (pid {os.getpid()} on" in capsys.readouterr().err


# One validation for every reader -------------------------------------------------------------------
def _repack(source: Path, target: Path, replace: dict, compression: int = 8) -> Path:
    """Copy the package `source` to `target` with some entries' bytes replaced and a manifest that
    matches (what a hostile or careless producer would write: only the replaced content is wrong)."""
    import hashlib
    import json
    import zipfile

    with zipfile.ZipFile(source) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist() if i.filename != "manifest.json"}
        manifest = json.loads(zf.read("manifest.json"))
    entries.update(replace)
    manifest["entries"] = [
        {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in entries.items()
    ]
    with zipfile.ZipFile(target, "w", compression=compression) as zf:  # 8: deflated, 0: stored
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return target


def test_inspect_report_and_triton_refuse_a_pickled_npz_as_load_does(tmp_path):
    import io

    import numpy as np

    import model_navigator as nav
    from model_navigator.cli.main import main

    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([{"a": 1}, None], dtype=object))  # needs pickle to load
    package = _repack(FIXTURE_PACKAGE, tmp_path / "evil.nav", {"model_input/correctness/2.npz": buffer.getvalue()})
    expected = "entry 'model_input/correctness/2.npz' refused: array 'x' cannot be loaded without pickle"
    with pytest.raises(nav.PackageError, match=expected):
        nav.load(package, workdir=tmp_path / "loaded", retest_conversions=False, verbose=False)
    for argv in (
        ["inspect", str(package)],
        ["report", str(package), "-o", str(tmp_path / "report")],
        ["triton", str(package), "-o", str(tmp_path / "repo")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "model_navigator", *argv],
            env=helpers.repo_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (argv, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.nav"]  # nothing written by any reader
    assert main(["inspect", str(FIXTURE_PACKAGE)]) == 0  # the untouched package is fine


def test_truncated_package_is_reported_truncated(tmp_path, capsys):
    """Cut right after a stored model file that is itself a zip (TorchScript's model.pt), the end
    record zipfile finds is the model's: the package is reported truncated, not as lacking status.yaml."""
    import zipfile

    from model_navigator.cli.main import main

    inner = tmp_path / "model.pt"  # laid out as torch.jit.save writes it: a zip archive
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("model/data.pkl", b"\x80\x02" + bytes(4000))
        zf.writestr("model/version", b"3\n")
    package = _repack(
        FIXTURE_PACKAGE,
        tmp_path / "full.nav",
        {"torchscript-trace/model.pt": inner.read_bytes()},
        compression=zipfile.ZIP_STORED,
    )  # as write_archive stores model files
    data = package.read_bytes()
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo("torchscript-trace/model.pt")
        end_of_model = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size
    for cut in (end_of_model, end_of_model + 100, len(data) // 3, len(data) - 10):
        truncated = tmp_path / "truncated.nav"
        truncated.write_bytes(data[:cut])
        assert main(["inspect", str(truncated)]) == 2
        err = capsys.readouterr().err
        assert "truncated.nav' is truncated" in err and "status.yaml" not in err, (cut, err)


# Full disk, read-only folder -------------------------------------------------------------------------
def _mount_tmpfs(where: Path, options: str) -> None:
    """Mount a tmpfs at `where` with `options`, or skip the test saying why it cannot be done here."""
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs mounts need Linux")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")


@pytest.fixture
def tmpfs(tmp_path):
    """mount(folder, options): a tmpfs mounted for the test, unmounted after it."""
    mounted: List[Path] = []

    def mount(folder: Path, options: str) -> Path:
        _mount_tmpfs(folder, options)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.slow
def test_full_disk_fails_the_paths_and_the_process_survives(tmp_path, tmpfs):
    """A 3 MiB model into a 2 MiB tmpfs: torch.jit.save used to abort the process (rc 134); now
    every artifact is refused before a byte is written, with the free and needed sizes."""
    disk = tmpfs(tmp_path / "disk", "size=2m")
    workdir = disk / "w"
    script = tmp_path / "full.py"
    script.write_text(
        textwrap.dedent(f"""
        import torch, model_navigator as nav
        torch.manual_seed(0)
        model = torch.nn.Linear(1024, 768).eval()  # 3 MiB of float32 parameters
        nav.torch.export(model, [torch.randn(2, 1024) for _ in range(2)], workdir={str(workdir)!r},
                         target_formats=("torchscript", "torch-exportedprogram", "onnx"), jit_options=("trace",),
                         verbose=False, run_profiling=False)
        print("survived")
    """)
    )
    proc = subprocess.run(
        [sys.executable, str(script)], env=helpers.repo_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "survived" in proc.stdout, proc.stderr[-3000:]
    from model_navigator.core.status import NavigatorStatus

    status = NavigatorStatus.load(workdir)
    for key in ("torchscript-trace", "torch-exportedprogram", "onnx"):
        path = status.paths[key]
        assert path.status.value == "failed", (key, path.reason)
        assert f"not enough free space in {str(workdir / key)!r}: " in path.reason
        assert "MB free, the artifact needs about 3.0 MB" in path.reason
        assert not (workdir / key).exists()  # nothing half written
    assert status.runs[-1].outcome == "finished"


def test_samples_that_do_not_fit_are_refused_before_writing(tmp_path, tmpfs):
    import torch

    import model_navigator as nav
    from model_navigator.core.status import NavigatorStatus

    disk = tmpfs(tmp_path / "disk", "size=2m")
    model = torch.nn.Linear(200_000, 1).eval()
    with pytest.raises(
        nav.UserInputError,
        match=r"Cannot export: not enough free space in .*: [0-9.]+ MB free, "
        r"saving the samples needs about [0-9.]+ MB",
    ):
        nav.torch.export(
            model,
            [torch.randn(2, 200_000) for _ in range(2)],
            workdir=disk / "w",
            verbose=False,
            target_formats=("onnx",),
            run_profiling=False,
        )
    assert not (disk / "w" / "model_input").exists()
    run = NavigatorStatus.load(disk / "w").runs[-1]
    assert run.outcome == "failed" and "not enough free space" in run.reason


def test_read_only_workdir_is_a_clear_error(tmp_path, tmpfs):
    """A workdir on a read-only filesystem (as root, chmod does not stop writes: a read-only mount
    does): a UserInputError naming the folder, not a raw OSError."""
    import torch

    import model_navigator as nav

    model = torch.nn.Linear(3, 2).eval()
    read_only = tmpfs(tmp_path / "ro", "ro,size=1m")
    with pytest.raises(nav.UserInputError, match=r"Cannot use `workdir` .*ro/w.*Read-only file system"):
        nav.torch.export(model, [torch.randn(2, 3)], workdir=read_only / "w", verbose=False, run_profiling=False)
    # The workdir itself read-only (a mount point) in a writable folder: override_workdir cannot empty it.
    mounted = tmpfs(tmp_path / "rw" / "w", "ro,size=1m")
    with pytest.raises(nav.UserInputError, match=r"`workdir` .*rw/w.* cannot be replaced: .*"):
        nav.torch.export(
            model, [torch.randn(2, 3)], workdir=mounted, override_workdir=True, verbose=False, run_profiling=False
        )
    with pytest.raises(nav.UserInputError, match=r"`workdir` .*rw/w.* cannot be replaced: .*"):
        nav.load(FIXTURE_PACKAGE, workdir=mounted, override_workdir=True, retest_conversions=False, verbose=False)


# Round two (issue 31) --------------------------------------------------------------------------------
def test_one_lock_per_real_folder_through_a_symlink_and_a_bind_mount(tmp_path, tmpfs):
    """The lock goes by the real folder: the same workdir through a symlink (and, as root, through a
    bind mount of its parent or of itself) is refused while another process holds it."""
    from model_navigator.core.errors import UserInputError
    from model_navigator.core.workdir_lock import lock_path, workdir_lock

    real = tmp_path / "real"
    if os.geteuid() == 0 and sys.platform.startswith("linux"):
        tmpfs(real, "size=1m")
    (real / "w").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    holder = _hold_lock(real / "w")
    try:
        assert lock_path(link / "w") == lock_path(real / "w")
        with pytest.raises(UserInputError, match=f"is in use by process {holder.pid} "):
            with workdir_lock(link / "w", "profile"):
                pass
        if os.geteuid() == 0 and sys.platform.startswith("linux"):
            # the parent bound elsewhere, and the workdir itself bound elsewhere (on a tmpfs, whose
            # mount shows its root, so the bind maps back to it)
            (tmp_path / "bound").mkdir()
            (tmp_path / "bound_w").mkdir()
            for source, target, workdir in (
                (real, tmp_path / "bound", tmp_path / "bound" / "w"),
                (real / "w", tmp_path / "bound_w", tmp_path / "bound_w"),
            ):
                if subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True).returncode:
                    continue
                try:
                    with pytest.raises(UserInputError, match=f"is in use by process {holder.pid} "):
                        with workdir_lock(workdir, "profile"):
                            pass
                finally:
                    subprocess.run(["umount", "-l", str(target)], capture_output=True)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with workdir_lock(link / "w", "profile"):  # free again, by either name
        assert lock_path(real / "w").exists()
    assert not lock_path(real / "w").exists()


def _loaded_status(tmp_path: Path) -> tuple:
    """The fixture package loaded (its status.yaml now in the current format) and that status as data."""
    import yaml

    import model_navigator as nav

    desc = nav.load(FIXTURE_PACKAGE, workdir=tmp_path / "good", retest_conversions=False, verbose=False)
    nav.save(desc, tmp_path / "good.nav")  # a package of the current format, to alter
    return desc.workdir, yaml.safe_load((desc.workdir / "status.yaml").read_text())


def _bad_copies(tmp_path: Path, good: Path, name: str, status_text: str) -> tuple:
    """A workspace copy and a package with `status_text` as status.yaml (a consistent manifest)."""
    import shutil

    workspace = tmp_path / f"{name}_ws"
    shutil.copytree(good, workspace)
    (workspace / "status.yaml").write_text(status_text)
    package = _repack(tmp_path / "good.nav", tmp_path / f"{name}.nav", {"status.yaml": status_text.encode()})
    return workspace, package


def test_every_reader_refuses_what_load_refuses_naming_the_field(tmp_path, capsys):
    """A status.yaml whose number is a string, whose `paths` is a list, or that nests 40 or 5000
    levels deep: nav.load, inspect, report, triton, profile and serve's plan, of the package and of a
    workspace, all refuse it with a PackageError naming the field (exit 2), never a raw ValueError /
    AttributeError / RecursionError, and write nothing."""
    import copy

    import yaml

    import model_navigator as nav
    from model_navigator.cli.main import main
    from model_navigator.serving.plan import plan_serving

    good, data = _loaded_status(tmp_path)
    as_string = copy.deepcopy(data)
    per_output = as_string["paths"]["onnx"]["runtimes"]["CPUExecutionProvider"]["correctness"]["per_output"]
    per_output["output__0"]["max_abs_error"] = "1.2e-07"
    as_list = copy.deepcopy(data)
    as_list["paths"] = list(as_list["paths"].values())
    negative = copy.deepcopy(data)
    negative["paths"]["onnx"]["duration_s"] = -3.0
    nested = copy.deepcopy(data)
    nested["environment"]["deep"] = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    cases = {
        "string": (
            yaml.safe_dump(as_string),
            "field `paths.onnx.runtimes.CPUExecutionProvider.correctness.per_output."
            "output__0.max_abs_error` must be a number, got str '1.2e-07'",
        ),
        "list": (yaml.safe_dump(as_list), "field `paths` must be a mapping, got list"),
        "negative": (yaml.safe_dump(negative), "field `paths.onnx.duration_s` is -3.0, below its minimum 0"),
        "nested": (yaml.safe_dump(nested), "field `environment.deep[0]"),
        "deep": (yaml.safe_dump(data) + "extra: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply to be read"),
    }
    for name, (text, expected) in cases.items():
        workspace, package = _bad_copies(tmp_path, good, name, text)
        with pytest.raises(nav.PackageError) as e:
            nav.load(package, workdir=tmp_path / f"{name}_loaded", retest_conversions=False, verbose=False)
        assert expected in str(e.value), (name, str(e.value))
        assert not (tmp_path / f"{name}_loaded").exists()
        readers = [["inspect", str(package)], ["inspect", str(workspace)]]
        if name in ("string", "list"):  # the crashes seen (report renders plots: seconds each), and every
            for target in (package, workspace):  # other reader of a package or a workspace
                readers += [
                    ["report", str(target), "-o", str(tmp_path / f"{name}_report")],
                    ["triton", str(target), "-o", str(tmp_path / f"{name}_repo")],
                ]
            readers += [
                ["profile", str(package), "--workdir", str(tmp_path / f"{name}_profiled")],
                ["profile", str(workspace)],
            ]
            for target in (package, workspace):  # what `serve` reads before its server starts
                with pytest.raises(nav.PackageError) as e:
                    plan_serving(target, [])
                assert expected in str(e.value), (name, target, str(e.value))
        for argv in readers:
            assert main(argv) == 2, (name, argv)
            err = capsys.readouterr().err
            assert expected in err and "Traceback" not in err, (name, argv, err)
        for written in ("report", "repo", "profiled"):
            assert not (tmp_path / f"{name}_{written}").exists(), (name, written)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("- " * 100000 + "x\n", "nests too deeply to be read"),  # block nesting: no brackets to count
        ("a: " + "{b: " * 300 + "1" + "}" * 300 + "\n", "nests too deeply to be read"),
        ("a: &x [1, 2]\nb: *x\n", "YAML alias *x is not allowed"),
        ("a: [1, 2\n", "is not safe, plain YAML"),
    ],
)
def test_status_text_refused_before_it_is_built(text, expected):
    """The YAML reader (libyaml where installed) refuses deep nesting, aliases and bad YAML with a
    PackageError, never a crash of its recursive composer or a RecursionError."""
    import model_navigator as nav
    from model_navigator.core.status_schema import parse_yaml_text

    with pytest.raises(nav.PackageError, match=re.escape(expected)):
        parse_yaml_text(text, "status.yaml")


def _fill(disk: Path) -> None:
    """Fill the filesystem of `disk` to the last byte (a file that grows until ENOSPC)."""
    import errno

    with open(disk / "filler", "wb", buffering=0) as f:
        while True:
            try:
                f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
    with open(disk / "filler", "ab", buffering=0) as f:  # the last partial block too
        for _ in range(4096):
            try:
                f.write(b"\0")
            except OSError:
                break


def test_save_from_a_full_workdir_disk_and_onto_a_full_destination(tmp_path, tmpfs):
    """nav.save reads a workspace on a full disk (no lock or status write needs space there, no empty
    lock file is left); a full destination is a UserInputError naming the package, the free space and
    what it needs, and leaves nothing behind."""
    import model_navigator as nav
    from model_navigator.package.archive_validate import validate_archive

    source = tmpfs(tmp_path / "source", "size=1m")
    desc = nav.load(FIXTURE_PACKAGE, workdir=source / "w", retest_conversions=False, verbose=False)
    desc.save_status()
    _fill(source)
    nav.save(desc, tmp_path / "out.nav")
    validate_archive(tmp_path / "out.nav")
    assert sorted(p.name for p in source.iterdir()) == ["filler", "w"]  # no lock file left behind
    destination = tmpfs(tmp_path / "dest", "size=4k")  # one page: the package (~9 KB) cannot fit
    with pytest.raises(nav.UserInputError) as e:
        nav.save(desc, destination / "x.nav")
    message = str(e.value)
    assert (
        f"Cannot save the package {str(destination / 'x.nav')!r}: not enough free space in "
        f"{str(destination)!r} (" in message
    ), message
    assert re.search(
        r"\([0-9.]+ KB free; the package needs up to [0-9.]+ KB, the size of the workspace's files; "
        r"No space left on device\)",
        message,
    ), message
    assert list(destination.iterdir()) == []


SAVE_SCRIPT = """
import os, sys
from model_navigator.package.descriptor import PackageDescriptor

replace = os.replace
def signalling(src, dst, *args, **kwargs):  # the test's hook: the temporary is written, wait to be killed
    if str(src).endswith(".tmp") and os.path.basename(str(dst)) == "m.nav":
        print("written", flush=True)
        sys.stdin.read()
    return replace(src, dst, *args, **kwargs)
os.replace = signalling
PackageDescriptor.from_workdir(sys.argv[1]).save(sys.argv[2], override=True)
"""


def test_temporaries_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    """kill -9 of nav.save just before it renames its finished temporary leaves that hidden file; the
    next save of the package removes it (its process is gone) and leaves a live process's alone."""
    import model_navigator as nav

    desc = nav.load(FIXTURE_PACKAGE, workdir=tmp_path / "w", retest_conversions=False, verbose=False)
    package = tmp_path / "m.nav"
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVE_SCRIPT, str(desc.workdir), str(package)],
        env=helpers.repo_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline() == b"written\n", proc.communicate()[1].decode()
        temporary = list(tmp_path.glob(".m.nav.*.tmp"))
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert temporary[0].exists() and not package.exists()
    live = tmp_path / temporary[0].name.replace(f".{proc.pid}.", f".{os.getppid()}.")  # a live process's
    live.write_bytes(b"in progress")
    nav.save(desc, package)
    assert not temporary[0].exists() and live.exists() and package.is_file()
    assert sorted(p.name for p in tmp_path.glob(".m.nav.*")) == [live.name]


def test_dtype_change_meta_tensor_and_messages_naming_the_dataloader_item(tmp_path):
    """A dtype that changes across samples is refused like a rank change, naming the item and both
    dtypes; a meta-device tensor is refused clearly; a model failing on a split sample is reported
    by the dataloader item and the position inside its batch, not by the split sample's number."""
    import torch

    import model_navigator as nav

    model = torch.nn.Linear(3, 2).eval()
    loader = [torch.randn(2, 3), torch.randn(2, 3, dtype=torch.float64)]
    with pytest.raises(
        nav.UserInputError,
        match=r"`dataloader` item 1, input 'input__0' has dtype float64 but item "
        r"0 had float32; an input keeps its dtype across samples",
    ):
        nav.torch.export(model, loader, workdir=tmp_path / "a", verbose=False, run_profiling=False)
    assert not (tmp_path / "a").exists()  # refused before anything is written
    with pytest.raises(
        nav.UserInputError,
        match=r"`dataloader` item 0, input 'input__0' is a tensor on the meta "
        r"device, which holds no data",
    ):
        nav.torch.export(
            model, [torch.empty(2, 3, device="meta")], workdir=tmp_path / "b", verbose=False, run_profiling=False
        )
    with pytest.raises(
        nav.UserInputError,
        match=r"`model` has tensor 'weight' on the meta device, which holds no "
        r"values",
    ):
        nav.torch.export(
            torch.nn.Linear(3, 2, device="meta"),
            [torch.randn(2, 3)],
            workdir=tmp_path / "b",
            verbose=False,
            run_profiling=False,
        )
    assert not (tmp_path / "b").exists()

    class FailsOnTheFifthRow(torch.nn.Module):
        def forward(self, x):
            if bool((x == 7).any()):
                raise ValueError("a seven")
            return x * 2

    batches = [torch.zeros(3, 2), torch.zeros(3, 2)]
    batches[1][1, 0] = 7  # item 1, position 1: split sample 4
    with pytest.raises(nav.ModelNavigatorError, match=r"failed on dataloader item 1, position 1 in its batch "):
        nav.torch.export(
            FailsOnTheFifthRow().eval(),
            batches,
            workdir=tmp_path / "c",
            verbose=False,
            target_formats=("onnx",),
            run_profiling=False,
        )


LOAD_SCRIPT = """
import sys
import model_navigator as nav
from model_navigator.package import archive_extract

extract_entry, count = archive_extract._extract_entry, [0]
def signalling(*args, **kwargs):  # the test's hook: say when half the files are out, then wait
    count[0] += 1
    if count[0] == 8:
        print("halfway", flush=True)
        sys.stdin.read()
    return extract_entry(*args, **kwargs)
archive_extract._extract_entry = signalling
nav.load(sys.argv[1], workdir=sys.argv[2], retest_conversions=False, verbose=False)
"""


def test_killed_load_is_marked_and_every_reader_says_so(tmp_path, capsys):
    """kill -9 of nav.load halfway through unpacking: status.yaml (written first) records the load
    unfinished; inspect and report exit 1 naming it; profile, triton and serve refuse the workspace; nav.load
    into it says why it exists, and with override_workdir loads it again, finished."""
    import model_navigator as nav
    from model_navigator.cli.main import main
    from model_navigator.core.status import NavigatorStatus

    workdir = tmp_path / "w"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOAD_SCRIPT, str(FIXTURE_PACKAGE), str(workdir)],
        env=helpers.repo_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline() == b"halfway\n", proc.communicate()[1].decode()
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert not (workdir / "onnx" / "model.onnx").exists()  # cut short indeed
    run = NavigatorStatus.load(workdir).runs[-1]
    assert (run.operation, run.pid, run.finished_at, run.outcome) == ("load", proc.pid, None, "running")
    expected = f"load run {run.id} (pid {proc.pid} on"
    assert main(["inspect", str(workdir)]) == 1
    assert expected in capsys.readouterr().err
    assert main(["report", str(workdir), "-o", str(tmp_path / "report")]) == 1
    assert expected in capsys.readouterr().err
    incomplete = f"workspace {str(workdir)!r} is incomplete: the load that unpacked it (run {run.id}, pid {proc.pid} on"
    assert main(["profile", str(workdir)]) == 2
    assert incomplete in capsys.readouterr().err
    assert main(["triton", str(workdir), "-o", str(tmp_path / "repo"), "--path", "onnx"]) == 2
    assert incomplete in capsys.readouterr().err and not (tmp_path / "repo").exists()
    from model_navigator.serving.plan import plan_serving

    with pytest.raises(nav.PackageError, match="is incomplete: the load that unpacked it"):
        plan_serving(workdir, [], path_key="onnx")  # what `serve` reads before its server starts
    from model_navigator.package.descriptor import PackageDescriptor

    with pytest.raises(nav.PackageError, match="is incomplete: the load that unpacked it"):
        nav.save(PackageDescriptor.from_workdir(workdir), tmp_path / "partial.nav")
    assert not (tmp_path / "partial.nav").exists()
    with pytest.raises(
        nav.UserInputError,
        match=r"already exists and was left untouched \(the load that unpacked it "
        r"\(run .*was killed or crashed, so files may be missing; "
        r"override_workdir=True loads it again\)",
    ):
        nav.load(FIXTURE_PACKAGE, workdir=workdir, retest_conversions=False, verbose=False)
    desc = nav.load(FIXTURE_PACKAGE, workdir=workdir, override_workdir=True, retest_conversions=False, verbose=False)
    assert [(r.operation, r.outcome) for r in desc.status.runs] == [("load", "finished")]
    assert (workdir / "onnx" / "model.onnx").is_file()
    assert main(["inspect", str(workdir)]) == 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_is_marked_like_ctrl_c(tmp_path):
    """SIGTERM of the user's process mid-step: the run is marked interrupted (SIGTERM), the step in
    flight says so, the worker is gone and no lock is left; before, the run stayed `running`."""
    import signal

    from model_navigator.core.status import NavigatorStatus
    from model_navigator.core.workdir_lock import lock_path

    workdir = tmp_path / "w"
    proc = _start_export(tmp_path, workdir, fault="correctness:onnx:hang")
    try:
        worker = _hanging_worker(proc, workdir)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        _wait_for(lambda: not _alive(worker), 10, "the worker to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate()[1].decode()
    assert proc.returncode != 0, stderr
    status = NavigatorStatus.load(workdir)
    run = status.runs[-1]
    assert (run.operation, run.outcome, run.reason) == ("export", "interrupted", "SIGTERM"), stderr[-2000:]
    reasons = [r.correctness.reason for r in status.paths["onnx"].runtimes.values() if r.correctness]
    assert "interrupted (SIGTERM)" in reasons, reasons
    assert not lock_path(workdir).exists()


FULL_DISK_SCRIPT = """
import torch, model_navigator as nav
torch.manual_seed(0)
TABLE = torch.randn(768 * 1024)  # 3 MiB baked into the graph as a constant: no estimate sees it

class Buffered(torch.nn.Module):  # 3 MiB in a non-persistent buffer: not in the state_dict
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.register_buffer("table", torch.randn(768 * 1024), persistent=False)
    def forward(self, x):
        return self.linear(x) + self.table[:4]

class Baked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
    def forward(self, x):
        return self.linear(x) + (TABLE * x.sum()).mean()  # all of it, not foldable

for name, model in (("buffered", Buffered()), ("baked", Baked())):
    nav.torch.export(model.eval(), [torch.randn(2, 4) for _ in range(2)], workdir={disk!r} + "/" + name,
                     target_formats=("torchscript", "torch-exportedprogram", "onnx"), jit_options=("trace",),
                     verbose=False, run_profiling=False)
print("survived")
"""


@pytest.mark.slow
def test_full_disk_counts_every_tensor_and_a_failed_write_leaves_no_half_file(tmp_path, tmpfs):
    """3 MiB that the state_dict does not hold, into a 2 MiB tmpfs: a non-persistent buffer is counted
    by the estimate (every path refused before writing); a global tensor baked into the graph is
    caught by the writes themselves: torch.export.save is checked against the program's own tensors
    (it used to abort the process, rc 134), TorchScript and ONNX writes fail with the space reason,
    and nothing is left under the artifact's final name (ONNX used to leave a truncated model.onnx)."""
    disk = tmpfs(tmp_path / "disk", "size=2m")
    script = tmp_path / "full.py"
    script.write_text(textwrap.dedent(FULL_DISK_SCRIPT.format(disk=str(disk))))
    proc = subprocess.run(
        [sys.executable, str(script)], env=helpers.repo_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "survived" in proc.stdout, proc.stderr[-3000:]
    from model_navigator.core.status import NavigatorStatus

    for name in ("buffered", "baked"):
        workdir = disk / name
        status = NavigatorStatus.load(workdir)
        for key, artifact in (
            ("torchscript-trace", "model.pt"),
            ("torch-exportedprogram", "model.pt2"),
            ("onnx", "model.onnx"),
        ):
            path = status.paths[key]
            assert path.status.value == "failed", (name, key, path.reason)
            assert f"not enough free space in {str(workdir / key)!r}: " in path.reason, (name, key, path.reason)
            assert not (workdir / key / artifact).exists(), (name, key)
            if (workdir / key).exists():
                assert not [p.name for p in (workdir / key).iterdir() if p.name.startswith(".")], (name, key)
        assert status.runs[-1].outcome == "finished"
    assert "the artifact needs about 3.0 MB" in NavigatorStatus.load(disk / "buffered").paths["onnx"].reason
    assert re.search(
        r"MB free, the artifact needs more than [0-9.]+ MB \(writing it used up the free space; the "
        r"partial file was removed\)",
        NavigatorStatus.load(disk / "baked").paths["onnx"].reason,
    )


def test_report_and_triton_from_a_workspace_take_its_lock(tmp_path, capsys):
    """report and triton of a workspace another process holds (a profile writing it) are refused
    naming the holder, instead of reading a half-written status; once free they work."""
    import model_navigator as nav
    from model_navigator.cli.main import main

    desc = nav.load(FIXTURE_PACKAGE, workdir=tmp_path / "w", retest_conversions=False, verbose=False)
    holder = _hold_lock(desc.workdir)
    try:
        for argv in (
            ["report", str(desc.workdir), "-o", str(tmp_path / "report")],
            ["triton", str(desc.workdir), "-o", str(tmp_path / "repo"), "--path", "onnx"],
        ):
            assert main(argv) == 2, argv
            assert f"is in use by process {holder.pid} " in capsys.readouterr().err, argv
        assert not (tmp_path / "report").exists() and not (tmp_path / "repo").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert main(["report", str(desc.workdir), "-o", str(tmp_path / "report")]) == 0
    assert main(["triton", str(desc.workdir), "-o", str(tmp_path / "repo"), "--path", "onnx"]) == 0


def test_every_command_that_writes_a_workspace_takes_its_one_lock(tmp_path, capsys):
    """Each command that writes a workspace (export of a model file, load, profile, convert, report and
    triton from it), given the workspace through a symlink while another process holds it by its real
    name, is refused naming the holder (exit 2) and changes nothing there."""
    import shutil

    import model_navigator as nav
    from model_navigator.cli.main import main

    desc = nav.load(FIXTURE_PACKAGE, workdir=tmp_path / "real" / "w", retest_conversions=False, verbose=False)
    onnx_file = tmp_path / "model.onnx"
    shutil.copy(desc.workdir / "onnx" / "model.onnx", onnx_file)
    linked = tmp_path / "alias"  # another name of the workdir itself (its lock would be .alias.lock by name)
    linked.symlink_to(desc.workdir)
    before = {p: p.read_bytes() for p in desc.workdir.rglob("*") if p.is_file()}
    commands = [
        ["profile", str(linked)],
        ["convert", "--config", str(linked / "onnx" / "config.yaml"), "--correctness-only"],
        ["report", str(linked), "-o", str(tmp_path / "report")],
        ["triton", str(linked), "-o", str(tmp_path / "repo"), "--path", "onnx"],
        ["export", str(onnx_file), "--workdir", str(linked), "--override-workdir", "--no-profiling"],
    ]
    holder = _hold_lock(desc.workdir)
    try:
        for argv in commands:
            assert main(argv) == 2, argv
            assert f"is in use by process {holder.pid} " in capsys.readouterr().err, argv
        with pytest.raises(nav.UserInputError, match=f"is in use by process {holder.pid} "):
            nav.load(FIXTURE_PACKAGE, workdir=linked, override_workdir=True, retest_conversions=False, verbose=False)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert {p: p.read_bytes() for p in desc.workdir.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "report").exists() and not (tmp_path / "repo").exists()
    assert main(["convert", "--config", str(linked / "onnx" / "config.yaml"), "--correctness-only"]) == 0  # free


def test_status_yaml_on_a_full_disk_is_a_clear_error_and_the_old_file_stays(tmp_path, tmpfs):
    """Writing status.yaml onto a full disk: an error naming the file and the space (not a raw
    OSError), the previous status.yaml intact and no temporary left beside it."""
    import model_navigator as nav
    from model_navigator.core.status import NavigatorStatus

    disk = tmpfs(tmp_path / "disk", "size=1m")
    desc = nav.load(FIXTURE_PACKAGE, workdir=disk / "w", retest_conversions=False, verbose=False)
    before = (desc.workdir / "status.yaml").read_bytes()
    _fill(disk)
    desc.status.environment["note"] = "x" * 200_000  # does not fit
    status_file = re.escape(repr(str(desc.workdir / "status.yaml")))
    with pytest.raises(
        nav.ModelNavigatorError,
        match=rf"Cannot write {status_file}"
        rf": no space left on its disk \(0.0 MB free, 0.\d+ MB needed\)",
    ):
        desc.save_status()
    assert (desc.workdir / "status.yaml").read_bytes() == before
    assert sorted(p.name for p in desc.workdir.iterdir() if p.name.startswith(".")) == []
    assert NavigatorStatus.load(desc.workdir).runs[-1].outcome == "finished"


@pytest.mark.slow
def test_a_correctness_failure_names_the_dataloader_item_and_position(tmp_path):
    """A traced branch that the fourth split sample does not take fails correctness there; the
    reason names that sample by its dataloader item (1) and position in the batch (1)."""
    import torch

    import model_navigator as nav

    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x * 2 if bool(x.sum() > 100) else x  # traced on zeros: the identity is baked in

    batches = [torch.zeros(2, 3), torch.zeros(2, 3)]
    batches[1][1] = 1000.0
    desc = nav.torch.export(
        Branchy().eval(),
        batches,
        workdir=tmp_path / "w",
        verbose=False,
        run_profiling=False,
        target_formats=("torchscript",),
        jit_options=("trace",),
    )
    correctness = next(iter(desc.status.paths["torchscript-trace"].runtimes.values())).correctness
    assert correctness.status.value == "failed"
    assert "at batch size 1 (sample 3: dataloader item 1, position 1 in its batch)" in correctness.reason, (
        correctness.reason
    )


def test_partial_artifacts_of_a_killed_process_are_removed_and_a_live_ones_kept(tmp_path):
    """The temporaries a killed export or conversion leaves beside its artifact (a staging folder,
    a temporary file) are removed when the path is produced again; a live process's are kept."""
    from model_navigator.core.diskspace import remove_stale_partials, written_atomically, written_in_staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    folder = tmp_path / "onnx"
    folder.mkdir()
    with written_in_staging(folder / "model.onnx") as staged:  # what our own writers name them
        staging = staged.parent
        staged.write_bytes(b"half")
        (staging.parent / staging.name.replace(f".{os.getpid()}.", f".{dead_pid}.")).mkdir()
        with written_atomically(folder / "model.pt") as tmp:
            tmp.write_bytes(b"half")
            (folder / tmp.name.replace(f".{os.getpid()}.", f".{dead_pid}.")).write_bytes(b"half")
            (folder / "model.onnx.data").write_bytes(b"the user's")
            assert remove_stale_partials(folder) == 2
            assert sorted(p.name for p in folder.iterdir()) == sorted([staging.name, tmp.name, "model.onnx.data"])
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.onnx.data", "model.pt"]


TF_JAX_FULL_DISK_SCRIPT = """
import numpy as np, jax.numpy as jnp, keras, tensorflow as tf, model_navigator as nav
TABLE = np.random.default_rng(0).standard_normal(768 * 1024).astype("float32")  # 3 MiB baked into the graphs

class TfBaked(tf.Module):  # a tf.constant no estimate sees
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.ones((4, 4)))
    @tf.function
    def __call__(self, x):
        return tf.matmul(x, self.w) + tf.reduce_mean(tf.constant(TABLE) * tf.reduce_sum(x))

inp = keras.Input((4,), name="x")  # 3.75 MiB of Keras 3 variables
keras_big = keras.Model(inp, keras.layers.Lambda(lambda t: t[:, :4])(keras.layers.Dense(768 * 256)(inp)))
data = [np.random.default_rng(i).random((2, 4)).astype("float32") for i in range(2)]
for name, model in (("tf_baked", TfBaked()), ("tf_big", keras_big)):
    nav.tensorflow.export(model, data, workdir={disk!r} + "/" + name, target_formats=("tf-savedmodel",),
                          verbose=False, run_profiling=False)

def jax_big(x, params):
    return x @ params["w"][:, :4]

def jax_baked(x, params):
    return x @ params["w"] + jnp.mean(jnp.asarray(TABLE) * jnp.sum(x))

for name, fn, params in (("jax_big", jax_big, {{"w": np.ones((4, 768 * 256), "float32")}}),
                         ("jax_baked", jax_baked, {{"w": np.ones((4, 4), "float32")}})):
    nav.jax.export(fn, params, data, workdir={disk!r} + "/" + name, verbose=False, run_profiling=False)
print("survived")
"""


@pytest.mark.slow
def test_full_disk_for_the_tensorflow_and_jax_exporters(tmp_path, tmpfs):
    """The TensorFlow and JAX exporters on a 2 MiB tmpfs: 3 MiB of Keras 3 variables or JAX params are
    counted by the estimate (refused before writing); a 3 MiB constant baked into the graph fills the
    disk while the SavedModel (TensorFlow's C++ writer: ResourceExhaustedError) or the jax2onnx model is
    written, and that path fails with the space reason. The process survives, nothing is left half
    written, the run finishes. Before: the estimate saw 0 bytes and the reason was TensorFlow's raw error."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("jax")
    disk = tmpfs(tmp_path / "disk", "size=2m")
    script = tmp_path / "full.py"
    script.write_text(textwrap.dedent(TF_JAX_FULL_DISK_SCRIPT.format(disk=str(disk))))
    proc = subprocess.run(
        [sys.executable, str(script)], env=helpers.repo_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "survived" in proc.stdout, proc.stderr[-3000:]
    from model_navigator.core.status import NavigatorStatus

    cases = {
        "tf_big": ["tf-savedmodel"],
        "tf_baked": ["tf-savedmodel"],
        "jax_big": ["tf-savedmodel-xla", "tf-savedmodel-xla-jit", "onnx-jax2onnx"],
        "jax_baked": ["tf-savedmodel-xla", "tf-savedmodel-xla-jit", "onnx-jax2onnx"],
    }
    for name, keys in cases.items():
        workdir = disk / name
        status = NavigatorStatus.load(workdir)
        for key in keys:
            path = status.paths[key]
            assert path.status.value == "failed", (name, key, path.reason)
            where = f"not enough free space in {str(workdir / key)!r}: "
            assert path.reason.startswith(where), (name, key, path.reason)
            needs = "the artifact needs about" if name.endswith("big") else "the artifact needs more than"
            assert needs in path.reason, (name, key, path.reason)
            if (workdir / key).exists():
                left = [p.name for p in (workdir / key).iterdir()]
                assert not [n for n in left if n.startswith(".") or n.startswith("model.")], (name, key, left)
        assert status.runs[-1].outcome == "finished"
    assert "needs about 3.8 MB" in NavigatorStatus.load(disk / "tf_big").paths["tf-savedmodel"].reason
    assert "needs about 3.0 MB" in NavigatorStatus.load(disk / "jax_big").paths["onnx-jax2onnx"].reason
