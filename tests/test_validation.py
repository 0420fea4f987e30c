"""One rule for user-given settings: the wrong type is a TypeError, the right type out of range a
ValueError, and each message names the setting and what arrived."""

import numpy as np
import pytest

from dc_invariant.validation import (
    check_choice,
    check_int,
    check_n_jobs,
    check_names,
    check_positive,
    check_real,
    check_seed,
    check_task,
    check_tolerance,
)


def test_good_values_come_back_as_plain_python_numbers():
    assert check_int(np.int32(4), "n", min_val=1, max_val=4) == 4
    assert type(check_int(np.int64(2), "n")) is int
    assert check_real(np.float32(0.5), "rtol", min_val=0.0) == 0.5
    assert type(check_real(3, "cutoff")) is float
    assert check_tolerance(None, "atol") is None and check_seed(0) == 0
    assert check_names(("a", "b"), "names") == ["a", "b"]
    assert check_n_jobs(np.int64(-1)) == -1 and check_task(np.int64(1), 2) == 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: check_int(True, "hidden"), TypeError, "hidden must be an int, not True"),
        (lambda: check_int(2.0, "hidden"), TypeError, "hidden must be an instance of int"),
        (lambda: check_int(5, "n", max_val=4), ValueError, "n == 5, must be <= 4"),
        (lambda: check_seed(-1), ValueError, "seed == -1, must be >= 0"),
        (lambda: check_real(np.bool_(True), "atol"), TypeError, "atol must be a number, not"),
        (lambda: check_real(float("inf"), "atol"), ValueError, "atol must be a finite number"),
        (lambda: check_positive(0.0, "cutoff"), ValueError, "cutoff == 0.0, must be > 0"),
        (lambda: check_tolerance(-1e-3, "rtol"), ValueError, "rtol == -0.001, must be >= 0"),
        (lambda: check_choice("max", "pooling", ("sum",)), ValueError, r"one of \['sum'\]"),
        (lambda: check_names("ab", "elements"), TypeError, "got the str 'ab': wrap it"),
        (lambda: check_names(["a", 1], "elements"), TypeError, "must be a list of str, got"),
        (lambda: check_n_jobs(0), ValueError, "n_jobs must be a non-zero int"),
        (lambda: check_n_jobs(2.0), TypeError, "n_jobs must be a non-zero int"),
        (lambda: check_task(True, 2), TypeError, r"task must be an int in \[0, 2\)"),
        (lambda: check_task(-1, 2), ValueError, r"task must be in \[0, 2\), got -1"),
    ],
)
def test_each_rule_fires_with_the_setting_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
