"""Every model class of the package passes the reusable contract check; broken ones fail it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DRUG_LIKE

from dc_invariant import ConformerFeaturizer, check_model
from dc_invariant.models import (
    DenseModel,
    KernelModel,
    MoleculeModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    SchNetModel,
    TranslationInvariantModel,
)

# What each tutorial network is built to keep (the dense baseline keeps nothing).
CLAIMS = {
    DenseModel: (),
    PermutationInvariantModel: ("permutation",),
    TranslationInvariantModel: ("permutation", "translation"),
    RotationInvariantModel: ("permutation", "translation", "rotation", "reflection"),
    SchNetModel: ("permutation", "translation", "rotation", "reflection"),
}


@pytest.mark.parametrize("model_class", list(CLAIMS), ids=lambda c: c.__name__)
def test_every_torch_model_passes_the_contract(model_class):
    extra = {"n_atoms": 30} if model_class is DenseModel else {}
    check_model(model_class(dtype="float64", seed=1, **extra), symmetries=CLAIMS[model_class])


def test_the_kernel_model_passes_the_contract(dc):
    conformers = ConformerFeaturizer().featurize(DRUG_LIKE[:8])
    model = KernelModel(sigma=4.0, regularization=1e-6)
    model.fit(dc.data.NumpyDataset(conformers, np.arange(8.0)))
    check_model(model, list(conformers))


def test_a_model_whose_predictions_depend_on_batch_mates_fails(dc):
    class Centred(RotationInvariantModel):
        """Subtracts the batch mean: a molecule's output depends on the others."""

        def predict_molecules(self, molecules, **options):
            out = super().predict_molecules(molecules, **options)
            return out if options.get("forces") else out - out.mean(axis=0)

    with pytest.raises(AssertionError, match="alone differs from the same molecule in a batch"):
        check_model(Centred(dtype="float64", seed=1))


def test_a_broken_symmetry_claim_fails_and_a_non_model_is_named():
    with pytest.raises(AssertionError, match="broken: rotation"):
        check_model(TranslationInvariantModel(dtype="float64", seed=1), symmetries=["rotation"])
    with pytest.raises(AssertionError, match="does not follow the MoleculeModel contract"):
        check_model(object())
    assert isinstance(SchNetModel(), MoleculeModel)
