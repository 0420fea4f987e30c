"""MoleculeNet data as datasets of `Conformer`s: QM9 with its DFT geometries, offline.

For the CSV-based MoleculeNet sets (Delaney, FreeSolv, Lipophilicity, ...) DeepChem's own
``dc.molnet.load_*`` functions work unchanged with `ConformerFeaturizer`; `load_molnet` runs
them offline from a raw file. (Over 300 lines: QM9's reader, its unit conversions and its
loader belong together.)
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pandas as pd

from dc_invariant.validation import check_choice, check_int, check_names, check_real, check_seed

__all__ = [
    "HARTREE_TO_EV",
    "MOLNET_FILES",
    "QM9_ATOMIZATION_TASKS",
    "QM9_TASKS",
    "load_molnet",
    "load_qm9",
    "molnet_smiles",
    "qm9_data_folder",
    "read_qm9_table",
]

logger = logging.getLogger(__name__)

HARTREE_TO_EV = 27.211386245988  # CODATA 2018

#: DeepChem's twelve QM9 tasks, in DeepChem's order, and their column in the QM9 files.
QM9_TASKS: dict[str, str] = {
    "mu": "Dipole_debye",
    "alpha": "Polarizability_bohr3",
    "homo": "HOMO_au",
    "lumo": "LUMO_au",
    "gap": "HOMO_LUMO_gap_au",
    "r2": "R2_bohr2",
    "zpve": "ZPVE_au",
    "cv": "Heatcapacity_Cv_cal_mol_K",
    "u0": "InternalEnergy_0K_au",
    "u298": "InternalEnergy_298K_au",
    "h298": "Enthalphy_298K_au",
    "g298": "GibbsFreeEnergy_298K_au",
}

#: Atomization energies (eV): the total energy minus the free atoms' energies.
QM9_ATOMIZATION_TASKS: dict[str, str] = {
    "u0_atom": "u0",
    "u298_atom": "u298",
    "h298_atom": "h298",
    "g298_atom": "g298",
}

# Energies (Hartree) of the free atoms at the QM9 level of theory, B3LYP/6-31G(2df,p), from
# the QM9 paper's atomref table; columns follow QM9_ATOMIZATION_TASKS.
_ATOM_REFERENCE = {
    1: (-0.500273, -0.498857, -0.497912, -0.510927),
    6: (-37.846772, -37.845355, -37.844411, -37.861317),
    7: (-54.583861, -54.582445, -54.581501, -54.598897),
    8: (-75.064579, -75.063162, -75.062219, -75.079532),
    9: (-99.718730, -99.717314, -99.716370, -99.733544),
}

_QM9_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
_SYMBOL_Z = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
# Brackets, quotes and spaces of the files' list columns ("['C','H']", "[[0.1,2.0,...]]").
_BRACKETS = str.maketrans("", "", "[]' ")


def qm9_data_folder() -> str:
    """Folder holding the QM9 CSV files of the ``qm9pack`` package.

    The package is located without importing it: its ``__init__`` needs ``pkg_resources``,
    which current setuptools no longer ships, and we only read its data files.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_qm9 needs the QM9 data package: pip install 'dc_invariant[qm9]' "
            "(or pip install qm9pack)"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), "data")


def read_qm9_table(
    limit: Optional[int] = None, seed: int = 0, data_dir: Optional[str] = None
) -> pd.DataFrame:
    """QM9 as one row per molecule, indexed by the molecule id ``gdb_<n>``.

    Columns: ``smiles``, ``atomic_numbers`` (int array), ``positions`` (float64 array,
    (n_atoms, 3), Å, the DFT geometry), the twelve `QM9_TASKS` in their QM9 units (Hartree for
    energies) and the four `QM9_ATOMIZATION_TASKS` in eV. With ``limit``, a seeded random
    sample of that many molecules, in id order. ``data_dir`` is a folder with files laid out
    as in ``qm9pack`` (``qm9_part1.csv`` ... ``qm9_part3.csv``); it defaults to that package's.
    """
    folder = qm9_data_folder() if data_dir is None else data_dir
    missing = [f for f in _QM9_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(f"QM9 folder {folder} lacks {missing}")
    columns = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", *QM9_TASKS.values()]
    raw = pd.concat(
        [pd.read_csv(os.path.join(folder, f), usecols=columns) for f in _QM9_FILES],
        ignore_index=True,
    )
    raw = raw.set_index(raw["Index"].map("gdb_{}".format)).rename_axis("mol_id")
    if raw.index.has_duplicates:
        raise ValueError("the QM9 files list a molecule id twice; the qm9pack data is damaged")
    raw = raw.sort_values("Index")
    if limit is not None:
        limit = check_int(limit, "limit", min_val=1)
        picked = np.random.default_rng(check_seed(seed)).permutation(len(raw))[
            : min(limit, len(raw))
        ]
        raw = raw.iloc[np.sort(picked)]

    table = pd.DataFrame(index=raw.index)
    table["smiles"] = raw["SMILES"].astype(str)
    # Parsed for all molecules at once (a third of the time of one parse each), then split
    # into per-molecule views.
    counts = raw["N_atoms"].to_numpy(dtype=np.int64)
    elements, coordinates = raw["Elements"].tolist(), raw["XYZ_Ang"].tolist()
    # str.count on Python strings: a third of the time of pandas' `.str.count`.
    n_elements = np.fromiter((s.count(",") for s in elements), np.int64, len(counts)) + 1
    n_coordinates = np.fromiter((s.count(",") for s in coordinates), np.int64, len(counts)) + 1
    for k in np.flatnonzero((n_elements != counts) | (n_coordinates != 3 * counts))[:1]:
        raise ValueError(
            f"{raw.index[k]}: QM9 lists {counts[k]} atoms but {n_elements[k]} elements and "
            f"{n_coordinates[k] / 3:g} positions"
        )
    symbols = ",".join(elements).translate(_BRACKETS).split(",")
    unknown = sorted(set(symbols) - set(_SYMBOL_Z))
    if unknown:
        raise ValueError(f"the QM9 files list elements {unknown}, not among {list(_SYMBOL_Z)}")
    z = np.fromiter(map(_SYMBOL_Z.__getitem__, symbols), np.int64, len(symbols))
    # `fromstring` (C's strtod) takes half the time of splitting the text. Where a value is
    # not a number it stops early with a DeprecationWarning (NumPy 2) or a ValueError.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            xyz = np.fromstring(",".join(coordinates).translate(_BRACKETS), np.float64, sep=",")
    except (DeprecationWarning, ValueError):
        for k, text in enumerate(coordinates):
            try:
                np.array(text.translate(_BRACKETS).split(","), dtype=np.float64)
            except ValueError:
                raise ValueError(
                    f"{raw.index[k]}: QM9 lists a position that is not a number"
                ) from None
        raise
    cuts = np.cumsum(counts)[:-1]
    table["atomic_numbers"] = np.split(z, cuts)
    table["positions"] = np.split(xyz.reshape(-1, 3), cuts)
    for task, column in QM9_TASKS.items():
        table[task] = raw[column].astype(np.float64)
    reference = np.zeros((119, 4))
    for element, energies in _ATOM_REFERENCE.items():
        reference[element] = energies
    free_atoms = np.add.reduceat(reference[z], np.cumsum(counts) - counts)
    for k, (task, total) in enumerate(QM9_ATOMIZATION_TASKS.items()):
        table[task] = (table[total].to_numpy() - free_atoms[:, k]) * HARTREE_TO_EV
    return table


# Over 100 lines: its docstring is the loader's reference (tasks, units, splits).
def load_qm9(
    featurizer: Any = None,
    *,
    tasks: Optional[Sequence[str]] = None,
    limit: Optional[int] = None,
    splitter: Optional[str] = "random",
    frac_train: float = 0.8,
    frac_valid: float = 0.1,
    frac_test: float = 0.1,
    seed: int = 0,
    data_dir: Optional[str] = None,
) -> tuple[list[str], tuple[Any, ...], list]:
    """QM9 (130,831 molecules) with DFT geometries, as DeepChem datasets of `Conformer`s.

    Geometries are QM9's B3LYP/6-31G(2df,p) equilibrium structures, never re-embedded.
    Each label row is taken from the same record as its geometry and carried by the
    molecule id (``gdb_<n>``) through every filter, so labels cannot shift against
    molecules (DeepChem 2.8's ``load_qm9`` can misalign them across shards: deepchem#4485).

    Parameters
    ----------
    featurizer : ConformerFeaturizer, optional
        Defaults to ``ConformerFeaturizer()``. Its ``n_jobs`` and ``progress`` apply.
    tasks : sequence of str, optional
        Label columns, from `QM9_TASKS` (DeepChem's names and QM9 units: Debye, bohr³,
        Hartree, bohr², cal/(mol K)) and `QM9_ATOMIZATION_TASKS` (eV). Defaults to DeepChem's
        twelve tasks.
    limit : int, optional
        Use a seeded random sample of this many molecules (QM9's file order runs from small
        to large molecules, so a prefix would not be representative).
    splitter : {"random", None}, default="random"
        ``"random"`` returns (train, valid, test) from DeepChem's ``RandomSplitter``;
        ``None`` returns a 1-tuple with the whole dataset.
    frac_train, frac_valid, frac_test : float, default=0.8, 0.1, 0.1
        Split fractions.
    seed : int, default=0
        Seed of the sample and the split.
    data_dir : str, optional
        Folder with the QM9 files in ``qm9pack``'s layout; defaults to the installed
        ``qm9pack`` package (``pip install 'dc_invariant[qm9]'``).

    Returns
    -------
    tasks : list of str
    datasets : tuple of dc.data.NumpyDataset
    transformers : list
        Empty; apply DeepChem transformers yourself if you want them.

    Examples
    --------
    >>> tasks, (train, valid, test), _ = load_qm9(tasks=["u0_atom"], limit=100)  # doctest: +SKIP
    >>> train.X[0].positions.shape  # doctest: +SKIP
    (17, 3)
    """
    from dc_invariant._deepchem import import_deepchem
    from dc_invariant.featurizer import ConformerFeaturizer

    dc = import_deepchem()
    tasks = list(QM9_TASKS) if tasks is None else check_names(tasks, "tasks")
    known = [*QM9_TASKS, *QM9_ATOMIZATION_TASKS]
    unknown = [t for t in tasks if t not in known]
    if unknown or not tasks or len(set(tasks)) < len(tasks):
        raise ValueError(
            f"tasks must be a non-empty list of distinct names drawn from {known}, got {tasks}"
        )
    check_choice(splitter, "splitter", ("random", None))
    seed = check_seed(seed)
    if splitter is not None:
        # DeepChem checks only the sum: a negative fraction makes train and test overlap.
        fractions = [
            check_real(f, n, min_val=0.0, max_val=1.0)
            for f, n in ((frac_train, "frac_train"), (frac_valid, "frac_valid"),
                         (frac_test, "frac_test"))
        ]  # fmt: skip
        if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
            raise ValueError(f"frac_train, frac_valid and frac_test must sum to 1, got {fractions}")
    if featurizer is None:
        featurizer = ConformerFeaturizer()
    if not isinstance(featurizer, ConformerFeaturizer):
        raise TypeError(
            f"featurizer must be a ConformerFeaturizer, got {type(featurizer).__name__}"
        )
    if featurizer.settings.n_conformers > 1:
        raise ValueError(
            "QM9 gives one DFT geometry per molecule: load it with n_conformers=1, got "
            f"{featurizer.settings.n_conformers}"
        )

    table = read_qm9_table(limit=limit, seed=seed, data_dir=data_dir)
    if featurizer.settings.atom_properties:
        X, featurizer.failures = _featurize_as_mols(featurizer, table)
    else:
        # Element features need no bonds: skip RDKit Mols entirely (the fast path).
        X = featurizer.featurize_arrays(
            list(table["atomic_numbers"]),
            list(table["positions"]),
            list(table["smiles"]),
            log_failures=False,
        )
        featurizer.failures = [(i, table.index[i], why) for i, _, why in featurizer.failures]
    ok = np.array([not isinstance(x, np.ndarray) for x in X], dtype=bool)
    if featurizer.failures:
        reasons = Counter(
            re.sub(r" \(atom \d+\)|: .*", "", why) for _, _, why in featurizer.failures
        )
        logger.warning(
            "load_qm9: %d of %d molecules skipped (listed in featurizer.failures): %s",
            len(featurizer.failures),
            len(table),
            "; ".join(f"{n} x {why}" for why, n in reasons.most_common()),
        )
    y = table.loc[ok, tasks].to_numpy(dtype=np.float64)
    from dc_invariant.named_dataset import NamedNumpyDataset

    dataset = NamedNumpyDataset(X[ok], y, np.ones_like(y), table.index.to_numpy()[ok], tasks=tasks)
    if splitter is None:
        return tasks, (dataset,), []
    parts = dc.splits.RandomSplitter().train_valid_test_split(
        dataset, frac_train=frac_train, frac_valid=frac_valid, frac_test=frac_test, seed=seed
    )
    return tasks, tuple(parts), []


def _featurize_as_mols(featurizer: Any, table: pd.DataFrame) -> tuple[np.ndarray, list]:
    """Featurize QM9 through RDKit Mols with perceived bond orders (for atom properties)."""
    from dc_invariant.embedding import mol_from_geometry

    mols: list[Any] = []
    failures: list[tuple[int, Any, str]] = []
    for i, (mol_id, z, r) in enumerate(
        zip(table.index, table["atomic_numbers"], table["positions"])
    ):
        try:
            mols.append(mol_from_geometry(z, r, bond_orders=True))
        except Exception as err:  # noqa: BLE001 - RDKit raises several types here
            mols.append(None)
            failures.append((i, mol_id, f"bond perception failed: {err}"))
    perceived = [i for i, m in enumerate(mols) if m is not None]
    # QM9's own SMILES is attached afterwards, so the featurizer need not write one per Mol.
    quiet = featurizer.replace(record_smiles=False)
    features = quiet.featurize([mols[i] for i in perceived], log_failures=False)
    X = np.empty(len(mols), dtype=object)
    for i in range(len(mols)):
        X[i] = np.array([])
    for i, x in zip(perceived, features):
        X[i] = x
    failures += [(perceived[j], table.index[perceived[j]], why) for j, _, why in quiet.failures]
    for i, x in enumerate(X):
        if not isinstance(x, np.ndarray):
            x.smiles = table["smiles"].iloc[i]
    return X, sorted(failures)


#: MoleculeNet sets reachable by name, with the raw file DeepChem expects in ``data_dir``.
MOLNET_FILES: dict[str, str] = {
    "delaney": "delaney-processed.csv",
    "freesolv": "freesolv.csv.gz",
    "lipo": "Lipophilicity.csv",
}


def load_molnet(name: str, data_dir: str, featurizer: Any = None) -> Any:
    """A whole MoleculeNet set (no split, no transformers) as a dataset of `Conformer`s.

    Runs DeepChem's own ``dc.molnet.load_<name>``; its raw file must already be in
    ``data_dir`` (see `MOLNET_FILES`): nothing is downloaded. For QM9 use `load_qm9`.
    """
    from dc_invariant._deepchem import import_deepchem
    from dc_invariant.featurizer import ConformerFeaturizer

    if name not in MOLNET_FILES:
        raise ValueError(
            f"name must be one of {sorted(MOLNET_FILES)} (or use load_qm9), got {name!r}"
        )
    path = os.path.join(data_dir, MOLNET_FILES[name])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: put MoleculeNet's {MOLNET_FILES[name]} there "
            "(nothing is downloaded)"
        )
    dc = import_deepchem()
    loader = getattr(dc.molnet, f"load_{name}")
    _, (dataset,), _ = loader(
        featurizer=featurizer or ConformerFeaturizer(),
        splitter=None,
        transformers=[],
        reload=False,
        data_dir=data_dir,
        save_dir=data_dir,
    )
    return dataset


def molnet_smiles(name: str, data_dir: str) -> list[str]:
    """The SMILES of MoleculeNet's raw file in ``data_dir``, in file order: the ids of a
    `load_molnet` dataset are these, less the molecules the featurizer failed on."""
    import pandas as pd

    path = os.path.join(data_dir, MOLNET_FILES[name])
    return [str(s) for s in pd.read_csv(path, usecols=["smiles"])["smiles"]]
