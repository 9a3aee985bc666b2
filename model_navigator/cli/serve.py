"""`model-navigator serve` and `model-navigator loadtest`: a package's path behind a real Triton server
(PyTriton), served until Ctrl-C, or measured under load against the same runner in process."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

EXIT_OK = 0


def _served_options(args: argparse.Namespace) -> Dict[str, Any]:
    return dict(
        path_key=args.path,
        runtime=args.runtime,
        strategy=args.strategy,
        latency_budget_ms=args.latency_budget,
        model_name=args.model_name,
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        verbose=args.verbose,
        max_precision_loss=args.max_precision_loss,
    )


def _loadtest_config(args: argparse.Namespace) -> Any:
    from model_navigator.core.config import ProfilerConfig

    options: Dict[str, Any] = {}
    for name in (
        "measurement_mode",
        "measurement_interval",
        "measurement_request_count",
        "stability_percentage",
        "max_trials",
        "warmup_requests",
    ):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    return ProfilerConfig(**options)


def _concurrency(args: argparse.Namespace) -> List[int]:
    if args.concurrency:
        return sorted(set(args.concurrency))
    levels, level = [], 1
    while level <= args.max_concurrency:
        levels.append(level)
        level *= 2
    return levels


def _print_loadtest(report: Any, json_path: Optional[str]) -> None:
    print(report.to_markdown())
    if json_path:
        Path(json_path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {json_path}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    from model_navigator.serving import serve
    from model_navigator.serving.loadtest import loadtest_served

    target = args.check_target(args.package)
    config = _loadtest_config(args) if args.loadtest else None  # bad options refused before the server starts
    with serve(target, **_served_options(args)) as served:
        print(served.describe(), file=sys.stderr)
        if args.loadtest:
            _print_loadtest(
                loadtest_served(served, _concurrency(args), args.batch_size, config, inprocess=not args.no_inprocess),
                args.json,
            )
            return EXIT_OK
        print(f"serving until Ctrl-C (model {served.model_name!r} at {served.url})", file=sys.stderr)
        served.wait()
    return EXIT_OK


def cmd_loadtest(args: argparse.Namespace) -> int:
    args.loadtest = True
    return cmd_serve(args)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number 1..65535, got {text!r}")
    return value


def _add_common(
    p: argparse.ArgumentParser, positive_int: Callable, positive_float: Callable, add_selection: Callable
) -> None:
    p.add_argument("package", metavar="PACKAGE_OR_WORKDIR", help="a .nav file or a workspace folder (with status.yaml)")
    p.add_argument("--path", default=None, metavar="KEY", help="the path to serve, e.g. onnx (default: the best)")
    p.add_argument("--runtime", default=None, help="the runtime it runs on, e.g. CPUExecutionProvider")
    add_selection(p)
    p.add_argument("--model-name", default=None, help="the model's name in Triton (default: the package's)")
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        metavar="N",
        help="default: the largest profiled batch size, as for `triton`; 0 serves unbatched",
    )
    p.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=0,
        metavar="US",
        help="how long dynamic batching may hold a request to form a larger batch (default 0)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--http-port", type=_port, default=None, metavar="PORT", help="default: a free port")
    p.add_argument("--grpc-port", type=_port, default=None, metavar="PORT", help="default: a free port")
    p.add_argument("--metrics-port", type=_port, default=None, metavar="PORT", help="default: a free port")
    p.add_argument("--verbose", action="store_true", help="Triton's own log on stdout")
    p.add_argument(
        "--concurrency",
        type=positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="load-test concurrency levels (default: 1, 2, 4 ... up to --max-concurrency)",
    )
    p.add_argument("--max-concurrency", type=positive_int, default=4, metavar="N")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="samples per request (default 1)")
    p.add_argument("--no-inprocess", action="store_true", help="measure only the served model")
    p.add_argument("--measurement-mode", choices=["count_windows", "time_windows"], default=None)
    p.add_argument("--measurement-interval", type=positive_float, default=None, metavar="MS")
    p.add_argument(
        "--measurement-request-count",
        type=positive_int,
        default=None,
        metavar="N",
        help="requests per window, all clients together (count_windows)",
    )
    p.add_argument("--stability-percentage", type=positive_float, default=None, metavar="P")
    p.add_argument("--max-trials", type=positive_int, default=None, metavar="N")
    p.add_argument("--warmup-requests", type=int, default=None, metavar="N", help="per client")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the load-test report as JSON")


def add_parsers(
    sub: Any,
    common: argparse.ArgumentParser,
    check_target: Callable,
    positive_int: Callable,
    positive_float: Callable,
    add_selection: Callable,
) -> None:
    """Register `serve` and `loadtest` on the main parser's subcommands."""
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve a path on a real Triton server (PyTriton)",
        description="Serve one path of a package or workspace (--path/--runtime, or the best by "
        "--strategy; only one that passed correctness) on Triton Inference Server through "
        "PyTriton until Ctrl-C; with --loadtest, measure it and stop. Needs "
        "pip install 'model-navigator[serve]'.",
    )
    _add_common(p, positive_int, positive_float, add_selection)
    p.add_argument("--loadtest", action="store_true", help="measure the served model (as `loadtest`) and stop")
    p.set_defaults(func=cmd_serve, check_target=check_target)

    p = sub.add_parser(
        "loadtest",
        parents=[common],
        help="served vs in-process latency and throughput",
        description="Serve the path as `serve` does, then measure p50/p90/p99 latency and throughput "
        "through Triton's client at concurrency 1, 2, 4 ... with the profiler's window "
        "and stability rules, beside the same runner called in process; print both and "
        "stop the server.",
    )
    _add_common(p, positive_int, positive_float, add_selection)
    p.set_defaults(func=cmd_loadtest, check_target=check_target)
