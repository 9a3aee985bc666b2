"""The one step interface: a step is a module with build_parser() and run(args, base_dir) returning
its typed result (ConversionResult, CorrectnessResult or PerformanceResult).

The same argv runs it in the user's process, in the worker, or from the path's reproduce_<step>.sh,
so the reproduce scripts are the very commands that ran.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import sys
import traceback
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

from model_navigator.core.enums import StepStatus
from model_navigator.core.serialization import from_plain, to_plain
from model_navigator.core.status import ConversionResult, CorrectnessResult, PerformanceResult

STEP_MODULES = {
    "conversion": "model_navigator.steps.conversion",
    "correctness": "model_navigator.steps.correctness",
    "profiling": "model_navigator.steps.profiling",
}
StepResult = Union[ConversionResult, CorrectnessResult, PerformanceResult]
STEP_RESULTS = {"conversion": ConversionResult, "correctness": CorrectnessResult, "profiling": PerformanceResult}


@dataclass
class StepReply:
    """A step's typed result and, when it failed, the traceback to log (never stored in status).
    The same object whether the step ran here or in the worker: the pipe carries its plain form."""

    step: str
    result: StepResult
    traceback: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.result.status == StepStatus.OK

    def to_plain(self) -> Dict[str, Any]:
        return {"step": self.step, "result": to_plain(self.result), "traceback": self.traceback}

    @classmethod
    def from_plain(cls, data: Dict[str, Any]) -> "StepReply":
        step = data["step"]
        return cls(step, from_plain(STEP_RESULTS[step], data["result"]), data.get("traceback"))

    @classmethod
    def failed(cls, step: str, reason: str, traceback: Optional[str] = None) -> "StepReply":
        return cls(step, STEP_RESULTS[step](status=StepStatus.FAILED, reason=reason), traceback)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workdir", default=".", help="workspace root (default: current folder)")
    parser.add_argument("--path", required=True, help="path key, e.g. onnx or torchscript-trace")
    parser.add_argument("--results-path", default=None, help="write the result as JSON here")
    return parser


def short_reason(error: BaseException) -> str:
    """The root cause in one or a few lines: the exception type and its own message."""
    cause = error
    while cause.__cause__ is not None and not str(cause):
        cause = cause.__cause__
    message = str(cause).strip() or repr(cause)
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) > 10:  # frameworks put the cause last (TorchScript, ONNX): keep both ends
        lines = lines[:4] + ["..."] + lines[-6:]
    text = "\n".join(lines)
    if len(text) > 2000:
        text = text[:900] + "\n...\n" + text[-1000:]
    return f"{type(cause).__name__}: {text}"


_LOCATION = re.compile(r"^(Exception from |Check '|\S+\.(cpp|cc|h|hpp|py):\d+|File \"|Traceback|\[ERROR\]\s*$)")


def headline(reason: Optional[str], limit: int = 160) -> str:
    """The line of a failure reason that says what failed, for tables: the exception type with the
    first line that is not a source location (OpenVINO starts with "Exception from
    src/inference/...cpp:75:", the shape mismatch comes after)."""
    lines = [line.strip() for line in str(reason or "").splitlines() if line.strip()]
    if not lines:
        return ""
    kind, sep, rest = lines[0].partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_][\w.]*", kind):  # "ExceptionType: message"
        lines[0] = rest
    else:
        kind = ""
    best = next((line for line in lines if not _LOCATION.match(line)), lines[0])
    text = " ".join((f"{kind}: {best}" if kind else best).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_step(step: str, argv: Sequence[str], base_dir: Optional[Path] = None) -> StepReply:
    """Run a step's logic on argv; exceptions become a failed result carrying the root cause."""
    module = importlib.import_module(STEP_MODULES[step])
    try:
        args = module.build_parser().parse_args(list(argv))
    except SystemExit as e:  # argparse must never end the user's process
        return StepReply.failed(step, f"bad step arguments {list(argv)} (argparse exit {e.code})")
    try:
        return StepReply(step, module.run(args, Path(base_dir) if base_dir else Path.cwd()))
    except Exception as e:  # the step's own failure is its result
        return StepReply.failed(step, short_reason(e), traceback.format_exc())


def step_main(step: str, argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry of a step (what reproduce_<step>.py calls)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(STEP_MODULES[step])
    args = module.build_parser().parse_args(argv)
    reply = run_step(step, argv)
    result = to_plain(reply.result)
    if args.results_path:  # the traceback too, for a failure
        Path(args.results_path).write_text(
            json.dumps({**result, "traceback": reply.traceback} if reply.traceback else result, indent=2)
        )
    print(json.dumps(result, indent=2))
    if reply.traceback:
        print(reply.traceback, file=sys.stderr)
    return 0 if reply.ok else 1


_PY_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce the `{step}` step of model-navigator for path `{path}`.

Stand-alone: it reads only the workspace. Run from the workspace root:
    bash {path}/reproduce_{step}.sh
The logic is model_navigator.steps.{step}; its --help lists the arguments.
"""
import sys

from model_navigator.steps.base import step_main

if __name__ == "__main__":
    sys.exit(step_main("{step}", sys.argv[1:]))
'''


def write_reproduce(
    root: Path,
    path_key: str,
    step: str,
    argv: List[str],
    py_text: Optional[str] = None,
    note: Optional[str] = None,
    default_runtime: Optional[str] = None,
) -> Path:
    """Write <path>/reproduce_<step>.py and .sh (the exact command line, run from the workspace root).

    `py_text` replaces the stand-alone step script (export scripts need the user's get_model());
    `note` is a line for the .sh saying what to do first. With `default_runtime` the .sh takes the
    runtime as its argument (one script for every runtime the path is checked on; reproduce_hint
    names the runtime that failed), that runtime when none is given."""
    folder = Path(root) / path_key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"reproduce_{step}.py").write_text(py_text or _PY_TEMPLATE.format(step=step, path=path_key))
    script = f"{path_key}/reproduce_{step}.py"
    quoted = [shlex.quote(a) for a in [script, *argv]]
    usage = ""
    if default_runtime is not None and "--runtime" in argv:
        quoted[argv.index("--runtime") + 2] = '"$RUNTIME"'  # the value after --runtime (the script is quoted[0])
        usage = (
            f"# Usage: bash {path_key}/reproduce_{step}.sh [RUNTIME]  (default {default_runtime}, the path's "
            f"first runtime; `--help` of {script} lists the runtimes)\n"
            f'RUNTIME="${{1:-{default_runtime}}}"\n'
        )
    sh = folder / f"reproduce_{step}.sh"
    sh.write_text(
        "#!/usr/bin/env bash\n"
        f"# Reproduce the {step} step of path {path_key}; run from the workspace root.\n"
        + (f"# {note}\n" if note else "")
        + "set -euo pipefail\n"
        + usage
        + "# The Python that ran the step; PYTHON=... picks another (a package loaded on another machine).\n"
        f"RECORDED_PYTHON={shlex.quote(sys.executable)}\n"
        'PYTHON="${PYTHON:-$RECORDED_PYTHON}"\n'
        'if ! command -v "$PYTHON" >/dev/null; then\n'
        '  echo "reproduce: $PYTHON not found, using python3 from PATH (set PYTHON to choose)" >&2\n'
        "  PYTHON=python3\n"
        "fi\n"
        f'"$PYTHON" {" ".join(quoted)}\n'
    )
    sh.chmod(0o755)
    return sh


def reproduce_hint(script: str, runtime: Optional[str] = None) -> str:
    """What a failure reason appends: the command that re-runs this step (on `runtime`, for a script
    that takes the runtime)."""
    return f"(reproduce: bash {script}{f' {runtime}' if runtime else ''})"
