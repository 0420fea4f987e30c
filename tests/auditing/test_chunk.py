"""The geometry-blindness control, judged against the noise measured on each molecule, and
calibrated both ways on real trained models (benchmarks/control_calibration.py at scale)."""

from __future__ import annotations

import numpy as np
import pytest

from dc_invariant.auditing import audit, prepare
from dc_invariant.auditing.chunk import FLOOR_ULPS, NOISE_FACTOR, control_moved


def _moved(deviation, copies, passed=None, scale=80.0, broken=False):
    copies = np.asarray(copies, dtype=float).reshape(1, 1, -1)
    passed = (
        np.ones_like(copies, bool) if passed is None else np.asarray(passed).reshape(copies.shape)
    )
    return bool(
        control_moved(
            np.array([deviation]), copies, passed, np.array([scale]), 1e-5, "float32",
            np.array([broken]),
        )[0]
    )  # fmt: skip


def test_control_is_judged_against_the_measured_noise_not_the_tolerance():
    ulp = np.finfo(np.float32).eps * 80.0
    # 6 meV on an 80 eV energy: 7.5e-5 relative, under float32's rtol 1e-4, yet far above
    # the one-ulp spread of the molecule's symmetry copies.
    assert _moved(6e-3, [ulp, 0.0, ulp])
    assert not _moved(NOISE_FACTOR * ulp, [ulp, 0.0, ulp])
    assert not _moved(0.5 * FLOOR_ULPS * ulp, [0.0, 0.0])  # copies exactly equal: the floor
    # A copy that failed its symmetry is no measure of noise...
    assert _moved(1e-3, [1.0, ulp], passed=[False, True])
    # ...and a molecule breaking a rigid motion reads its coordinates whatever the control.
    assert _moved(0.0, [0.0], broken=True)


@pytest.fixture(scope="module")
def qm9_split(dc):
    from dc_invariant import load_qm9

    _, (sample,), _ = load_qm9(tasks=["u0_atom"], limit=100, splitter=None, seed=0)
    return sample.select(np.arange(80)), prepare(sample.select(np.arange(80, 100)))


@pytest.mark.slow
def test_trained_energy_models_read_the_geometry_and_fingerprints_do_not(qm9_split, dc):
    from dc_invariant.models import SchNetModel

    train, audited = qm9_split
    schnet = SchNetModel(seed=0, batch_size=32)
    schnet.fit(train, nb_epoch=5)
    report = audit(schnet, audited, n_samples=1)
    control = report.control
    moved = ~control["passed"].astype(bool)
    assert moved.mean() >= 0.95 and report.geometry_blind is False
    # The energy moves by less than float32's relative tolerance: a control judged against
    # the invariance tolerance would have called this model blind.
    assert (control["rel_deviation"] < 1e-4).mean() > 0.5

    featurizer = dc.feat.CircularFingerprint(size=256)
    X = featurizer.featurize([c.smiles for c in train.X])
    y = (train.y - train.y.mean()) / train.y.std()
    fingerprint = dc.models.MultitaskRegressor(1, 256, layer_sizes=[32], batch_size=16)
    fingerprint.fit(dc.data.NumpyDataset(X, y), nb_epoch=5)
    blind = audit(fingerprint, audited, featurizer=featurizer, n_samples=1)
    assert blind.geometry_blind is True
    assert blind.control["passed"].astype(bool).all()


@pytest.mark.parametrize("output", ["vector", "pseudoscalar"])
def test_a_constant_that_fails_to_turn_is_still_geometry_blind(output):
    def constant(r, x):
        return np.ones_like(r) if output == "vector" else 1.0

    report = audit(constant, ["CCO", "c1ccccc1O"], output=output)
    assert not report.holds("rotation" if output == "vector" else "reflection")
    assert report.geometry_blind  # breaking the symmetry does not mean it reads positions
