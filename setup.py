"""Packaging for dc_invariant; tool configuration lives in pyproject.toml."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "dc_invariant" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="dc_invariant",
    version=VERSION,
    description="Permutation-, translation- and rotation-invariant 3D featurization, models "
    "and symmetry audits for DeepChem",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["dc_invariant", "dc_invariant.*"]),
    install_requires=[
        "deepchem>=2.8",
        "rdkit>=2023.9",
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.2",
        "pandas>=1.5",
        "joblib>=1.3",
        "tqdm>=4.60",
        "matplotlib>=3.5",  # the audit's HTML report
        # Any recent torch; the README shows how to take the CPU-only wheel.
        "torch>=2.1",
    ],
    extras_require={
        # dask: the tests run a real local cluster; qm9pack: the QM9 example runs as a test;
        # playwright: the report page is checked in the system's Chromium where one is
        # installed (its own browser download is not used).
        "test": [
            "pytest>=7",
            "pytest-cov>=4",
            "ruff>=0.5",
            "dask[distributed]>=2023.1",
            "qm9pack>=1.0.3",
            "playwright>=1.40",
        ],
        "qm9": ["qm9pack>=1.0.3"],
        "dask": ["dask[distributed]>=2023.1"],
        # benchmarks/qm9_accuracy.py: the qmllib peer of KernelModel (not needed by the package)
        "bench": ["qmllib>=1.2"],
        # benchmarks/deepchem_zoo.py only: DeepChem's DTNNModel imports torch_geometric.
        "zoo": ["torch_geometric>=2.4"],
        # The Sphinx site in docs/ (python -m sphinx -W -b html docs docs/_build/html).
        "docs": [
            "sphinx>=7.2",
            "pydata-sphinx-theme>=0.15",
            "numpydoc>=1.6",
            "sphinx-gallery>=0.15",
            "matplotlib>=3.5",
        ],
    },
    entry_points={"console_scripts": ["dc-invariant=dc_invariant.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Chemistry",
    ],
)
