"""A molecule the target cannot take is skipped with the reason; a broken target is an error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DRUG_LIKE

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant.auditing import PipelineMismatch, TargetFailed, audit


def spread(r, x):
    return ((r - r.mean(0)) ** 2).sum()


def no_bromine(r, x):
    # Column 8 of the default features is Br: a target that cannot handle one element.
    if x[:, 8].any():
        raise ValueError("bromine is not supported")
    return spread(r, x)


def test_a_molecule_the_target_raises_on_is_skipped_with_its_error():
    report = audit(no_bromine, DRUG_LIKE, n_samples=1)
    assert report.skipped.values.tolist() == [
        ["Brc1ccc(I)cc1", "ValueError: bromine is not supported"]
    ]
    assert report.n_inputs == len(DRUG_LIKE) == report.molecules["id"].nunique() + 1
    assert report.holds("rotation")


def test_a_target_failing_everywhere_is_an_error_not_a_skip():
    def broken(r, x):
        raise RuntimeError("bug in the user's function")

    with pytest.raises(TargetFailed, match="raised an error on every molecule") as info:
        audit(broken, DRUG_LIKE[:3], n_samples=1)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_unsupported_molecules_are_skipped_before_the_target_sees_them():
    seen = []

    class Picky:
        def unsupported(self, molecules):
            return {k: "iodine: not in the training set" for k in range(len(molecules))
                    if 53 in molecules.atomic_numbers[molecules.slices()[k]]}  # fmt: skip

        def __call__(self, r, x):
            seen.append(len(r))
            return spread(r, x)

    report = audit(Picky(), DRUG_LIKE, n_samples=1)
    assert report.skipped.values.tolist() == [["Brc1ccc(I)cc1", "iodine: not in the training set"]]
    assert len(seen) == (len(DRUG_LIKE) - 1) * (1 + 4 + 1)


def test_conformers_with_nan_coordinates_are_skipped_not_fatal():
    water = Conformer([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], np.eye(3), [8, 1, 1])
    broken = Conformer([[0, 0, 0], [np.nan, 0, 0], [-0.24, 0.93, 0]], np.eye(3), [8, 1, 1])
    report = audit(spread, [water, broken], n_samples=1)
    assert report.skipped.values.tolist() == [["1", "NaN or infinite coordinates"]]
    assert report.holds("rotation")


def test_a_model_that_cannot_read_its_featurizer_is_one_clear_error(dc):
    featurizer = dc.feat.CoulombMatrix(30, upper_tri=True)  # 465 values per molecule
    model = dc.models.MultitaskRegressor(1, 435)
    with pytest.raises(PipelineMismatch, match=r"CoulombMatrix -> MultitaskRegressor.*\(465,\)"):
        audit(model, DRUG_LIKE[:3], featurizer=featurizer, n_samples=1)


def test_an_empty_deepchem_feature_says_max_atoms(dc):
    model = dc.models.MultitaskRegressor(1, 465)
    big = "CCCCCCCCCC"  # 32 atoms with hydrogens
    report = audit(model, ["CCO", big], featurizer=dc.feat.CoulombMatrix(30, upper_tri=True))
    [reason] = report.skipped["reason"]
    assert "32 atoms" in reason and "max_atoms=30" in reason


def test_kernel_model_on_unseen_elements_is_skipped_with_the_element(dc):
    from dc_invariant.models import KernelModel

    featurizer = ConformerFeaturizer()
    train = featurizer.featurize(DRUG_LIKE[:6])
    labels = np.arange(1.0, 7.0)
    model = KernelModel(sigma=4.0, regularization=1e-6)
    model.fit(dc.data.NumpyDataset(train, labels))
    report = audit(model, ["CCO", "CC(=O)[O-].[Na+]", "c1ccccc1"], n_samples=1)
    [[name, reason]] = report.skipped.values.tolist()
    assert name == "CC(=O)[O-].[Na+]" and "Z=11" in reason
    assert report.molecules["id"].nunique() == 2
