"""Local processes and a real Dask cluster give the serial results, in order, bit for bit."""

import os
import signal
import sys
import time

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import torch

from dc_invariant import ConformerFeaturizer
from dc_invariant.auditing import audit
from dc_invariant.models import Batch, InvariantModel, RotationInvariantModel
from dc_invariant.parallel import check_workers, map_ordered

# Dask clusters and example scripts: minutes on a busy machine.
pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")

# Dask workers are separate processes that cannot import this test module by name; ship
# its functions by value instead.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.fixture(scope="module")
def molecules(nci_smiles):
    # 150 molecules: three chunks of 64, one of them partial.
    return (list(ConformerFeaturizer().featurize(nci_smiles)) * 3)[:150]


def spread(r, x):
    return ((r - r.mean(axis=0)) ** 2).sum() * x.sum()


def first_x(r, x):
    return r[:, 0].sum()


def square(k):
    return k * k


def test_map_ordered_keeps_order_and_bounds_work_in_flight(client):
    consumed = []

    def tasks():
        for k in range(20):
            consumed.append(k)
            yield (k,)

    results = map_ordered(square, tasks(), scheduler=client, in_flight=3)
    assert next(results) == 0
    assert len(consumed) <= 3  # nothing beyond the window was submitted before
    assert [0, *results] == [k * k for k in range(20)]
    assert list(map_ordered(square, ((k,) for k in range(9)), n_jobs=2)) == [
        k * k for k in range(9)
    ]


def test_featurize_on_dask_matches_serial(client, nci_smiles):
    inputs = [*nci_smiles[:40], "not-a-smiles"]
    serial = ConformerFeaturizer()
    remote = ConformerFeaturizer(scheduler=client)
    expected, got = serial.featurize(inputs), remote.featurize(inputs)
    assert len(got) == len(expected) == len(inputs)
    for a, b in zip(expected, got):
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and b.size == 0
        else:
            np.testing.assert_array_equal(a.positions, b.positions)
            np.testing.assert_array_equal(a.features, b.features)
            assert a.smiles == b.smiles
    assert remote.failures == serial.failures


@pytest.mark.parametrize("target", ["function", "model"])
def test_audit_on_processes_and_dask_matches_serial(client, molecules, target):
    if target == "model":
        make = RotationInvariantModel(seed=1)
    else:
        make = first_x
    serial = audit(make, molecules, seed=4, chunk_size=64)
    for workers in ({"n_jobs": 2}, {"scheduler": client}):
        parallel = audit(make, molecules, seed=4, chunk_size=64, **workers)
        pd.testing.assert_frame_equal(parallel.molecules, serial.molecules)
        pd.testing.assert_frame_equal(parallel.skipped, serial.skipped)
    assert serial.holds("rotation") == (target == "model")


class SpreadModel(InvariantModel):
    """A user's own network: defined here, registered nowhere a worker would import."""

    def build_network(self, settings):
        return SpreadNetwork(settings.n_outputs)

    def make_batch(self, molecules):
        return Batch([molecules.centred_positions(), molecules.counts], molecules.counts, False)


class SpreadNetwork(torch.nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.out = torch.nn.Linear(1, n_outputs)

    def forward(self, positions, counts):
        molecule = torch.repeat_interleave(torch.arange(len(counts)), counts)
        spread = torch.zeros(len(counts), 1, dtype=positions.dtype)
        spread.index_add_(0, molecule, (positions**2).sum(1, keepdim=True))
        return self.out(spread)


def every_model(molecules, dc):
    from dc_invariant.models import (
        DenseModel,
        KernelModel,
        PermutationInvariantModel,
        SchNetModel,
        TranslationInvariantModel,
    )

    kernel = KernelModel(sigma=4.0, regularization=1e-6)
    kernel.fit(dc.data.NumpyDataset(np.array(molecules[:20], dtype=object), np.arange(20.0)))
    n_atoms = max(m.n_atoms for m in molecules)
    return {
        "dense": DenseModel(n_atoms=n_atoms, seed=1),
        "permutation": PermutationInvariantModel(seed=1),
        "translation": TranslationInvariantModel(seed=1),
        "rotation": RotationInvariantModel(seed=1),
        "schnet": SchNetModel(seed=1),
        "kernel": kernel,
        "user subclass": SpreadModel(seed=1),
    }


def test_every_model_class_audits_on_processes_and_dask_as_in_serial(client, molecules, dc):
    some = molecules[:70]  # two chunks of 64
    for name, model in every_model(some, dc).items():
        serial = audit(model, some, seed=4, chunk_size=64, n_samples=1)
        for workers in ({"n_jobs": 2}, {"scheduler": client}):
            parallel = audit(model, some, seed=4, chunk_size=64, n_samples=1, **workers)
            pd.testing.assert_frame_equal(parallel.molecules, serial.molecules, obj=name)
            pd.testing.assert_frame_equal(parallel.skipped, serial.skipped, obj=name)


def test_dead_worker_loses_and_duplicates_nothing(client, molecules, tmp_path):
    marker = tmp_path / "killed-once"
    calls = tmp_path / "calls"
    calls.mkdir()

    def dies_once(r, x):
        # The first call that sees molecule 100 (or its repeats) kills its whole worker
        # process, as an out-of-memory kill would; Dask must rerun that chunk elsewhere.
        if len(r) == len(molecules[100].positions) and np.allclose(r, molecules[100].positions):
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return spread(r, x)

    serial = audit(spread, molecules, seed=2, chunk_size=64)
    store = tmp_path / "store"
    survived = audit(
        dies_once, molecules, seed=2, chunk_size=64, scheduler=client, store=str(store)
    )
    assert marker.exists()  # a worker really died
    pd.testing.assert_frame_equal(survived.molecules, serial.molecules)
    assert len(survived.molecules) == len(molecules) * 5  # 4 symmetries + control, none lost
    assert sorted(p.name for p in store.glob("chunk_*.json")) == [
        "chunk_000000000.json",
        "chunk_000000064.json",
        "chunk_000000128.json",
    ]


def test_worker_arguments_are_checked():
    with pytest.raises(ValueError, match="n_jobs must be a non-zero int"):
        check_workers(0, None)
    with pytest.raises(ValueError, match="not both"):
        check_workers(2, "tcp://127.0.0.1:8786")
    with pytest.raises(TypeError, match=r"scheduler must be a dask\.distributed\.Client"):
        check_workers(1, 8786)


def test_cli_runs_on_a_scheduler_address(client, capsys):
    from dc_invariant.cli import main

    args = ["audit", "--model", "rotation", "--smiles", "CCO", "c1ccccc1O", "C1CC"]
    assert main(args) == 0
    serial = capsys.readouterr().out
    assert main([*args, "--scheduler", client.scheduler.address]) == 0
    assert capsys.readouterr().out == serial
    assert "skipped C1CC: RDKit could not parse the SMILES" in serial


def clients_connected(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))


def test_clients_opened_from_an_address_are_closed(client, molecules):
    before = clients_connected(client)
    address = client.scheduler.address
    assert list(map_ordered(square, [(3,)], scheduler=address)) == [9]
    ConformerFeaturizer(scheduler=address).featurize(["CCO"])
    audit(spread, molecules[:2], n_samples=1, scheduler=address)
    deadline = time.monotonic() + 10
    while clients_connected(client) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert clients_connected(client) == before
    assert client.status == "running"  # the caller's own client is left open
