"""Output comparison: max absolute and relative error per output, NaN/inf compared by value, shape
and name checks, and the verdict against each output's tolerance (model_navigator.core.tolerance)."""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.tolerance import Tolerance, describe


class OutputMismatch(Exception):
    """An output is missing, has another shape, or holds NaN/inf where the source model does not."""


def _nonfinite_mismatch(a: np.ndarray, b: np.ndarray) -> Optional[str]:
    """NaN must face NaN and +inf/-inf the same infinity; say what differs, or None."""
    a_bad, b_bad = ~np.isfinite(a), ~np.isfinite(b)
    if not (a_bad.any() or b_bad.any()):
        return None
    a_nan, b_nan = np.isnan(a), np.isnan(b)
    same = (a_nan & b_nan) | (np.isinf(a) & np.isinf(b) & (a == b))
    wrong = (a_bad | b_bad) & ~same
    if not wrong.any():
        return None
    index = tuple(int(i) for i in np.argwhere(wrong)[0])
    return (
        f"holds {a[index]} where the source model has {b[index]} at index {list(index)} "
        f"({int(wrong.sum())} of {wrong.size} elements differ in NaN/inf)"
    )


def compare_outputs(
    expected: Dict[str, np.ndarray],
    actual: Dict[str, np.ndarray],
    names: Sequence[str],
    errors: Dict[str, Tuple[float, float]],
    tolerances: Dict[str, Tolerance],
    context: str,
) -> Optional[str]:
    """Update `errors[name] = (max_abs, max_rel)`; raise OutputMismatch on structural problems and
    return a reason when an element exceeds every tolerance of its output (None when all are within).
    An output without an entry in `tolerances` is measured, not judged."""
    failure = None
    for name in names:
        if name not in actual:
            raise OutputMismatch(f"output {name!r} missing {context}; got {sorted(actual)}")
        a = np.asarray(actual[name])
        b = np.asarray(expected[name])
        if a.shape != b.shape:
            raise OutputMismatch(f"output {name!r} has shape {a.shape} {context}, expected {b.shape}")
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            mismatch = _nonfinite_mismatch(a, b)
            if mismatch:
                raise OutputMismatch(f"output {name!r} {mismatch} {context}")
        a64 = a.astype(np.float64)
        b64 = b.astype(np.float64)
        finite = np.isfinite(a64) & np.isfinite(b64)  # non-finite elements matched by value above
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where both match: masked out
            absdiff = np.where(finite, np.abs(a64 - b64), 0.0)
        absref = np.abs(b64)
        nonzero = finite & (absref > 0)
        reldiff = np.divide(absdiff, absref, out=np.zeros_like(absdiff), where=nonzero)
        max_abs = float(absdiff.max()) if absdiff.size else 0.0
        max_rel = float(reldiff.max()) if reldiff.size else 0.0
        old = errors.get(name, (0.0, 0.0))
        errors[name] = (max(old[0], max_abs), max(old[1], max_rel))
        tolerance = tolerances.get(name)
        if failure is None and tolerance is not None and absdiff.size:
            bad = np.ones(absdiff.shape, dtype=bool)
            if tolerance.atol is not None:
                bad &= absdiff > tolerance.atol
            if tolerance.rtol is not None:
                # where the reference is 0 any difference is infinitely relative: it fails rtol
                strict_rel = np.where((absref == 0) & (absdiff > 0), np.inf, reldiff)
                bad &= strict_rel > tolerance.rtol
            if (tolerance.atol is not None or tolerance.rtol is not None) and bad.any():
                failure = (
                    f"output {name!r} differs {context}: max abs error {max_abs:.3g}, max rel error {max_rel:.3g}; "
                    f"{int(bad.sum())} of {bad.size} elements exceed {describe(tolerance)}"
                )
    return failure
