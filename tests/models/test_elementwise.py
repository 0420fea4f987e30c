"""In-place kernels chosen by measurement: either choice gives the same predictions to the
dtype's rounding, and neither makes a tutorial network's prediction depend on batch mates."""

import numpy as np
import pytest
import torch
from conftest import DRUG_LIKE

from dc_invariant import ConformerFeaturizer
from dc_invariant.models import RUNTIME, RotationInvariantModel, SchNetModel
from dc_invariant.models.elementwise import KERNELS, choice, exp_, softplus_, tanh_, timings


@pytest.fixture(scope="module")
def stacked():
    conformers = ConformerFeaturizer().featurize(DRUG_LIKE[:6])
    return (
        np.concatenate([c.positions for c in conformers]),
        np.concatenate([c.features for c in conformers]),
        np.concatenate([c.atomic_numbers for c in conformers]),
        np.array([c.n_atoms for c in conformers]),
    )


def test_the_choice_is_measured_once_and_can_be_forced(monkeypatch):
    for name in KERNELS:
        seconds = timings(name, torch.float32)
        assert set(seconds) == {"torch", "numpy"} and min(seconds.values()) > 0
        assert choice(name, torch.float32) in ("torch", "numpy")
        assert choice(name, torch.float32) == choice(name, torch.float32)
    monkeypatch.setattr(RUNTIME, "elementwise", "numpy")  # NumPy wherever it is exact here
    monkeypatch.setattr(RUNTIME, "elementwise", "torch")
    assert choice("tanh", torch.float64) == "torch"
    monkeypatch.setattr(RUNTIME, "elementwise", "numpy")
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    np.testing.assert_allclose(tanh_(x.clone()), torch.tanh(x), rtol=4e-16, atol=0)
    np.testing.assert_allclose(exp_(x.clone()), torch.exp(x), rtol=4e-16, atol=0)
    # Past softplus's threshold torch gives x, NumPy x + e^-x: float64 keeps torch's kernel.
    assert choice("softplus", torch.float32) == "numpy"
    assert choice("softplus", torch.float64) == "torch"
    wide = torch.linspace(-30, 30, 201)
    expected = torch.nn.functional.softplus(wide)
    np.testing.assert_allclose(softplus_(wide.clone()), expected, rtol=5e-7, atol=0)
    with pytest.raises(ValueError, match="elementwise must be one of"):
        RUNTIME.elementwise = "fastest"


@pytest.mark.parametrize("model_class", [RotationInvariantModel, SchNetModel])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_and_torch_kernels_agree_and_keep_batch_independence(
    stacked, model_class, dtype, monkeypatch
):
    model = model_class(dtype=dtype, seed=2)
    runs = {}
    for kernel in ("torch", "numpy"):
        monkeypatch.setattr(RUNTIME, "elementwise", kernel)
        runs[kernel] = model.predict_arrays(*stacked)
        positions, features, numbers, counts = stacked
        alone = model.predict_arrays(
            positions[: counts[0]], features[: counts[0]], numbers[: counts[0]], counts[:1]
        )
        if model_class is RotationInvariantModel:  # the tutorial networks' promise
            np.testing.assert_array_equal(alone[0], runs[kernel][0])  # batch mates: no change
        with torch.inference_mode():
            np.testing.assert_array_equal(model.predict_arrays(*stacked), runs[kernel])
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(runs["numpy"], runs["torch"], rtol=rtol, atol=rtol)
