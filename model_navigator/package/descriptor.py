"""PackageDescriptor: the user's handle on a workspace (status, models, runners, verification)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from model_navigator.core.enums import (
    REDUCED_PRECISIONS,
    Format,
    JitType,
    RuntimeProvider,
    StepStatus,
    TensorRTPrecision,
    parse_enum,
    parse_runtime,
)
from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.formats import format_spec, load_function
from model_navigator.core.logging import LOGGER
from model_navigator.core.status import NavigatorStatus, PathStatus, RuntimeResult
from model_navigator.runners.base import NavigatorRunner


def _has_selector_flags(path: PathStatus) -> bool:
    """Is the path one variant of several (it has selectors, as JAX's SavedModel-based paths do)?"""
    return bool(path.selectors)


class PackageDescriptor:
    """Status and artifacts of one export, backed by a workspace folder and its status.yaml."""

    def __init__(self, status: NavigatorStatus, workdir: Union[str, Path], source_model: Optional[Any] = None):
        self.status = status
        self._workdir = Path(workdir).absolute()  # stays valid when the caller changes directory
        self.source_model = source_model

    @classmethod
    def from_workdir(cls, workdir: Union[str, Path]) -> "PackageDescriptor":
        return cls(NavigatorStatus.load(Path(workdir)), workdir)

    @property
    def workdir(self) -> Path:
        return self._workdir

    @property
    def _device(self) -> str:
        return self.status.config.target_device

    @property
    def model_name(self) -> str:
        return self.status.model_name

    def save_status(self) -> None:
        self.status.save(self._workdir)

    def status_changed(self) -> bool:
        """Whether the status in memory differs from the workspace's status.yaml (or it is missing)."""
        from model_navigator.core.serialization import to_plain, yaml_text
        from model_navigator.core.status import STATUS_FILE

        try:
            return (self._workdir / STATUS_FILE).read_text(encoding="utf-8") != yaml_text(to_plain(self.status))
        except (OSError, UnicodeDecodeError):
            return True

    # Lookup ------------------------------------------------------------------------------------
    def _matching(
        self,
        format: Union[str, Format],
        jit_type: Optional[Union[str, JitType]] = None,
        precision: Optional[Union[str, TensorRTPrecision]] = None,
        enable_xla: Optional[bool] = None,
        jit_compile: Optional[bool] = None,
    ) -> List[PathStatus]:
        """The paths of this format, jit type, precision and selectors, where given. The selectors are
        the paths' own (PathSpec.selectors); get_status & co. take them under the reference's names."""
        selectors = {"enable_xla": enable_xla, "jit_compile": jit_compile}
        wanted = {name: value for name, value in selectors.items() if value is not None}
        fmt = parse_enum(Format, format, "format")
        jit = parse_enum(JitType, jit_type, "jit_type") if jit_type is not None else None
        prec = parse_enum(TensorRTPrecision, precision, "precision") if precision is not None else None
        found = []
        for path in self.status.paths.values():
            if path.format != fmt:
                continue
            if jit is not None and path.jit_type != jit:
                continue
            if prec is not None and path.precision != prec:
                continue
            if any(path.selectors.get(name) != value for name, value in wanted.items()):
                continue
            found.append(path)
        full = [p for p in found if p.precision not in REDUCED_PRECISIONS]
        if prec is None and full:  # without a precision, format="onnx" means the fp32 ONNX, not its int8 children
            return full
        return found

    def get_path(
        self,
        format: Union[str, Format],
        jit_type: Any = None,
        precision: Any = None,
        enable_xla: Optional[bool] = None,
        jit_compile: Optional[bool] = None,
    ) -> PathStatus:
        """Exactly one path for these selectors, or a UserInputError naming the choices. When several
        match, the one that passed its default runtime's check wins, then the one that exported, then
        the one that was not skipped (any, when all were); in
        each round, without enable_xla / jit_compile, the one path that has no such flags (JAX's
        direct jax2onnx path) wins over the SavedModel-based variants."""
        found = self._matching(format, jit_type, precision, enable_xla, jit_compile)
        if not found:
            known = ", ".join(sorted(self.status.paths)) or "none"
            raise UserInputError(
                f"No path matches format={format!s} jit_type={jit_type} precision={precision}; "
                f"paths in this package: {known}."
            )
        if len(found) > 1:
            no_flags = enable_xla is None and jit_compile is None
            tried = [p for p in found if p.status != StepStatus.SKIPPED] or found
            for candidates in ([p for p in found if p.passed()], [p for p in found if p.ok], tried):
                if len(candidates) == 1:
                    return candidates[0]
                direct = [p for p in candidates if not _has_selector_flags(p)] if no_flags else []
                if len(direct) == 1 and len(direct) < len(candidates):  # JAX's onnx-jax2onnx over onnx-xla-*
                    return direct[0]
            keys = ", ".join(p.key for p in found)
            by = " / ".join(["jit_type", "precision", *sorted({name for p in found for name in p.selectors})])
            raise UserInputError(f"Several paths match format={format!s} ({keys}); tell them apart by {by}.")
        return found[0]

    def _runtime(self, path: PathStatus, runtime: Optional[Union[str, RuntimeProvider]]) -> RuntimeProvider:
        if runtime is not None:
            return parse_runtime(runtime, "runtime", self._device)
        return path.default_runtime or RuntimeProvider.CPU

    # Reference API ---------------------------------------------------------------------------------
    def get_formats_status(self) -> Dict[str, bool]:
        """Path key -> True when it exported/converted and passed correctness on its default runtime
        (the first it was checked on: CPUExecutionProvider on a CPU target)."""
        return {key: path.passed() for key, path in self.status.paths.items() if not path.is_source}

    def get_formats_performance(self) -> Dict[str, float]:
        """As the reference (0.3.7): `<path>-<runtime>` (`onnx-CPUExecutionProvider`,
        `torchscript-trace-CPUExecutionProvider`, `trt-fp16-TensorrtExecutionProvider`) -> that runtime's
        p50 latency (ms) at its smallest profiled batch size, for every profiled runtime of every
        exported path. The source model is no deployable format: it is left out (it stays the
        baseline in the status table and the report)."""
        result: Dict[str, float] = {}
        for key, path in self.status.paths.items():
            if path.is_source or not path.ok:
                continue
            for runtime, runtime_result in path.runtimes.items():
                if runtime_result.profiled:
                    perf = runtime_result.performance.results  # type: ignore[union-attr]
                    result[f"{key}-{runtime.value}"] = min(perf, key=lambda r: r.batch_size).p50_ms
        return result

    def get_status(
        self,
        format: Union[str, Format],
        runtime_provider: Optional[Union[str, RuntimeProvider]] = None,
        jit_type: Optional[Union[str, JitType]] = None,
        precision: Optional[Union[str, TensorRTPrecision]] = None,
        enable_xla: Optional[bool] = None,
        jit_compile: Optional[bool] = None,
    ) -> bool:
        """The reference's meaning: True when a matching path exported and passed correctness on
        `runtime_provider`, or on the path's default runtime (the first it was checked on) when none
        is given; so `if get_status(f): get_runner(f)` never hands out a model that failed its check."""
        runtime = (
            parse_runtime(runtime_provider, "runtime_provider", self._device) if runtime_provider is not None else None
        )
        return any(p.passed(runtime) for p in self._matching(format, jit_type, precision, enable_xla, jit_compile))

    def get_model(
        self,
        format: Union[str, Format],
        jit_type: Any = None,
        precision: Any = None,
        enable_xla: Optional[bool] = None,
        jit_compile: Optional[bool] = None,
    ) -> Any:
        """The exported model object (torch module, onnx.ModelProto, ...); a path for TensorRT plans;
        None when the package has no such model: no such path, or one that failed or was skipped (as the
        reference, whose file is then missing; the reason is logged, and get_runner raises with it)."""
        if not self._matching(format, jit_type, precision, enable_xla, jit_compile):
            return None
        path = self.get_path(format, jit_type, precision, enable_xla, jit_compile)
        if path.is_source:
            if self.source_model is None:
                raise UserInputError("The source model is not part of a loaded package.")
            return self.source_model
        if not path.ok or path.model_path is None:
            LOGGER.info("get_model: path %r has no model, %s (%s)", path.key, path.status.value, path.reason)
            return None
        loader = format_spec(path.format).loader  # none: the artifact's path (a TensorRT plan)
        model_path = self._workdir / path.model_path
        return load_function(loader)(model_path) if loader else model_path

    def get_runner(
        self,
        format: Union[str, Format],
        jit_type: Any = None,
        precision: Any = None,
        runtime: Optional[Union[str, RuntimeProvider]] = None,
        enable_xla: Optional[bool] = None,
        jit_compile: Optional[bool] = None,
    ) -> NavigatorRunner:
        """A Polygraphy-style runner (activate/infer/deactivate, context manager) for the path and runtime."""
        from model_navigator.runners.registry import make_runner

        path = self.get_path(format, jit_type, precision, enable_xla, jit_compile)
        return make_runner(self._workdir, self.status, path, self._runtime(path, runtime), self.source_model)

    def set_verified(
        self,
        format: Union[str, Format],
        runtime: Union[str, RuntimeProvider],
        jit_type: Any = None,
        precision: Any = None,
        enable_xla: Optional[bool] = None,
        jit_compile: Optional[bool] = None,
    ) -> None:
        """Mark a path and runtime as verified by the user's own tests (saved in status.yaml)."""
        path = self.get_path(format, jit_type, precision, enable_xla, jit_compile)
        if not path.ok:
            raise UserInputError(f"Path {path.key!r} {path.status.value}; only a successful path can be verified.")
        rt = parse_runtime(runtime, "runtime", self._device)
        result = path.runtimes.setdefault(rt, RuntimeResult())
        result.verified = True
        self.save_status()
        if not result.passed:  # a mark belongs to a result that passed (RuntimeResult.is_verified)
            import warnings

            warnings.warn(
                f"{path.key} on {rt.value} is marked verified, but it has not passed a correctness check "
                f"here; the mark counts once a check passes.",
                UserWarning,
                stacklevel=2,
            )

    # Runtime selection -------------------------------------------------------------------------
    def get_best(
        self,
        strategy: Any = None,
        latency_budget_ms: Optional[float] = None,
        batch_size: Optional[int] = None,
        latency_percentile: Optional[int] = None,
        max_precision_loss: Optional[float] = float("inf"),
    ) -> Any:
        """The path and runtime to deploy (a model_navigator.selection.Selection) by `strategy`:
        'min-latency' (default), 'max-throughput' or 'max-throughput-within-latency' (with
        `latency_budget_ms`, the default when a budget is given). Only paths that passed correctness
        qualify, and only verified ones when any is verified; `.rejected` says why the others lost.
        A reduced-precision (int8, bf16) path wins only when it passed its budget and is faster;
        `max_precision_loss` caps its relative L2 error (None: full precision only).
        Raises NoRuntimeQualifiesError when none qualifies."""
        from model_navigator.selection import select_runtime

        return select_runtime(
            self.status, strategy, latency_budget_ms, batch_size, latency_percentile, max_precision_loss
        )

    def get_best_runner(
        self,
        strategy: Any = None,
        latency_budget_ms: Optional[float] = None,
        batch_size: Optional[int] = None,
        latency_percentile: Optional[int] = None,
        max_precision_loss: Optional[float] = float("inf"),
    ) -> NavigatorRunner:
        """The runner (inactive; use it as a context manager) of get_best(...)'s path and runtime."""
        from model_navigator.runners.registry import make_runner

        best = self.get_best(strategy, latency_budget_ms, batch_size, latency_percentile, max_precision_loss)
        return make_runner(self._workdir, self.status, self.status.paths[best.path], best.runtime, self.source_model)

    def save(
        self, path: Union[str, Path], keep_workdir: bool = True, override: bool = False, save_data: bool = True
    ) -> None:
        """Write the workspace as a .nav zip (nav.save(self, path, ...) says how)."""
        import shutil
        import time

        from model_navigator.core.workdir_lock import workdir_lock
        from model_navigator.package.archive_write import write_archive
        from model_navigator.package.save_temporaries import NO_SPACE, no_space_error, remove_stale_temporaries

        target = Path(path).absolute()
        if not keep_workdir and target.is_relative_to(self.workdir):
            raise UserInputError(
                f"`path` {str(target)!r} lies inside the workspace, which keep_workdir=False would delete with the "
                f"package in it; save the package outside {str(self.workdir)!r}."
            )
        if target.suffix != ".nav":
            LOGGER.warning("package path %s does not end in .nav", target)
        from model_navigator.core.runs import unfinished_load

        unfinished = unfinished_load(self.status)
        if unfinished is not None:  # a package of it would lack the files the load did not reach
            raise PackageError(
                f"workspace {str(self.workdir)!r} is incomplete: {unfinished}; load the package "
                f"into it again (override_workdir=True) before saving it."
            )
        with workdir_lock(self.workdir, "save"):  # not while another process writes it
            if self.status_changed():  # unchanged: nothing to write (the workdir's disk may be full)
                self.save_status()
            remove_stale_temporaries(target)
            start = time.perf_counter()
            try:
                write_archive(self.workdir, target, override=override, save_data=save_data)
            except OSError as e:
                if e.errno in NO_SPACE:
                    raise no_space_error(e, target, self.workdir) from e
                raise
            LOGGER.info("saved %s in %.2f s (%d bytes)", target, time.perf_counter() - start, target.stat().st_size)
            if not keep_workdir:
                shutil.rmtree(self.workdir)
