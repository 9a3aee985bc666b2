"""The jobs file of `model-navigator batch`: its schema, and validation that names the job and the key.

A job is either an export (a model and a dataloader factory as `module:function`, the framework, and
keyword arguments of that framework's `export`) or the re-test of a `.nav` package. Everything is
checked before any job starts; a job with several `resources` entries becomes one run per entry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from model_navigator.core.errors import UserInputError
from model_navigator.core.references import REFERENCE

FRAMEWORKS = ("torch", "tensorflow", "jax", "onnx")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_JOB_KEYS = {
    "name",
    "model",
    "dataloader",
    "framework",
    "export",
    "package",
    "retest",
    "resources",
    "timeout_s",
    "retries",
}
_RESOURCE_KEYS = {"cpus", "gpus", "custom", "label"}
_RETEST_KEYS = {"retest_conversions", "run_profiling", "profiler_config", "target_device"}
# Set by the batch runner itself: each job's workdir is its own, progress goes to the job's log.
_RUNNER_KEYS = {"model", "dataloader", "workdir", "override_workdir", "verbose"}


@dataclass
class Resources:
    """What one run of a job needs: CPUs, GPUs and Ray custom resources (e.g. a node kind)."""

    cpus: float = 1.0
    gpus: float = 0.0
    custom: Dict[str, float] = field(default_factory=dict)
    label: Optional[str] = None

    @property
    def kind(self) -> str:
        """How the summary names this entry: its label, else its custom resources, else its devices."""
        if self.label:
            return self.label
        if self.custom:
            return "+".join(sorted(self.custom))
        return f"cpus={self.cpus:g}" + (f",gpus={self.gpus:g}" if self.gpus else "")


@dataclass
class Job:
    """One entry of the jobs file (validated)."""

    name: str
    framework: Optional[str] = None
    model: Optional[str] = None
    dataloader: Optional[str] = None
    export: Dict[str, Any] = field(default_factory=dict)
    package: Optional[str] = None
    retest: Dict[str, Any] = field(default_factory=dict)
    resources: List[Resources] = field(default_factory=lambda: [Resources()])
    timeout_s: Optional[float] = None
    retries: int = 0
    search_path: List[str] = field(default_factory=list)  # where the factories' modules are looked for first

    @property
    def is_retest(self) -> bool:
        return self.package is not None


@dataclass
class Run:
    """One execution of a job on one kind of resources; `run_id` names its folder under OUT/jobs/."""

    job: Job
    resources: Resources
    run_id: str

    def spec(self) -> Dict[str, Any]:
        """What the worker needs, as plain JSON (the same on every machine)."""
        job = self.job
        return {
            "run_id": self.run_id,
            "name": job.name,
            "framework": job.framework,
            "model": job.model,
            "dataloader": job.dataloader,
            "export": job.export,
            "package": job.package,
            "package_file": job.package,
            "retest": job.retest,
            "search_path": job.search_path,
            "kind": self.resources.kind,
            "timeout_s": job.timeout_s,
        }

    def fingerprint(self) -> str:
        """Changes when the job's definition changes (a rerun then does not skip it)."""
        text = json.dumps(
            {**self.spec(), "resources": vars(self.resources), "retries": self.job.retries}, sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fail(where: str, message: str) -> UserInputError:
    return UserInputError(f"jobs file: {where}: {message}")


def export_parameters(framework: str) -> List[str]:
    """The keyword arguments of nav.<framework>.export (read from its signature; no framework is imported)."""
    import importlib

    module = importlib.import_module(f"model_navigator.api.{framework}")
    return [p for p in inspect.signature(module.export).parameters if p not in ("model", "dataloader")]


def _check_reference(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not REFERENCE.match(value):
        raise _fail(where, f"`{key}` must be MODULE:FUNCTION (e.g. my_models:get_model), got {value!r}.")
    return value


def _parse_resources(where: str, value: Any) -> List[Resources]:
    entries = value if isinstance(value, list) else [value]
    if not entries:
        raise _fail(where, "`resources` is an empty list; leave it out for 1 CPU.")
    parsed = []
    for i, entry in enumerate(entries):
        at = f"{where}, resources[{i}]" if isinstance(value, list) else f"{where}, resources"
        if not isinstance(entry, dict):
            raise _fail(at, f"must be a mapping with {sorted(_RESOURCE_KEYS)}, got {type(entry).__name__}.")
        unknown = set(entry) - _RESOURCE_KEYS
        if unknown:
            raise _fail(at, f"unknown key(s) {sorted(unknown)}; known: {sorted(_RESOURCE_KEYS)}.")
        for key in ("cpus", "gpus"):
            if key in entry and (
                isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)) or entry[key] < 0
            ):
                raise _fail(at, f"`{key}` must be a number >= 0, got {entry[key]!r}.")
        custom = entry.get("custom", {}) or {}
        if not isinstance(custom, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for k, v in custom.items()
        ):
            raise _fail(
                at, f"`custom` must map resource names to amounts > 0 (e.g. {{node_kind_a: 1}}), got {custom!r}."
            )
        parsed.append(
            Resources(
                cpus=float(entry.get("cpus", 1)),
                gpus=float(entry.get("gpus", 0)),
                custom={k: float(v) for k, v in custom.items()},
                label=entry.get("label"),
            )
        )
    kinds = [r.kind for r in parsed]
    if len(set(kinds)) != len(kinds):
        raise _fail(where, f"`resources` entries must differ (give each a `label`): {kinds}.")
    return parsed


def _check_export(where: str, framework: Any, kwargs: Any) -> Dict[str, Any]:
    if framework not in FRAMEWORKS:
        raise _fail(where, f"`framework` must be one of {list(FRAMEWORKS)}, got {framework!r}.")
    if not isinstance(kwargs, dict):
        raise _fail(where, f"`export` must be a mapping of nav.{framework}.export keyword arguments.")
    known = export_parameters(framework)
    for key in kwargs:
        if key in _RUNNER_KEYS:
            raise _fail(
                where,
                f"export key `{key}` is set by the batch runner (each job has its own workdir "
                f"under OUT/jobs/); remove it.",
            )
        if key not in known:
            close = [k for k in known if k.startswith(str(key)[:4])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(where, f"export key `{key}` is not an argument of nav.{framework}.export{hint}.")
    _check_profiler_config(where, kwargs.get("profiler_config"))
    return dict(kwargs)


def _check_profiler_config(where: str, value: Any) -> None:
    if value is None:
        return
    from model_navigator.core.config import ProfilerConfig

    if not isinstance(value, dict):
        raise _fail(where, "`profiler_config` must be a mapping of ProfilerConfig fields.")
    try:
        ProfilerConfig(**value)
    except (TypeError, ValueError) as e:
        raise _fail(where, f"`profiler_config`: {e}") from e


def _check_retest(where: str, package: Any, retest: Any, base: Path) -> str:
    if not isinstance(package, str) or not package:
        raise _fail(where, "`package` must be the path of a .nav file.")
    path = Path(package) if Path(package).is_absolute() else base / package
    if not path.is_file():
        raise _fail(where, f"`package` {str(path)!r} is not a file.")
    if not isinstance(retest, dict) or set(retest) - _RETEST_KEYS:
        raise _fail(where, f"`retest` must be a mapping with keys from {sorted(_RETEST_KEYS)}, got {retest!r}.")
    _check_profiler_config(where, retest.get("profiler_config"))
    return str(path.absolute())


def _number(where: str, key: str, value: Any, integer: bool) -> Any:
    kinds = (int,) if integer else (int, float)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds) or value < (0 if integer else 1e-9):
        raise _fail(where, f"`{key}` must be a {'whole number >= 0' if integer else 'number > 0'}, got {value!r}.")
    return value


def parse_job(entry: Any, index: int, base: Path) -> Job:
    """One job from its mapping; errors name the job (by name, else by position) and the key."""
    where = f"job #{index + 1}"
    if not isinstance(entry, dict):
        raise _fail(where, f"must be a mapping, got {type(entry).__name__}.")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, f"`name` must be letters, digits, '.', '_' or '-' (a folder name), got {name!r}.")
    where = f"job {name!r}"
    unknown = set(entry) - _JOB_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}; known: {sorted(_JOB_KEYS)}.")
    job = Job(
        name=name,
        timeout_s=_number(where, "timeout_s", entry.get("timeout_s"), integer=False),
        retries=_number(where, "retries", entry.get("retries", 0), integer=True),
    )
    if "resources" in entry:
        job.resources = _parse_resources(where, entry["resources"])
    if "package" in entry:
        clash = {"model", "dataloader", "framework", "export"} & set(entry)
        if clash:
            raise _fail(where, f"a re-test job (`package`) takes no {sorted(clash)}.")
        job.package = _check_retest(where, entry["package"], entry.get("retest", {}) or {}, base)
        job.retest = dict(entry.get("retest", {}) or {})
        return job
    if "retest" in entry:
        raise _fail(where, "`retest` applies to a job with `package`.")
    for key in ("model", "dataloader", "framework"):
        if key not in entry:
            raise _fail(where, f"`{key}` is missing (or give `package` to re-test a .nav).")
    job.model = _check_reference(where, "model", entry["model"])
    job.dataloader = _check_reference(where, "dataloader", entry["dataloader"])
    job.framework = entry["framework"]
    job.export = _check_export(where, entry["framework"], entry.get("export", {}) or {})
    return job


def load_jobs(jobs: Union[str, Path, List[Any], Dict[str, Any]]) -> List[Job]:
    """Jobs from a YAML file (`jobs:` list, or a list at the top), or from the same structure in Python."""
    base = Path.cwd()
    if isinstance(jobs, (str, Path)):
        import yaml

        path = Path(jobs)
        if not path.is_file():
            raise UserInputError(f"jobs file {str(path)!r} does not exist.")
        try:
            jobs = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as e:
            raise UserInputError(f"jobs file {str(path)!r} is not plain YAML: {e}") from e
        base = path.absolute().parent
    if isinstance(jobs, dict):
        if set(jobs) != {"jobs"}:
            raise UserInputError(
                f"jobs file: the top level must be a list of jobs or `jobs:` with one, got keys {sorted(jobs)}."
            )
        jobs = jobs["jobs"]
    if not isinstance(jobs, list) or not jobs:
        raise UserInputError("jobs file: no jobs (give a non-empty list under `jobs:`).")
    parsed = [parse_job(entry, i, base) for i, entry in enumerate(jobs)]
    search_path = list(dict.fromkeys([str(base), os.getcwd()]))  # the jobs file's folder, then the current one
    for job in parsed:
        job.search_path = search_path
    names = [j.name for j in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserInputError(f"jobs file: job names must be unique; repeated: {duplicates}.")
    return parsed


def expand_runs(jobs: List[Job]) -> List[Run]:
    """One run per job and resources entry (`name` alone, or `name@kind` when there are several)."""
    runs = []
    for job in jobs:
        for resources in job.resources:
            run_id = job.name if len(job.resources) == 1 else f"{job.name}@{resources.kind}"
            runs.append(Run(job, resources, re.sub(r"[^A-Za-z0-9_.@+=,-]", "_", run_id)))
    return runs
