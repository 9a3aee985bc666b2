"""Accuracy budgets of reduced-precision paths (int8, bf16): whole-output measures per output and
the one verdict on them (`judge`), used where the correctness step sets its status.

The fp32 element-wise rule (core/tolerance.py) does not fit int8: a quantized model that is fine for
its task differs by a few percent everywhere. A reduced-precision result is judged per output by
whole-output measures over every run of the correctness check (each sample at batch size 1, and the
rebuilt batches):
- rel_l2: ||actual - reference|| / ||reference|| of the worst sample (at most the budget's)
- cosine: cosine similarity of actual and reference, of the worst sample (at least the budget's)
- top1: the share of rows whose argmax agrees, recorded for 2-D outputs (batch x classes), judged by
  default on outputs named as class scores (logits, scores, probs, ...; at least)
- max_abs / max_rel: the largest absolute / relative element error (at most), as for fp32.
Every measure is recorded per output; the budget says which are judged. A user task metric
(`task_metric="module:function"`, called with (outputs, reference_outputs) -> (score, passed)),
when given, decides instead; the measures are still recorded.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.errors import UserInputError

MEASURES = ("rel_l2", "cosine", "top1", "max_abs", "max_rel")
AT_LEAST = ("cosine", "top1")  # a lower bound; the others are upper bounds

# THE DEFAULT BUDGETS, one table, from the zoo's evidence (bench/precision.py; the numbers and margins are in
# bench/results/precision_budget_evidence.md): every int8 recipe known to be fine on 9 models passes (worst rel L2
# 0.072, cosine 0.9976, top-1 0.917) and the model built to break int8 fails every gate (rel L2 >= 0.69, cosine
# <= 0.84, top-1 <= 0.71). bf16 could not run on that CPU: its budget holds torch's bf16 emulation (an upper
# bound: worst rel L2 0.020) and the bf16 CPU's measurements of issue 27 (rel L2 <= 9.1e-4) with room.
# rel_l2 and cosine are the worst over the correctness samples; top1 is judged by default only on outputs
# named as class scores (CLASS_SCORES), recorded on every 2-D output.
DEFAULT_BUDGETS: Dict[str, Dict[str, float]] = {
    "int8": {"rel_l2": 0.10, "cosine": 0.99, "top1": 0.85},
    "bf16": {"rel_l2": 0.03, "cosine": 0.999, "top1": 0.95},
}
# Outputs whose name says they are class scores: argmax agreement is their task. Elsewhere (an embedding, a
# hidden state) the argmax of near-equal values means nothing, so top1 is judged there only when the user asks.
CLASS_SCORES = re.compile(r"logit|score|prob|class|pred", re.IGNORECASE)

Measures = Dict[str, float]


@dataclass
class Verdict:
    """What `judge` found: every measure and the applied limits per output, and why it failed (None: passed)."""

    measures: Dict[str, Measures]
    limits: Dict[str, Measures]
    failure: Optional[str]
    decided_by: str  # "default int8 budget", "user int8 budget", "task metric mod:fn"
    metric: Optional[Dict[str, Any]] = None  # {"function", "score", "passed"}
    warnings: List[str] = field(default_factory=list)


def _number(value: Any, where: str, measure: str) -> Optional[float]:
    if value is None:
        return None  # not judged
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or float(value) < 0:
        raise UserInputError(f"`{where}` must be a non-negative number (or None: not judged), got {value!r}.")
    if measure in AT_LEAST and float(value) > 1:
        raise UserInputError(f"`{where}` is a lower bound on {measure}, which lies in [0, 1]; got {value!r}.")
    return float(value)


def _check_measures(values: Any, where: str) -> Dict[str, Optional[float]]:
    if not isinstance(values, Mapping):
        raise UserInputError(f"`{where}` must be a dict of measures {list(MEASURES)}, got {type(values).__name__}.")
    unknown = sorted(set(values) - set(MEASURES))
    if unknown:
        raise UserInputError(f"`{where}` names unknown measures {unknown}; known: {list(MEASURES)}.")
    return {k: _number(v, f"{where}[{k!r}]", k) for k, v in values.items()}


def check_budget(value: Any) -> Optional[Dict[str, Any]]:
    """Validate `accuracy_budget` before any work: {precision: {measure: limit, "outputs": {output:
    {measure: limit}}}}, precisions among DEFAULT_BUDGETS, measures among MEASURES (None: not judged)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise UserInputError(f"`accuracy_budget` must be a dict like {{'int8': {{'rel_l2': 0.02}}}}, got {value!r}.")
    checked: Dict[str, Any] = {}
    for precision, entry in value.items():
        precision = str(getattr(precision, "value", precision)).lower()
        if precision not in DEFAULT_BUDGETS:
            raise UserInputError(
                f"`accuracy_budget` names precision {precision!r}; budgets apply to {list(DEFAULT_BUDGETS)}."
            )
        entry = dict(entry) if isinstance(entry, Mapping) else entry
        outputs = entry.pop("outputs", None) if isinstance(entry, dict) else None
        checked[precision] = _check_measures(entry, f"accuracy_budget[{precision!r}]")
        if outputs is not None:
            if not isinstance(outputs, Mapping) or not all(isinstance(k, str) and k for k in outputs):
                raise UserInputError(
                    f"`accuracy_budget[{precision!r}]['outputs']` must map output names to dicts of measures."
                )
            checked[precision]["outputs"] = {
                name: _check_measures(m, f"accuracy_budget[{precision!r}]['outputs'][{name!r}]")
                for name, m in outputs.items()
            }
    return checked


def check_budget_outputs(budget: Optional[Dict[str, Any]], output_names: Sequence[str]) -> None:
    """A per-output budget must name outputs the model has (checked once they are known)."""
    for precision, entry in (budget or {}).items():
        unknown = sorted(set(entry.get("outputs") or {}) - set(output_names))
        if unknown:
            raise UserInputError(
                f"`accuracy_budget[{precision!r}]['outputs']` names {unknown}, which are not outputs "
                f"of the model; outputs: {list(output_names)}."
            )


def check_task_metric(value: Any) -> Optional[str]:
    """Validate `task_metric` before any work: "module:function", importable here and callable."""
    if value is None:
        return None
    if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
        raise UserInputError(
            f"`task_metric` must be 'module:function' (a function (outputs, reference_outputs) -> "
            f"(score, passed)), got {value!r}."
        )
    try:
        function = load_metric(value)
    except Exception as e:
        raise UserInputError(
            f"`task_metric` {value!r} cannot be imported: {type(e).__name__}: {e}; it must be "
            f"importable (installed or on PYTHONPATH, as the worker process imports it too)."
        ) from e
    if not callable(function):
        raise UserInputError(f"`task_metric` {value!r} is not a function.")
    return value


def load_metric(reference: str) -> Callable[..., Any]:
    from model_navigator.core.formats import load_function

    return load_function(reference)


def limits_for(precision: str, output: str, budget: Optional[Dict[str, Any]]) -> Measures:
    """The limits judging `output` at `precision`: the default, updated by the user's for the precision,
    then by the user's for that output (a None removes a measure from the judgement)."""
    user = (budget or {}).get(precision) or {}
    merged: Dict[str, Optional[float]] = dict(DEFAULT_BUDGETS[precision])
    if not CLASS_SCORES.search(output):
        merged.pop("top1", None)  # not class scores by its name: top1 is recorded, judged only when asked
    merged.update({k: v for k, v in user.items() if k != "outputs"})
    merged.update((user.get("outputs") or {}).get(output) or {})
    return {k: v for k, v in merged.items() if v is not None}


def describe_budget(label: str) -> str:
    """A correctness label of a reduced-precision result in words, with the default's limits."""
    source, _, precision = label.partition(" ")
    precision = precision.replace(" budget", "")
    if source == "default" and precision in DEFAULT_BUDGETS:
        limits = ", ".join(
            f"{k} {'>=' if k in AT_LEAST else '<='} {v:g}" for k, v in DEFAULT_BUDGETS[precision].items()
        )
        return f"the default {precision} budget ({limits})"
    return f"your {precision} budget" if source == "user" else label


def _stack(arrays: Sequence[np.ndarray], batch_dim: Optional[int]) -> np.ndarray:
    arrays = [np.asarray(a) for a in arrays]
    if batch_dim is not None and all(a.ndim > batch_dim for a in arrays):
        return np.concatenate(arrays, axis=batch_dim)
    return np.stack(arrays)


def measure(actual: np.ndarray, reference: np.ndarray) -> Measures:
    """Every whole-output measure of `actual` against `reference` (same shape)."""
    a, b = actual.astype(np.float64).ravel(), reference.astype(np.float64).ravel()
    diff = np.abs(a - b)
    ref_norm, diff_norm, a_norm = float(np.linalg.norm(b)), float(np.linalg.norm(a - b)), float(np.linalg.norm(a))
    rel_l2 = diff_norm / ref_norm if ref_norm > 0 else (0.0 if diff_norm == 0 else math.inf)
    cosine = float(a @ b) / (a_norm * ref_norm) if a_norm > 0 and ref_norm > 0 else float(a_norm == ref_norm)
    rel = np.divide(diff, np.abs(b), out=np.zeros_like(diff), where=np.abs(b) > 0)
    result = {
        "rel_l2": rel_l2,
        "cosine": cosine,
        "max_abs": float(diff.max(initial=0.0)),
        "max_rel": float(rel.max(initial=0.0)),
    }
    if reference.ndim == 2 and reference.shape[1] > 1 and reference.dtype.kind == "f":  # class scores
        result["top1"] = float(np.mean(actual.argmax(axis=1) == reference.argmax(axis=1)))
    return result


def sample_measures(pairs: Sequence[Tuple[np.ndarray, np.ndarray]], batch_dim: Optional[int]) -> Measures:
    """The measures of one output over the correctness samples ((reference, actual) per sample): rel_l2 and
    cosine of the worst sample (a budget holds for every input, not on average), top1 and the max errors
    over all of them."""
    whole = measure(_stack([a for _, a in pairs], batch_dim), _stack([r for r, _ in pairs], batch_dim))
    per_sample = [measure(np.asarray(a), np.asarray(r)) for r, a in pairs]
    if per_sample:
        whole["rel_l2"] = max(m["rel_l2"] for m in per_sample)
        whole["cosine"] = min(m["cosine"] for m in per_sample)
    return whole


def _exceeds(measures: Measures, limits: Measures) -> List[str]:
    broken = []
    for name, limit in limits.items():
        value = measures.get(name)
        if value is None:
            continue
        bad = value < limit if name in AT_LEAST else not value <= limit
        if bad:
            broken.append(f"{name} {value:.4g} {'<' if name in AT_LEAST else '>'} {limit:g}")
    return broken


def _run_metric(
    reference: str, outputs: Dict[str, np.ndarray], references: Dict[str, np.ndarray]
) -> Tuple[Dict[str, Any], Optional[str]]:
    """Call the user's task metric: ({"function", "score", "passed"}, failure or None)."""
    try:
        result = load_metric(reference)(outputs, references)
        score, passed = result
        record = {"function": reference, "score": float(score), "passed": bool(passed)}
    except Exception as e:
        return (
            {"function": reference, "score": None, "passed": False},
            f"task metric {reference} failed: {type(e).__name__}: {e} (it must be importable in the worker and "
            f"return (score, passed))",
        )
    return record, None if record["passed"] else f"task metric {reference}: score {record['score']:.6g}, not passed"


def judge(
    precision: str,
    pairs: Sequence[Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]],
    output_names: Sequence[str],
    batch_dim: Optional[int],
    budget: Optional[Dict[str, Any]] = None,
    task_metric: Optional[str] = None,
) -> Verdict:
    """THE verdict on a reduced-precision result: `pairs` are (reference, actual) outputs of every
    correctness sample; every measure is recorded per output, and the task metric (when given) or
    the budget (the user's over the default) decides."""
    references = {n: _stack([e[n] for e, _ in pairs], batch_dim) for n in output_names}
    outputs = {n: _stack([a[n] for _, a in pairs], batch_dim) for n in output_names}
    measures = {n: sample_measures([(e[n], a[n]) for e, a in pairs], batch_dim) for n in output_names}
    limits = {n: limits_for(precision, n, budget) for n in output_names}
    if task_metric:
        metric, failure = _run_metric(task_metric, outputs, references)
        return Verdict(measures, {}, failure, f"task metric {task_metric}", metric)
    failures = [
        f"output {n!r}: {', '.join(broken)}"
        for n in output_names
        for broken in [_exceeds(measures[n], limits[n])]
        if broken
    ]
    source = "user" if (budget or {}).get(precision) else "default"
    failure = f"over the {precision} accuracy budget: {'; '.join(failures)}" if failures else None
    return Verdict(measures, limits, failure, f"{source} {precision} budget")
