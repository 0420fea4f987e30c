import importlib.util
import json

import numpy as np
import pytest
import torch
from kernel_helpers import numeric_forces

import dc_invariant.models.kernel.model as kernel_model
import dc_invariant.models.kernel.settings as kernel_settings
from dc_invariant.auditing import audit
from dc_invariant.datasets import load_qm9
from dc_invariant.models import KernelModel, load_model
from dc_invariant.models.base import CONFIG_FILE
from dc_invariant.models.kernel.inputs import element_index, stack_dataset
from dc_invariant.models.kernel.representation import atom_vectors
from dc_invariant.models.kernel.store import ARRAYS_FILE

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("qm9pack") is None, reason="needs qm9pack's QM9 (the [test] extra)"
)


@pytest.fixture(scope="module")
def molecules(dc):
    """300 training QM9 molecules and the others of 400 made of their elements (qm9pack's
    data, the `[test]` extra)."""
    _, (dataset,), _ = load_qm9(tasks=["u0_atom"], limit=400, splitter=None, seed=0)
    train = dataset.select(np.arange(300))
    seen = {int(z) for c in train.X for z in c.atomic_numbers}
    test = [k for k in range(300, 400) if set(dataset.X[k].atomic_numbers.tolist()) <= seen]
    return train, dataset.select(np.array(test))


def mae(model, dataset):
    return float(np.abs(model.predict(dataset) - dataset.y).mean())


def test_every_molecule_a_landmark_is_the_exact_model(molecules):
    train, test = molecules
    settings = {"sigma": 4.0, "regularization": 1e-4}
    exact = KernelModel(solver="exact", **settings)
    exact.fit(train)
    full = KernelModel(solver="nystrom", landmarks=len(train), **settings)
    full.fit(train)
    assert full.fitted["solver"] == "nystrom" and full.fitted["landmarks"] == len(train)
    gap = np.abs(full.predict(test) - exact.predict(test)).max()
    # The jitter (1e-10 of the scale) and rounding: 1e-6 of the error here.
    assert gap < 1e-5 * np.abs(exact.predict(test) - test.y).mean()
    fewer = KernelModel(solver="nystrom", landmarks=100, **settings)
    fewer.fit(train)
    # Fewer landmarks is another model: the check above can tell them apart.
    assert np.abs(fewer.predict(test) - exact.predict(test)).max() > 1e-3


def test_landmarks_fit_on_every_molecule_and_beat_an_exact_model_of_their_own(molecules):
    train, test = molecules
    nystrom = KernelModel(solver="nystrom", landmarks=100, sigma=4.0)
    nystrom.fit(train)
    assert nystrom.fitted["selection"] == "held-out training molecules"
    landmarks = nystrom.fitted["landmarks"]
    # The exact model on 100 molecules alone, same width, its own leave-one-out lambda.
    alone = KernelModel(solver="exact", sigma=4.0)
    alone.fit(train.select(np.arange(landmarks)))
    assert mae(nystrom, test) < 0.9 * mae(alone, test)
    again = KernelModel(solver="nystrom", landmarks=100, sigma=4.0)
    again.fit(train)
    assert np.array_equal(again.predict(test), nystrom.predict(test))
    other = KernelModel(solver="nystrom", landmarks=100, sigma=4.0, seed=1)
    other.fit(train)
    assert not np.array_equal(other.predict(test), nystrom.predict(test))


def test_lambda_is_walked_on_the_valid_set_when_given(molecules):
    train, test = molecules
    model = KernelModel(solver="nystrom", landmarks=100, sigma=4.0)
    selection = model.fit(train, test)
    f = model.fitted
    assert f["selection"] == "validation set"
    rows = [row for row in f["search"] if "landmarks" in row]
    assert len(rows) >= 3 and all(row["landmarks"] == 100 for row in rows)
    best = min(rows, key=lambda row: row["mae"])
    assert f["regularization"] == best["regularization"] and selection == best["mae"]
    # The chosen lambda's error on the set it was chosen on is the reported one.
    assert abs(mae(model, test) - selection) < 1e-9


def test_saved_model_holds_the_landmarks_only_and_keeps_its_symmetries(dc, molecules, tmp_path):
    train, test = molecules
    model = KernelModel(solver="nystrom", landmarks=80, model_dir=str(tmp_path / "m"))
    model.fit(train)
    model.save()
    with np.load(tmp_path / "m" / ARRAYS_FILE, allow_pickle=False) as data:
        assert data["alpha"].shape == (80, 1)
        n_elements = len(data["elements"])
        owners = np.concatenate([data[f"molecule_{e}"] for e in range(n_elements)])
    assert set(owners.tolist()) == set(range(80))
    # 80 molecules' atoms, not 300's: predictions cost what the landmarks cost.
    assert len(owners) < 0.4 * sum(c.n_atoms for c in train.X)
    config = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    assert config["hyperparameters"]["solver"] == "nystrom"
    assert config["fitted"]["landmarks"] == 80
    loaded = load_model(str(tmp_path / "m"))
    assert np.array_equal(loaded.predict(test), model.predict(test))
    c = test.X[3]
    forces = loaded.predict_forces(dc.data.NumpyDataset(np.array([c], dtype=object)))[0]
    numeric = numeric_forces(loaded, c)
    np.testing.assert_allclose(forces, numeric, atol=1e-5 * np.abs(forces).max())
    report = audit(loaded, test.select(np.arange(20)), n_samples=1)
    for symmetry in ("permutation", "translation", "rotation", "reflection"):
        assert report.holds(symmetry), report.summary


def test_auto_takes_the_nystrom_solve_past_the_exact_limit(molecules, monkeypatch):
    train, _ = molecules
    settings = kernel_settings.KernelSettings()
    assert settings.solver_for(kernel_settings.AUTO_EXACT_LIMIT) == "exact"
    assert settings.solver_for(kernel_settings.AUTO_EXACT_LIMIT + 1) == "nystrom"
    assert kernel_settings.KernelSettings(solver="exact").solver_for(10**6) == "exact"
    monkeypatch.setattr(kernel_settings, "AUTO_EXACT_LIMIT", 250)
    model = KernelModel(landmarks=50, sigma=4.0, regularization=1e-3)
    model.fit(train)
    assert model.fitted["solver"] == "nystrom" and model.fitted["landmarks"] == 50


def test_a_regularization_on_the_edge_of_the_candidates_is_warned(molecules):
    train, _ = molecules
    model = KernelModel(solver="nystrom", landmarks=100, sigma=4.0, regularizations=(1e2, 1e3))
    with pytest.warns(UserWarning, match=r"regularization=100 lies on the edge"):
        model.fit(train)
    assert "regularization=100" in model.fitted["edges"][0]


def test_bad_solver_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"solver must be one of \['auto', 'exact', 'nystrom'\]"):
        KernelModel(solver="fast")
    with pytest.raises(ValueError, match="landmarks == 0, must be >= 1"):
        KernelModel(landmarks=0)
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        KernelModel(progress="yes")


def test_vectors_computed_in_chunks_are_the_vectors_computed_at_once(molecules, monkeypatch):
    train, _ = molecules
    monkeypatch.setattr(kernel_model, "_CHUNK", 70)
    model = KernelModel(solver="exact", sigma=4.0, regularization=1e-4)
    model.fit(train)
    trained = model._trained
    stacked, name = stack_dataset(train.X, train.ids)
    index = element_index(stacked.atomic_numbers, stacked.counts, model._elements, name)
    vectors = atom_vectors(
        model.representation,
        stacked.positions,
        index,
        stacked.counts,
        len(model._elements),
        torch.device("cpu"),
    )
    at_once = trained.projection.atom_sets(vectors, index, stacked.molecule)
    for chunked, whole in zip(trained.train, at_once):
        assert np.array_equal(chunked.molecule, whole.molecule)
        torch.testing.assert_close(chunked.vectors, whole.vectors, rtol=0, atol=1e-12)


def test_a_rare_element_the_projection_sample_missed_joins_it(dc, monkeypatch):
    from dc_invariant import ConformerFeaturizer

    smiles = ["C", "CC", "CCC", "CCCC", "CO", "CCO", "CCCO", "OCCO", "CC(C)C", "CCCCC", "CCN"]
    X = ConformerFeaturizer().featurize(smiles)
    y = np.array([[c.n_atoms + 0.1 * k] for k, c in enumerate(X)])
    # Past _CHUNK molecules the projection is fitted on a sample; with 6 of 11, seed 0
    # draws none with nitrogen, whose projection was then NaN (a singular kernel).
    monkeypatch.setattr(kernel_model, "_CHUNK", 6)
    model = KernelModel(solver="exact", sigma=4.0, regularization=1e-6, seed=0)
    model.fit(dc.data.NumpyDataset(X, y))
    assert all(np.isfinite(mean).all() for mean in model._trained.projection.means)
    np.testing.assert_allclose(model.predict(dc.data.NumpyDataset(X)), y, atol=1e-3)


def test_duplicate_landmarks_grow_the_jitter_instead_of_failing(dc, molecules):
    train, test = molecules
    twice = dc.data.NumpyDataset(
        np.concatenate([train.X[:60], train.X[:60]]), np.concatenate([train.y[:60]] * 2)
    )
    # Every molecule a landmark, each twice: the landmark kernel is exactly singular.
    model = KernelModel(solver="nystrom", landmarks=120, sigma=4.0, regularization=1e-3)
    model.fit(twice)
    once = KernelModel(solver="exact", sigma=4.0, regularization=1e-3)
    once.fit(dc.data.NumpyDataset(train.X[:60], train.y[:60]))
    assert np.isfinite(model.predict(test)).all()
    # Twice the data at the same lambda is the exact fit at half the lambda, to the jitter.
    half = KernelModel(solver="exact", sigma=4.0, regularization=5e-4)
    half.fit(dc.data.NumpyDataset(train.X[:60], train.y[:60]))
    assert np.abs(model.predict(test) - half.predict(test)).max() < 1e-3
    assert np.abs(model.predict(test) - once.predict(test)).max() > 1e-3


def test_landmark_count_leaves_room_for_the_hold_out():
    from dc_invariant.models.kernel.nystrom import DEFAULT_LANDMARKS, held_out, landmark_count

    assert held_out(100_000) == 1_000 and held_out(300) == 30
    assert landmark_count(100_000, None, True) == DEFAULT_LANDMARKS
    assert landmark_count(300, None, True) == 270
    assert landmark_count(300, None, False) == 300
    assert landmark_count(300, 50, True) == 50
