"""Output comparison: errors per output, the tolerance rule, NaN/inf compared by value."""

import numpy as np
import pytest

from model_navigator.core.tolerance import DEFAULT_TOLERANCES, Tolerance, resolve_tolerance
from model_navigator.steps.compare import OutputMismatch, compare_outputs

STRICT = {"y": Tolerance(atol=1e-5, rtol=1e-5)}


def test_compare_fails_any_difference_where_the_reference_is_zero():
    errors = {}
    expected = {"y": np.array([0.0, 1.0], np.float32)}
    actual = {"y": np.array([1e6, 1.0], np.float32)}
    reason = compare_outputs(expected, actual, ["y"], errors, STRICT, context="at batch size 1")
    assert reason is not None and "'y'" in reason
    assert compare_outputs(expected, {"y": np.array([0.0, 1.0], np.float32)}, ["y"], {}, STRICT, "") is None


def test_an_element_fails_only_when_it_exceeds_both_tolerances():
    expected = {"y": np.array([1e-7, 1000.0], np.float64)}
    # element 0: abs 1e-6 (within atol 1e-4) but rel 10 (over rtol); element 1: abs 0.5 but rel 5e-4
    actual = {"y": np.array([1.1e-6, 1000.5], np.float64)}
    errors = {}
    assert compare_outputs(expected, actual, ["y"], errors, {"y": DEFAULT_TOLERANCES["fp32"]}, "") is None
    assert errors["y"][0] == pytest.approx(0.5) and errors["y"][1] == pytest.approx(10.0)
    wrong = {"y": np.array([1e-7, 1010.0])}
    reason = compare_outputs(expected, wrong, ["y"], {}, {"y": DEFAULT_TOLERANCES["fp32"]}, "")
    assert reason and "atol=0.0001, rtol=0.001" in reason


def test_an_output_without_tolerance_is_measured_not_judged():
    errors = {}
    assert compare_outputs({"y": np.zeros(3)}, {"y": np.full(3, 5.0)}, ["y"], errors, {}, "") is None
    assert errors["y"] == (5.0, 0.0)


@pytest.mark.parametrize(
    "source, exported",
    [
        (np.nan, np.inf),
        (np.inf, -np.inf),
        (np.inf, np.nan),
        (1.0, np.nan),
        (np.nan, 1.0),
        (-np.inf, 3.0),
    ],
)
def test_non_finite_values_are_compared_by_value(source, exported):
    expected = {"y": np.array([0.5, source], np.float32)}
    actual = {"y": np.array([0.5, exported], np.float32)}
    with pytest.raises(OutputMismatch, match="NaN/inf"):
        compare_outputs(expected, actual, ["y"], {}, STRICT, "")


def test_matching_non_finite_values_pass_and_count_as_no_error():
    expected = {"y": np.array([np.nan, np.inf, -np.inf, 2.0], np.float32)}
    errors = {}
    assert compare_outputs(expected, {"y": expected["y"].copy()}, ["y"], errors, STRICT, "") is None
    assert errors["y"] == (0.0, 0.0)


def test_user_tolerances_override_the_default_per_output():
    default = DEFAULT_TOLERANCES["fp32"]
    assert resolve_tolerance(None, None, "a", default) == default
    assert resolve_tolerance(1e-2, None, "a", default) == Tolerance(atol=1e-2, rtol=None)
    assert resolve_tolerance({"a": 0.5}, {"a": 0.1}, "a", default) == Tolerance(atol=0.5, rtol=0.1)
    assert resolve_tolerance({"a": 0.5}, None, "b", default) == default  # a dict leaves "b" to the default
