"""KernelModel(conformers="average"): the kernel as the mean over pairs of geometries."""

import warnings

import numpy as np
import pytest
import torch
from kernel_helpers import numeric_forces

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant.models import KernelModel, load_model

SMILES = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "CCOC", "CCCC", "CCCCC", "CC(C)C", "CCN", "CCCN",
    "OCCO", "CCC(=O)O", "CC(=O)OC", "CCOCC", "NCCO", "CCCCCO",
]  # fmt: skip
SIGMA, LAMBDA = 3.0, 1e-3


@pytest.fixture(scope="module")
def ensembles(dc):
    """16 flexible molecules with 3 ETKDG conformers each and a made-up label."""
    X = ConformerFeaturizer(n_conformers=3, random_seed=0).featurize(SMILES)
    assert all(c.n_conformers == 3 for c in X)
    y = np.array([[len(c.atomic_numbers) * 0.3 + np.sin(k)] for k, c in enumerate(X)])
    return dc.data.NumpyDataset(X, y, ids=np.array(SMILES))


def geometry_vectors(conformer, rep, elements):
    """FCHL19 vectors of every geometry of ``conformer``, a list of (n_atoms, d) arrays."""
    index = np.searchsorted(elements, conformer.atomic_numbers)
    out = []
    for geometry in conformer.ensemble:
        with torch.no_grad():
            out.append(
                rep(torch.tensor(geometry), index, np.array([len(index)]), len(elements)).numpy()
            )
    return out


def averaged_kernel(A, B, za, zb, sigma):
    """Mean over geometry pairs of the local Gaussian kernel over same-element atom pairs."""
    out = np.zeros((len(A), len(B)))
    for i, (ga, a_z) in enumerate(zip(A, za)):
        for j, (gb, b_z) in enumerate(zip(B, zb)):
            same = a_z[:, None] == b_z[None, :]
            total = 0.0
            for x in ga:
                for v in gb:
                    d = ((x[:, None, :] - v[None, :, :]) ** 2).sum(-1)
                    total += (np.exp(-d / (2 * sigma**2)) * same).sum()
            out[i, j] = total / (len(ga) * len(gb))
    return out


def test_averaged_model_equals_a_direct_ridge_on_the_mean_kernel(dc, ensembles):
    # pca_tolerance=0 keeps every axis, so the projected distances are FCHL19's own.
    train, test = ensembles.select(np.arange(12)), ensembles.select(np.arange(12, 16))
    model = KernelModel(sigma=SIGMA, regularization=LAMBDA, conformers="average", pca_tolerance=0.0)
    model.fit(train)
    elements = np.unique(np.concatenate([c.atomic_numbers for c in ensembles.X]))
    rep = model.representation
    vec = [geometry_vectors(c, rep, elements) for c in ensembles.X]
    z = [c.atomic_numbers for c in ensembles.X]
    K = averaged_kernel(vec[:12], vec[:12], z[:12], z[:12], SIGMA)
    T = averaged_kernel(vec[12:], vec[:12], z[12:], z[:12], SIGMA)
    counts = np.array([[(zz == e).sum() for e in elements] for zz in z])
    offsets = np.linalg.lstsq(counts[:12], train.y, rcond=None)[0]
    alpha = np.linalg.solve(K + LAMBDA * np.eye(12), train.y - counts[:12] @ offsets)
    expected = counts[12:] @ offsets + T @ alpha
    np.testing.assert_allclose(model.predict(test), expected, rtol=1e-8, atol=1e-8)
    # The first-geometry model is another model: averaging changed the predictions.
    first = KernelModel(sigma=SIGMA, regularization=LAMBDA, pca_tolerance=0.0)
    first.fit(train)
    assert np.abs(first.predict(test) - expected).max() > 1e-3


def test_identical_geometries_average_to_the_first_geometry_model(dc, ensembles):
    # k copies of one geometry: the mean over pairs is the single-geometry kernel, with a
    # given lambda too (a sum instead of a mean would be k^2 larger and fit differently).
    copies = []
    for c in ensembles.X:
        copies.append(
            Conformer(
                c.positions, c.features, c.atomic_numbers, c.smiles,
                ensemble=np.stack([c.positions] * 3),
            )
        )  # fmt: skip
    X = np.empty(len(copies), dtype=object)
    X[:] = copies
    data = dc.data.NumpyDataset(X, ensembles.y)
    averaged = KernelModel(sigma=SIGMA, regularization=LAMBDA, conformers="average")
    first = KernelModel(sigma=SIGMA, regularization=LAMBDA)
    averaged.fit(data)
    first.fit(data)
    np.testing.assert_allclose(averaged.predict(data), first.predict(data), rtol=1e-10)


def test_searched_nystrom_saved_and_forces(dc, ensembles, tmp_path):
    model = KernelModel(conformers="average", model_dir=str(tmp_path / "m"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # made-up labels end on the grid's edges
        selection = model.fit(ensembles)
    assert np.isfinite(selection)
    assert model.hyperparameters["conformers"] == "average"
    model.save()
    loaded = load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(ensembles), model.predict(ensembles))
    # The Nystrom solve with every molecule a landmark is the exact solve of the mean kernel.
    exact = KernelModel(sigma=SIGMA, regularization=LAMBDA, conformers="average")
    nystrom = KernelModel(
        sigma=SIGMA, regularization=LAMBDA, conformers="average", solver="nystrom",
        landmarks=len(ensembles),
    )  # fmt: skip
    exact.fit(ensembles)
    nystrom.fit(ensembles)
    np.testing.assert_allclose(
        nystrom.predict(ensembles), exact.predict(ensembles), rtol=1e-6, atol=1e-6
    )
    # Forces are those of the first geometry under the averaged model: finite differences.
    forces = model.predict_forces(ensembles.select([0]))[0]
    numeric = numeric_forces(model, ensembles.X[0])
    np.testing.assert_allclose(forces, numeric, atol=1e-5)


def test_unknown_elements_are_nan_per_molecule_and_bad_setting_fails(dc, ensembles):
    model = KernelModel(sigma=SIGMA, regularization=LAMBDA, conformers="average")
    model.fit(ensembles.select(np.arange(8)))  # alcohols, ethers, alkanes: no nitrogen
    has_n = np.array([7 in c.atomic_numbers for c in ensembles.X])
    assert has_n.sum() == 3
    with pytest.warns(UserWarning, match="3 molecule"):
        out = model.predict(ensembles)
    assert np.isnan(out[:, 0]).tolist() == has_n.tolist()
    with pytest.raises(ValueError, match="conformers must be one of"):
        KernelModel(conformers="mean")
