import json

import numpy as np
import pytest

from dc_invariant.models import KernelModel
from dc_invariant.models.kernel.representation import FCHL19
from dc_invariant.models.kernel.settings import KernelSettings


def test_settings_are_normalised_and_round_trip_through_json():
    settings = KernelSettings(
        n_tasks=np.int64(2), sigma=np.float32(2.0), sigmas=[2, np.float64(3.5)],
        representation={"cutoff": 5},
    )  # fmt: skip
    assert settings.n_tasks == 2 and type(settings.n_tasks) is int
    assert settings.sigmas == (2.0, 3.5) and settings.sigma == 2.0
    assert settings.fchl19 == FCHL19.tuned(cutoff=5.0)
    again = KernelSettings(**json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    with pytest.raises(AttributeError):
        settings.sigma = 3.0  # frozen
    model = KernelModel(sigmas=[2, 3])
    assert model.hyperparameters == model.settings.to_dict()
    assert model.hyperparameters["sigmas"] == [2.0, 3.0]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_tasks": 0}, ValueError, "n_tasks == 0"),
        ({"n_tasks": True}, TypeError, "n_tasks must be an int"),
        ({"sigma": 0.0}, ValueError, "sigma == 0.0"),
        ({"regularization": -1e-6}, ValueError, "regularization == -1e-06"),
        ({"sigmas": ()}, ValueError, "sigmas must be positive numbers"),
        ({"sigmas": "3"}, TypeError, "sigmas must be a sequence"),
        ({"regularizations": [1e-6, 0]}, ValueError, r"regularizations\[1\] == 0"),
        ({"sigmas": [float("nan")]}, ValueError, "finite"),
        ({"valid_fraction": 0.1}, TypeError, "valid_fraction"),
        ({"search_size": 9}, ValueError, "search_size == 9"),
        ({"pca_tolerance": 1.0}, ValueError, "pca_tolerance == 1.0"),
        ({"memory_mb": 0}, ValueError, "memory_mb == 0"),
        ({"seed": -1}, ValueError, "seed == -1"),
        ({"representation": [1]}, TypeError, "representation must be a dict"),
        ({"representation": {"rcut": 6}}, ValueError, r"unknown FCHL19 settings \['rcut'\]"),
        ({"representation": {"cutoff": -6}}, ValueError, "representation cutoff == -6"),
        ({"representation": {"n_radial2": 2.5}}, TypeError, "representation n_radial2"),
    ],
)
def test_each_bad_setting_is_refused_by_the_model(kwargs, error, message):
    with pytest.raises(error, match=message):
        KernelModel(**kwargs)
