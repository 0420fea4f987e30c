"""KernelModel's search: closed-form leave-one-out, edges, a given validation set, and
molecules with elements the model never saw. Data: small FreeSolv molecules (experimental
hydration free energies, kcal/mol), written to a CSV and read with DeepChem's CSVLoader."""

import json
import os
import warnings

import numpy as np
import pytest

from dc_invariant import ConformerFeaturizer
from dc_invariant.models import KernelModel, load_model
from dc_invariant.models.base import CONFIG_FILE
from dc_invariant.models.kernel.inputs import element_counts
from dc_invariant.models.kernel.kernels import AtomSet, kernel_matrices
from dc_invariant.models.kernel.loo import LeaveOneOut, cholesky_residuals, eigen_residuals
from dc_invariant.molecules import Molecules

# Molecules of FreeSolv with at most five heavy atoms (C, N, O), with their measured values.
FREESOLV_SMALL = """smiles,y
CC(C)C=C,1.83
CC[C@H](C)O,-4.62
CC(C)(C)O,-4.47
CCC=O,-3.43
CN(C)C=O,-7.81
C=CCC=C,0.93
CCNCC,-4.07
CC(=O)NC,-10.0
C1CNC1,-5.56
CCC#C,-0.16
NN,-9.3
N,-4.29
C=CC=C,0.56
CN(C)C,-3.2
CCN,-4.5
CCCC,2.1
c1cnc[nH]1,-9.63
C[N+](=O)[O-],-4.02
CCOC,-2.1
CC(C)C,2.3
CC#N,-3.88
CC(=O)OC,-3.13
CCCOC,-1.66
CNC,-4.29
CCCCC,2.3
CCCC#N,-3.64
C1CC1,0.75
CC(C)CO,-4.5
CC(=C)C=C,0.68
C(CO)O,-9.3
CCCC=O,-3.18
C=O,-2.75
CC(C)OC,-2.01
CCOCC,-1.59
CCCCO,-4.72
CCC,2.0
"""


@pytest.fixture(scope="module")
def freesolv(dc, tmp_path_factory):
    path = tmp_path_factory.mktemp("freesolv") / "small.csv"
    path.write_text(FREESOLV_SMALL)
    loader = dc.data.CSVLoader(
        tasks=["y"], feature_field="smiles", featurizer=ConformerFeaturizer()
    )
    return loader.create_dataset(str(path))


def test_closed_form_leave_one_out_equals_refitting_without_each_molecule(dc, freesolv):
    data = freesolv.select(np.arange(10))
    # pca_tolerance=0 keeps every axis, so the refits' own projections (fitted without the
    # molecule) change no distance: the closed form is then exact for the whole fit.
    sigma, reg = 2.0, 0.05
    model = KernelModel(sigma=sigma, regularizations=[reg, 10 * reg], pca_tolerance=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two candidates: the choice is on an edge
        model.fit(data)
    row = next(r for r in model.fitted["search"] if r["regularization"] == reg)
    errors = []
    for i in range(len(data)):
        rest = data.select(np.delete(np.arange(len(data)), i))
        one = KernelModel(sigma=sigma, regularization=reg, pca_tolerance=0.0)
        assert np.isnan(one.fit(rest))  # given settings: nothing searched
        errors.append(one.predict(data.select([i]))[0, 0] - data.y[i, 0])
    errors = np.array(errors)
    assert row["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-8)
    assert row["rmse"] == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-8)


def test_leave_one_out_formulas_with_collinear_counts_and_a_lone_element():
    rng = np.random.default_rng(0)
    n = 24
    atoms = [AtomSet(rng.normal(size=(3 * n, 4)), np.repeat(np.arange(n), 3))]
    kernel = kernel_matrices(atoms, None, n, n, [1.5])[0]
    counts = element_counts(rng.integers(0, 3, size=n * 3) % 3, np.repeat(np.arange(n), 3), n, 3)
    counts = np.c_[counts, counts[:, 0] + counts[:, 1], np.zeros(n)]  # a collinear column
    counts[5, 4] = 1.0  # molecule 5 alone holds the last element: no leave-one-out prediction
    y = rng.normal(size=(n, 2)) + counts @ rng.normal(size=(5, 2))
    loo = LeaveOneOut(counts, y)
    values, vectors = np.linalg.eigh(kernel)
    regs = [1e-4, 1e-1]
    every = eigen_residuals(values, vectors, loo, regs)
    for k, reg in enumerate(regs):
        brute = np.full((n, 2), np.nan)
        for i in np.flatnonzero(loo.kept):
            m = np.arange(n) != i
            b = np.linalg.lstsq(counts[m], y[m], rcond=None)[0]
            alpha = np.linalg.solve(
                kernel[np.ix_(m, m)] + reg * np.eye(n - 1), y[m] - counts[m] @ b
            )
            brute[i] = y[i] - counts[i] @ b - kernel[i, m] @ alpha
        np.testing.assert_allclose(every[:, k], brute, rtol=1e-7, atol=1e-10)
        one, _ = cholesky_residuals(kernel, loo, reg)
        np.testing.assert_allclose(one, brute, rtol=1e-7, atol=1e-10)
    assert list(np.flatnonzero(~loo.kept)) == [5] and np.isnan(every[5]).all()


def test_edge_warning_fires_on_a_narrow_range_and_stays_quiet_on_the_default(freesolv):
    with pytest.warns(UserWarning, match=r"regularization=1e-07 lies on the edge"):
        KernelModel(sigma=2.0, regularizations=[1e-8, 1e-7]).fit(freesolv)
    with pytest.warns(UserWarning, match=r"sigma=\S+ lies on the edge of the widths searched"):
        KernelModel(sigmas=[1e4, 2e4], regularization=1e-3).fit(freesolv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        model = KernelModel()
        model.fit(freesolv)
    assert model.fitted["edges"] == [] and model.fitted["selection"] == "leave-one-out"
    searched = sorted({row["sigma"] for row in model.fitted["search"]})
    assert searched[0] < model.fitted["sigma"] < searched[-1]


def test_fit_with_a_validation_set_chooses_on_it(dc, freesolv):
    train, valid = freesolv.select(np.arange(24)), freesolv.select(np.arange(24, 36))
    model = KernelModel(sigmas=[1.0, 2.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = model.fit(train, valid)
    fitted = model.fitted
    assert fitted["selection"] == "validation set" and fitted["n_train"] == 24
    best = min(fitted["search"], key=lambda row: np.inf if row["mae"] is None else row["mae"])
    assert (fitted["sigma"], fitted["regularization"]) == (best["sigma"], best["regularization"])
    # The reported error is the chosen model's own error on the validation molecules.
    error = np.abs(model.predict(valid) - valid.y).mean()
    assert score == pytest.approx(error, rel=1e-8) == fitted["selection_mae"]
    loo = KernelModel(sigmas=[1.0, 2.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo.fit(train)
    assert loo.fitted["selection"] == "leave-one-out" and loo.fitted["search"] != fitted["search"]


def test_a_searched_model_saves_loads_and_refits_the_same(dc, freesolv, tmp_path):
    model = KernelModel(search_size=20, seed=3, model_dir=str(tmp_path / "k"))
    model.fit(freesolv)
    model.save()
    again = KernelModel(search_size=20, seed=3)
    again.fit(freesolv)  # a subset search: the seed picks it
    assert again.fitted["search"] == model.fitted["search"]
    np.testing.assert_array_equal(again.predict(freesolv), model.predict(freesolv))
    loaded = load_model(str(tmp_path / "k"))
    assert loaded.fitted == json.loads(json.dumps(model.fitted))
    np.testing.assert_allclose(loaded.predict(freesolv), model.predict(freesolv), rtol=1e-12)
    # A model saved before the leave-one-out search carried a hold-out share: still loads.
    path = os.path.join(tmp_path / "k", CONFIG_FILE)
    with open(path) as handle:
        config = json.load(handle)
    config["hyperparameters"]["valid_fraction"] = 0.1
    with open(path, "w") as handle:
        json.dump(config, handle)
    np.testing.assert_allclose(
        load_model(str(tmp_path / "k")).predict(freesolv), model.predict(freesolv), rtol=1e-12
    )


def test_unknown_elements_predict_nan_with_a_warning_and_are_listed(dc, freesolv):
    model = KernelModel(sigma=2.0, regularization=1e-3)
    model.fit(freesolv)
    featurizer = ConformerFeaturizer()
    smiles = ["CCO", "CCCl", "[Na+].[Cl-]", "CCC"]
    X = featurizer.featurize(smiles)
    test = dc.data.NumpyDataset(X, ids=np.array(smiles))
    with pytest.warns(UserWarning, match=r"2 molecule\(s\) are predicted as NaN.*Cl \(Z=17\)"):
        predicted = model.predict(test)
    assert np.isfinite(predicted[[0, 3]]).all() and np.isnan(predicted[[1, 2]]).all()
    reasons = model.unsupported(Molecules.from_conformers(list(X)))
    assert reasons == {
        1: "element Cl (Z=17) not in the training set",
        2: "elements Na (Z=11), Cl (Z=17) not in the training set",
    }
    with pytest.warns(UserWarning, match="predicted as NaN"):
        forces = model.predict_forces(test)
    assert np.isnan(forces[1]).all() and np.isfinite(forces[0]).all()
    with pytest.warns(UserWarning, match="left out of the choice on the validation set"):
        KernelModel(sigma=2.0, regularizations=[1e-3, 1e-2]).fit(
            freesolv, dc.data.NumpyDataset(X, np.arange(1.0, 5.0)[:, None])
        )


def test_leading_axes_span_the_axes_a_full_decomposition_keeps():
    import torch

    from dc_invariant.models.kernel.projection import _leading_axes

    rng = np.random.default_rng(4)
    # A covariance with a steep spectrum, as FCHL19's: 700 columns, ~35 axes hold 1 - 1e-6.
    scales = 10.0 ** -np.linspace(0, 12, 700)
    rotation = np.linalg.qr(rng.normal(size=(700, 700)))[0]
    covariance = torch.as_tensor((rotation * scales) @ rotation.T)
    values, vectors = (t.numpy() for t in _leading_axes(covariance, 1e-6))
    full_values, full_vectors = np.linalg.eigh(covariance.numpy())
    keep = 35
    top, full_top = vectors[:, ::-1][:, :keep], full_vectors[:, ::-1][:, :keep]
    np.testing.assert_allclose(values[::-1][:keep], full_values[::-1][:keep], rtol=1e-8)
    assert np.linalg.norm(full_top - top @ (top.T @ full_top)) < 1e-8


def test_eigendecompositions_run_on_runtime_eigen_threads(monkeypatch, freesolv):
    import torch

    from dc_invariant.models import RUNTIME

    seen = []
    real = torch.linalg.eigh

    def recording(matrix):
        seen.append(torch.get_num_threads())
        return real(matrix)

    monkeypatch.setattr(torch.linalg, "eigh", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fitted = {}
        for threads in (1, 0):  # one thread, then torch's own count (2)
            monkeypatch.setattr(RUNTIME, "eigen_threads", threads)
            seen.clear()
            model = KernelModel()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(freesolv)
            # the projection's and every searched width's eigendecompositions
            assert len(seen) > 3 and set(seen) == {threads or 2}
            assert torch.get_num_threads() == 2  # restored after each
            fitted[threads] = (model.fitted["sigma"], model.fitted["regularization"])
        assert fitted[1] == pytest.approx(fitted[0])  # rounding only: the same choice
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="eigen_threads"):
        RUNTIME.eigen_threads = -1


def test_with_several_tasks_the_choice_is_the_least_score_of_its_own_table():
    from pathlib import Path

    from dc_invariant.datasets import load_qm9

    mini = str(Path(__file__).parents[2] / "data" / "qm9_mini")
    _, (data,), _ = load_qm9(tasks=["u0_atom", "gap"], splitter=None, data_dir=mini)
    model = KernelModel(n_tasks=2)
    model.fit(data)
    rows = [r for r in model.fitted["search"] if r["score"] is not None]
    best = min(rows, key=lambda r: r["score"])
    # The table held only the mean MAE over tasks (eV of U0 beside eV of the gap), whose
    # least row was another choice than the one made.
    assert (best["sigma"], best["regularization"]) == (
        model.fitted["sigma"],
        model.fitted["regularization"],
    )
