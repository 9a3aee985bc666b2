"""Output comparison: errors per output and the tolerance rule."""

import numpy as np


def test_compare_fails_any_difference_where_the_reference_is_zero():
    from model_navigator.steps.compare import compare_outputs

    errors = {}
    expected = {"y": np.array([0.0, 1.0], np.float32)}
    actual = {"y": np.array([1e6, 1.0], np.float32)}
    reason = compare_outputs(expected, actual, ["y"], errors, atol=1e-5, rtol=1e-5, context="at batch size 1")
    assert reason is not None and "'y'" in reason
    assert compare_outputs(expected, {"y": np.array([0.0, 1.0], np.float32)}, ["y"], {}, 1e-5, 1e-5, "") is None
