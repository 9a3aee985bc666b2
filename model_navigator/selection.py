"""Runtime selection: from the profiled status, pick the path and runtime to deploy, and say why
every other one lost.

Who qualifies is the status's verdict (NavigatorStatus.qualifying): a path that exported/converted
(`ok`), is a deployable artifact (not the source model), and on that runtime passed correctness and
was profiled. When any path and runtime that passed was marked verified (`set_verified`), only
verified ones qualify, even when the verified one cannot compete (not profiled since its last
check): then nothing qualifies and the error says so. Among them:

- MIN_LATENCY: lowest p50 latency at one batch size: `batch_size`, or by default the smallest batch
  size every qualifying runtime was profiled at (1 with the default profiler).
- MAX_THROUGHPUT: highest throughput (samples/s) at `batch_size`, or at each runtime's best
  profiled batch size.
- MAX_THROUGHPUT_WITHIN_LATENCY: highest throughput among the profiled batch sizes whose latency
  (p99 by default, `latency_percentile` to change it) stays within `latency_budget_ms`.

Ties go to the better secondary figure (throughput for latency, latency for throughput), then to
the earlier path in status order. Unstable measurements still count; they are marked as such.

Reduced precision (int8, bf16 paths) is chosen only when it pays and passes: it qualifies only when
it passed its accuracy budget, and wins only when it ranks above the best full-precision result
(faster); a slower one is measured, shown and rejected. The winner's summary says the cost beside the
gain. `max_precision_loss` (the largest relative L2 error of any output) narrows them: None excludes
reduced precision, so full precision is the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from model_navigator.core.enums import Format, RuntimeProvider, StrEnum, parse_enum
from model_navigator.core.errors import ModelNavigatorError, UserInputError
from model_navigator.core.status import NavigatorStatus, ProfilingResult

PERCENTILES = (50, 90, 95, 99)


class SelectionStrategy(StrEnum):
    MIN_LATENCY = "min-latency"
    MAX_THROUGHPUT = "max-throughput"
    MAX_THROUGHPUT_WITHIN_LATENCY = "max-throughput-within-latency"


class NoRuntimeQualifiesError(ModelNavigatorError):
    """No path and runtime qualifies for the strategy; `rejected` says why for each."""

    def __init__(self, message: str, rejected: List["Rejection"]):
        super().__init__(message)
        self.rejected = rejected


class Rejection(NamedTuple):
    """A path and runtime that was not chosen, and why (unpacks as (path, runtime, reason))."""

    path: str
    runtime: Optional[RuntimeProvider]
    reason: str

    def __str__(self) -> str:
        runtime = f" on {self.runtime.value}" if self.runtime is not None else ""
        return f"{self.path}{runtime}: {self.reason}"


@dataclass
class Selection:
    """The chosen path and runtime with its figures at the deciding batch size, and the losers."""

    strategy: SelectionStrategy
    path: str
    format: Format
    runtime: RuntimeProvider
    figures: ProfilingResult
    verified: bool
    latency_budget_ms: Optional[float] = None
    latency_percentile: int = 50
    rejected: List[Rejection] = field(default_factory=list)
    precision_note: Optional[str] = None  # a reduced-precision winner: its gain and its cost

    @property
    def batch_size(self) -> int:
        return self.figures.batch_size

    @property
    def p50_ms(self) -> float:
        return self.figures.p50_ms

    @property
    def throughput(self) -> float:
        return self.figures.throughput

    def summary(self) -> str:
        f = self.figures
        if self.strategy == SelectionStrategy.MIN_LATENCY:
            what = f"lowest p{self.latency_percentile} latency"
        elif self.strategy == SelectionStrategy.MAX_THROUGHPUT:
            what = "highest throughput"
        else:
            what = f"highest throughput with p{self.latency_percentile} <= {self.latency_budget_ms:g} ms"
        stable = "" if f.stable else " (unstable measurement)"
        note = f"; {self.precision_note}" if self.precision_note else ""
        return (
            f"{self.path} on {self.runtime.value} ({what}): p50 {f.p50_ms:.3f} ms, p99 {f.p99_ms:.3f} ms, "
            f"{f.throughput:.0f} samples/s at batch size {f.batch_size}{stable}{note}"
        )

    def explain(self) -> str:
        """The winner and one line per loser."""
        lines = [f"best: {self.summary()}"]
        lines += [f"  - {r}" for r in self.rejected]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> Dict[str, Any]:
        f = self.figures
        return {
            "strategy": self.strategy.value,
            "path": self.path,
            "format": self.format.value,
            "runtime": self.runtime.value,
            "verified": self.verified,
            "batch_size": f.batch_size,
            "p50_ms": f.p50_ms,
            "p90_ms": f.p90_ms,
            "p95_ms": f.p95_ms,
            "p99_ms": f.p99_ms,
            "throughput": f.throughput,
            "stable": f.stable,
            "latency_budget_ms": self.latency_budget_ms,
            "latency_percentile": self.latency_percentile,
            "precision_note": self.precision_note,
            "rejected": [
                {"path": r.path, "runtime": r.runtime.value if r.runtime else None, "reason": r.reason}
                for r in self.rejected
            ],
        }


@dataclass
class _Candidate:
    path: str
    format: Format
    runtime: RuntimeProvider
    results: List[ProfilingResult]
    verified: bool
    order: int
    precision: Optional[str] = None  # "int8" / "bf16" for a reduced-precision path, else None
    loss: float = 0.0  # its largest relative L2 error over the outputs

    def label(self) -> str:
        kind = self.path.replace("onnx-", "").replace("-", " ") if self.precision else "fp32"
        return f"{kind} {self.runtime.value.replace('ExecutionProvider', '')}"


def _precision_of(path: Any, result: Any) -> Tuple[Optional[str], float]:
    """(reduced precision or None, its largest relative L2 error over the outputs)."""
    from model_navigator.core.enums import REDUCED_PRECISIONS

    if path.precision not in REDUCED_PRECISIONS:
        return None, 0.0
    if result is None or result.correctness is None:  # never checked: its error is unknown
        return path.precision.value, float("inf")
    errors = [e.rel_l2 for e in result.correctness.per_output.values() if e.rel_l2 is not None]
    return path.precision.value, max(errors, default=0.0)


def _latency(result: ProfilingResult, percentile: int) -> float:
    return float(getattr(result, f"p{percentile}_ms"))


def _percent(worse: float, better: float) -> str:
    if better <= 0:
        return ""
    return f" ({abs(worse - better) / better * 100:.0f}% {'slower' if worse > better else 'less'})"


def parse_strategy(
    strategy: Optional[Union[str, SelectionStrategy]], latency_budget_ms: Optional[float]
) -> SelectionStrategy:
    """The strategy to use: given, or inferred (a latency budget means MAX_THROUGHPUT_WITHIN_LATENCY)."""
    if strategy is None:
        return (
            SelectionStrategy.MIN_LATENCY
            if latency_budget_ms is None
            else SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
        )
    if isinstance(strategy, str) and not isinstance(strategy, SelectionStrategy):
        strategy = strategy.replace("_", "-")
    return parse_enum(SelectionStrategy, strategy, "strategy")


def _check_arguments(
    strategy: SelectionStrategy,
    latency_budget_ms: Optional[float],
    batch_size: Optional[int],
    latency_percentile: Optional[int],
) -> int:
    """Refuse arguments that do not fit `strategy`, before reading the status; return the percentile to rank by."""
    within = strategy == SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
    if within:
        if latency_budget_ms is None:
            raise UserInputError(f"strategy {strategy.value!r} needs `latency_budget_ms`.")
        if (
            isinstance(latency_budget_ms, bool)
            or not isinstance(latency_budget_ms, (int, float))
            or not latency_budget_ms > 0
        ):
            raise UserInputError(f"`latency_budget_ms` must be a number > 0, got {latency_budget_ms!r}.")
    elif latency_budget_ms is not None:
        raise UserInputError(
            f"`latency_budget_ms` applies to strategy "
            f"{SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY.value!r} only, not {strategy.value!r}."
        )
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UserInputError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    percentile = latency_percentile if latency_percentile is not None else (99 if within else 50)
    if percentile not in PERCENTILES:
        raise UserInputError(f"`latency_percentile` must be one of {PERCENTILES}, got {latency_percentile!r}.")
    return percentile


def _candidates(status: NavigatorStatus, rejected: List[Rejection]) -> List[_Candidate]:
    """Every path and runtime that qualifies (NavigatorStatus.qualifying: deployable, profiled, verified
    when any is); the others join `rejected` with the status's reason."""
    candidates: List[_Candidate] = []
    order = {key: i for i, key in enumerate(status.paths)}
    for verdict in status.qualifying():
        if verdict.reason is not None:
            rejected.append(Rejection(verdict.path, verdict.runtime, verdict.reason))
            continue
        path = status.paths[verdict.path]
        result = path.runtimes[verdict.runtime]  # type: ignore[index]
        candidates.append(
            _Candidate(
                verdict.path,
                path.format,
                verdict.runtime,  # type: ignore[arg-type]
                list(result.performance.results),  # type: ignore[union-attr]
                result.is_verified,
                order[verdict.path],
                *_precision_of(path, result),
            )
        )
    return candidates


def _full_precision_pool(status: NavigatorStatus) -> List[_Candidate]:
    """Every deployable, profiled full-precision result, verified or not: what a reduced-precision one must
    beat to be worth its error (the verified rule decides what may win, not what it is compared with)."""
    order = {key: i for i, key in enumerate(status.paths)}
    pool = []
    for key, path in status.paths.items():
        for runtime, result in path.runtimes.items():
            precision, loss = _precision_of(path, result)
            if precision is None and path.unfit(runtime) is None:
                pool.append(
                    _Candidate(
                        key,
                        path.format,
                        runtime,
                        list(result.performance.results),  # type: ignore[union-attr]
                        result.is_verified,
                        order[key],
                        precision,
                        loss,
                    )
                )
    return pool


def check_precision_loss(max_precision_loss: Any) -> Optional[float]:
    """`max_precision_loss` as given, refused (UserInputError) unless a number >= 0 or None."""
    if max_precision_loss is not None and (
        isinstance(max_precision_loss, bool)
        or not isinstance(max_precision_loss, (int, float))
        or not max_precision_loss >= 0
    ):
        raise UserInputError(
            f"`max_precision_loss` must be a number >= 0 (a relative L2 error, e.g. 0.01) or None "
            f"(no reduced precision), got {max_precision_loss!r}."
        )
    return max_precision_loss


def _loss_reason(precision: Optional[str], loss: float, max_precision_loss: Optional[float]) -> Optional[str]:
    """Why a result of `precision` (None: full) with relative L2 error `loss` is excluded by the cap, or None."""
    if precision is None:
        return None
    if max_precision_loss is None:
        return f"{precision}: reduced precision excluded (max_precision_loss=None)"
    if loss == float("inf") and max_precision_loss < loss:
        return f"{precision}: never checked here, its error unknown against max_precision_loss {max_precision_loss:.2%}"
    if not loss <= max_precision_loss:
        return f"{precision}: rel L2 error {loss:.2%} over max_precision_loss {max_precision_loss:.2%}"
    return None


def precision_loss_reason(path: Any, result: Any, max_precision_loss: Optional[float]) -> Optional[str]:
    """Why `max_precision_loss` excludes this path's result on one runtime (a RuntimeResult; None when never
    checked, its error then unknown), or None."""
    return _loss_reason(*_precision_of(path, result), max_precision_loss)


def _within_loss(
    candidates: List[_Candidate], max_precision_loss: Optional[float], rejected: List[Rejection]
) -> List[_Candidate]:
    """Drop reduced-precision candidates over `max_precision_loss` (None: all of them)."""
    kept = []
    for c in candidates:
        reason = _loss_reason(c.precision, c.loss, max_precision_loss)
        if reason is not None:
            rejected.append(Rejection(c.path, c.runtime, reason))
        else:
            kept.append(c)
    return kept


# A reduced-precision result must beat the best full-precision one by this factor (latency, or throughput)
# to be chosen: a gain within measurement noise does not pay for an error.
MIN_REDUCED_PRECISION_GAIN = 1.1


def _gain(strategy: SelectionStrategy, percentile: int, f: ProfilingResult, baseline: ProfilingResult) -> float:
    """How many times better `f` is than `baseline` at the strategy's deciding figure."""
    if strategy == SelectionStrategy.MIN_LATENCY:
        return _latency(baseline, percentile) / _latency(f, percentile) if _latency(f, percentile) > 0 else 0.0
    return f.throughput / baseline.throughput if baseline.throughput > 0 else float("inf")


def _paying(
    ranked: "_Ranked",
    baseline: Optional[Tuple[_Candidate, ProfilingResult]],
    strategy: SelectionStrategy,
    percentile: int,
    rejected: List[Rejection],
) -> Tuple["_Ranked", Optional[str]]:
    """Keep a reduced-precision candidate only when it beats `baseline`, the best full-precision result
    under the same strategy, budget and batch size, by MIN_REDUCED_PRECISION_GAIN, or when no full-precision
    result meets them (it is then the only way to), or when the user verified it; the others join
    `rejected`. Returns the ranking and, when a reduced one wins, its note: the gain beside the cost."""
    kept: _Ranked = []
    for c, f in ranked:
        gain = _gain(strategy, percentile, f, baseline[1]) if baseline is not None else float("inf")
        if c.precision is not None and not c.verified and gain < MIN_REDUCED_PRECISION_GAIN:
            assert baseline is not None
            why = (
                f"{gain:.2f}x against {baseline[0].path} on {baseline[0].runtime.value}, not "
                f"{MIN_REDUCED_PRECISION_GAIN:g}x faster ({_loser_reason(strategy, percentile, f, baseline[1])})"
            )
            rejected.append(
                Rejection(c.path, c.runtime, f"{c.precision}: {why}; reduced precision is chosen only when it pays")
            )
        else:
            kept.append((c, f))
    if not kept or kept[0][0].precision is None:
        return kept, None
    c, f = kept[0]
    if baseline is None:
        return kept, f"{c.label()}: no full-precision result qualifies here, rel L2 error {c.loss:.1%}"
    b, g = baseline
    runtime = b.runtime.value.replace("ExecutionProvider", "")
    return kept, (
        f"{c.label()}: {_gain(strategy, percentile, f, g):.1f}x faster than fp32 {b.path} on {runtime}, "
        f"rel L2 error {c.loss:.1%}" + (" (verified)" if c.verified else "")
    )


def _narrow(candidates: List[_Candidate], batch_size: Optional[int], rejected: List[Rejection]) -> List[_Candidate]:
    """Keep only the candidates profiled at `batch_size`; reject the rest."""
    if batch_size is not None:
        for c in [c for c in candidates if not any(r.batch_size == batch_size for r in c.results)]:
            sizes = ", ".join(str(r.batch_size) for r in c.results)
            rejected.append(
                Rejection(c.path, c.runtime, f"not profiled at batch size {batch_size} (profiled: {sizes})")
            )
        candidates = [c for c in candidates if any(r.batch_size == batch_size for r in c.results)]
    return candidates


_Ranked = List[Tuple[_Candidate, ProfilingResult]]


def _rank_min_latency(candidates: List[_Candidate], batch_size: Optional[int], percentile: int) -> _Ranked:
    """MIN_LATENCY: every candidate at one batch size (given, or the smallest all share), lowest latency first."""
    size = batch_size
    if size is None and candidates:
        common = set.intersection(*({r.batch_size for r in c.results} for c in candidates))
        size = min(common) if common else None
    figures = []
    for c in candidates:
        at = (
            [r for r in c.results if r.batch_size == size]
            if size is not None
            else [min(c.results, key=lambda r: r.batch_size)]
        )
        figures.append((c, at[0]))
    return sorted(figures, key=lambda cf: (_latency(cf[1], percentile), -cf[1].throughput, cf[0].order))


def _rank_max_throughput(candidates: List[_Candidate], batch_size: Optional[int]) -> _Ranked:
    """MAX_THROUGHPUT: each candidate at its best batch size (or the given one), highest throughput first."""
    figures = []
    for c in candidates:
        pool = [r for r in c.results if batch_size is None or r.batch_size == batch_size]
        figures.append((c, max(pool, key=lambda r: (r.throughput, -r.p50_ms))))
    return sorted(figures, key=lambda cf: (-cf[1].throughput, cf[1].p50_ms, cf[0].order))


def _rank_within_latency(
    candidates: List[_Candidate],
    batch_size: Optional[int],
    percentile: int,
    latency_budget_ms: float,
    rejected: List[Rejection],
) -> _Ranked:
    """MAX_THROUGHPUT_WITHIN_LATENCY: each candidate at its best batch size within the budget, highest throughput
    first; a candidate over the budget at every batch size joins `rejected`."""
    figures = []
    for c in candidates:
        pool = [r for r in c.results if batch_size is None or r.batch_size == batch_size]
        fitting = [r for r in pool if _latency(r, percentile) <= latency_budget_ms]
        if not fitting:
            best = min(pool, key=lambda r: _latency(r, percentile))
            rejected.append(
                Rejection(
                    c.path,
                    c.runtime,
                    f"over the latency budget: p{percentile} {_latency(best, percentile):.3f} ms at "
                    f"batch size {best.batch_size} > {latency_budget_ms:g} ms",
                )
            )
            continue
        figures.append((c, max(fitting, key=lambda r: (r.throughput, -_latency(r, percentile)))))
    return sorted(figures, key=lambda cf: (-cf[1].throughput, _latency(cf[1], percentile), cf[0].order))


def _rank(
    strategy: SelectionStrategy,
    candidates: List[_Candidate],
    batch_size: Optional[int],
    percentile: int,
    latency_budget_ms: Optional[float],
    rejected: List[Rejection],
) -> _Ranked:
    """The candidates ranked by `strategy`, best first."""
    if strategy == SelectionStrategy.MIN_LATENCY:
        return _rank_min_latency(candidates, batch_size, percentile)
    if strategy == SelectionStrategy.MAX_THROUGHPUT:
        return _rank_max_throughput(candidates, batch_size)
    assert latency_budget_ms is not None
    return _rank_within_latency(candidates, batch_size, percentile, latency_budget_ms, rejected)


def _loser_reason(strategy: SelectionStrategy, percentile: int, f: ProfilingResult, win: ProfilingResult) -> str:
    """Why a ranked candidate lost to the winner: its deciding figure against the winner's."""
    if strategy == SelectionStrategy.MIN_LATENCY:
        return (
            f"p{percentile} {_latency(f, percentile):.3f} ms vs {_latency(win, percentile):.3f} ms at batch size "
            f"{f.batch_size}{_percent(_latency(f, percentile), _latency(win, percentile))}"
        )
    percent = _percent(f.throughput, win.throughput) if f.throughput != win.throughput else ""
    why = (
        f"throughput {f.throughput:.0f}/s (batch size {f.batch_size}) vs {win.throughput:.0f}/s "
        f"(batch size {win.batch_size}){percent}"
    )
    if f.throughput == win.throughput:
        why += f", tie broken by p{percentile} latency"
    return why


def _verified_note(status: NavigatorStatus) -> str:
    """When verified paths exist and none won: they decide, so say which (nothing unverified replaces them)."""
    verified = status.held_marks()
    if not verified:
        return ""
    names = ", ".join(f"{key} on {runtime.value}" for key, runtime in verified)
    return f" (only verified paths qualify: {names})"


def select_runtime(
    status: NavigatorStatus,
    strategy: Optional[Union[str, SelectionStrategy]] = None,
    latency_budget_ms: Optional[float] = None,
    batch_size: Optional[int] = None,
    latency_percentile: Optional[int] = None,
    max_precision_loss: Optional[float] = float("inf"),
) -> Selection:
    """Pick the path and runtime to deploy by `strategy` (see the module doc); raise
    NoRuntimeQualifiesError, listing why each lost, when none qualifies. `max_precision_loss`: the
    largest relative L2 error a reduced-precision (int8, bf16) winner may have (default: its budget
    decides); None excludes reduced precision."""
    strategy = parse_strategy(strategy, latency_budget_ms)
    within = strategy == SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
    percentile = _check_arguments(strategy, latency_budget_ms, batch_size, latency_percentile)

    rejected: List[Rejection] = []
    check_precision_loss(max_precision_loss)
    candidates = _within_loss(_candidates(status, rejected), max_precision_loss, rejected)
    candidates = _narrow(candidates, batch_size, rejected)
    ranked = _rank(strategy, candidates, batch_size, percentile, latency_budget_ms, rejected)
    # the full-precision result to beat, at the batch size the ranking compares (min-latency: the winner's)
    at = (
        ranked[0][1].batch_size
        if batch_size is None and ranked and strategy == SelectionStrategy.MIN_LATENCY
        else batch_size
    )
    pool = _narrow(_full_precision_pool(status), at, [])
    baseline = next(iter(_rank(strategy, pool, at, percentile, latency_budget_ms, [])), None)
    ranked, note = _paying(ranked, baseline, strategy, percentile, rejected)

    if not ranked:
        lines = "\n".join(f"  - {r}" for r in rejected) or "  (no paths in the status)"
        raise NoRuntimeQualifiesError(
            f"No path and runtime qualifies for strategy {strategy.value!r}"
            + (f" within {latency_budget_ms:g} ms" if within else "")
            + _verified_note(status)
            + f":\n{lines}",
            rejected,
        )

    winner, win = ranked[0]
    rejected += [Rejection(c.path, c.runtime, _loser_reason(strategy, percentile, f, win)) for c, f in ranked[1:]]
    budget = float(latency_budget_ms) if within and latency_budget_ms is not None else None
    return Selection(
        strategy=strategy,
        path=winner.path,
        format=winner.format,
        runtime=winner.runtime,
        figures=win,
        verified=winner.verified,
        latency_budget_ms=budget,
        latency_percentile=percentile,
        rejected=rejected,
        precision_note=note,
    )
