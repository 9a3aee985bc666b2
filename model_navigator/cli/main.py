"""The `model-navigator` command: inspect, profile, convert, report on, serve and load-test packages and
workspaces; export an .onnx file on synthetic samples (cli/export_file.py).

Exit codes: 0 ok, 1 failures found (a path, a correctness check or a profiling run failed, or a
recorded run did not finish), 2 bad usage (wrong arguments, a missing file, something that is not a package or
workspace).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from model_navigator.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    check_target,
    is_package_file,
    one_line,
    read_status,
    report,
)
from model_navigator.cli.profile_options import (
    add_profiler_options,
    positive_float,
    positive_int,
    profiler_config_from_args,
)


# ------------------------------------------------------------------------------------------------
# Subcommands
# ------------------------------------------------------------------------------------------------


def _selection(status: Any, args: argparse.Namespace) -> Any:
    """The best path and runtime by --strategy / --latency-budget / --max-precision-loss, or why none
    qualifies (a str)."""
    from model_navigator.selection import NoRuntimeQualifiesError, select_runtime

    try:
        return select_runtime(
            status, args.strategy, args.latency_budget, args.batch_size, max_precision_loss=args.max_precision_loss
        )
    except NoRuntimeQualifiesError as e:
        return str(e).splitlines()[0].rstrip(":")


def cmd_inspect(args: argparse.Namespace) -> int:
    target = check_target(args.package)
    status = read_status(target)
    return report(status, args.json, best=_selection(status, args))


def cmd_triton(args: argparse.Namespace) -> int:
    from model_navigator.triton import write_model_repository

    target = check_target(args.package)
    model = write_model_repository(
        target,
        args.output,
        path_key=args.path,
        runtime=args.runtime,
        strategy=args.strategy,
        latency_budget_ms=args.latency_budget,
        model_name=args.model_name,
        version=args.model_version,
        max_batch_size=args.max_batch_size,
        instance_count=args.instance_count,
        override=args.override,
        max_precision_loss=args.max_precision_loss,
    )
    if model.selection is not None:
        print(f"chosen: {model.selection.summary()}", file=sys.stderr)
    print(model.batching, file=sys.stderr)
    for old, new in model.renamed.items():
        print(f"tensor {old!r} is {new!r} in Triton (PyTorch backend naming)", file=sys.stderr)
    print(model.config_path)
    print(model.model_path)
    return EXIT_OK


def max_precision_loss(text: str) -> Optional[float]:
    """--max-precision-loss: a relative L2 error >= 0, or `none` (full precision only)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0 (a relative L2 error, e.g. 0.01) or 'none' (full precision only), got {text!r}"
        ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0 (a relative L2 error, e.g. 0.01) or 'none' (full precision only), got {text!r}"
        )
    return value


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strategy",
        choices=["min-latency", "max-throughput", "max-throughput-within-latency"],
        default=None,
        help="how to pick the best path and runtime (default: min-latency, or "
        "max-throughput-within-latency when --latency-budget is given)",
    )
    p.add_argument(
        "--latency-budget",
        type=positive_float,
        default=None,
        metavar="MS",
        help="p99 latency budget in ms for max-throughput-within-latency",
    )
    p.add_argument(
        "--max-precision-loss",
        type=max_precision_loss,
        default=float("inf"),
        metavar="X",
        help="the largest relative L2 error a reduced-precision (int8, bf16) path may have to be "
        "chosen, e.g. 0.01; 'none': full precision only (default: any that passed its accuracy "
        "budget and is faster)",
    )


def cmd_profile(args: argparse.Namespace) -> int:
    from model_navigator.core.errors import UserInputError
    from model_navigator.package import nav
    from model_navigator.package.descriptor import PackageDescriptor

    target = check_target(args.package)
    config = profiler_config_from_args(args)
    if is_package_file(target):
        # Unpack without re-testing (the package's results stay), then profile with progress lines;
        # nav.load(..., retest_conversions=False, run_profiling=True, profiler_config=config) does the
        # same but prints the table itself.
        root = Path(args.workdir) if args.workdir is not None else nav._default_workdir(target)
        if root.exists() and not args.override_workdir:
            raise UserInputError(
                f"workdir {str(root)!r} already exists and was left untouched; pass "
                f"--override-workdir to replace it, or give another --workdir."
            )
        descriptor = nav.load(
            target,
            workdir=root,
            override_workdir=args.override_workdir,
            retest_conversions=False,
            run_profiling=False,
            verbose=False,
        )
        print(f"unpacked {target} into {descriptor.workdir}", file=sys.stderr)
    else:
        if args.workdir is not None or args.override_workdir:
            raise UserInputError(
                "--workdir and --override-workdir apply to a .nav package only; a workspace "
                "folder is profiled in place."
            )
        descriptor = PackageDescriptor.from_workdir(target)
    nav.profile(descriptor, config, verbose=True, table=False)  # progress lines go to stderr; the table below
    descriptor.save_status()
    return report(descriptor.status, args.json)


def _load_path_config(config_file: Path) -> Dict[str, Any]:
    import yaml

    from model_navigator.core.errors import PackageError, UserInputError

    if not config_file.is_file():
        raise UserInputError(f"--config {str(config_file)!r} does not exist or is not a file.")
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise PackageError(f"{config_file} is not plain YAML: {getattr(e, 'problem', None) or e}{where}") from e
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("path"), str)
        or "parent" not in data
        or not isinstance(data.get("export_config"), dict)
    ):
        raise PackageError(
            f"{config_file} is not a path config.yaml of model-navigator (needs `path`, `parent` and `export_config`)."
        )
    if data["export_config"].get("framework") == "jax":  # written by an earlier version: its JAX names
        from model_navigator.core.jax_keys import current_jax_key

        data["path"] = current_jax_key(data["path"])
        if isinstance(data["parent"], str):
            data["parent"] = current_jax_key(data["parent"])
    return data


def _has_correctness_samples(workspace: Any) -> bool:
    return any(workspace.input_dir("correctness").glob("*.npz")) and any(
        workspace.output_dir("correctness").glob("*.npz")
    )


def _convert_request(
    args: argparse.Namespace, config_file: Path, data: Dict[str, Any], root: Path, status: Any
) -> Tuple[Any, str]:
    """(the export configuration config.yaml records, the path key) of a `convert` request, refused
    (UserInputError, PackageError) before anything is written when it cannot run as asked."""
    from model_navigator.core.config import ExportConfig
    from model_navigator.core.enums import StepStatus
    from model_navigator.core.errors import PackageError, UserInputError
    from model_navigator.core.workspace import Workspace
    from model_navigator.paths.registry import paths_for

    try:
        config = ExportConfig.from_dict(data["export_config"])
    except (TypeError, ValueError, KeyError) as e:
        raise PackageError(f"{config_file}: `export_config` is malformed: {one_line(e)}") from e
    key = data["path"]
    spec = next((s for s in paths_for(config.framework) if s.key == key), None)
    if spec is None:
        raise UserInputError(f"{config_file}: unknown path {key!r} for framework {config.framework.value}.")
    if spec.parent != data.get("parent"):
        raise PackageError(
            f"{config_file}: `parent` {data.get('parent')!r} does not match path {key!r} "
            f"(its parent is {spec.parent!r})."
        )
    if args.model is not None and (not spec.is_export or args.correctness_only):
        raise UserInputError(
            f"--model applies to re-running an export path; path {key!r} is "
            + (
                "only re-checked with --correctness-only."
                if spec.is_export
                else f"converted from {spec.parent!r}, which needs no model: drop --model."
            )
        )
    if spec.is_export and not args.correctness_only and args.model is None:
        raise UserInputError(
            f"path {key!r} is an export from your model, which a config.yaml cannot re-create: pass --model "
            f"MODULE:FUNCTION (a function returning your model); or implement get_model() in "
            f"{root / key / 'reproduce_export.py'}, then run `cd {root} && bash {key}/reproduce_export.sh`; or pass "
            f"--correctness-only to re-check the exported artifact."
        )
    if args.correctness_only:
        path = status.paths.get(key)
        if path is None or path.status != StepStatus.OK:
            state = (
                "is not in status.yaml"
                if path is None
                else {StepStatus.FAILED: "failed", StepStatus.SKIPPED: "was skipped"}.get(path.status, "did not run")
            )
            raise UserInputError(f"path {key!r} {state}: there is no artifact to check with --correctness-only.")
    if not _has_correctness_samples(Workspace(root)):
        raise UserInputError(
            f"{root} has no correctness samples (saved with save_data=False?): correctness cannot be checked."
        )
    return config, key


def cmd_convert(args: argparse.Namespace) -> int:
    from model_navigator.core.enums import StepStatus
    from model_navigator.package.descriptor import PackageDescriptor

    config_file = Path(args.config)
    data = _load_path_config(config_file)
    root = config_file.absolute().parent.parent
    descriptor = PackageDescriptor.from_workdir(root)
    config, key = _convert_request(args, config_file, data, root, descriptor.status)
    from model_navigator.steps.recheck import recheck

    model = None
    if args.model is not None:  # the user's model, loaded before anything is written
        from model_navigator.cli.user_model import user_model

        model = user_model(args.model, config.framework)
    descriptor.status.config = config  # the steps read status.yaml: config.yaml is what runs
    recheck(
        descriptor.status,
        descriptor.workdir,
        retest=True,
        profile=False,
        has_data=True,
        verbose=True,
        config=config,
        only=key,
        reconvert=not args.correctness_only,
        operation="convert",
        user_model=model,
    )
    path = descriptor.status.paths[key]
    if path.status == StepStatus.SKIPPED:
        print(f"path {key!r} skipped: {one_line(path.reason)}", file=sys.stderr)
        report(descriptor.status, args.json, keys=[key])
        return EXIT_FAILURES
    return report(descriptor.status, args.json, keys=[key])


def cmd_report(args: argparse.Namespace) -> int:
    from model_navigator.report import write_report

    target = check_target(args.package)
    files = write_report(target, args.output)  # validates the package before anything is written
    print(files.html)
    print(files.markdown)
    for image in files.images.values():
        print(image)
    if files.failures:
        print(f"{len(files.failures)} failure(s): " + "; ".join(files.failures), file=sys.stderr)
    return EXIT_FAILURES if files.failures else EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from model_navigator.batch import run

    result = run(args.jobs, args.output, ray=args.ray, max_parallel=args.max_parallel, rerun=args.rerun)
    print(f"summary: {result.summary_file}", file=sys.stderr)
    print(f"index: {result.index_file}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILURES


def _add_batch_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "batch",
        parents=[common],
        help="export or re-test many models, locally or on a Ray cluster",
        description="Run every job of JOBS.yaml (model and dataloader factories as MODULE:FUNCTION "
        "with nav.<framework>.export arguments, or a .nav package to re-test), each in its "
        "own process: locally, --max-parallel at a time, or on a Ray cluster with --ray. "
        "Writes OUT/summary.json, OUT/index.html and OUT/jobs/<job>/. A rerun skips the "
        "jobs already done. Exit 1 when a job failed or was cancelled.",
    )
    p.add_argument("jobs", metavar="JOBS.yaml", help="the jobs file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the batch's folder (created if needed)")
    p.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS|auto",
        help="run on this Ray cluster (needs the [ray] extra); default: local processes",
    )
    p.add_argument(
        "--max-parallel",
        type=positive_int,
        default=1,
        metavar="N",
        help="local jobs run at a time (default 1; on Ray the cluster's resources decide)",
    )
    p.add_argument("--rerun", action="store_true", help="run the jobs done before again")
    p.set_defaults(func=cmd_batch)


# ------------------------------------------------------------------------------------------------
# Parser and entry point
# ------------------------------------------------------------------------------------------------


def _add_inspect_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "inspect",
        parents=[common],
        help="print the status table of a package or workspace",
        description="Print the status table of a .nav package (read without unpacking) or a "
        "workspace folder. Exit 1 when a path, correctness check or profiling run failed, "
        "or the run that wrote it did not finish (killed, interrupted).",
    )
    p.add_argument("package", metavar="PACKAGE_OR_WORKDIR", help="a .nav file or a workspace folder (with status.yaml)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead: model_name, framework, navigator_version, format_version, ok, failures, "
        "rows (the status table) and best (the starred path and runtime, or why none qualified)",
    )
    _add_selection_options(p)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="compare runtimes at this profiled batch size",
    )
    p.set_defaults(func=cmd_inspect)


def _add_triton_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "triton",
        parents=[common],
        help="write a Triton model repository entry",
        description="Write <REPO>/<model name>/<version>/model.* and config.pbtxt for one path of a "
        "package or workspace: --path (and --runtime), or the best by --strategy. "
        "config.pbtxt is checked against Triton's ModelConfig schema.",
    )
    p.add_argument("package", metavar="PACKAGE_OR_WORKDIR", help="a .nav file or a workspace folder (with status.yaml)")
    p.add_argument("-o", "--output", required=True, metavar="REPO", help="the model repository folder")
    p.add_argument("--path", default=None, metavar="KEY", help="the path to serve, e.g. onnx (default: the best)")
    p.add_argument("--runtime", default=None, help="the runtime it runs on, e.g. CPUExecutionProvider or OpenVINO")
    _add_selection_options(p)
    p.add_argument("--model-name", default=None, help="the model's name in Triton (default: the package's)")
    p.add_argument("--model-version", type=positive_int, default=1, metavar="N")
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        metavar="N",
        help="default: the largest profiled batch size (with --latency-budget: the largest whose p99 "
        "met it), said on stderr; 0 turns batching off",
    )
    p.add_argument("--instance-count", type=positive_int, default=1, metavar="N")
    p.add_argument("--override", action="store_true", help="replace <REPO>/<model name> if it exists")
    p.set_defaults(func=cmd_triton)


def _add_profile_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "profile",
        parents=[common],
        help="profile every successful path again",
        description="Profile every successful path again with the given profiler options "
        "(library defaults otherwise). A .nav package is unpacked into --workdir "
        "first; a workspace folder is profiled in place.",
    )
    p.add_argument("package", metavar="PACKAGE_OR_WORKDIR", help="a .nav file or a workspace folder (with status.yaml)")
    add_profiler_options(p)
    p.add_argument("--workdir", default=None, help="where to unpack a .nav package (default: <name>_workdir beside it)")
    p.add_argument("--override-workdir", action="store_true", help="replace an existing --workdir")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=cmd_profile)


def _add_convert_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "convert",
        parents=[common],
        help="re-run one path from its config.yaml",
        description="Re-run one path of a workspace from its <workspace>/<path>/config.yaml: the "
        "conversion, then correctness on its runtimes. Exports need your model: name a "
        "function returning it with --model MODULE:FUNCTION (PyTorch), or run "
        "<path>/reproduce_export.sh after implementing get_model(), or re-check the "
        "exported artifact with --correctness-only.",
    )
    p.add_argument("--config", required=True, metavar="PATH/config.yaml", help="the path's config.yaml")
    p.add_argument(
        "--model",
        default=None,
        metavar="MODULE:FUNCTION",
        help="for an export path: a function returning your model (e.g. my_models:get_model, "
        "found from the current folder or PYTHONPATH); the export runs again on it",
    )
    p.add_argument(
        "--correctness-only",
        action="store_true",
        help="do not convert: re-run correctness of the path's artifact on its runtimes",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=cmd_convert)


def _add_report_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report",
        parents=[common],
        help="write an HTML and a Markdown report",
        description="Write DIR/report.html (self-contained: status table, correctness per output, "
        "latency and throughput against batch size per path and runtime, plots "
        "embedded) and DIR/report.md with latency.png and throughput.png beside it. "
        "Exit 1 when the package holds failures (the report is written all the same).",
    )
    p.add_argument("package", metavar="PACKAGE_OR_WORKDIR", help="a .nav file or a workspace folder (with status.yaml)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder for the report (created if needed; only the report's files in it are replaced)",
    )
    p.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    from model_navigator import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print tracebacks of errors")

    parser = argparse.ArgumentParser(
        prog="model-navigator",
        description="Inspect, re-profile, re-convert and report on model-navigator packages (.nav) and workspaces.",
        epilog="Exit codes: 0 ok, 1 failures found, 2 bad usage.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"model-navigator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    for add in (
        _add_inspect_command,
        _add_triton_command,
        _add_profile_command,
        _add_convert_command,
        _add_report_command,
        _add_batch_command,
    ):
        add(sub, common)
    from model_navigator.cli.export_file import add_export_command

    add_export_command(sub, common, positive_int)
    from model_navigator.cli.serve import add_parsers  # serve, loadtest (PyTriton is imported when they run)

    add_parsers(sub, common, check_target, positive_int, positive_float, _add_selection_options)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `model-navigator` and `python -m model_navigator`; returns the exit code."""
    from model_navigator.core.errors import PackageError, UserInputError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors
        return e.code if isinstance(e.code, int) else (EXIT_OK if e.code is None else EXIT_USAGE)
    debug = bool(getattr(args, "debug", False))
    try:
        return args.func(args)
    except KeyboardInterrupt as e:
        from model_navigator.core.runs import Terminated

        print("error: interrupted" + (" (SIGTERM)" if isinstance(e, Terminated) else ""), file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:  # `model-navigator inspect ... | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILURES
    except Exception as e:  # noqa: BLE001 - every error becomes one line and an exit code
        code = EXIT_USAGE if isinstance(e, (UserInputError, PackageError)) else EXIT_FAILURES
        if debug:
            traceback.print_exc()
        message = one_line(e, limit=2000) or type(e).__name__
        if code == EXIT_FAILURES and not isinstance(e, (UserInputError, PackageError)):
            from model_navigator.core.errors import ModelNavigatorError

            if not isinstance(e, ModelNavigatorError):
                message = f"{type(e).__name__}: {message}"
        print(f"error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
