"""Run-time settings: reachable from the package's public names, checked, and read live."""

import pytest
import torch

from dc_invariant.models import RUNTIME, RotationInvariantModel
from dc_invariant.models.runtime import inference_threads


def test_inference_threads_are_read_when_a_prediction_runs(monkeypatch):
    monkeypatch.setattr(RUNTIME, "inference_threads", 1)
    before = torch.get_num_threads()
    with inference_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setattr(RUNTIME, "inference_threads", 0)  # torch's own setting
    with inference_threads():
        assert torch.get_num_threads() == before
    assert RotationInvariantModel(seed=0).predict_arrays(
        [[0.0, 0, 0], [1.0, 0, 0]], [[1.0] * 11] * 2, [1, 1], [2]
    ).shape == (1, 1)


def test_bad_settings_are_refused_at_once():
    with pytest.raises(ValueError, match="inference_threads"):
        RUNTIME.inference_threads = -1
    with pytest.raises(TypeError, match="schnet_keep_bytes"):
        RUNTIME.schnet_keep_bytes = "64 MiB"
    assert RUNTIME.inference_threads == 1 and RUNTIME.schnet_keep_bytes == 64 << 20


def test_training_runs_on_runtime_training_threads(monkeypatch, drug_dataset):
    seen = []

    def record(model, step):
        seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(RUNTIME, "training_threads", 1)
        RotationInvariantModel(seed=0).fit(drug_dataset, nb_epoch=1, callbacks=[record])
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2  # restored after fit
        seen.clear()
        monkeypatch.setattr(RUNTIME, "training_threads", 0)  # torch's own setting
        RotationInvariantModel(seed=0).fit(drug_dataset, nb_epoch=1, callbacks=[record])
        assert seen and set(seen) == {2}
    finally:
        torch.set_num_threads(before)
    assert RUNTIME.training_threads in (0, 1)
    with pytest.raises(ValueError, match="training_threads"):
        RUNTIME.training_threads = -2
