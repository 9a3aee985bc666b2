"""Runtime selection: from the profiled status, pick the path and runtime to deploy, and say why
every other one lost.

Who qualifies: a path that exported/converted (`ok`), is a deployable artifact (not the source
model), and on that runtime passed correctness and was profiled. When any path and runtime was
marked verified (`set_verified`), only verified ones qualify. Among them:

- MIN_LATENCY: lowest p50 latency at one batch size: `batch_size`, or by default the smallest batch
  size every qualifying runtime was profiled at (1 with the default profiler).
- MAX_THROUGHPUT: highest throughput (samples/s) at `batch_size`, or at each runtime's best
  profiled batch size.
- MAX_THROUGHPUT_WITHIN_LATENCY: highest throughput among the profiled batch sizes whose latency
  (p99 by default, `latency_percentile` to change it) stays within `latency_budget_ms`.

Ties go to the better secondary figure (throughput for latency, latency for throughput), then to
the earlier path in status order. Unstable measurements still count; they are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from model_navigator.core.enums import Format, RuntimeProvider, StepStatus, StrEnum, parse_enum
from model_navigator.core.errors import ModelNavigatorError, UserInputError
from model_navigator.core.formats import SOURCE_FORMATS
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
        return (f"{self.path} on {self.runtime.value} ({what}): p50 {f.p50_ms:.3f} ms, p99 {f.p99_ms:.3f} ms, "
                f"{f.throughput:.0f} samples/s at batch size {f.batch_size}{stable}")

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
            "rejected": [{"path": r.path, "runtime": r.runtime.value if r.runtime else None, "reason": r.reason}
                         for r in self.rejected],
        }


@dataclass
class _Candidate:
    path: str
    format: Format
    runtime: RuntimeProvider
    results: List[ProfilingResult]
    verified: bool
    order: int


def _latency(result: ProfilingResult, percentile: int) -> float:
    return float(getattr(result, f"p{percentile}_ms"))


def _short(text: Optional[str], limit: int = 160) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _percent(worse: float, better: float) -> str:
    if better <= 0:
        return ""
    return f" ({abs(worse - better) / better * 100:.0f}% {'slower' if worse > better else 'less'})"


def parse_strategy(strategy: Optional[Union[str, SelectionStrategy]],
                   latency_budget_ms: Optional[float]) -> SelectionStrategy:
    """The strategy to use: given, or inferred (a latency budget means MAX_THROUGHPUT_WITHIN_LATENCY)."""
    if strategy is None:
        return SelectionStrategy.MIN_LATENCY if latency_budget_ms is None \
            else SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
    if isinstance(strategy, str) and not isinstance(strategy, SelectionStrategy):
        strategy = strategy.replace("_", "-")
    return parse_enum(SelectionStrategy, strategy, "strategy")


def _check_arguments(strategy: SelectionStrategy, latency_budget_ms: Optional[float], batch_size: Optional[int],
                     latency_percentile: Optional[int]) -> int:
    """Refuse arguments that do not fit `strategy`, before reading the status; return the percentile to rank by."""
    within = strategy == SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
    if within:
        if latency_budget_ms is None:
            raise UserInputError(f"strategy {strategy.value!r} needs `latency_budget_ms`.")
        if isinstance(latency_budget_ms, bool) or not isinstance(latency_budget_ms, (int, float)) \
                or not latency_budget_ms > 0:
            raise UserInputError(f"`latency_budget_ms` must be a number > 0, got {latency_budget_ms!r}.")
    elif latency_budget_ms is not None:
        raise UserInputError(f"`latency_budget_ms` applies to strategy "
                             f"{SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY.value!r} only, not {strategy.value!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UserInputError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    percentile = latency_percentile if latency_percentile is not None else (99 if within else 50)
    if percentile not in PERCENTILES:
        raise UserInputError(f"`latency_percentile` must be one of {PERCENTILES}, got {latency_percentile!r}.")
    return percentile


def _runtime_unfit(result: Any) -> Optional[str]:
    """Why one runtime of an exported path cannot compete (correctness or profiling missing or failed), or None."""
    corr, perf = result.correctness, result.performance
    if corr is None or corr.status != StepStatus.OK:
        return "correctness not checked" if corr is None else \
            f"correctness {corr.status.value}" + (f": {_short(corr.reason)}" if corr.reason else "")
    if perf is None or perf.status != StepStatus.OK or not perf.results:
        return "not profiled" if perf is None else f"profiling {perf.status.value}" + (
            f": {_short(perf.reason)}" if perf.reason else "")
    return None


def _candidates(status: NavigatorStatus, rejected: List[Rejection]) -> List[_Candidate]:
    """Every deployable path and runtime that passed correctness and was profiled; the others join `rejected`."""
    candidates: List[_Candidate] = []
    for order, (key, path) in enumerate(status.paths.items()):
        if path.format in SOURCE_FORMATS:
            for runtime in path.runtimes:
                rejected.append(Rejection(key, runtime, "the source model: the reference, not a deployable artifact"))
            continue
        if path.status != StepStatus.OK:
            failed = f"{path.status.value}" + (f": {_short(path.reason)}" if path.reason else "")
            rejected.append(Rejection(key, None, failed))
            continue
        if not path.runtimes:
            rejected.append(Rejection(key, None, "no runtime was checked"))
            continue
        for runtime, result in path.runtimes.items():
            why = _runtime_unfit(result)
            if why is not None or result.performance is None:  # _runtime_unfit says why when it is None
                rejected.append(Rejection(key, runtime, why or "not profiled"))
                continue
            candidates.append(_Candidate(key, path.format, runtime, list(result.performance.results), result.verified,
                                         order))
    return candidates


def _narrow(candidates: List[_Candidate], batch_size: Optional[int], rejected: List[Rejection]) -> List[_Candidate]:
    """Keep only verified candidates when any is, and those profiled at `batch_size`; reject the rest."""
    if any(c.verified for c in candidates):
        for c in [c for c in candidates if not c.verified]:
            rejected.append(
                Rejection(c.path, c.runtime, "not verified (other runtimes are; only verified ones qualify)")
            )
        candidates = [c for c in candidates if c.verified]

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
        at = [r for r in c.results if r.batch_size == size] if size is not None else \
            [min(c.results, key=lambda r: r.batch_size)]
        figures.append((c, at[0]))
    return sorted(figures, key=lambda cf: (_latency(cf[1], percentile), -cf[1].throughput, cf[0].order))


def _rank_max_throughput(candidates: List[_Candidate], batch_size: Optional[int]) -> _Ranked:
    """MAX_THROUGHPUT: each candidate at its best batch size (or the given one), highest throughput first."""
    figures = []
    for c in candidates:
        pool = [r for r in c.results if batch_size is None or r.batch_size == batch_size]
        figures.append((c, max(pool, key=lambda r: (r.throughput, -r.p50_ms))))
    return sorted(figures, key=lambda cf: (-cf[1].throughput, cf[1].p50_ms, cf[0].order))


def _rank_within_latency(candidates: List[_Candidate], batch_size: Optional[int], percentile: int,
                         latency_budget_ms: float, rejected: List[Rejection]) -> _Ranked:
    """MAX_THROUGHPUT_WITHIN_LATENCY: each candidate at its best batch size within the budget, highest throughput
    first; a candidate over the budget at every batch size joins `rejected`."""
    figures = []
    for c in candidates:
        pool = [r for r in c.results if batch_size is None or r.batch_size == batch_size]
        fitting = [r for r in pool if _latency(r, percentile) <= latency_budget_ms]
        if not fitting:
            best = min(pool, key=lambda r: _latency(r, percentile))
            rejected.append(Rejection(c.path, c.runtime,
                                      f"over the latency budget: p{percentile} {_latency(best, percentile):.3f} ms at "
                                      f"batch size {best.batch_size} > {latency_budget_ms:g} ms"))
            continue
        figures.append((c, max(fitting, key=lambda r: (r.throughput, -_latency(r, percentile)))))
    return sorted(figures, key=lambda cf: (-cf[1].throughput, _latency(cf[1], percentile), cf[0].order))


def _loser_reason(strategy: SelectionStrategy, percentile: int, f: ProfilingResult, win: ProfilingResult) -> str:
    """Why a ranked candidate lost to the winner: its deciding figure against the winner's."""
    if strategy == SelectionStrategy.MIN_LATENCY:
        return (f"p{percentile} {_latency(f, percentile):.3f} ms vs {_latency(win, percentile):.3f} ms at batch size "
                f"{f.batch_size}{_percent(_latency(f, percentile), _latency(win, percentile))}")
    percent = _percent(f.throughput, win.throughput) if f.throughput != win.throughput else ""
    why = (f"throughput {f.throughput:.0f}/s (batch size {f.batch_size}) vs {win.throughput:.0f}/s "
           f"(batch size {win.batch_size}){percent}")
    if f.throughput == win.throughput:
        why += f", tie broken by p{percentile} latency"
    return why


def select_runtime(
    status: NavigatorStatus,
    strategy: Optional[Union[str, SelectionStrategy]] = None,
    latency_budget_ms: Optional[float] = None,
    batch_size: Optional[int] = None,
    latency_percentile: Optional[int] = None,
) -> Selection:
    """Pick the path and runtime to deploy by `strategy` (see the module doc); raise
    NoRuntimeQualifiesError, listing why each lost, when none qualifies."""
    strategy = parse_strategy(strategy, latency_budget_ms)
    within = strategy == SelectionStrategy.MAX_THROUGHPUT_WITHIN_LATENCY
    percentile = _check_arguments(strategy, latency_budget_ms, batch_size, latency_percentile)

    rejected: List[Rejection] = []
    candidates = _narrow(_candidates(status, rejected), batch_size, rejected)
    if strategy == SelectionStrategy.MIN_LATENCY:
        ranked = _rank_min_latency(candidates, batch_size, percentile)
    elif strategy == SelectionStrategy.MAX_THROUGHPUT:
        ranked = _rank_max_throughput(candidates, batch_size)
    else:
        assert latency_budget_ms is not None
        ranked = _rank_within_latency(candidates, batch_size, percentile, latency_budget_ms, rejected)

    if not ranked:
        lines = "\n".join(f"  - {r}" for r in rejected) or "  (no paths in the status)"
        raise NoRuntimeQualifiesError(
            f"No path and runtime qualifies for strategy {strategy.value!r}"
            + (f" within {latency_budget_ms:g} ms" if within else "") + f":\n{lines}", rejected)

    winner, win = ranked[0]
    rejected += [Rejection(c.path, c.runtime, _loser_reason(strategy, percentile, f, win)) for c, f in ranked[1:]]
    budget = float(latency_budget_ms) if within and latency_budget_ms is not None else None
    return Selection(strategy=strategy, path=winner.path, format=winner.format, runtime=winner.runtime, figures=win,
                     verified=winner.verified, latency_budget_ms=budget,
                     latency_percentile=percentile, rejected=rejected)
