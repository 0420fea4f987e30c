"""How far each copy's output is from what the symmetry says, and the verdict's tolerance."""

import numpy as np
import pytest
from audit_helpers import drug_dataset

from dc_invariant.auditing import audit


@pytest.fixture(scope="module")
def dataset(dc):
    return drug_dataset(dc)


def test_verdict_turns_exactly_at_the_tolerance(dataset):
    """A target broken by a known deviation passes just above it and fails just below."""

    def nudged(r: np.ndarray, x: np.ndarray) -> float:
        return 1.0 + 1e-7 * float(r[:, 0].sum())

    loose = audit(nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=1.0)
    worst = float(loose.molecules["abs_deviation"].max())
    assert worst > 0 and loose.holds("translation")
    above = audit(
        nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=worst * 1.001
    )
    below = audit(
        nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=worst * 0.999
    )
    assert above.holds("translation") and not below.holds("translation")
    failed = below.molecules[
        (below.molecules["symmetry"] == "translation") & ~below.molecules["passed"]
    ]
    assert (failed["abs_deviation"] > worst * 0.999).all() and len(failed) >= 1
