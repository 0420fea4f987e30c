"""The command line each gallery example is run with when the documentation is built."""

from pathlib import Path

#: Examples that draw figures when given --plot.
PLOTTING = {"audit_coulomb_featurizers", "conformer_sensitivity", "tutorial_tables"}


def small(gallery_conf, script_vars):
    """Every example's quick run, ``--small``, with its figures where it has any."""
    name = Path(script_vars["src_file"]).stem
    return ["--small", "--plot"] if name in PLOTTING else ["--small"]
