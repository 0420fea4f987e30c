"""The pair networks' inference path (in place, one buffer) against their autograd path."""

import numpy as np
import pytest
import torch

import dc_invariant.models.tutorial_networks as networks
from dc_invariant.models import RotationInvariantModel, TranslationInvariantModel
from dc_invariant.molecules import Molecules


def molecules(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stacked molecules of mixed sizes, several of each size, away from the origin."""
    rng = np.random.default_rng(seed)
    counts = rng.permutation(np.repeat([1, 2, 7, 18, 19, 40], [3, 4, 9, 30, 11, 2]))
    n = int(counts.sum())
    positions = rng.normal(scale=2.0, size=(n, 3)) + 50.0
    return positions, rng.normal(size=(n, 11)), rng.integers(1, 10, n), counts


def with_gradients(model, data) -> np.ndarray:
    """The network's outputs with autograd on: the path training and forces take."""
    batch = model.make_batch(Molecules(*data))
    inputs, _, _ = model._prepare_batch((batch.inputs, None, None))
    with torch.enable_grad():
        out = model.model(inputs)
    assert out.requires_grad
    return out.detach().numpy()


@pytest.mark.parametrize("cls", [RotationInvariantModel, TranslationInvariantModel])
@pytest.mark.parametrize("activation", ["tanh", "relu", "silu", "softplus"])
@pytest.mark.parametrize("cutoff", [None, 4.0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_path_equals_the_autograd_path(monkeypatch, cls, activation, cutoff, dtype):
    # A small piece size splits the groups of equal-sized molecules into several pieces.
    monkeypatch.setattr(networks, "_PIECE_BYTES", 4096)
    # ... and a small plane budget splits them into several calls.
    monkeypatch.setattr(networks, "_PLANE_BYTES", 20_000)
    model = cls(activation=activation, cutoff=cutoff, dtype=dtype, n_tasks=2, seed=1)
    data = molecules()
    threads = torch.get_num_threads()
    fast = model.predict_arrays(*data)
    assert torch.get_num_threads() == threads  # the one-thread section restores the setting
    slow = with_gradients(model, data)
    # float32 sums in another order: rounding relative to the largest output, not to each.
    tolerance = (1e-12 if dtype == "float64" else 1e-5) * np.abs(slow).max()
    np.testing.assert_allclose(fast, slow, rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", [RotationInvariantModel, TranslationInvariantModel])
def test_batch_mates_never_change_a_prediction_by_a_single_bit(make, dtype):
    from conftest import DRUG_LIKE

    from dc_invariant import ConformerFeaturizer

    molecules = list(ConformerFeaturizer().featurize(DRUG_LIKE))
    model = make(dtype=dtype, seed=3)

    def predict(batch):
        return model.predict_arrays(
            np.concatenate([c.positions for c in batch]),
            np.concatenate([c.features for c in batch]),
            np.concatenate([c.atomic_numbers for c in batch]),
            np.array([c.n_atoms for c in batch]),
        )[:, 0]

    together = predict(molecules)
    alone = np.array([predict([c])[0] for c in molecules])
    crowded = predict(molecules * 30).reshape(30, -1)
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(crowded, np.broadcast_to(together, crowded.shape))
