import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import DRUG_LIKE

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant.models import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    SchNetModel,
    TranslationInvariantModel,
    load_model,
)
from dc_invariant.models.base import CONFIG_FILE
from dc_invariant.molecules import Molecules
from dc_invariant.reference import NETWORKS, tutorial_case
from dc_invariant.symmetry import (
    mixing_permutation,
    random_reflection,
    random_rotation,
    random_translation,
    transform,
)

SMALL_SCHNET = {"n_atom_basis": 16, "n_filters": 16, "n_interactions": 2, "n_rbf": 12}
MODELS = {
    "dense": lambda **kw: DenseModel(n_atoms=50, **kw),
    "permutation": PermutationInvariantModel,
    "translation": TranslationInvariantModel,
    "rotation": RotationInvariantModel,
    "schnet": lambda **kw: SchNetModel(**SMALL_SCHNET, **kw),
}
# What each model is invariant to, by construction.
HOLDS = {
    "dense": set(),
    "permutation": {"permutation"},
    "translation": {"permutation", "translation"},
    "rotation": {"permutation", "translation", "rotation", "reflection"},
    "schnet": {"permutation", "translation", "rotation", "reflection"},
}
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


@pytest.fixture(scope="module")
def conformers() -> list[Conformer]:
    return list(ConformerFeaturizer(random_seed=1).featurize(DRUG_LIKE))


@pytest.fixture(scope="module")
def dataset(dc, conformers):
    y = np.array([[0.3 * c.n_atoms + float((c.atomic_numbers == 8).sum())] for c in conformers])
    return dc.data.NumpyDataset(np.array(conformers, dtype=object), y, ids=np.array(DRUG_LIKE))


def as_dataset(dc, items):
    return dc.data.NumpyDataset(np.array(items, dtype=object))


def stacked(conformers):
    """The arguments of `predict_arrays` for these molecules."""
    return (
        np.concatenate([c.positions for c in conformers]),
        np.concatenate([c.features for c in conformers]),
        np.concatenate([c.atomic_numbers for c in conformers]),
        [c.n_atoms for c in conformers],
    )


def transformed(conformers, symmetry: str, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for c in conformers:
        if symmetry == "permutation":
            out.append(transform(c, permutation=mixing_permutation(c.atomic_numbers, rng)))
        elif symmetry == "translation":
            out.append(transform(c, translation=random_translation(rng, 10.0)))
        elif symmetry == "rotation":
            out.append(transform(c, rotation=random_rotation(rng)))
        else:
            out.append(transform(c, rotation=random_reflection(rng)))
    return out


def relative_deviation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.abs(a), 1e-12)


@pytest.mark.parametrize("name", ["dense", "permutation", "translation", "rotation"])
def test_float64_models_reproduce_the_numpy_reference(dc, name):
    case = tutorial_case()
    make = {"dense": lambda **kw: DenseModel(n_atoms=12, **kw)}.get(name, MODELS[name])
    model = make(n_features=2, dtype="float64")
    model.load_reference_weights(case.weights[name])
    molecule = Conformer(case.r, case.x, np.array([6] * 4 + [1] * 8))
    for r in (case.r, case.permuted, case.translated, case.rotated):
        expected = NETWORKS[name](r, case.x, *case.weights[name])
        got = model.predict(as_dataset(dc, [Conformer(r, case.x, molecule.atomic_numbers)]))
        assert got.dtype == np.float64
        assert abs(got[0, 0] - expected) <= 1e-10 * abs(expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_invariances_match_the_architecture(dc, conformers, name, dtype):
    model = MODELS[name](dtype=dtype, seed=3)
    base = model.predict(as_dataset(dc, conformers)).reshape(-1)
    for symmetry in ("permutation", "translation", "rotation", "reflection"):
        moved = model.predict(as_dataset(dc, transformed(conformers, symmetry, seed=7))).reshape(-1)
        worst = relative_deviation(base, moved).max()
        if symmetry in HOLDS[name]:
            assert worst <= TOLERANCE[dtype], (name, symmetry, worst)
        else:
            assert worst > 1e-3, (name, symmetry, worst)


def test_negative_control_a_network_reading_raw_coordinates_fails(dc, conformers):
    # PermutationInvariantModel's first layer reads raw x, y, z: moving or turning the
    # molecule must change its output, or the invariance checks above could not fail.
    model = PermutationInvariantModel(dtype="float64")
    base = model.predict(as_dataset(dc, conformers)).reshape(-1)
    for symmetry in ("translation", "rotation"):
        moved = model.predict(as_dataset(dc, transformed(conformers, symmetry, seed=1))).reshape(-1)
        assert (relative_deviation(base, moved) > 1e-3).mean() > 0.5


@pytest.mark.parametrize("name", ["translation", "rotation", "schnet"])
def test_float32_pair_models_survive_large_translations(dc, conformers, name):
    # Each centres molecules in float64 before the cast; without it float32 keeps ~1e-4 Å
    # of a coordinate 1,000 Å out, and predictions move by ~1e-5 (relative) and more.
    model = MODELS[name](seed=2)
    base = model.predict(as_dataset(dc, conformers)).reshape(-1)
    rng = np.random.default_rng(0)
    far = [transform(c, translation=random_translation(rng, 1e3)) for c in conformers]
    moved = model.predict(as_dataset(dc, far)).reshape(-1)
    assert relative_deviation(base, moved).max() < 1e-6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_padding_never_changes_a_prediction(dc, conformers, name, dtype):
    model = MODELS[name](dtype=dtype)
    small = min(conformers, key=lambda c: c.n_atoms)
    large = max(conformers, key=lambda c: c.n_atoms)
    alone = model.predict(as_dataset(dc, [small]))
    batched = model.predict(as_dataset(dc, [small, large]))[:1]
    np.testing.assert_allclose(batched, alone, rtol=1e-12 if dtype == "float64" else 1e-6)


def test_dense_model_rejects_molecules_above_its_size(dc, conformers):
    model = DenseModel(n_atoms=10)
    with pytest.raises(
        ValueError, match=r"molecule 0 \(id .*\) .* has \d+ atoms, more than .*n_atoms=10"
    ):
        model.predict(as_dataset(dc, [max(conformers, key=lambda c: c.n_atoms)]))


@pytest.mark.parametrize("name", ["rotation", "schnet"])
def test_fit_predict_evaluate_with_a_normalisation_transformer(dc, dataset, name, tmp_path):
    disk = dc.data.DiskDataset.from_numpy(
        dataset.X, dataset.y, ids=dataset.ids, data_dir=str(tmp_path)
    )
    normalise = dc.trans.NormalizationTransformer(transform_y=True, dataset=disk)
    train = normalise.transform(disk)
    model = MODELS[name](seed=0, batch_size=4, learning_rate=0.01)
    metric = dc.metrics.Metric(dc.metrics.mean_absolute_error)
    before = model.evaluate(train, [metric], [normalise])["mean_absolute_error"]
    model.fit(train, nb_epoch=40)
    after = model.evaluate(train, [metric], [normalise])["mean_absolute_error"]
    assert after < 0.5 * before
    raw = model.predict(train)
    np.testing.assert_allclose(
        model.predict(train, [normalise]), normalise.untransform(raw), rtol=1e-6
    )


def test_training_does_not_warn_about_deepchem_loss_bookkeeping():
    # torch gives this warning once per process, so it is looked for in a fresh one.
    code = """
import warnings
import numpy as np
import deepchem as dc
from dc_invariant import ConformerFeaturizer
from dc_invariant.models import RotationInvariantModel
warnings.filterwarnings("error", message="Converting a tensor with requires_grad")
X = ConformerFeaturizer(random_seed=0).featurize(["CCO", "CCN", "c1ccccc1"])
data = dc.data.NumpyDataset(X, np.arange(3.0).reshape(-1, 1))
print(RotationInvariantModel(log_frequency=1).fit(data, nb_epoch=1))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.isfinite(float(done.stdout.strip().splitlines()[-1]))


def test_several_tasks_and_classification(dc, conformers):
    y = np.stack([[c.n_atoms, (c.atomic_numbers == 7).any(), c.features.sum()] for c in conformers])
    multi = RotationInvariantModel(n_tasks=3)
    assert multi.predict(dc.data.NumpyDataset(np.array(conformers), y)).shape == (
        len(conformers),
        3,
    )

    has_nitrogen = dc.data.NumpyDataset(np.array(conformers), y[:, 1:2].astype(float))
    model = RotationInvariantModel(
        mode="classification", n_classes=2, batch_size=5, learning_rate=0.05
    )
    model.fit(has_nitrogen, nb_epoch=60)
    probabilities = model.predict(has_nitrogen)
    assert probabilities.shape == (len(conformers), 1, 2)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    accuracy = (probabilities[:, 0, 1].round() == y[:, 1]).mean()
    assert accuracy >= 0.9
    score = model.evaluate(has_nitrogen, [dc.metrics.Metric(dc.metrics.roc_auc_score)])
    assert score["roc_auc_score"] > 0.9


@pytest.mark.parametrize("name", ["dense", "rotation", "schnet"])
def test_checkpoints_and_model_dir_restore_bit_identical_predictions(dataset, name, tmp_path):
    folder = str(tmp_path / name)
    model = MODELS[name](seed=5, batch_size=4, model_dir=folder, learning_rate=0.01)
    model.fit(dataset, nb_epoch=3)
    model.save_checkpoint()
    expected = model.predict(dataset)

    again = MODELS[name](seed=99, batch_size=4, model_dir=folder, learning_rate=0.01)
    again.restore()
    np.testing.assert_array_equal(again.predict(dataset), expected)

    reloaded = load_model(folder)
    assert type(reloaded) is type(model)
    np.testing.assert_array_equal(reloaded.predict(dataset), expected)
    with open(os.path.join(folder, CONFIG_FILE)) as handle:
        config = json.load(handle)
    assert config["class"] == type(model).__name__
    assert config["hyperparameters"]["seed"] == 5 and config["torch_model"]["batch_size"] == 4


def test_restore_refuses_pickled_objects(tmp_path):
    model = RotationInvariantModel(model_dir=str(tmp_path))
    model.save_checkpoint()
    [checkpoint] = model.get_checkpoints()
    data = torch.load(checkpoint, weights_only=True)
    data["payload"] = Conformer(np.zeros((1, 3)), np.zeros((1, 1)), [1])  # not a tensor
    torch.save(data, checkpoint)
    with pytest.raises(pickle.UnpicklingError):
        model.restore()


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved dc_invariant model"):
        load_model(str(tmp_path))
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"class": "os.system", "hyperparameters": {}}))
    with pytest.raises(ValueError, match=r"unknown model class 'os\.system'"):
        load_model(str(tmp_path))


def test_same_seed_same_training(dataset):
    runs = []
    for _ in range(2):
        model = RotationInvariantModel(seed=4, batch_size=3)
        model.fit(dataset, nb_epoch=3)
        runs.append(model.predict(dataset))
    np.testing.assert_array_equal(runs[0], runs[1])
    other = RotationInvariantModel(seed=5, batch_size=3)
    other.fit(dataset, nb_epoch=3)
    assert not np.array_equal(other.predict(dataset), runs[0])


def test_typo_in_torch_model_keyword_is_an_error():
    with pytest.raises(TypeError, match=r"unknown keyword argument\(s\) \['batch_sise'\]"):
        RotationInvariantModel(batch_sise=7)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: RotationInvariantModel(mode="ranking"), ValueError, "mode must be one of"),
        (lambda: RotationInvariantModel(dtype="float16"), ValueError, "dtype must be one of"),
        (
            lambda: RotationInvariantModel(activation="gelu"),
            ValueError,
            "activation must be one of",
        ),
        (lambda: RotationInvariantModel(n_tasks=0), ValueError, "n_tasks == 0, must be >= 1"),
        (lambda: RotationInvariantModel(n_features=2.5), TypeError, "n_features must be an inst"),
        (lambda: RotationInvariantModel(hidden=0), ValueError, "hidden == 0, must be >= 1"),
        (lambda: RotationInvariantModel(seed=-1), ValueError, "seed == -1, must be >= 0"),
        (lambda: RotationInvariantModel(seed=True), TypeError, "seed must be an int"),
        (lambda: RotationInvariantModel(cutoff=float("nan")), ValueError, "finite"),
        (
            lambda: RotationInvariantModel(mode="classification", n_classes=1),
            ValueError,
            "n_classes == 1, must be >= 2",
        ),
        (lambda: DenseModel(n_atoms=0), ValueError, "n_atoms == 0, must be >= 1"),
        (lambda: SchNetModel(pooling="max"), ValueError, "pooling must be one of"),
        (lambda: SchNetModel(cutoff=-1.0), ValueError, r"cutoff \(Å\) == -1.0, must be > 0"),
        (lambda: SchNetModel(n_interactions=0), ValueError, "n_interactions == 0, must be >= 1"),
        (lambda: SchNetModel(n_rbf=np.int64(1)), ValueError, "n_rbf == 1, must be >= 2"),
    ],
)
def test_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_datapoints_name_the_molecule(dc, conformers):
    model = RotationInvariantModel()
    good = conformers[0]
    wide = Conformer(good.positions, np.zeros((good.n_atoms, 4)), good.atomic_numbers, "wide")
    broken = Conformer(good.positions.copy(), good.features, good.atomic_numbers, "nan")
    broken.positions[0, 0] = np.nan
    cases = [
        (np.array([]), "molecule 1 .* is ndarray, not a Conformer"),
        (wide, r"molecule 1 .*\('wide'\) has 4 features per atom, the model expects n_features=11"),
        (broken, r"molecule 1 .*\('nan'\) has NaN or infinite coordinates"),
    ]
    for bad, match in cases:
        X = np.empty(3, dtype=object)
        X[0], X[1], X[2] = good, bad, good
        with pytest.raises(ValueError, match=match):
            model.predict(dc.data.NumpyDataset(X))


@pytest.mark.parametrize("name", ["translation", "rotation", "schnet"])
def test_forces_are_the_energy_gradient_and_equivariant(dc, conformers, name):
    model = MODELS[name](dtype="float64", seed=1)
    molecules = conformers[:4]
    forces = model.predict_forces(as_dataset(dc, molecules))
    assert [f.shape for f in forces] == [(c.n_atoms, 3) for c in molecules]
    # Finite differences of the energy on one coordinate of each molecule.
    for c, f in zip(molecules, forces):
        step = 1e-5
        plus, minus = c.positions.copy(), c.positions.copy()
        plus[1, 2] += step
        minus[1, 2] -= step
        energies = model.predict(
            as_dataset(dc, [Conformer(p, c.features, c.atomic_numbers) for p in (plus, minus)])
        )
        assert f[1, 2] == pytest.approx(
            -(energies[0, 0] - energies[1, 0]) / (2 * step), rel=1e-5, abs=1e-8
        )
        np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-9)  # translation invariance
    rng = np.random.default_rng(3)
    rotation = random_rotation(rng)
    turned = model.predict_forces(
        as_dataset(dc, [transform(c, rotation=rotation) for c in molecules])
    )
    for f, g in zip(forces, turned):
        # Forces of a rotation-invariant energy turn with the molecule; the translation
        # network's energy is not rotation invariant, so its forces must not.
        rotates = np.allclose(g, f @ rotation.T, atol=1e-9)
        assert rotates == (name != "translation")
    order = mixing_permutation(molecules[0].atomic_numbers, rng)
    [renumbered] = model.predict_forces(
        as_dataset(dc, [transform(molecules[0], permutation=order)])
    )
    np.testing.assert_allclose(renumbered, forces[0][order], atol=1e-9)


def test_forces_undo_the_label_normalisation(dc, dataset):
    normalise = dc.trans.NormalizationTransformer(transform_y=True, dataset=dataset)
    model = RotationInvariantModel(dtype="float64")
    plain = model.predict_forces(dataset)
    scaled = model.predict_forces(dataset, transformers=[normalise])
    np.testing.assert_allclose(scaled[0], plain[0] * normalise.y_stds[0], rtol=1e-12)
    with pytest.raises(ValueError, match="use a regression model"):
        RotationInvariantModel(mode="classification").predict_forces(dataset)


def test_schnet_is_local_and_fits_per_element_offsets(dc, conformers, tmp_path):
    model = SchNetModel(**SMALL_SCHNET, cutoff=4.0, dtype="float64", model_dir=str(tmp_path))
    a, b = conformers[0], conformers[1]
    apart = Conformer(
        np.concatenate([a.positions, b.positions + np.array([30.0, 0.0, 0.0])]),
        np.concatenate([a.features, b.features]),
        np.concatenate([a.atomic_numbers, b.atomic_numbers]),
    )
    energies = model.predict(as_dataset(dc, [a, b, apart]))[:, 0]
    assert energies[2] == pytest.approx(energies[0] + energies[1], rel=1e-10)

    y = np.array(
        [
            [-1.5 * (c.atomic_numbers == 1).sum() - 4.0 * (c.atomic_numbers > 1).sum()]
            for c in conformers
        ]
    )
    model.fit(dc.data.NumpyDataset(np.array(conformers), y), nb_epoch=1)
    network = model.model.network
    assert bool(network.standardized)
    assert network.atom_offset[1, 0].item() == pytest.approx(-1.5, abs=1e-4)
    assert network.atom_offset[6, 0].item() == pytest.approx(-4.0, abs=1e-4)
    model.save_checkpoint()
    reloaded = load_model(str(tmp_path))
    assert bool(reloaded.model.network.standardized)
    assert reloaded.model.network.atom_offset[6, 0].item() == network.atom_offset[6, 0].item()


def test_schnet_batches_and_folded_shift_leave_predictions_unchanged(conformers):
    from dc_invariant.models.schnet import _two_layers

    model = SchNetModel(**SMALL_SCHNET, dtype="float64", seed=2)
    arrays = stacked(conformers)
    one_batch = model.predict_arrays(*arrays, batch_atoms=100_000)
    np.testing.assert_allclose(model.predict_arrays(*arrays, batch_atoms=30), one_batch, rtol=1e-12)
    # The shifted softplus's -log 2, folded into the next bias, is the same function.
    block = model.model.network.interactions[0].filter
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(40, 12)))
    np.testing.assert_allclose(_two_layers(block, x).detach(), block(x).detach(), atol=1e-12)


def test_schnet_inference_reuses_pair_tensors_and_matches_autograd(conformers, monkeypatch):
    from dc_invariant.models import RUNTIME

    model = SchNetModel(**SMALL_SCHNET, dtype="float64", seed=4)
    arrays = stacked(conformers)
    inference = model.predict_arrays(*arrays)
    scratch = model.model.network._scratch.tensors
    kept = {name: tensor.data_ptr() for name, tensor in scratch.items()}
    assert set(kept) == {"rbf", "hidden", "weights"}
    # Smaller batches fit in the tensors of the first call: nothing is allocated again.
    smaller = model.predict_arrays(*arrays, batch_atoms=40)
    np.testing.assert_allclose(smaller, inference, rtol=1e-12)
    assert {name: tensor.data_ptr() for name, tensor in scratch.items()} == kept
    # The training path (autograd, fresh tensors) gives the same numbers to the last bit.
    batch = model.make_batch(Molecules.from_arrays(*arrays, model.n_features))
    inputs, _, _ = model._prepare_batch((batch.inputs, None, None))
    with torch.enable_grad():
        trained_path = model.model(inputs).detach().numpy()
    np.testing.assert_array_equal(trained_path, inference)
    # Tensors first made under torch.inference_mode serve later predictions too.
    model.model.network._scratch.tensors.clear()
    with torch.inference_mode():
        np.testing.assert_array_equal(model.predict_arrays(*arrays), inference)
    np.testing.assert_array_equal(model.predict_arrays(*arrays), inference)
    # Past RUNTIME.schnet_keep_bytes a batch's tensors are its own and are not kept.
    monkeypatch.setattr(RUNTIME, "schnet_keep_bytes", 1_000)
    model.model.network._scratch.tensors.clear()
    np.testing.assert_allclose(model.predict_arrays(*arrays, batch_atoms=40), inference, rtol=1e-12)
    assert all(tensor.nbytes <= 1_000 for tensor in scratch.values())
    monkeypatch.undo()
    model.predict_arrays(*arrays)
    # A copy of the network (Dask pickles models for its workers) starts without them.
    copied = pickle.loads(pickle.dumps(model.model.network))
    assert copied._scratch.tensors == {} and len(scratch) == 3


def test_schnet_predictions_from_threads_sharing_one_model(dc, conformers):
    from concurrent.futures import ThreadPoolExecutor

    model = SchNetModel(**SMALL_SCHNET, dtype="float64", seed=5)
    # Different molecules per thread, so tensors shared between threads would mix them up.
    datasets = [as_dataset(dc, conformers[k::2] * 20) for k in (0, 1)]
    alone = [model.predict(d) for d in datasets]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(model.predict, datasets * 3))
    for k, result in enumerate(together):
        np.testing.assert_array_equal(result, alone[k % 2])
