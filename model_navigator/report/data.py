"""What a report shows, computed once from a NavigatorStatus: the status rows, correctness per
output, the latency/throughput series per path and runtime, and which path to deploy.

HTML and Markdown render this same data, so the two pages cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from model_navigator.core.enums import StepStatus
from model_navigator.core.status import NavigatorStatus, ProfilingResult


def runtime_label(runtime: Optional[str]) -> str:
    """`CPUExecutionProvider` -> `CPU` (the short name the status table uses)."""
    return (runtime or "-").replace("ExecutionProvider", "")


@dataclass
class Series:
    """The profiling results of one path on one runtime, sorted by batch size."""

    path: str
    runtime: str
    is_source: bool
    correct: bool
    verified: bool
    points: List[ProfilingResult]

    @property
    def label(self) -> str:
        name = f"{self.path} ({runtime_label(self.runtime)})"
        return f"{name}, source" if self.is_source else name

    @property
    def batch_sizes(self) -> List[int]:
        return [p.batch_size for p in self.points]

    def at(self, batch_size: int) -> Optional[ProfilingResult]:
        return next((p for p in self.points if p.batch_size == batch_size), None)


@dataclass
class Pick:
    """One recommendation (model_navigator.selection's choice): the series, the measurement it was
    chosen on and how it compares to the source model."""

    series: Series
    result: ProfilingResult
    speedup: Optional[float] = None  # against the source model at the same batch size
    precision_note: Optional[str] = None  # a reduced-precision pick: its gain over fp32 and its cost


@dataclass
class CorrectnessRow:
    path: str
    runtime: str
    output: Optional[str]
    status: str
    max_abs_error: Optional[float]
    max_rel_error: Optional[float]
    atol: Optional[float]
    rtol: Optional[float]
    batch_sizes: List[int]
    sample_count: int
    reason: Optional[str]
    tolerance: Optional[str] = None  # "user", "default fp32", ... (None: a package from before defaults)
    measures: Optional[str] = None  # reduced precision: its whole-output measures and budget, in words


@dataclass
class ReportData:
    status: NavigatorStatus
    rows: List[Dict[str, Any]]
    correctness: List[CorrectnessRow]
    series: List[Series]
    failures: List[str]
    skipped: List[Tuple[str, List[str]]]  # (reason, path keys)
    latency_pick: Optional[Pick] = None
    throughput_pick: Optional[Pick] = None
    verified: List[Tuple[str, str]] = field(default_factory=list)  # (path, runtime)
    rejected: List[str] = field(default_factory=list)  # why each other path and runtime lost on latency
    no_pick: str = ""  # why no path and runtime qualifies, when none does

    @property
    def title(self) -> str:
        return f"{self.status.model_name} ({self.status.framework})"

    @property
    def has_performance(self) -> bool:
        return any(s.points for s in self.series)

    @property
    def unstable(self) -> bool:
        return any(not p.stable for s in self.series for p in s.points)

    def point(self, path: str, runtime: Optional[str], batch_size: int) -> Optional[ProfilingResult]:
        """The measurement of `path` on `runtime` at `batch_size`, if profiled."""
        series = next((s for s in self.series if s.path == path and s.runtime == runtime), None)
        return series.at(batch_size) if series is not None else None

    def is_pick(self, path: str, runtime: Optional[str]) -> bool:
        """Whether this path and runtime is the recommendation `model-navigator inspect` stars (min latency)."""
        pick = self.latency_pick
        return pick is not None and (pick.series.path, pick.series.runtime) == (path, runtime)

    @property
    def skewed(self) -> List[Tuple[Series, ProfilingResult, List[str]]]:
        """Every measurement whose p99 or mean lies far from its p50, with what is off."""
        return [(s, p, flags) for s in self.series for p in s.points for flags in [skew_flags(p)] if flags]


def load_status(source: Union[NavigatorStatus, Any, str, Path]) -> NavigatorStatus:
    """A NavigatorStatus from a status, a PackageDescriptor, a .nav file (validated, read without
    extracting) or a workspace folder."""
    from model_navigator.core.errors import UserInputError

    if isinstance(source, NavigatorStatus):
        return source
    described = getattr(source, "status", None)
    if isinstance(described, NavigatorStatus):  # PackageDescriptor
        return described
    if not isinstance(source, (str, Path)):
        raise UserInputError(
            f"Cannot report on a {type(source).__name__}; give a PackageDescriptor, a .nav "
            f"package or a workspace folder."
        )
    path = Path(source)
    if path.is_file():
        from model_navigator.package.archive_validate import read_package_status

        return read_package_status(path)
    if path.is_dir():
        return NavigatorStatus.load(path)
    raise UserInputError(f"{str(source)!r} does not exist; give a .nav package or a workspace folder.")


def _series(status: NavigatorStatus) -> List[Series]:
    found = []
    for key, path in status.paths.items():
        if not path.ok:
            continue
        for runtime, result in path.runtimes.items():
            if not result.profiled:
                continue
            found.append(
                Series(
                    path=key,
                    runtime=runtime.value,
                    is_source=path.is_reference(runtime),
                    correct=path.passed(runtime),
                    verified=result.is_verified,
                    points=sorted(result.performance.results, key=lambda r: r.batch_size),  # type: ignore[union-attr]
                )
            )
    return found


def _correctness_rows(status: NavigatorStatus) -> List[CorrectnessRow]:
    rows = []
    for key, path in status.paths.items():
        if not path.ok:
            continue
        for runtime, result in path.runtimes.items():
            corr = result.correctness
            if path.is_reference(runtime):
                continue
            if corr is None:
                rows.append(CorrectnessRow(key, runtime.value, None, "not run", None, None, None, None, [], 0, None))
                continue
            common: Dict[str, Any] = dict(
                batch_sizes=list(corr.batch_sizes),
                sample_count=corr.sample_count,
                reason=corr.reason,
                tolerance=corr.tolerance,
            )
            if not corr.per_output:
                rows.append(
                    CorrectnessRow(key, runtime.value, None, corr.status.value, None, None, None, None, **common)
                )
            for name, error in corr.per_output.items():  # the tolerance that judged this output
                rows.append(
                    CorrectnessRow(
                        key,
                        runtime.value,
                        name,
                        corr.status.value,
                        error.max_abs_error,
                        error.max_rel_error,
                        error.atol,
                        error.rtol,
                        **common,
                        measures=_measures(error),
                    )
                )
    return rows


def _measures(error: Any) -> Optional[str]:
    """A reduced-precision output's measures against its budget:
    "rel L2 2.71%, cosine 0.99963 (rel_l2 <= 0.1, ...)"."""
    if error.rel_l2 is None:
        return None
    from model_navigator.core.budget import AT_LEAST

    text = f"rel L2 {error.rel_l2:.2%}, cosine {error.cosine:.5f}" + (
        f", top1 {error.top1:.0%}" if error.top1 is not None else ""
    )
    limits = ", ".join(f"{k} {'>=' if k in AT_LEAST else '<='} {v:g}" for k, v in (error.budget or {}).items())
    return text + (f" within {limits}" if limits else "")


def _pick(status: NavigatorStatus, series: List[Series], strategy: str) -> Tuple[Optional[Pick], List[str], str]:
    """The path and runtime model_navigator.selection picks by `strategy` (the one `inspect` stars),
    why each other one lost, and why none qualifies (when none does)."""
    from model_navigator.selection import NoRuntimeQualifiesError, select_runtime

    try:
        chosen = select_runtime(status, strategy)
    except NoRuntimeQualifiesError as e:
        return None, [str(r) for r in e.rejected], str(e).splitlines()[0].rstrip(":")
    found = next((s for s in series if s.path == chosen.path and s.runtime == chosen.runtime.value), None)
    if found is None:  # cannot happen: the winner was profiled
        return None, [str(r) for r in chosen.rejected], f"{chosen.path} has no profiling results"
    source = next((s for s in series if s.is_source), None)
    speedup = None
    if source is not None and strategy == "min-latency":
        reference = source.at(chosen.batch_size)
        speedup = reference.p50_ms / chosen.p50_ms if reference is not None and chosen.p50_ms > 0 else None
    elif source is not None:  # at the same batch size only: a batch-32 figure against batch 3 says nothing
        reference = source.at(chosen.batch_size)
        speedup = (
            chosen.throughput / reference.throughput if reference is not None and reference.throughput > 0 else None
        )
    return Pick(found, chosen.figures, speedup, chosen.precision_note), [str(r) for r in chosen.rejected], ""


def build_report_data(source: Union[NavigatorStatus, Any, str, Path]) -> ReportData:
    """Everything the HTML and Markdown pages show, from a status, descriptor, package or workspace."""
    from model_navigator.package.table import find_failures, status_rows

    status = load_status(source)
    series = _series(status)
    skipped: Dict[str, List[str]] = {}
    for key, path in status.paths.items():
        if path.status == StepStatus.SKIPPED:
            skipped.setdefault(path.reason or "", []).append(key)
    latency, rejected, no_pick = _pick(status, series, "min-latency")
    throughput, _, _ = _pick(status, series, "max-throughput")
    verified = [(key, runtime.value) for key, runtime in status.verified_runtimes()]
    return ReportData(
        status=status,
        rows=[r for r in status_rows(status) if r["status"] != StepStatus.SKIPPED.value],
        correctness=_correctness_rows(status),
        series=series,
        failures=find_failures(status),
        skipped=list(skipped.items()),
        latency_pick=latency,
        throughput_pick=throughput,
        verified=verified,
        rejected=rejected,
        no_pick=no_pick,
    )


# Number formats shared by the HTML and Markdown pages -------------------------------------------


def row_status(row: Dict[str, Any]) -> Tuple[str, Optional[str]]:
    """What a status-table row says in its Status cell (a failed check or profiling named over an
    exported path's "ok") and the reason that goes with it."""
    return row.get("outcome") or row["status"], row.get("correctness_reason") or row.get("reason")


def p50_lines(row: Dict[str, Any], mark: Callable[[int], str]) -> List[str]:
    """A row's p50 per profiled batch size, "~" when unstable, then `mark(batch_size)` (the skew mark)."""
    return [
        f"{fmt_ms(p['p50_ms'])} ({p['batch_size']}){'' if p['stable'] else ' ~'}{mark(p['batch_size'])}"
        for p in row["performance"]
    ]


def throughput_lines(row: Dict[str, Any]) -> List[str]:
    return [fmt_throughput(p["throughput"]) for p in row["performance"]]


def fmt_ms(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value >= 100 else f"{value:.3f}"


# A measurement whose p99 or mean is this far from its p50 is flagged: its p50 alone misleads, and
# throughput (batch / mean latency) disagrees with batch / p50 by the mean's ratio.
TAIL_RATIO = 3.0  # p99 > 3x p50: a heavy tail
MEAN_RATIO = 1.5  # mean > 1.5x p50 (or < p50 / 1.5)

THROUGHPUT_DEFINITION = "batch size / mean latency"
THROUGHPUT_HEADER = f"Throughput /s ({THROUGHPUT_DEFINITION})"
# The columns of the status table and of the table of every measurement, in the HTML and Markdown reports alike.
STATUS_COLUMNS = ("Path", "Runtime", "Status", "Max abs / rel error", "p50 ms (batch)", THROUGHPUT_HEADER, "Verified")
MEASUREMENT_COLUMNS = (
    "Path",
    "Runtime",
    "Batch",
    "p50 ms",
    "p90 ms",
    "p95 ms",
    "p99 ms",
    "mean ± std ms",
    THROUGHPUT_HEADER,
    "Windows",
    "Stable",
)
STAR = "★"
SKEW_MARK = "!"


def heavy_tail(p: ProfilingResult) -> bool:
    """p99 more than TAIL_RATIO times p50."""
    return p.p50_ms > 0 and p.p99_ms > TAIL_RATIO * p.p50_ms


def mean_off(p: ProfilingResult) -> bool:
    """Mean more than MEAN_RATIO times above or below p50: throughput (from the mean) disagrees with p50."""
    return p.p50_ms > 0 and not 1 / MEAN_RATIO <= p.mean_ms / p.p50_ms <= MEAN_RATIO


def skew_flags(p: ProfilingResult) -> List[str]:
    """What is off in one measurement: p99 or mean far from p50 (empty when neither is)."""
    flags = []
    if heavy_tail(p):
        flags.append(f"p99 {fmt_ms(p.p99_ms)} ms is {p.p99_ms / p.p50_ms:.1f}x p50 {fmt_ms(p.p50_ms)} ms (heavy tail)")
    if mean_off(p):
        ratio = p.mean_ms / p.p50_ms
        flags.append(
            f"mean {fmt_ms(p.mean_ms)} ms is {ratio:.1f}x p50, so throughput (batch / mean) is "
            f"{fmt_throughput(p.throughput)}/s where batch / p50 would give "
            f"{fmt_throughput(p.batch_size * 1000.0 / p.p50_ms)}/s"
        )
    return flags


def fmt_throughput(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_error(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2e}"


def fmt_tolerance(
    atol: Optional[float], rtol: Optional[float], source: Optional[str] = None, measures: Optional[str] = None
) -> str:
    if measures:  # a reduced-precision result: judged by its budget (or task metric), not atol/rtol
        return f"{measures} ({source})" if source else measures
    if atol is None and rtol is None:
        return "not set (measured only)"
    parts = ([f"atol {atol:g}"] if atol is not None else []) + ([f"rtol {rtol:g}"] if rtol is not None else [])
    return ", ".join(parts) + (f" ({source})" if source else "")


def fmt_speedup(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.1f}x"


def fmt_shape(shape: Any) -> str:
    return "[" + ", ".join("?" if d == -1 else str(d) for d in shape) + "]"


# Prose of the report itself, not from status.yaml: `backticks` mark code, which each renderer
# shows as code (HTML <code>, Markdown code spans); see report/html.py and report/markdown.py.
SELECTION_NOTE = (
    "Chosen as `model-navigator inspect` chooses (`model_navigator.selection`): exported paths that "
    "passed correctness and were profiled; when any path is verified, only verified ones. The "
    "source model is the baseline."
)
STAR_NOTE = f"{STAR} recommended: the lowest p50 latency, the row `model-navigator inspect` stars."
THROUGHPUT_NOTE = (
    f"Throughput (samples/s) is {THROUGHPUT_DEFINITION}, so a slow tail lowers it while p50 "
    f"stays put: {SKEW_MARK} marks a measurement whose p99 is more than {TAIL_RATIO:g}x its p50 or "
    f"whose mean is more than {MEAN_RATIO:g}x above or below it."
)
NOTHING_PROFILED = (
    "Nothing was profiled: export with `run_profiling=True` or run `model-navigator profile` on the "
    "package, then report again."
)


def pick_sentences(data: ReportData) -> List[Tuple[str, str]]:
    """(heading, sentence) per recommendation, plain text (the renderers escape it)."""
    out = []
    pick = data.latency_pick
    if pick is not None:
        against = f", {fmt_speedup(pick.speedup)} faster than the source model" if pick.speedup else ""
        out.append(
            (
                "Lowest latency",
                f"{pick.series.path} on {runtime_label(pick.series.runtime)}: "
                f"{fmt_ms(pick.result.p50_ms)} ms p50 at batch size {pick.result.batch_size}{against}"
                f"{_caveats(pick.result)}{_precision(pick)}.",
            )
        )
    pick = data.throughput_pick
    if pick is not None:
        against = f", {fmt_speedup(pick.speedup)} the source model's at that batch size" if pick.speedup else ""
        out.append(
            (
                "Highest throughput",
                f"{pick.series.path} on {runtime_label(pick.series.runtime)}: "
                f"{fmt_throughput(pick.result.throughput)} samples/s ({THROUGHPUT_DEFINITION}) at batch size "
                f"{pick.result.batch_size}{against}{_caveats(pick.result)}{_precision(pick)}.",
            )
        )
    return out


def _precision(pick: Pick) -> str:
    return f"; {pick.precision_note}" if pick.precision_note else ""


def _caveats(result: ProfilingResult) -> str:
    """What to keep in mind about a recommendation's figures: unstable, heavy tail, mean far from p50."""
    notes = ([] if result.stable else ["unstable measurement"]) + skew_flags(result)
    return f" ({'; '.join(notes)})" if notes else ""


def no_pick_reason(data: ReportData) -> str:
    """Why nothing is recommended (prose: `backticks` mark code)."""
    if not data.series:
        return NOTHING_PROFILED
    return f"{data.no_pick or 'No path and runtime qualifies'}: none is recommended; see the reasons below."
