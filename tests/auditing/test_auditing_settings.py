"""What an audit is asked for, checked once (auditing/settings.py)."""

import pytest
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
