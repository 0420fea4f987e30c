"""The audit's words and numbers, as the text table and the HTML page print them."""

import numpy as np

from dc_invariant.auditing.settings import OUTPUTS
from dc_invariant.auditing.words import OUTPUT_WORDS, deviation, environment


def test_deviations_print_in_scientific_notation_and_nothing_measured_as_a_dash():
    assert deviation(1.234e-5) == "1.23e-05" and deviation(0.0) == "0.00e+00"
    # A lost output (inf) is the largest deviation there is, not "nothing measured".
    assert deviation(np.nan) == "-" and deviation(np.inf) == "inf"


def test_every_output_kind_has_its_words_and_the_environment_names_the_libraries():
    assert set(OUTPUT_WORDS) == set(OUTPUTS)
    versions = environment()
    assert {"python", "dc_invariant", "numpy", "torch"} <= set(versions)
    assert versions["numpy"] == np.__version__
