"""nav.save, nav.load and nav.profile: .nav packages and re-checking a workspace elsewhere."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

from model_navigator.core.config import ProfilerConfig
from model_navigator.core.errors import UserInputError
from model_navigator.core.logging import LOGGER, debug_console
from model_navigator.core.runs import recorded_run, start_run
from model_navigator.core.status import STATUS_FILE, RunRecord
from model_navigator.core.workdir_lock import takeover_message, workdir_lock
from model_navigator.core.workspace import Workspace, remove_workdir
from model_navigator.package.descriptor import PackageDescriptor


def save(
    package_descriptor: PackageDescriptor,
    path: Union[str, Path],
    keep_workdir: bool = True,
    override: bool = False,
    save_data: bool = True,
) -> None:
    """Write the workspace as a .nav zip (status.yaml at its root, a checksummed manifest).

    An existing `path` is refused unless `override`; `save_data=False` leaves the samples out (the
    package can then not be re-tested); `keep_workdir=False` removes the workspace once the archive
    is written and verified.
    """
    if not isinstance(package_descriptor, PackageDescriptor):
        raise UserInputError(
            f"`package_descriptor` must be a PackageDescriptor, got {type(package_descriptor).__name__}."
        )
    package_descriptor.save(path, keep_workdir=keep_workdir, override=override, save_data=save_data)


def _default_workdir(path: Path) -> Path:
    return path.with_name(f"{path.stem}_workdir")


def load(
    path: Union[str, Path],
    workdir: Optional[Union[str, Path]] = None,
    override_workdir: bool = False,
    retest_conversions: bool = True,
    run_profiling: Optional[bool] = None,
    profiler_config: Optional[ProfilerConfig] = None,
    target_device: Optional[str] = None,
    *,
    verbose: bool = True,
    debug: bool = False,
) -> PackageDescriptor:
    """Unpack a .nav package (validated: before an existing workdir is replaced, or while it is
    written into a new one, removed again if a check fails) and optionally re-test it.

    `workdir=None` unpacks into `<name>_workdir` beside the package, never into an existing folder
    unless `override_workdir`. `retest_conversions` re-runs conversions from the exported
    artifacts and correctness against the saved outputs; `run_profiling` (None: only when a
    `profiler_config` is given) profiles again; `target_device` re-targets the runtimes.
    `debug` also prints model_navigator's DEBUG logs (worker output included) on the terminal.
    """
    from model_navigator.core.config import check_profiler_config, check_target_device
    from model_navigator.core.environment import gpu_present
    from model_navigator.package.archive_validate import read_manifest, validate_archive

    package = Path(path).absolute()
    if not package.is_file():
        raise UserInputError(f"`path` {str(package)!r} is not a file; give the path of a .nav package.")
    root = (Path(workdir) if workdir is not None else _default_workdir(package)).absolute()
    # The arguments are checked before anything is deleted or written.
    config_profiler = check_profiler_config(profiler_config) if profiler_config is not None else None
    device = check_target_device(target_device, gpu_present()) if target_device is not None else None
    _check_workdir_replaceable(root, package, override_workdir)
    # Every byte is checked before an existing workdir is deleted for it; a new one is checked as it
    # is written (extract_archive), which reads the package once instead of twice.
    replacing = root.exists()
    validate_archive(package, read_data=replacing)
    # nothing is deleted under another process; a package refused while unpacking leaves no folder the
    # lock made for the new workdir (the lock is released first)
    with _empty_folders_removed_on_failure(root.parents), workdir_lock(root, "load") as previous_holder:
        if previous_holder is not None:
            LOGGER.warning(takeover_message(root, previous_holder))
        if root.exists():
            if not replacing:  # made meanwhile by someone else: check everything before it goes
                validate_archive(package)
            remove_workdir(root)
        start = time.perf_counter()
        record = _unpack_marked(package, root)
        manifest = read_manifest(package)
        descriptor = PackageDescriptor.from_workdir(root)
        LOGGER.info("loaded %s into %s in %.2f s", package, root, time.perf_counter() - start)
        record = next(r for r in descriptor.status.runs if r.id == record.id)
        with recorded_run(descriptor.status, descriptor.save_status, "load", record=record):
            _recheck_loaded(
                descriptor,
                bool(manifest.get("save_data", True)),
                device,
                config_profiler,
                retest_conversions,
                run_profiling,
                verbose=verbose,
                debug=debug,
                record=record,
            )
    if verbose:
        from model_navigator.package.table import print_status_table

        print_status_table(descriptor.status)
    return descriptor


@contextlib.contextmanager
def _empty_folders_removed_on_failure(folders: Sequence[Path]) -> Iterator[None]:
    """Of `folders` (deepest first), those that do not exist now and are still empty when the block
    fails are removed."""
    made = [folder for folder in folders if not folder.exists()]
    try:
        yield
    except BaseException:
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone
                break
        raise


def _unpack_marked(package: Path, root: Path) -> RunRecord:
    """Unpack `package` into the new folder `root`, its status.yaml (with an unfinished load run) written
    first: a load killed meanwhile leaves a workspace every reader reports unfinished. A failed
    unpacking removes what it wrote. Returns the load's run record."""
    from model_navigator.core.status import NavigatorStatus
    from model_navigator.package.archive_extract import extract_archive
    from model_navigator.package.archive_format import parse_status
    from model_navigator.package.archive_validate import open_zip

    with open_zip(package) as zf:  # validated by the caller: one status.yaml of bounded size
        status = NavigatorStatus.from_dict(parse_status(zf.read(STATUS_FILE), f"{package}: entry {STATUS_FILE!r}"))
    record = start_run(status, "load")
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        status.save(root)
        extract_archive(package, root, skip=(STATUS_FILE,))
    except BaseException:
        (root / STATUS_FILE).unlink(missing_ok=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return record


def _check_workdir_replaceable(root: Path, package: Path, override_workdir: bool) -> None:
    """Refuse an existing `root` unless `override_workdir`, and always one holding the package or the
    current folder (replacing it would delete them); checked before anything is deleted or written."""
    if not root.exists():
        return
    if not override_workdir:
        unfinished = _unfinished_load_of(root)
        raise UserInputError(
            f"`workdir` {str(root)!r} already exists and was left untouched"
            + (f" ({unfinished}; override_workdir=True loads it again)" if unfinished else "")
            + "; pass override_workdir=True to replace it, or give another `workdir`."
        )
    if package.is_relative_to(root) or Path.cwd().absolute().is_relative_to(root):
        raise UserInputError(
            f"`workdir` {str(root)!r} holds the package or the current folder; override_workdir would delete "
            f"it: give another `workdir`."
        )


def _unfinished_load_of(root: Path) -> Optional[str]:
    """Why the workspace `root` is incomplete (a load into it did not finish), else None."""
    from model_navigator.core.errors import PackageError
    from model_navigator.core.runs import unfinished_load
    from model_navigator.core.status import NavigatorStatus

    try:
        return unfinished_load(NavigatorStatus.load(root))
    except PackageError:
        return None


def _recheck_loaded(
    descriptor: PackageDescriptor,
    has_data: bool,
    device: Optional[str],
    config_profiler: Optional[ProfilerConfig],
    retest_conversions: bool,
    run_profiling: Optional[bool],
    *,
    verbose: bool,
    debug: bool,
    record: Optional[RunRecord] = None,
) -> None:
    """Apply load's target device and profiler config to the unpacked status, then re-test and/or
    profile it as asked (profiling by default only when a profiler config was given)."""
    from model_navigator.steps.recheck import recheck

    if device is not None:
        descriptor.status.config.target_device = device
    profile = bool(run_profiling) if run_profiling is not None else config_profiler is not None
    if config_profiler is not None:
        descriptor.status.config.profiler_config = config_profiler
    if retest_conversions or profile:
        with debug_console(debug):
            recheck(
                descriptor.status,
                descriptor.workdir,
                retest=retest_conversions,
                profile=profile,
                has_data=has_data,
                verbose=verbose,
                operation="load",
                record=record,
            )


def profile(
    package_descriptor: PackageDescriptor,
    profiler_config: Optional[ProfilerConfig] = None,
    *,
    verbose: bool = True,
    debug: bool = False,
    table: bool = True,
) -> PackageDescriptor:
    """Profile every path that passed correctness again with `profiler_config` (no re-export), the
    source model too when this process has it (its old figures are dropped otherwise: they came from
    another profile); a runtime never checked (installed after the package was made) is checked
    first. Returns the descriptor; prints the status table when `verbose` (and `table`). `debug` as in load."""
    from model_navigator.core.config import check_profiler_config
    from model_navigator.steps.recheck import recheck

    if not isinstance(package_descriptor, PackageDescriptor):
        raise UserInputError(
            f"`package_descriptor` must be a PackageDescriptor, got {type(package_descriptor).__name__}."
        )
    config = check_profiler_config(profiler_config)
    package_descriptor.status.config.profiler_config = config
    with debug_console(debug):
        has_data = any(Workspace(package_descriptor.workdir).input_dir("correctness").glob("*.npz"))
        recheck(
            package_descriptor.status,
            package_descriptor.workdir,
            retest=False,
            profile=True,
            has_data=has_data,
            verbose=verbose,
            source_model=package_descriptor.source_model,
            operation="profile",
        )
    package_descriptor.save_status()
    if verbose and table:
        from model_navigator.package.table import print_status_table

        print_status_table(package_descriptor.status)
    return package_descriptor
