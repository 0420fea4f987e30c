"""What every InvariantModel shares: invariance by construction, padding, DeepChem's fit /
predict / evaluate, tasks and classes, seeds, keyword checks and safe restores."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from model_zoo import (
    HOLDS,
    MODELS,
    TOLERANCE,
    as_dataset,
    drug_conformers,
    labelled,
    relative_deviation,
    transformed,
)

from dc_invariant import Conformer
from dc_invariant.models import RotationInvariantModel


@pytest.fixture(scope="module")
def conformers() -> list[Conformer]:
    return drug_conformers()


@pytest.fixture(scope="module")
def dataset(dc, conformers):
    return labelled(dc, conformers)


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_padding_never_changes_a_prediction(dc, conformers, name, dtype):
    model = MODELS[name](dtype=dtype)
    small = min(conformers, key=lambda c: c.n_atoms)
    large = max(conformers, key=lambda c: c.n_atoms)
    alone = model.predict(as_dataset(dc, [small]))
    batched = model.predict(as_dataset(dc, [small, large]))[:1]
    np.testing.assert_allclose(batched, alone, rtol=1e-12 if dtype == "float64" else 1e-6)


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


# A fresh process (about 9 s: DeepChem and torch imported again): slow, as the README says.
@pytest.mark.slow
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
    # Labels -1/+1 were one-hot encoded as class 1 for all: refused, unless unweighted.
    signs = 2.0 * y[:, 1:2] - 1.0
    with pytest.raises(ValueError, match=r"class indices 0\.\.1, got -1"):
        model.fit(dc.data.NumpyDataset(np.array(conformers), signs), nb_epoch=1)
    missing = np.where(signs < 0, -1.0, 1.0), (signs > 0).astype(float)
    model.fit(dc.data.NumpyDataset(np.array(conformers), *missing), nb_epoch=1)


def test_restore_refuses_pickled_objects(tmp_path):
    model = RotationInvariantModel(model_dir=str(tmp_path))
    model.save_checkpoint()
    [checkpoint] = model.get_checkpoints()
    data = torch.load(checkpoint, weights_only=True)
    data["payload"] = Conformer(np.zeros((1, 3)), np.zeros((1, 1)), [1])  # not a tensor
    torch.save(data, checkpoint)
    with pytest.raises(pickle.UnpicklingError):
        model.restore()


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
    ("kwargs", "error"),
    [({"batch_size": True}, TypeError), ({"batch_size": 0}, ValueError),
     ({"learning_rate": True}, TypeError), ({"learning_rate": -0.1}, ValueError),
     ({"log_frequency": 2.5}, TypeError)],
)  # fmt: skip
def test_deepchem_s_numbers_are_checked_as_the_model_s(kwargs, error):
    # DeepChem took batch_size=True as batches of one and learning_rate=True as a rate of 1.
    with pytest.raises(error):
        RotationInvariantModel(**kwargs)
