"""Audits of dc_invariant's torch models on threads: the serial report, bit for bit, from
threads of this process, with torch's thread count held at one and restored."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from dc_invariant import ConformerFeaturizer
from dc_invariant.auditing import audit
from dc_invariant.models import (
    RUNTIME,
    DenseModel,
    InvariantModel,
    RotationInvariantModel,
    SchNetModel,
)
from dc_invariant.models.runtime import inference_threads, one_torch_thread_each
from dc_invariant.parallel import map_ordered


def noting_where_it_runs(model: InvariantModel) -> list[tuple[int, int, int]]:
    """Where each forward pass of ``model``'s network runs: (process, thread, torch threads)."""
    seen: list[tuple[int, int, int]] = []
    model.model.register_forward_pre_hook(
        lambda module, inputs: seen.append(
            (os.getpid(), threading.get_ident(), torch.get_num_threads())
        )
    )
    return seen


@pytest.fixture(scope="module")
def molecules(nci_smiles):
    # Four chunks of 64 (one partial): both workers get several.
    return (list(ConformerFeaturizer().featurize(nci_smiles)) * 4)[:230]


def test_our_models_audit_on_threads_of_this_process_with_one_torch_thread(molecules):
    model = RotationInvariantModel(seed=0)
    serial = audit(model, molecules, seed=3, chunk_size=64, n_samples=2)
    seen = noting_where_it_runs(model)
    before = torch.get_num_threads()
    threaded = audit(model, molecules, seed=3, chunk_size=64, n_samples=2, n_jobs=2)
    pd.testing.assert_frame_equal(threaded.molecules, serial.molecules)
    assert {pid for pid, _, _ in seen} == {os.getpid()}
    assert len({thread for _, thread, _ in seen} - {threading.get_ident()}) == 2
    assert {count for _, _, count in seen} == {1}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("output", ["invariant", "vector"])
def test_our_networks_on_threads_match_serial(molecules, output):
    # SchNet keeps scratch tensors between batches, and forces run autograd: both must stay
    # per thread. The tutorial network's in-place kernels are chosen once for all threads.
    # The dense network's matrix products would run on two MKL threads in a worker thread
    # that did not set its own count, and round differently: seen on a second chunk of 6
    # molecules, the first task of its thread.
    models = [SchNetModel(seed=1), RotationInvariantModel(seed=1)]
    if output == "invariant":
        models.append(DenseModel(n_atoms=max(m.n_atoms for m in molecules), seed=1))
    for model in models:
        for some in (molecules, molecules[:70]):
            kwargs = {"seed": 5, "chunk_size": 64, "n_samples": 1, "output": output}
            serial = audit(model, some, **kwargs)
            threaded = audit(model, some, n_jobs=2, **kwargs)
            pd.testing.assert_frame_equal(threaded.molecules, serial.molecules)


def test_one_torch_thread_each_holds_one_thread_and_restores_the_setting():
    saved, runtime = torch.get_num_threads(), RUNTIME.inference_threads
    try:
        torch.set_num_threads(2)
        RUNTIME.inference_threads = 2
        with one_torch_thread_each():
            with one_torch_thread_each():  # nested, as from two workers
                with inference_threads():  # a prediction's own context stands aside
                    assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        RUNTIME.inference_threads = runtime
        torch.set_num_threads(saved)


def test_map_ordered_on_threads_keeps_order_bounds_work_and_stops_on_error():
    consumed = []

    def tasks():
        for k in range(20):
            consumed.append(k)
            yield (k,)

    results = map_ordered(lambda k: k * k, tasks(), n_jobs=2, threads=True, in_flight=3)
    assert next(results) == 0 and len(consumed) <= 4
    assert [0, *results] == [k * k for k in range(20)]

    ran = []

    def fails_at_three(k):
        ran.append(k)
        if k == 3:
            raise ValueError("task 3 failed")
        return k

    results = map_ordered(fails_at_three, ((k,) for k in range(50)), n_jobs=2, threads=True)
    with pytest.raises(ValueError, match="task 3 failed"):
        list(results)
    assert len(ran) < 10  # the tasks queued behind the failure never ran
    assert np.array_equal(sorted(ran)[:4], [0, 1, 2, 3])


def test_the_command_line_audits_our_models_on_every_core_by_default(monkeypatch, tmp_path):
    from dc_invariant.auditing import compute
    from dc_invariant.cli import main

    calls = []

    def recording(*args, **kwargs):
        calls.append((kwargs["n_jobs"], kwargs["threads"]))
        return map_ordered(*args, **kwargs)

    monkeypatch.setattr(compute, "map_ordered", recording)
    smiles = ["--smiles", "CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
    reports = {}
    for name, extra in (("default", []), ("one", ["--n-jobs", "1"])):
        out = tmp_path / name
        assert main(["audit", "--model", "rotation", *smiles, "--out", str(out), *extra]) == 0
        reports[name] = (out / "rotation" / "audit.json").read_text()
    assert calls == [(-1, True), (1, False)]
    default, one = (json.loads(text) for text in reports.values())
    assert default["molecules"] == one["molecules"]
    spread = tmp_path / "spread.py"
    spread.write_text("def spread():\n    return lambda r, x: float((r * r).sum())\n")
    assert main(["audit", "--target", f"{spread}:spread", *smiles]) == 0
    assert calls[-1] == (1, False)  # a function is not known to be safe on threads


class KeepsItsBatch(InvariantModel):
    """A user's network whose ``make_batch`` keeps the batch on ``self``: right on one
    thread, wrong if two calls overlapped."""

    def build_network(self, settings):
        return torch.nn.Linear(1, settings.n_outputs)

    def make_batch(self, molecules):
        from dc_invariant.models import Batch

        self.kept = (molecules.centred_positions() ** 2).sum(1, keepdims=True)
        spread = np.add.reduceat(self.kept, molecules.starts)
        return Batch([spread], molecules.counts, padded=False)


class SaysItIsThreadSafe(KeepsItsBatch):
    thread_safe = True


def test_own_models_go_to_threads_only_when_their_class_says_so(monkeypatch, molecules):
    from dc_invariant.auditing import compute

    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs["threads"])
        return map_ordered(*args, **kwargs)

    monkeypatch.setattr(compute, "map_ordered", recording)
    some = molecules[:70]
    for model in (KeepsItsBatch(seed=0), SaysItIsThreadSafe(seed=0), SchNetModel(seed=0)):
        serial = audit(model, some, seed=2, chunk_size=64, n_samples=1)
        parallel = audit(model, some, seed=2, chunk_size=64, n_samples=1, n_jobs=2)
        pd.testing.assert_frame_equal(parallel.molecules, serial.molecules)
    # Serial runs never ask for threads; of the n_jobs=2 runs, only the declared classes.
    assert calls == [False, False, False, True, False, True]


class OnProcesses(RotationInvariantModel):
    """A built-in network audited in worker processes."""

    thread_safe = False


def test_worker_processes_compute_with_the_auditing_process_s_runtime(monkeypatch, molecules):
    # Forced NumPy kernels round tanh otherwise than torch's here; worker processes used
    # to start from their own defaults, and 86 of 350 deviations differed from serial.
    monkeypatch.setattr(RUNTIME, "elementwise", "numpy")
    model, some = OnProcesses(seed=1), molecules[:70]
    serial = audit(model, some, seed=5, chunk_size=64, n_samples=1)
    parallel = audit(model, some, seed=5, chunk_size=64, n_samples=1, n_jobs=2)
    pd.testing.assert_frame_equal(parallel.molecules, serial.molecules)
    monkeypatch.setattr(RUNTIME, "elementwise", "torch")  # the kernels do differ here
    torch_kernels = audit(model, some, seed=5, chunk_size=64, n_samples=1)
    assert not serial.molecules.equals(torch_kernels.molecules)
