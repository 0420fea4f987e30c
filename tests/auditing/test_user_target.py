"""``dc-invariant audit --target MODULE:FACTORY`` and ``--featurizer NAME``."""

import json
import textwrap

import pytest

from dc_invariant.cli import main

FACTORIES = """
import numpy as np
import torch
from dc_invariant._deepchem import import_deepchem

dc = import_deepchem()


def coulomb_pipeline():
    torch.manual_seed(0)
    featurizer = dc.feat.CoulombMatrix(max_atoms=24, upper_tri=True)
    return featurizer, dc.models.MultitaskRegressor(1, 300, layer_sizes=[8])


def fingerprint_model():
    torch.manual_seed(0)
    return dc.models.MultitaskRegressor(1, 2048, layer_sizes=[8])


def spread():
    return lambda r, x: float(((r - r.mean(axis=0)) ** 2).sum())


def raises():
    raise RuntimeError("no GPU here")


def number():
    return 3


def three():
    return (1, 2, 3)


not_a_function = 5
"""


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "my_pipelines.py"
    path.write_text(textwrap.dedent(FACTORIES))
    return str(path)


def test_target_pipeline_is_audited_and_gated(factories, capsys, tmp_path):
    smiles = ["--smiles", "CCO", "c1ccccc1O"]
    out = tmp_path / "out"
    argv = ["audit", "--target", f"{factories}:coulomb_pipeline", *smiles, "--out", str(out)]
    assert main([*argv, "--require", "rotation"]) == 0
    printed = capsys.readouterr().out
    assert "== coulomb_pipeline (CoulombMatrix -> MultitaskRegressor) ==" in printed
    assert "reads the geometry" in printed
    saved = json.loads((out / "coulomb_pipeline" / "audit.json").read_text())
    assert saved["geometry_blind"] is False and saved["settings"]["dtype"] == "float32"
    # The Coulomb matrix follows the atom order: a permutation gate fails.
    argv = ["audit", "--target", f"{factories}:coulomb_pipeline", *smiles]
    assert main([*argv, "--require", "permutation"]) == 1
    assert "(CoulombMatrix -> MultitaskRegressor) breaks required permutation" in (
        capsys.readouterr().err
    )


def test_target_model_behind_a_named_featurizer_and_a_function(factories, capsys):
    argv = ["audit", "--target", f"{factories}:fingerprint_model"]
    argv += ["--featurizer", "CircularFingerprint", "--smiles", "CCO", "c1ccccc1O"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "CircularFingerprint -> MultitaskRegressor" in printed
    assert "ignores the coordinates you give it" in printed
    assert main(["audit", "--target", f"{factories}:spread", "--smiles", "CCO"]) == 0
    assert "holds" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "extra", "message"),
    [
        ("{f}:raises", [], "raises() raised RuntimeError: no GPU here"),
        ("{f}:number", [], "returned int; it must return a model"),
        ("{f}:three", [], "must be a (featurizer, model) pair"),
        ("{f}:missing", [], "has no 'missing'"),
        ("{f}:not_a_function", [], "is not a function"),
        ("{f}:coulomb_pipeline", ["--featurizer", "CircularFingerprint"], "drop --featurizer"),
        ("{f}:spread", ["--featurizer", "CircularFingerprint"], "(no predict)"),
        ("{f}", [], "--target must be MODULE:FACTORY"),
        ("/no/such/file.py:make", [], "no such file: /no/such/file.py"),
        ("no_such_module_xyz:make", [], "no module named 'no_such_module_xyz'"),
        (None, ["--featurizer", "CoulombMatrix"], "needs arguments"),
        (None, ["--featurizer", "os.system"], "is not a featurizer in deepchem.feat"),
        (None, ["--featurizer", "SmilesToSeq"], "needs arguments"),
    ],
)
def test_bad_target_specs_are_one_line_and_exit_2(factories, capfd, spec, extra, message):
    argv = ["audit", "--smiles", "CCO", *extra]
    if spec is not None:
        argv += ["--target", spec.format(f=factories)]
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err


def test_nothing_checkable_exits_1_with_that_message(capsys):
    assert main(["audit", "--model", "rotation", "--smiles", "not_a_smiles"]) == 1
    assert "no molecule could be checked: all 1 were skipped" in capsys.readouterr().out
    argv = ["audit", "--model", "rotation", "--smiles", "[Fe+2]", "--require", "permutation"]
    assert main(argv) == 1
    printed, err = capsys.readouterr()
    assert "rotation (RotationInvariantModel): required symmetry checked on no molecule" in err
    assert "permutation" in err and "broken" not in printed + err


def test_a_target_file_imports_as_python_runs_it(tmp_path, capsys):
    # A dataclass under postponed annotations looks its module up in sys.modules, and a
    # factory may import a helper beside the file: both failed under --target.
    (tmp_path / "helper.py").write_text("SCALE = 2.0\n")
    (tmp_path / "pipeline.py").write_text(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "import numpy as np\n"
        "@dataclass\n"
        "class Spread:\n"
        "    scale: float\n"
        "    def __call__(self, r: np.ndarray, x: np.ndarray) -> float:\n"
        "        return self.scale * float(((r - r.mean(axis=0)) ** 2).sum())\n"
        "def make():\n"
        "    import helper\n"
        "    return Spread(helper.SCALE)\n"
    )
    argv = ["audit", "--target", f"{tmp_path / 'pipeline.py'}:make", "--smiles", "CCO"]
    assert main([*argv, "--n-samples", "1", "--require", "rotation"]) == 0
    assert "holds" in capsys.readouterr().out
