"""SchNet: locality, per-element offsets, batching, reused inference tensors, threads."""

import pickle

import numpy as np
import pytest
import torch
from model_zoo import SMALL_SCHNET, as_dataset, drug_conformers, first_four, objects, stacked

from dc_invariant import Conformer
from dc_invariant.models import SchNetModel, load_model
from dc_invariant.molecules import Molecules


@pytest.fixture(scope="module")
def conformers() -> list[Conformer]:
    return drug_conformers()


@pytest.fixture(scope="module", name="first_four")
def first_four_fixture() -> list[Conformer]:
    return first_four()


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

    # Bit for bit against autograd needs the same exp kernel as autograd: torch's.
    monkeypatch.setattr(RUNTIME, "elementwise", "torch")

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


def test_schnet_offsets_skip_missing_labels_and_unseen_elements_are_nan(dc):
    from dc_invariant import ConformerFeaturizer
    from dc_invariant.auditing import audit

    train = ConformerFeaturizer().featurize(["C", "CC", "CCC", "CCO", "CO", "OCCO", "CCCO"])
    h = np.array([(c.atomic_numbers == 1).sum() for c in train])
    heavy = np.array([(c.atomic_numbers > 1).sum() for c in train])
    y = np.column_stack([-1.5 * h - 4.0 * heavy, 2.0 * h + 7.0 * heavy])
    w = np.ones_like(y)
    # Task 1 missing on CC, CCO and OCCO (DeepChem's placeholder: y 0, w 0); C, CCC, CO and
    # CCCO still tell the three offsets apart.
    w[[1, 3, 5], 1], y[[1, 3, 5], 1] = 0.0, 0.0
    model = SchNetModel(**SMALL_SCHNET, n_tasks=2, dtype="float64", seed=0)
    model.fit(dc.data.NumpyDataset(train, y, w), nb_epoch=1)
    offsets = model.model.network.atom_offset
    # Fitted on task 1's labelled molecules only (the placeholders pulled them away).
    assert offsets[1, 1].item() == pytest.approx(2.0, abs=1e-3)
    assert offsets[6, 1].item() == pytest.approx(7.0, abs=1e-3)
    assert model.trained_elements().tolist() == [1, 6, 8]

    # Nitrogen was in no training molecule: no offset, so NaN (with a warning), not a guess.
    test = ConformerFeaturizer().featurize(["CN", "CCO"])
    with pytest.warns(UserWarning, match=r"1 molecule\(s\) are predicted as NaN, element N"):
        predicted = model.predict(dc.data.NumpyDataset(test))
    assert np.isnan(predicted[0]).all() and np.isfinite(predicted[1]).all()
    with pytest.warns(UserWarning, match="element N"):
        forces = model.predict_forces(list(test))
    assert np.isnan(forces[0]).all() and np.isfinite(forces[1]).all()
    assert model.unsupported(test) == {0: "element N (Z=7) not in the training set"}
    report = audit(model, list(test), n_samples=1)
    assert report.skipped.values.tolist() == [["0", "element N (Z=7) not in the training set"]]
    # Trained on nitrogen later: its offset is fitted then, the others' kept.
    before = offsets.clone()
    amines = ConformerFeaturizer().featurize(["CN", "CCN", "NCCN"])
    h = np.array([(c.atomic_numbers == 1).sum() for c in amines])
    n = np.array([(c.atomic_numbers == 7).sum() for c in amines])
    heavy = np.array([(c.atomic_numbers > 1).sum() for c in amines])
    y = np.column_stack([-1.5 * h - 4.0 * heavy - 3.0 * n, 2.0 * h + 7.0 * heavy])
    model.fit(dc.data.NumpyDataset(amines, y), nb_epoch=1)
    assert model.trained_elements().tolist() == [1, 6, 7, 8]
    assert torch.equal(offsets[[1, 6, 8]], before[[1, 6, 8]])
    assert offsets[7, 0].item() == pytest.approx(-7.0, abs=1e-3)
    assert np.isfinite(model.predict(dc.data.NumpyDataset(test))).all()


def test_schnet_offsets_that_explain_the_labels_leave_the_network_a_scale(dc, first_four):
    # Three molecules, labels 1, 2, 3: per-element offsets fit them exactly.
    data = dc.data.NumpyDataset(objects(first_four[:3]), np.arange(1.0, 4.0))
    model = SchNetModel(n_tasks=1)
    with pytest.warns(UserWarning, match="offsets alone explain the training labels"):
        model.fit(data, nb_epoch=2)
    counts = np.array([c.n_atoms for c in first_four[:3]])
    spread = (np.arange(1.0, 4.0) / counts).std()
    scale = float(model.model.network.scale[0])
    assert scale >= 0.99 * 0.01 * spread  # was ~1e-8: the network silenced for good
    # More data later: the network's part is there to learn from.
    forces = model.predict_forces(first_four[:3])
    assert max(np.abs(f).max() for f in forces) > 1e-6


def test_schnet_filters_never_see_subnormal_gaussians(conformers):
    # float32 Gaussians of far pairs underflow to subnormal numbers, which CPUs multiply on
    # a slow path; the network sets them to zero in both its paths. 25 Gaussians on 5 A
    # (benchmarks/schnet.py's) are narrow enough to underflow.
    model = SchNetModel(**{**SMALL_SCHNET, "n_rbf": 25}, seed=0)  # float32
    network = model.model.network
    tiny = torch.finfo(torch.float32).tiny
    distances = torch.linspace(0.0, 5.0, 2001)
    raw = torch.exp(-network.gamma * (distances[:, None] - network.centers) ** 2)
    assert bool(((raw > 0) & (raw < tiny)).any())  # what the flush is for
    seen = []
    network.interactions[0].filter[0].register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone())
    )
    arrays = stacked(conformers)
    batch = model.make_batch(Molecules.from_arrays(*arrays, model.n_features))
    inputs, _, _ = model._prepare_batch((batch.inputs, None, None))
    with torch.enable_grad():
        trained_path = model.model(inputs).detach().numpy()
    inference = model.predict_arrays(*arrays)  # one batch: the kept tensor holds its pairs
    seen.append(network._scratch.tensors["rbf"][: len(seen[0])].clone())
    assert len(seen) == 2
    for rbf in seen:
        assert float(rbf.max()) > 0.5 and int((rbf == 0).sum()) > 0  # near and far pairs
        assert not bool(((rbf > 0) & (rbf < tiny)).any())
    np.testing.assert_allclose(trained_path, inference, rtol=1e-5)


def test_schnet_an_element_unlabelled_in_one_task_is_nan_in_that_task(dc):
    from dc_invariant import ConformerFeaturizer

    train = ConformerFeaturizer().featurize(["C", "CC", "CCO", "CO", "CN", "CCN", "NCCN"])
    h, c, n, o = ((np.array([(m.atomic_numbers == z).sum() for m in train])) for z in (1, 6, 7, 8))
    y = np.column_stack([-1.0 * h - 30.0 * c - 5.0 * n - 70.0 * o, 2.0 * h + 7.0 * c + 9.0 * n])
    w = np.ones_like(y)
    w[4:, 1] = 0.0  # task 1 is missing on every molecule with nitrogen
    model = SchNetModel(**SMALL_SCHNET, n_tasks=2, dtype="float64", seed=0)
    model.fit(dc.data.NumpyDataset(train, y, w), nb_epoch=1)
    assert model.trained_elements().tolist() == [1, 6, 8]
    test = ConformerFeaturizer().featurize(["CN", "CCO"])
    with pytest.warns(UserWarning, match="element N"):
        predicted = model.predict(dc.data.NumpyDataset(test))
    # Task 0 knows nitrogen; task 1 would have added 0 for it (17 against 47).
    assert np.isfinite(predicted[0, 0]) and np.isnan(predicted[0, 1])
    assert np.isfinite(predicted[1]).all()
    assert model.unsupported(test) == {
        0: "element N (Z=7) not in the training labels of every task"
    }
    # Labelled later for task 1: its task-1 offset is fitted, task 0's kept.
    offsets = model.model.network.atom_offset
    before = offsets[7, 0].item()
    model.fit(dc.data.NumpyDataset(train[4:], y[4:]), nb_epoch=1)
    assert offsets[7, 0].item() == before
    assert offsets[7, 1].item() == pytest.approx(9.0, abs=1e-3)
    assert model.trained_elements().tolist() == [1, 6, 7, 8]


def test_schnet_offsets_weigh_labels_as_the_loss_does(dc):
    from dc_invariant import ConformerFeaturizer

    train = ConformerFeaturizer().featurize(["C", "CC", "CCO", "CO", "OCCO", "CCCO", "CCC"])
    h, c, o = ((np.array([(m.atomic_numbers == z).sum() for m in train])) for z in (1, 6, 8))
    y = -1.0 * h - 30.0 * c - 70.0 * o
    w = np.ones_like(y)
    y[:3] += 200.0  # three wrong labels the user weighs at almost nothing
    w[:3] = 1e-6
    model = SchNetModel(**SMALL_SCHNET, dtype="float64", seed=0)
    model.fit(dc.data.NumpyDataset(train, y, w), nb_epoch=1)
    fitted = model.model.network.atom_offset[[1, 6, 8], 0].detach().numpy()
    np.testing.assert_allclose(fitted, [-1.0, -30.0, -70.0], atol=1e-2)


def test_schnet_labels_shifted_by_a_transformer_get_a_constant(dc, conformers, tmp_path):
    # NormalizationTransformer subtracts the labels' mean: with sum pooling no per-element
    # offset holds that constant, and the network had to learn it.
    h, c, o = (np.array([(m.atomic_numbers == z).sum() for m in conformers]) for z in (1, 6, 8))
    y = (-1.0 * h - 30.0 * c - 70.0 * o)[:, None]
    raw = SchNetModel(**SMALL_SCHNET, dtype="float64", seed=0)
    raw.fit(dc.data.NumpyDataset(np.array(conformers), y), nb_epoch=1)
    assert raw.model.network.molecule_offset.item() == 0.0
    predicted = {}
    for shift in (1000.0, -500.0):
        model = SchNetModel(**SMALL_SCHNET, dtype="float64", seed=0, model_dir=str(tmp_path))
        model.fit(dc.data.NumpyDataset(np.array(conformers), y + shift), nb_epoch=2)
        assert model.model.network.molecule_offset.item() == pytest.approx(shift, abs=1e-2)
        predicted[shift] = model.predict(dc.data.NumpyDataset(np.array(conformers))) - shift
    # Labels exact in element counts: offsets and the constant predict them, whatever shift.
    for shift in predicted:
        np.testing.assert_allclose(predicted[shift], y, atol=2.0)  # 160 without the constant
    # A checkpoint written before the constant existed loads with it at 0.
    model.save_checkpoint()
    for path in model.get_checkpoints():
        data = torch.load(path, weights_only=True)
        del data["model_state_dict"]["network.molecule_offset"]
        torch.save(data, path)
    old = load_model(str(tmp_path))
    assert old.model.network.molecule_offset.item() == 0.0
