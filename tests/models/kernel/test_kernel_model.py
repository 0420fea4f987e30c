import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from kernel_helpers import numeric_forces

from dc_invariant import Conformer
from dc_invariant.auditing import audit
from dc_invariant.cli import main
from dc_invariant.datasets import load_qm9, read_qm9_table
from dc_invariant.models import KernelModel, load_model
from dc_invariant.models.base import CONFIG_FILE
from dc_invariant.models.kernel.kernels import (
    AtomSet,
    _reduce,
    _reduce_on_device,
    atom_sums,
    kernel_matrices,
)
from dc_invariant.models.kernel.representation import FCHL19
from dc_invariant.models.kernel.store import ARRAYS_FILE
from dc_invariant.symmetry import random_reflection, random_rotation

MINI = str(Path(__file__).parents[2] / "data" / "qm9_mini")
ELEMENTS = np.array([1, 6, 7, 8, 9])


@pytest.fixture(scope="module")
def table():
    return read_qm9_table(data_dir=MINI)


@pytest.fixture(scope="module")
def qm9(dc):
    _, (dataset,), _ = load_qm9(tasks=["u0_atom"], splitter=None, data_dir=MINI)
    return dataset


@pytest.fixture(scope="module")
def fitted(qm9):
    model = KernelModel(sigma=4.0, regularization=1e-6)
    model.fit(qm9)
    return model


def vectors(z, r, rep=None):
    index = np.searchsorted(ELEMENTS, z)
    with torch.no_grad():
        rep = FCHL19() if rep is None else rep
        return rep(torch.tensor(r), index, np.array([len(z)]), len(ELEMENTS)).numpy()


@pytest.mark.parametrize("rep", [FCHL19(), FCHL19.tuned()], ids=["qmllib", "tuned"])
def test_representation_is_exactly_invariant(table, rep):
    rng = np.random.default_rng(0)
    for z, r in zip(table["atomic_numbers"], table["positions"]):
        reference = vectors(z, r, rep)
        order = rng.permutation(len(z))
        moved = {
            "permutation": (z[order], r[order], order),
            "translation": (z, r + rng.normal(scale=100.0, size=3), None),
            "rotation": (z, r @ random_rotation(rng).T, None),
            "reflection": (z, r @ random_reflection(rng).T, None),
        }
        for zz, rr, rows in moved.values():
            expected = reference if rows is None else reference[rows]
            np.testing.assert_allclose(vectors(zz, rr, rep), expected, rtol=1e-11, atol=1e-12)
        assert np.abs(reference).max() > 0.1  # not trivially zero


@pytest.mark.skipif(importlib.util.find_spec("qmllib") is None, reason="qmllib not installed")
def test_representation_equals_qmllib_fchl19(table):
    from qmllib.representations import generate_fchl19

    tuned = FCHL19.tuned()
    # The benchmark's qmllib peer is given the tuned settings under these names.
    settings = {
        "eta2": tuned.eta2, "rcut": tuned.cutoff, "acut": tuned.cutoff,
        "three_body_decay": tuned.three_body_decay, "three_body_weight": tuned.three_body_weight,
    }  # fmt: skip
    for z, r in zip(table["atomic_numbers"], table["positions"]):
        expected = generate_fchl19(z, r, elements=ELEMENTS.tolist())
        # qmllib takes sin(acos(cos)), which near linear triplets keeps only ~8 digits.
        np.testing.assert_allclose(vectors(z, r), expected, rtol=1e-10, atol=1e-8)
        expected = generate_fchl19(z, r, elements=ELEMENTS.tolist(), **settings)
        # the same 8 digits, of three-body terms weighted 300 / 13.4 times more
        np.testing.assert_allclose(vectors(z, r, tuned), expected, rtol=1e-10, atol=3e-7)


def direct_kernel(a, b, sigma):
    out = np.zeros((a.molecule.max() + 1, b.molecule.max() + 1))
    for i, x in enumerate(a.vectors.numpy()):
        for j, v in enumerate(b.vectors.numpy()):
            out[a.molecule[i], b.molecule[j]] += np.exp(-((x - v) ** 2).sum() / (2 * sigma**2))
    return out


def test_kernel_model_defaults_to_the_tuned_representation():
    tuned = FCHL19.tuned()
    assert KernelModel().representation == tuned
    assert (tuned.cutoff, tuned.eta2, tuned.three_body_decay) == (6.0, 0.15, 2.0)
    assert tuned != FCHL19()  # qmllib's defaults stay FCHL19()'s
    # A partial dict changes only its fields; a full one (qmllib's) is taken as it is.
    assert KernelModel(representation={"cutoff": 5.0}).representation == FCHL19.tuned(cutoff=5.0)
    assert KernelModel(representation=FCHL19().to_dict()).representation == FCHL19()


def test_blocked_kernels_equal_a_direct_computation():
    rng = np.random.default_rng(1)

    def atoms(n, n_molecules):
        return AtomSet(rng.normal(size=(n, 6)), np.sort(rng.integers(0, n_molecules, n)))

    rows = [atoms(70, 9), atoms(40, 9)]
    cols = [atoms(50, 7), atoms(30, 7)]
    for a in rows + cols:  # every molecule owns an atom of the first element
        a.molecule[: a.molecule.max() + 1] = np.arange(a.molecule.max() + 1)
        a.molecule.sort()
    sigmas = [0.7, 2.0]
    tiny = 20 * 20 * 8 * 2  # 20-atom blocks: molecules straddle block edges
    cross = kernel_matrices(rows, cols, 9, 7, sigmas, memory_bytes=tiny)
    square = kernel_matrices(rows, None, 9, 9, sigmas, memory_bytes=tiny)
    for s, sigma in enumerate(sigmas):
        expected = sum(direct_kernel(a, b, sigma) for a, b in zip(rows, cols))
        np.testing.assert_allclose(cross[s], expected, rtol=1e-12)
        expected = sum(direct_kernel(a, a, sigma) for a in rows)
        np.testing.assert_allclose(square[s], expected, rtol=1e-12)
    # The GPU path of the per-molecule sums, run here on the CPU, equals the CPU path.
    block = torch.as_tensor(rng.normal(size=(30, 20)))
    r_starts, c_starts = np.array([0, 4, 5, 17]), np.array([0, 9, 10])
    on_device = _reduce_on_device(block, r_starts, c_starts)
    np.testing.assert_allclose(on_device, _reduce(block, r_starts, c_starts), rtol=1e-12)
    assert on_device.shape == (4, 3)
    np.testing.assert_allclose(on_device[1, 2], block[4, 10:].sum().item(), rtol=1e-12)
    weights = rng.normal(size=(50, 2))
    per_atom = atom_sums(rows[0], cols[0], weights, 0.7, memory_bytes=tiny)
    distances = ((rows[0].vectors[:, None] - cols[0].vectors[None]) ** 2).sum(-1).numpy()
    np.testing.assert_allclose(per_atom, np.exp(-distances / (2 * 0.7**2)) @ weights, rtol=1e-12)


def diatomics(dc, lengths, z=(1, 8)):
    X = np.empty(len(lengths), dtype=object)
    X[:] = [Conformer([[0.0, 0, 0], [r, 0, 0]], np.ones((2, 1)), list(z)) for r in lengths]
    return X


def test_fit_recovers_a_known_function_with_offsets_and_two_tasks(dc):
    rng = np.random.default_rng(2)
    lengths = rng.uniform(0.8, 1.6, 60)
    morse = (1 - np.exp(-2.0 * (lengths - 1.0))) ** 2
    y = np.stack([-75.5 + morse, lengths**2], axis=1)  # offsets + a bond curve; a second task
    model = KernelModel(n_tasks=2, sigmas=(0.5, 2.0), regularizations=(1e-10, 1e-6))
    valid_mae = model.fit(dc.data.NumpyDataset(diatomics(dc, lengths), y))
    test = np.linspace(0.9, 1.5, 7)
    predicted = model.predict(dc.data.NumpyDataset(diatomics(dc, test)))
    expected = np.stack([-75.5 + (1 - np.exp(-2.0 * (test - 1.0))) ** 2, test**2], axis=1)
    np.testing.assert_allclose(predicted, expected, atol=2e-3)
    assert 0 < valid_mae < 2e-3 and model.fitted["selection"] == "leave-one-out"
    tried = {(row["sigma"], row["regularization"]) for row in model.fitted["search"]}
    assert {(0.5, 1e-10), (0.5, 1e-6), (2.0, 1e-10), (2.0, 1e-6)} <= tried
    assert model.fitted["sigma"] in {sigma for sigma, _ in tried}
    assert model.fitted["elements"] == [1, 8]


def test_save_load_round_trip_and_deepchem_interface(dc, qm9, fitted, tmp_path):
    before = fitted.predict(qm9)
    assert np.abs(before[:, 0] - qm9.y[:, 0]).max() < 1e-3  # tiny regularization: interpolates
    fitted.model_dir = str(tmp_path / "kernel")
    fitted.save()
    assert sorted(os.listdir(tmp_path / "kernel")) == sorted([CONFIG_FILE, ARRAYS_FILE])
    with np.load(tmp_path / "kernel" / ARRAYS_FILE, allow_pickle=False) as data:
        assert data["alpha"].shape == (len(qm9), 1)
    assert json.loads((tmp_path / "kernel" / CONFIG_FILE).read_text())["class"] == "KernelModel"
    loaded = load_model(str(tmp_path / "kernel"))
    assert isinstance(loaded, KernelModel)
    assert np.array_equal(loaded.predict(qm9), before)
    disk = dc.data.DiskDataset.from_numpy(qm9.X, qm9.y, ids=qm9.ids, data_dir=str(tmp_path / "d"))
    assert np.array_equal(loaded.predict(disk), before)
    scores = loaded.evaluate(disk, [dc.metrics.Metric(dc.metrics.mean_absolute_error)])
    assert scores["mean_absolute_error"] < 1e-3


def test_device_option_and_load_override(dc, qm9, fitted, tmp_path):
    explicit = KernelModel(sigma=4.0, regularization=1e-6, device="cpu")
    assert explicit.device == torch.device("cpu")
    explicit.fit(qm9)
    assert np.array_equal(explicit.predict(qm9), fitted.predict(qm9))
    for bad in ("gpu0", "cuda:x"):
        with pytest.raises(ValueError, match=r"device .* is not usable here"):
            KernelModel(device=bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' on a machine with a GPU"):
            KernelModel(device="cuda")
    explicit.model_dir = str(tmp_path / "k")
    explicit.save()
    assert "device" not in json.loads((tmp_path / "k" / CONFIG_FILE).read_text())["hyperparameters"]
    loaded = load_model(str(tmp_path / "k"), device=torch.device("cpu"), memory_mb=1)
    assert loaded.device == torch.device("cpu") and loaded.memory_bytes == 2**20
    assert np.array_equal(loaded.predict(qm9), explicit.predict(qm9))
    with pytest.raises(ValueError, match="only device= or memory_mb="):
        load_model(str(tmp_path / "k"), sigma=2.0)


def test_forces_match_finite_differences(dc, qm9, fitted):
    c = qm9.X[5]
    forces = fitted.predict_forces(dc.data.NumpyDataset(np.array([c], dtype=object)))[0]
    numeric = numeric_forces(fitted, c)
    assert np.abs(forces).max() > 0.1
    np.testing.assert_allclose(forces, numeric, atol=1e-5 * np.abs(forces).max())


def test_audit_finds_all_four_symmetries_hold_on_real_molecules(qm9, fitted, tmp_path):
    report = audit(fitted, qm9, n_samples=2)
    for symmetry in ("permutation", "translation", "rotation", "reflection"):
        assert report.holds(symmetry), report.summary
    forces = audit(fitted, qm9, n_samples=1, output="vector", symmetries=("rotation",))
    assert forces.holds("rotation")
    fitted.model_dir = str(tmp_path / "m")
    fitted.save()
    argv = ["audit", "--smiles", "CCO", "C=O", "--model", str(tmp_path / "m"), "--n-samples", "1"]
    assert main([*argv, "--require", "permutation,translation,rotation,reflection"]) == 0


def test_bad_input_is_a_clear_error_naming_the_molecule(dc, qm9, fitted):
    model = KernelModel(sigma=1.0, regularization=1e-6)
    with pytest.raises(ValueError, match="empty"):
        model.fit(dc.data.NumpyDataset(np.empty(0, dtype=object), np.empty((0, 1))))
    with pytest.raises(ValueError, match="missing label"):
        model.fit(dc.data.NumpyDataset(qm9.X))  # NumpyDataset(X) has weight 0 everywhere
    y = qm9.y.copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match=f"molecule 3 \\(id '{qm9.ids[3]}'"):
        model.fit(dc.data.NumpyDataset(qm9.X, y, ids=qm9.ids))
    # Weights: one per molecule counts for every task; the kernel weighs all labels alike,
    # so a weight it would ignore is refused rather than fitted as 1.
    two = np.column_stack([qm9.y[:, 0], 2 * qm9.y[:, 0]])
    cases = [(0.0, "a missing label"), (100.0, "a weight other than 1"),
             (np.nan, "a NaN or infinite weight"), (-1.0, "a negative weight")]  # fmt: skip
    for w, problem in cases:
        weights = np.ones(len(qm9))
        weights[2] = w
        for shape in [(-1,), (-1, 1)]:
            data = dc.data.NumpyDataset(qm9.X, two, weights.reshape(shape), ids=qm9.ids)
            with pytest.raises(ValueError, match=f"molecule 2 .* has {problem}"):
                KernelModel(n_tasks=2, sigma=1.0, regularization=1e-6).fit(data)
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(qm9)
    sulfur = np.empty(2, dtype=object)
    sulfur[:] = [qm9.X[0], Conformer([[0.0, 0, 0], [1.3, 0, 0]], np.ones((2, 11)), [1, 16])]
    # An element the model never saw: NaN for that molecule and a warning naming it.
    with pytest.warns(
        UserWarning, match=r"1 molecule\(s\) are predicted as NaN, element S \(Z=16\)"
    ):
        predicted = fitted.predict(dc.data.NumpyDataset(sulfur, ids=np.array(["ok", "H-S"])))
    assert np.isfinite(predicted[0]).all() and np.isnan(predicted[1]).all()
    with pytest.raises(ValueError, match="n_tasks"):
        KernelModel(n_tasks=0)
    with pytest.raises(ValueError, match="sigmas"):
        KernelModel(sigmas=())


def test_an_atom_off_the_kept_axes_is_not_taken_for_a_training_atom(dc):
    from dc_invariant import ConformerFeaturizer

    featurize = ConformerFeaturizer().featurize
    train = ["CC", "CCC", "CCCC", "CCO", "CCCO", "CC(C)O", "CCN", "CCCN", "CC=O", "COC", "CCF"]
    test = ["CCCF", "FC(F)F", "OCCF", "CF", "CC(F)C"]
    y = np.random.default_rng(0).normal(size=(len(train), 1))
    data = dc.data.NumpyDataset(featurize(train), y)
    predictions = []
    for tolerance in (1e-6, 0.0):  # the default projection, and every axis kept
        model = KernelModel(sigma=1.0, regularization=1e-6, pca_tolerance=tolerance)
        model.fit(data)
        predictions.append(model.predict(dc.data.NumpyDataset(featurize(test)))[:, 0])
    # One training F atom keeps one axis; dropping what it leaves of the test F atoms made
    # them all look like that one (differences up to 0.032, labels' spread 0.92).
    np.testing.assert_allclose(predictions[0], predictions[1], atol=1e-3)


def test_a_model_saved_before_the_extra_coordinate_projects_as_it_was_fitted(fitted):
    from dc_invariant.models.kernel.trained import TrainedKernel

    trained = fitted._trained
    arrays = trained.to_arrays(fitted._elements)
    assert len(arrays["floors"]) == len(fitted._elements)
    del arrays["floors"]  # as written before it existed
    old = TrainedKernel.from_arrays(
        arrays, trained.representation, trained.sigma, trained.memory_bytes, torch.device("cpu")
    )
    assert old.projection.floors is None
    vectors = torch.as_tensor(
        np.random.default_rng(0).normal(size=(3, trained.projection.axes[0].shape[0]))
    )
    assert old.projection.project(vectors, 0).shape[1] == trained.projection.axes[0].shape[1]
    assert (
        trained.projection.project(vectors, 0).shape[1] == trained.projection.axes[0].shape[1] + 1
    )


def test_labels_shifted_by_a_transformer_get_a_constant_and_predict_the_same(dc, qm9, tmp_path):
    # NormalizationTransformer subtracts the labels' mean: per-element offsets cannot hold
    # that constant, and the kernel had to learn it (QM9: 20x the error).
    raw = KernelModel()
    raw.fit(qm9)
    assert raw.fitted["offsets_constant"] is False
    predicted = {}
    for shift in (1000.0, -500.0):
        model = KernelModel(model_dir=str(tmp_path))
        model.fit(dc.data.NumpyDataset(qm9.X, qm9.y + shift, ids=qm9.ids))
        assert model.fitted["offsets_constant"] is True
        predicted[shift] = model.predict(qm9) - shift
    # Any shift is undone exactly: the same choice and the same predictions.
    np.testing.assert_allclose(predicted[1000.0], predicted[-500.0], atol=1e-8)
    model.save()
    np.testing.assert_array_equal(load_model(str(tmp_path)).predict(qm9), model.predict(qm9))


def test_exact_copies_are_fitted_once_on_their_mean_label(dc, qm9):
    once = KernelModel()
    once.fit(qm9)
    n = len(qm9)
    twice = dc.data.NumpyDataset(
        np.concatenate([qm9.X, qm9.X]), np.concatenate([qm9.y - 0.1, qm9.y + 0.1]),
        ids=np.concatenate([qm9.ids, qm9.ids]),
    )  # fmt: skip
    model = KernelModel()
    with pytest.warns(UserWarning, match=rf"{n} training molecule\(s\) are exact copies"):
        model.fit(twice)
    # Leave-one-out predicted each copy from its twin: the narrowest width, no regularization.
    assert model.fitted["sigma"] == once.fitted["sigma"] and model.fitted["n_train"] == n
    np.testing.assert_allclose(model.predict(qm9), once.predict(qm9), atol=1e-9)


def test_forces_refuse_a_transformer_whose_undo_is_not_linear(dc, qm9, fitted):
    positive = dc.data.NumpyDataset(qm9.X, qm9.y - qm9.y.min() + 1.0)
    log = dc.trans.LogTransformer(transform_y=True, dataset=positive)
    with pytest.raises(ValueError, match="LogTransformer is not"):
        fitted.predict_forces(qm9.select([0]), [log])
