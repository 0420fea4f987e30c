"""Saved models: checkpoints, JSON settings beside the weights, load_model."""

import json
import os

import numpy as np
import pytest
from model_zoo import MODELS, drug_conformers, first_four, labelled, objects

from dc_invariant import Conformer
from dc_invariant.models import SchNetModel, load_model
from dc_invariant.models.base import CONFIG_FILE


@pytest.fixture(scope="module")
def dataset(dc):
    return labelled(dc, drug_conformers())


@pytest.fixture(scope="module", name="first_four")
def first_four_fixture() -> list[Conformer]:
    return first_four()


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


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved dc_invariant model"):
        load_model(str(tmp_path))
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"class": "os.system", "hyperparameters": {}}))
    with pytest.raises(ValueError, match=r"unknown model class 'os\.system'"):
        load_model(str(tmp_path))


def test_deepchem_optimizers_and_schedules_are_saved_and_others_are_warned_about(
    dc, first_four, tmp_path
):
    from dc_invariant.models import RotationInvariantModel

    optimizers = dc.models.optimizers
    schedule = optimizers.ExponentialDecay(0.05, 0.5, 10)
    model = RotationInvariantModel(
        model_dir=str(tmp_path / "m"), optimizer=optimizers.GradientDescent(learning_rate=schedule)
    )
    data = dc.data.NumpyDataset(objects(first_four), np.arange(1.0, 5.0))
    model.fit(data, nb_epoch=1)
    restored = load_model(str(tmp_path / "m"))
    # It was silently Adam at 0.001 after loading, and a continued fit failed (KeyError).
    assert type(restored.optimizer).__name__ == "GradientDescent"
    rate = restored.optimizer.learning_rate
    assert (type(rate).__name__, rate.initial_rate, rate.decay_rate, rate.decay_steps) == (
        "ExponentialDecay", 0.05, 0.5, 10
    )  # fmt: skip
    restored.fit(data, nb_epoch=1, restore=True)

    # A class of the user's own cannot be rebuilt from a settings file: not written, said so.
    class Mine(optimizers.GradientDescent):
        pass

    other = RotationInvariantModel(model_dir=str(tmp_path / "o"), optimizer=Mine(0.01))
    with pytest.warns(UserWarning, match="optimizer cannot be written to the settings file"):
        other.save_checkpoint()

    # A settings file names classes of deepchem.models.optimizers only.
    path = tmp_path / "m" / CONFIG_FILE
    config = json.loads(path.read_text())
    config["torch_model"]["optimizer"]["deepchem_optimizer"] = "Dataset"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="names no DeepChem optimizer 'Dataset'"):
        load_model(str(tmp_path / "m"))


def test_numpy_integer_settings_are_saved_as_plain_json(dc, first_four, tmp_path):
    model = SchNetModel(
        n_interactions=np.int64(2),
        n_atom_basis=np.int32(8),
        n_filters=8,
        n_rbf=8,
        batch_size=np.int64(2),
        model_dir=str(tmp_path),
    )
    model.save_checkpoint()
    with open(os.path.join(tmp_path, CONFIG_FILE)) as handle:
        config = json.load(handle)
    assert config["hyperparameters"]["n_interactions"] == 2
    assert config["torch_model"]["batch_size"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    restored = load_model(str(tmp_path))
    dataset = dc.data.NumpyDataset(objects(first_four))
    np.testing.assert_array_equal(restored.predict(dataset), model.predict(dataset))


def test_a_reloaded_model_trains_at_its_own_rate_and_where_its_schedule_stopped(
    dc, first_four, tmp_path
):
    from dc_invariant.models import RotationInvariantModel

    optimizers = dc.models.optimizers
    data = dc.data.NumpyDataset(objects(first_four), np.arange(1.0, 5.0))
    model = RotationInvariantModel(model_dir=str(tmp_path / "m"), batch_size=2, seed=0)
    model.fit(data, nb_epoch=1)
    # The checkpoint's optimizer state holds 0.001; the override must be what steps use.
    faster = load_model(str(tmp_path / "m"), learning_rate=0.5)
    assert faster._pytorch_optimizer.param_groups[0]["lr"] == 0.5
    # A schedule goes on from the checkpoint's step, as if training had not stopped
    # (StepLR, behind a staircase decay, is recursive: its rate is replayed, not set).
    for schedule in (
        lambda: optimizers.PolynomialDecay(0.02, 0.0002, 6, power=1.0),
        lambda: optimizers.ExponentialDecay(0.001, 0.1, 2, staircase=True),
    ):

        def made(folder, schedule=schedule):
            return RotationInvariantModel(
                model_dir=str(tmp_path / folder), batch_size=2, dtype="float64", seed=0,
                optimizer=optimizers.Adam(learning_rate=schedule()),
            )  # fmt: skip

        straight, stopped = made("a"), made("b")
        straight.fit(data, nb_epoch=3, deterministic=True)
        stopped.fit(data, nb_epoch=1, deterministic=True)
        resumed = load_model(str(tmp_path / "b"))
        resumed.fit(data, nb_epoch=2, deterministic=True)
        rates = [m._pytorch_optimizer.param_groups[0]["lr"] for m in (straight, resumed)]
        assert rates[0] == pytest.approx(rates[1], rel=1e-12)
        np.testing.assert_array_equal(straight.predict(data), resumed.predict(data))


def test_a_model_sent_to_workers_keeps_its_unsupported_molecules(dc):
    # On Dask or worker processes the audit got a PortableModel without `unsupported`: the
    # molecules were predicted as NaN and skipped with a generic reason.
    import pickle

    from dc_invariant import ConformerFeaturizer
    from dc_invariant.models.persistence import PortableModel

    featurize = ConformerFeaturizer().featurize
    model = SchNetModel(n_atom_basis=8, n_filters=8, n_interactions=1, n_rbf=8)
    model.fit(dc.data.NumpyDataset(featurize(["C", "CC", "CCO", "CO"]), [-17, -30, -40, -52]))
    sent = pickle.loads(pickle.dumps(PortableModel(model)))
    test = featurize(["CN", "CCO"])
    assert (
        sent.unsupported(test)
        == model.unsupported(test)
        == {0: "element N (Z=7) not in the training set"}
    )
