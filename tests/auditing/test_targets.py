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


def test_a_chunk_whose_molecules_all_fail_is_skipped_not_the_audit():
    def no_water(r, x):
        if len(r) == 3:
            raise ValueError("three atoms not supported")
        return spread(r, x)

    # Chunks of 64 molecules: the second holds only water. The chunk size must not decide.
    molecules = ["CCO", "c1ccccc1O"] * 32 + ["O", "O"]
    for size in (64, 1024):
        report = audit(no_water, molecules, n_samples=1, chunk_size=size)
        assert report.skipped["reason"].tolist() == ["ValueError: three atoms not supported"] * 2
        assert report.holds("rotation")


WATER = Conformer([[0.96, 0, 0], [0, 0, 0], [-0.24, 0.93, 0]], np.eye(3), [8, 1, 1])


def _on_the_right(r):
    """Whether the first atom lies at +x of the centre: true of WATER as given, not of
    every turned copy."""
    return r[0, 0] > r[:, 0].mean()


def nan_when_turned(r, x):
    return spread(r, x) if _on_the_right(r) else np.nan


def raises_when_turned(r, x):
    if not _on_the_right(r):
        raise ValueError("first atom on the left")
    return spread(r, x)


@pytest.mark.parametrize("target", [nan_when_turned, raises_when_turned])
def test_a_copy_that_loses_the_output_breaks_the_symmetry(target):
    # Losing a finite output on a turned copy is a dependence on the orientation: the
    # molecule must fail rotation, not drop out and leave the verdict to the others.
    report = audit(target, [WATER, WATER], symmetries=("translation", "rotation"), n_samples=4)
    assert report.skipped.empty
    rows = report.molecules.set_index("symmetry")
    assert (rows.loc["rotation", "abs_deviation"] == np.inf).all()
    assert not rows.loc["rotation", "passed"].any()
    assert report.holds("translation") and not report.holds("rotation")
    assert "inf" in report.format()


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


def test_a_pipeline_model_failing_on_some_molecules_skips_only_those(dc):
    class NoLargeMolecules:
        """A model with predict(dataset) that refuses Coulomb matrices of over 12 atoms."""

        def predict(self, dataset):
            X = np.asarray(dataset.X)
            if (X[:, 12:, :] != 0).any():
                raise ValueError("over 12 atoms")
            return X.sum(axis=(1, 2))[:, None]

    calls = []
    featurizer = dc.feat.CoulombMatrix(30)
    original = featurizer.featurize

    def counting(mols, **kwargs):
        calls.append(len(mols))
        return original(mols, **kwargs)

    featurizer.featurize = counting
    report = audit(NoLargeMolecules(), ["CCO", "c1ccccc1O", "O"], featurizer=featurizer)
    assert sorted(report.molecules["id"].unique()) == ["CCO", "O"]
    [[name, reason]] = report.skipped.values.tolist()
    assert name == "c1ccccc1O" and "the model failed on its features: ValueError" in reason
    # Pinning the failure down re-ran the model, never the featurizer: one call, all copies.
    assert calls == [3 * (1 + 4 * 3 + 1)]
