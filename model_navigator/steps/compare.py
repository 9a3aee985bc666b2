"""Output comparison: max absolute and relative error per output, NaN/inf, shape and name checks."""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np


class OutputMismatch(Exception):
    """An output is missing, has another shape, or holds NaN/inf."""


def compare_outputs(
    expected: Dict[str, np.ndarray],
    actual: Dict[str, np.ndarray],
    names: Sequence[str],
    errors: Dict[str, Tuple[float, float]],
    atol: Optional[float],
    rtol: Optional[float],
    context: str,
) -> Optional[str]:
    """Update `errors[name] = (max_abs, max_rel)`; raise OutputMismatch on structural problems and
    return a reason when an element exceeds every given tolerance (None when within)."""
    failure = None
    for name in names:
        if name not in actual:
            raise OutputMismatch(f"output {name!r} missing {context}; got {sorted(actual)}")
        a = np.asarray(actual[name])
        b = np.asarray(expected[name])
        if a.shape != b.shape:
            raise OutputMismatch(f"output {name!r} has shape {a.shape} {context}, expected {b.shape}")
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            bad = "NaN" if np.isnan(a).any() else "inf"
            if not (b.dtype.kind in "fc" and np.array_equal(np.isfinite(a), np.isfinite(b))):
                raise OutputMismatch(f"output {name!r} holds {bad} {context}")
        a64 = a.astype(np.float64)
        b64 = b.astype(np.float64)
        finite = np.isfinite(a64) & np.isfinite(b64)
        absdiff = np.where(finite, np.abs(a64 - b64), 0.0)
        absref = np.abs(b64)
        nonzero = finite & (absref > 0)
        reldiff = np.divide(absdiff, absref, out=np.zeros_like(absdiff), where=nonzero)
        max_abs = float(absdiff.max()) if absdiff.size else 0.0
        max_rel = float(reldiff.max()) if reldiff.size else 0.0
        old = errors.get(name, (0.0, 0.0))
        errors[name] = (max(old[0], max_abs), max(old[1], max_rel))
        if failure is None and (atol is not None or rtol is not None) and absdiff.size:
            mismatch = np.ones(absdiff.shape, dtype=bool)
            if atol is not None:
                mismatch &= absdiff > atol
            if rtol is not None:
                # where the reference is 0 any difference is infinitely relative: it fails rtol
                strict_rel = np.where((absref == 0) & (absdiff > 0), np.inf, reldiff)
                mismatch &= strict_rel > rtol
            if mismatch.any():
                failure = (
                    f"output {name!r} differs {context}: max abs error {max_abs:.3g}, max rel error {max_rel:.3g} "
                    f"exceed atol={atol}, rtol={rtol} on {int(mismatch.sum())} of {mismatch.size} elements"
                )
    return failure
