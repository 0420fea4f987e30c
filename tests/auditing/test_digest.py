"""Resume reuses stored chunks only for the same molecules and the same target."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DRUG_LIKE

from dc_invariant.auditing import audit
from dc_invariant.auditing.digest import INCOMPLETE, inputs_digest, target_digest
from dc_invariant.cli import main
from dc_invariant.molecules import Molecules


def spread(r, x):
    return ((r - r.mean(0)) ** 2).sum()


def test_inputs_digest_sees_coordinates_ids_and_order(dc):
    from dc_invariant import ConformerFeaturizer

    conformers = list(ConformerFeaturizer().featurize(DRUG_LIKE[:3]))
    batch = Molecules.from_conformers(conformers)
    same = inputs_digest(Molecules.from_conformers(conformers), ["a", "b", "c"])
    assert inputs_digest(batch, ["a", "b", "c"]) == same
    assert inputs_digest(batch, ["a", "b", "d"]) != same
    assert inputs_digest(Molecules.from_conformers(conformers[::-1]), ["a", "b", "c"]) != same
    nudged = Molecules.from_conformers(conformers)
    nudged.positions[0, 0] += 1e-12
    assert inputs_digest(nudged, ["a", "b", "c"]) != same


def test_target_digest_follows_weights_not_where_a_model_lives(tmp_path):
    from dc_invariant.models import RotationInvariantModel, load_model

    RotationInvariantModel(model_dir=str(tmp_path / "m"), seed=1).save_checkpoint()
    first, again = load_model(str(tmp_path / "m")), load_model(str(tmp_path / "m"))
    assert target_digest(first) == target_digest(again)
    assert target_digest(first) != target_digest(RotationInvariantModel(seed=2))
    with __import__("torch").no_grad():
        next(again.model.parameters()).add_(1e-6)
    assert target_digest(first) != target_digest(again)


def test_target_digest_of_functions_reads_code_and_closure():
    def make(power):
        return lambda r, x: (r**power).sum()

    assert target_digest(make(2)) == target_digest(make(2))
    assert target_digest(make(2)) != target_digest(make(3))
    assert target_digest(spread) != target_digest(lambda r, x: spread(r, x) + 1)


def _twin(body: str):
    """A class named ``Target`` in a module named ``user_code``, with ``body`` as its
    ``__call__``: two of them differ only in their code, as a class edited between runs."""
    namespace: dict = {"__name__": "user_code"}
    exec(f"class Target:\n    def __call__(self, r, x):\n        return {body}\n", namespace)
    return namespace["Target"]()


def test_target_digest_reads_what_a_target_computes_with():
    import functools

    import torch

    # functools.partial keeps its function and arguments outside __dict__.
    assert target_digest(functools.partial(np.power, 2)) != target_digest(
        functools.partial(np.power, 3)
    )
    # An object of the user's own class: that class's code.
    assert target_digest(_twin("r.sum()")) == target_digest(_twin("r.sum()"))
    assert target_digest(_twin("r.sum()")) != target_digest(_twin("r.mean()"))

    # A torch module: beyond its weights, its submodules' classes and plain attributes.
    def net(activation, scale):
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(3, 3), activation)
        module.scale = scale
        return module

    same = target_digest(net(torch.nn.Tanh(), 1.0))
    assert target_digest(net(torch.nn.Tanh(), 1.0)) == same
    assert target_digest(net(torch.nn.ReLU(), 1.0)) != same
    assert target_digest(net(torch.nn.Tanh(), 2.0)) != same


def test_target_digest_reads_the_user_s_modules_a_target_reaches(tmp_path, monkeypatch):
    import sys

    from dc_invariant.auditing.user_target import load_target

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "target.py").write_text(
        "import numpy as np\nimport user_helpers\n"
        "def make():\n    return lambda r, x: np.array([user_helpers.energy(r)])\n"
        "class Energy:\n    def __call__(self, r, x):\n"
        "        return np.array([user_helpers.energy(r)])\n"
        "def make_object():\n    return Energy()\n"
    )
    digests = []
    for body in ("float((r * r).sum())", "float((r * r).sum()) + float(r[0, 0])"):
        (tmp_path / "user_helpers.py").write_text(f"def energy(r):\n    return {body}\n")
        sys.modules.pop("user_helpers", None)  # a new process, as a resumed CLI run is
        digests.append(
            [
                target_digest(*reversed(load_target(f"{tmp_path / 'target.py'}:{factory}")))
                for factory in ("make", "make_object")
            ]
        )
    # The helper's edit made the target break every symmetry; resume took the old results.
    assert digests[0][0] != digests[1][0] and digests[0][1] != digests[1][1]
    sys.modules.pop("user_helpers", None)


def test_a_target_too_deep_to_digest_cannot_be_resumed(tmp_path):
    class Nested:
        def __init__(self, depth):
            self.inner = Nested(depth - 1) if depth else None

        def __call__(self, r, x):
            return spread(r, x)

    deep = Nested(40)
    digest = target_digest(deep)
    assert digest.startswith(INCOMPLETE) and digest != target_digest(deep)
    store = str(tmp_path / "store")
    audit(deep, DRUG_LIKE[:2], n_samples=1, store=store)
    reason = r"could not be digested completely \(its state nests deeper than 24 levels\)"
    with pytest.raises(ValueError, match=reason):
        audit(deep, DRUG_LIKE[:2], n_samples=1, store=store, resume=True)


def test_resume_refuses_results_without_their_settings(tmp_path):
    store = tmp_path / "store"
    audit(spread, DRUG_LIKE[:2], n_samples=1, store=str(store))
    (store / "settings.json").unlink()
    with pytest.raises(ValueError, match=r"holds results without their settings\.json"):
        audit(spread, DRUG_LIKE[:2], n_samples=1, store=str(store), resume=True)


def test_resume_refuses_other_molecules_with_the_same_count(tmp_path):
    store = str(tmp_path / "store")
    audit(spread, DRUG_LIKE[:4], n_samples=1, store=store)
    with pytest.raises(ValueError, match="are not the ones audited there"):
        audit(spread, DRUG_LIKE[4:8], n_samples=1, store=store, resume=True)
    resumed = audit(spread, DRUG_LIKE[:4], n_samples=1, store=store, resume=True)
    assert resumed.molecules["id"].unique().tolist() == DRUG_LIKE[:4]


def test_resume_refuses_a_changed_target(tmp_path):
    store = str(tmp_path / "store")
    audit(spread, DRUG_LIKE[:3], n_samples=1, store=store)
    with pytest.raises(ValueError, match=r"the target \(its weights, data or code\) changed"):
        audit(lambda r, x: spread(r, x) * 2, DRUG_LIKE[:3], n_samples=1, store=store, resume=True)


def test_cli_resume_after_other_inputs_or_a_retrained_model_exits_2(tmp_path, capsys, dc):
    from dc_invariant import ConformerFeaturizer
    from dc_invariant.models import RotationInvariantModel

    first, other = tmp_path / "first.csv", tmp_path / "other.csv"
    first.write_text("smiles\n" + "\n".join(DRUG_LIKE[:4]) + "\n")
    other.write_text("smiles\n" + "\n".join(DRUG_LIKE[4:8]) + "\n")
    out = str(tmp_path / "R")
    base = ["audit", "--model", "rotation", "--n-samples", "1", "--out", out]
    assert main([*base, "--csv", str(first)]) == 0
    assert main([*base, "--csv", str(first), "--resume"]) == 0
    capsys.readouterr()
    assert main([*base, "--csv", str(other), "--resume"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "are not the ones audited there" in line

    X = ConformerFeaturizer().featurize(DRUG_LIKE[:4])
    data = dc.data.NumpyDataset(X, np.arange(1.0, 5.0))
    folder = str(tmp_path / "M")
    RotationInvariantModel(model_dir=folder, seed=0).fit(data, nb_epoch=1)
    saved = ["audit", "--model", folder, "--n-samples", "1", "--csv", str(first)]
    saved += ["--out", str(tmp_path / "S")]
    assert main(saved) == 0
    assert main([*saved, "--resume"]) == 0  # loaded again from the same folder: same digest
    RotationInvariantModel(model_dir=folder, seed=0).fit(data, nb_epoch=2)
    capsys.readouterr()
    assert main([*saved, "--resume"]) == 2
    assert "the target (its weights, data or code) changed" in capsys.readouterr().err


@pytest.mark.slow
def test_digests_are_the_same_in_another_process(tmp_path):
    import subprocess
    import sys

    from dc_invariant.models import RotationInvariantModel

    RotationInvariantModel(model_dir=str(tmp_path / "m"), seed=3).save_checkpoint()
    target = tmp_path / "target.py"
    target.write_text(
        "import numpy as np\n"
        "SCALE = np.arange(3.0)\n"
        "class Scaled:\n"
        "    def __call__(self, r, x):\n"
        "        return float((r @ SCALE).sum())\n"
        "def make():\n"
        "    return lambda r, x: float((r @ SCALE).sum())\n"
        "def make_object():\n"
        "    return Scaled()\n"
    )
    code = (
        "import sys\n"
        "from dc_invariant.auditing.digest import target_digest\n"
        "from dc_invariant.auditing.user_target import load_target\n"
        "from dc_invariant.models import load_model\n"
        f"print(target_digest(load_model({str(tmp_path / 'm')!r})))\n"
        f"print(target_digest(*reversed(load_target({str(target) + ':make'!r}))))\n"
        f"print(target_digest(*reversed(load_target({str(target) + ':make_object'!r}))))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    ]  # fmt: skip
    assert runs[0] == runs[1] and len(runs[0].split()) == 3
