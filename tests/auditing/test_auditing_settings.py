"""What an audit is asked for, checked once (auditing/settings.py)."""

import numpy as np
import pytest
import torch
from audit_helpers import drug_dataset, spread

from dc_invariant.auditing import audit


@pytest.fixture(scope="module")
def dataset(dc):
    return drug_dataset(dc)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"symmetries": ("scaling",)}, ValueError, "symmetries must be distinct names drawn from"),
        ({"n_samples": 0}, ValueError, "n_samples == 0, must be >= 1"),
        ({"symmetries": "rotation"}, TypeError, "got the str 'rotation': wrap it in a list"),
        ({"rtol": -1.0}, ValueError, "rtol == -1.0, must be >= 0"),
        ({"atol": float("nan")}, ValueError, "atol must be a finite number"),
        ({"seed": -1}, ValueError, "seed == -1, must be >= 0"),
        ({"n_samples": 2.0}, TypeError, "n_samples must be an instance of int"),
    ],
)
def test_bad_arguments(dataset, kwargs, error, match):
    with pytest.raises(error, match=match):
        audit(spread, dataset, **kwargs)
    with pytest.raises(TypeError, match="target must be a model"):
        audit(42, dataset)
    with pytest.raises(ValueError, match="was not audited"):
        audit(spread, dataset, symmetries=("rotation",)).holds("reflection")


class _Declared:
    """A function of the coordinates with a small orientation dependence (1e-6 relative),
    declaring its precision."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __call__(self, r, x):
        c = r - r.mean(0)
        return (c**2).sum() * (1 + 1e-6 * c[0, 0] ** 2)


@pytest.mark.parametrize("dtype", [np.float64, np.dtype("float64"), "float64", torch.float64])
def test_a_declared_precision_is_read_however_it_is_spelled(dataset, dtype):
    # np.float64 (the class) once read as an unknown precision: float32's tolerances,
    # under which this float64 target's break passed.
    report = audit(_Declared(dtype), dataset, symmetries=("rotation",), n_samples=2)
    assert report.settings["dtype"] == "float64" and report.settings["rtol"] == 1e-9
    assert not report.holds("rotation")


def test_a_precision_without_default_tolerances_says_so(dataset):
    with pytest.warns(UserWarning, match="precision 'float16' have no default tolerances"):
        report = audit(_Declared(np.float16), dataset, symmetries=("rotation",), n_samples=1)
    assert report.settings["rtol"] == 1e-4
