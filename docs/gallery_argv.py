"""The command line each gallery example is run with when the documentation is built."""


def small(gallery_conf, script_vars):
    """Every example's quick run: ``--small``."""
    return ["--small"]
