import importlib.util
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))

# What each example must print in its --small run.
EXPECTED = {
    "audit_coulomb_featurizers": ["verdicts match the featurizers' definitions: True"],
    "conformer_sensitivity": ["flexible molecules spread more than rigid ones: True"],
    "kernel_model_qm9": [
        "better than the mean by 10x: True",
        "reloaded model predicts identically: True",
        "all four symmetries hold: True",
    ],
    "featurize_csv": ["20 molecules featurized", "labels aligned with molecules: True"],
    "scale_out": [
        "same conformers as a serial run: True",
        "same audit report as a serial run: True",
    ],
    "train_invariant_model": ["forces rotate with the molecule"],
    "tutorial_tables": ["tutorial reproduced"],
}


def test_every_example_has_expectations():
    assert {p.stem for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_small(path, capsys):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--small"]) == 0
    out = capsys.readouterr().out
    for text in EXPECTED[path.stem]:
        assert text in out
