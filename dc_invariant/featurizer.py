"""`ConformerFeaturizer`: a DeepChem featurizer from SMILES / RDKit Mols to `Conformer`s.

Over 400 lines because the class docstring is the featurizer's user guide (every setting,
what happens to salts, clashes and failures); the RDKit work is in `embedding` and the
settings in `featurizer_settings`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from typing import Any, Optional

import joblib
import numpy as np
from rdkit import Chem
from tqdm.auto import tqdm

from dc_invariant._deepchem import import_deepchem
from dc_invariant.conformer import Conformer
from dc_invariant.embedding import (
    Encoder,
    FeaturizationError,
    ShippedMol,
    conformer_from_arrays,
    describe_input,
    featurize_chunk,
)
from dc_invariant.featurizer_settings import DEFAULT_ELEMENTS, FeaturizerSettings
from dc_invariant.geometry import clashing_molecules
from dc_invariant.parallel import check_workers, connected, map_ordered
from dc_invariant.validation import check_bool

dc = import_deepchem()
logger = logging.getLogger(__name__)

# Chunks of at most 64 molecules: large enough to amortise joblib's per-task cost, small
# enough that uneven embedding times still even out across workers (~16 chunks per worker).
_MAX_CHUNK = 64
_CHUNKS_PER_WORKER = 16


class ConformerFeaturizer(dc.feat.MolecularFeaturizer):
    """Featurize molecules as 3D point clouds ``(R, X)`` for invariant models.

    Each input (a SMILES string or an RDKit ``Mol``) becomes one `Conformer` holding
    coordinates ``R`` of shape (n_atoms, 3) in Å and atom features ``X`` of shape
    (n_atoms, F). An input that cannot be featurized becomes DeepChem's empty array, so
    DeepChem's loaders drop it as they do for every featurizer; the reason is logged as one
    warning line and kept in `failures`.

    **Geometry.** A Mol that carries a 3D conformer (read from an SDF, a QM9 geometry, or
    embedded beforehand) keeps it exactly and its atoms are used as they are (hydrogens it
    holds only implicitly are added after them, placed by RDKit). Otherwise
    (SMILES, or a Mol with no conformer or only a 2D one) hydrogens are added and the
    molecule is embedded with RDKit's ETKDGv3 using ``random_seed``, so the same input and
    seed give identical arrays in any process. An optional force-field clean-up follows.
    The caller's Mol is never modified.

    **Features.** ``X`` is a one-hot block over ``elements`` (plus an "other element" column
    when ``other_element``), followed by the requested ``atom_properties`` in the order
    given: ``"formal_charge"`` (one column, the integer charge), ``"aromatic"`` (one column,
    0/1), ``"hybridization"`` (five one-hot columns: s, sp, sp2, sp3, other). The names of all
    columns are in `feature_names`. The tutorial's encoding, ``[1, 0]`` for carbon and
    ``[0, 1]`` for hydrogen, is ``elements=("C", "H"), other_element=False``.

    **Salts and mixtures.** ETKDG embeds each disconnected fragment on its own and leaves
    them on top of each other. With ``fragments="all"`` every fragment is kept and laid out
    rigidly so that atoms of different fragments are at least 3 Å apart (then relaxed with the
    forces between fragments on, when ``force_field`` is set); ``"largest"`` keeps only the
    largest organic fragment (RDKit's ``LargestFragmentChooser``: ``"CCN.Cl"`` gives
    ethylamine, with its given coordinates for a Mol); ``"error"`` makes a multi-fragment input
    a failure. ``smiles`` keeps the input as given.

    **Plausible geometry, always.** Every embedded geometry is checked for atoms closer than
    half their covalent radii sum (`dc_invariant.geometry.find_clash`); a clash is embedded
    again from random coordinates and, failing that, is a failure with the pair named. A
    clash in a geometry *given* (an SDF, a Mol's conformer, arrays) is kept as given, logged
    as one warning per call and listed in `clashes`. Embedding stops after ``embed_timeout``
    seconds per molecule (a failure, not a hang).

    **Several conformers.** With ``n_conformers=k`` each input still gives one `Conformer`:
    ``positions`` is the first geometry and ``ensemble`` holds all ``k``, shape
    (k, n_atoms, 3); an input for which fewer than ``k`` embed is a failure. A Mol that already
    has 3D conformers contributes its first ``k`` of them (fewer is a failure).
    `Conformer.split_ensemble` gives one datapoint per geometry.

    Parameters
    ----------
    elements : sequence of str, default=("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
        Element symbols of the one-hot block, in column order.
    other_element : bool, default=True
        Add one column for every element not in ``elements``. Without it such an atom makes
        its molecule a failure.
    atom_properties : sequence of str, default=()
        Extra per-atom columns appended after the one-hot block, from
        ``("formal_charge", "aromatic", "hybridization")``.
    heavy_atoms_only : bool, default=False
        Drop hydrogens from the output (embedding still places them, for a sound geometry).
    n_conformers : int, default=1
        Geometries per molecule (see above).
    random_seed : int, default=0
        Seed of the ETKDGv3 embedding.
    max_attempts : int, default=0
        Embedding attempts before giving up (RDKit's ``maxIterations``; 0 lets RDKit decide).
        A failed embedding is retried once from random starting coordinates.
    force_field : {None, "MMFF", "UFF"}, default=None
        Optimise embedded geometries with this force field. Never applied to a Mol's own
        conformer.
    fragments : {"all", "largest", "error"}, default="all"
        What to do with multi-fragment inputs (salts, hydrates, mixtures); see above.
    embed_timeout : int or None, default=60
        Seconds of embedding allowed per molecule, both attempts together; None for no limit.
    record_smiles : bool, default=True
        Store a canonical SMILES in `Conformer.smiles` for Mol inputs (SMILES inputs are
        stored as given). Writing SMILES costs about as much as featurizing a pre-embedded
        Mol; switch it off for bulk work on molecules that already have conformers.
    use_original_atoms_order : bool, default=False
        DeepChem's option. Unless True, a SMILES is first rewritten as RDKit's canonical
        SMILES (atoms and bonds in canonical order), so that ``"CCO"`` and ``"OCC"`` give
        identical arrays. Mols are never renumbered.
    n_jobs : int, default=1
        Worker processes (joblib/loky); -1 uses every core. Results are identical to a serial
        run and in input order. Worth it for embedding; for Mols that already carry 3D
        coordinates one process is faster (sending a Mol costs more than reading it).
    scheduler : dask.distributed.Client or str, optional
        Featurize on this Dask cluster instead (a client, or a scheduler address such as
        ``"tcp://10.0.0.5:8786"``; needs the ``dask`` extra). Chunks of at most 64 molecules
        stream back in order; results are identical to a serial run.
    progress : bool or None, default=None
        Show a progress bar; None shows one when stderr is a terminal and there are more than
        100 molecules.

    Attributes
    ----------
    failures : list of (int, object, str)
        ``(index, input, reason)`` for each input of the last `featurize` call that failed.
    clashes : list of (int, object, str)
        ``(index, input, description)`` for each input of the last call whose *given* geometry
        has overlapping atoms (kept as given).

    Examples
    --------
    >>> featurizer = ConformerFeaturizer(elements=("C", "H"), other_element=False)
    >>> conformer = featurizer.featurize(["C"])[0]
    >>> conformer.positions.shape, conformer.features.tolist()[:2]
    ((5, 3), [[1.0, 0.0], [0.0, 1.0]])
    """

    def __init__(
        self,
        *,
        elements: Sequence[str] = DEFAULT_ELEMENTS,
        other_element: bool = True,
        atom_properties: Sequence[str] = (),
        heavy_atoms_only: bool = False,
        n_conformers: int = 1,
        random_seed: int = 0,
        max_attempts: int = 0,
        force_field: Optional[str] = None,
        fragments: str = "all",
        embed_timeout: Optional[int] = 60,
        record_smiles: bool = True,
        use_original_atoms_order: bool = False,
        n_jobs: int = 1,
        scheduler: Any = None,
        progress: Optional[bool] = None,
    ) -> None:
        original_order = check_bool(use_original_atoms_order, "use_original_atoms_order")
        check_bool(progress, "progress", optional=True)
        check_workers(n_jobs, scheduler)
        super().__init__(use_original_atoms_order=original_order)
        self.settings = FeaturizerSettings(
            elements=elements,
            other_element=other_element,
            atom_properties=atom_properties,
            heavy_atoms_only=heavy_atoms_only,
            n_conformers=n_conformers,
            random_seed=random_seed,
            max_attempts=max_attempts,
            force_field=force_field,
            fragments=fragments,
            embed_timeout=embed_timeout,
            record_smiles=record_smiles,
            canonical_atom_order=not use_original_atoms_order,
        )
        self.n_jobs = int(n_jobs)
        self.scheduler = scheduler
        self.progress = None if progress is None else bool(progress)
        self.failures: list[tuple[int, Any, str]] = []
        self.clashes: list[tuple[int, Any, str]] = []
        self._encoder = Encoder(self.settings)

    @property
    def feature_names(self) -> list[str]:
        """Name of each column of `Conformer.features`, in order."""
        return self.settings.feature_names

    @property
    def n_features(self) -> int:
        """Width ``F`` of the per-atom features."""
        return len(self.feature_names)

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this featurizer."""
        params: dict[str, Any] = {
            name: getattr(self.settings, name)
            for name in FeaturizerSettings.__dataclass_fields__
            if name != "canonical_atom_order"
        }
        params["use_original_atoms_order"] = not self.settings.canonical_atom_order
        params["n_jobs"] = self.n_jobs
        params["scheduler"] = self.scheduler
        params["progress"] = self.progress
        return params

    def replace(self, **changes: Any) -> ConformerFeaturizer:
        """A new featurizer with some constructor arguments changed.

        Examples
        --------
        >>> ConformerFeaturizer().replace(random_seed=7).settings.random_seed
        7
        """
        params = self.get_params()
        unknown = sorted(set(changes) - set(params))
        if unknown:
            raise TypeError(
                f"unknown ConformerFeaturizer argument(s) {unknown}; allowed: {sorted(params)}"
            )
        return ConformerFeaturizer(**{**params, **changes})

    def _featurize(self, datapoint: Any, **kwargs: Any) -> Conformer:
        """Featurize one SMILES or Mol; raises `FeaturizationError` with the reason.

        ``kwargs`` are accepted for DeepChem's loaders (``SDFLoader`` passes ``pos_x``,
        ``pos_y``, ``pos_z``) and ignored: coordinates are read from the Mol's conformer,
        which holds them at full precision.
        """
        return self._encoder(datapoint)

    def featurize(
        self, datapoints: Any, log_every_n: int = 1000, *, log_failures: bool = True, **kwargs: Any
    ) -> np.ndarray:
        """Featurize SMILES strings and/or RDKit Mols.

        Parameters
        ----------
        datapoints : str, rdkit.Chem.Mol or iterable of them
            The molecules; a mixed list is fine.
        log_every_n : int, default=1000
            Accepted for DeepChem compatibility; progress is shown with ``progress=True``.
        log_failures : bool, default=True
            Log one warning line per failed input (they are in `failures` either way).
        **kwargs
            Per-datapoint columns passed by DeepChem loaders; ignored (see `_featurize`).

        Returns
        -------
        np.ndarray of object, shape (n_inputs,)
            A `Conformer` per input, or an empty float array where featurization failed.
        """
        if isinstance(datapoints, (str, Chem.Mol)):
            items: list[Any] = [datapoints]
        else:
            items = list(datapoints)
        result = self._collect(self._run(items), items, log_failures)
        self._check_given_geometries(result, items)
        return result

    def featurize_arrays(
        self,
        atomic_numbers: Sequence[Any],
        positions: Sequence[Any],
        smiles: Optional[Sequence[Optional[str]]] = None,
        *,
        log_failures: bool = True,
    ) -> np.ndarray:
        """Featurize geometries given as arrays (XYZ files, QM9 tables, MD frames).

        No RDKit Mol is built, which makes this the fast path for molecules that already
        have coordinates: only the element block of the features is needed. Bond-dependent
        ``atom_properties`` need a Mol and raise ``ValueError`` here.

        Parameters
        ----------
        atomic_numbers : sequence of int arrays, each of shape (n_atoms,)
        positions : sequence of float arrays, each of shape (n_atoms, 3)
            Coordinates in Å, kept exactly (never re-embedded).
        smiles : sequence of str, optional
            Stored in `Conformer.smiles`.
        log_failures : bool, default=True
            As in `featurize`.

        Returns
        -------
        np.ndarray of object, shape (n_molecules,)
            A `Conformer` per molecule, or an empty float array where it failed (listed in
            `failures`).

        Examples
        --------
        >>> import numpy as np
        >>> water = ConformerFeaturizer(elements=("H", "O")).featurize_arrays(
        ...     [np.array([8, 1, 1])], [np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])]
        ... )[0]
        >>> water.features.tolist()
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
        """
        if self.settings.atom_properties:
            raise ValueError(
                "atom_properties need bonds, which arrays do not carry; featurize RDKit Mols "
                "instead (or drop atom_properties)"
            )
        if len(atomic_numbers) != len(positions) or (
            smiles is not None and len(smiles) != len(positions)
        ):
            raise ValueError(
                f"got {len(atomic_numbers)} atomic-number arrays, {len(positions)} position "
                f"arrays and {'no' if smiles is None else len(smiles)} SMILES: lengths must match"
            )
        names = [None] * len(positions) if smiles is None else list(smiles)
        outcomes: list[tuple[Optional[Conformer], Optional[str]]] = []
        for z, r, name in zip(atomic_numbers, positions, names):
            try:
                outcomes.append((conformer_from_arrays(self._encoder, z, r, name), None))
            except (FeaturizationError, ValueError) as err:
                outcomes.append((None, str(err)))
        result = self._collect(outcomes, names, log_failures)
        self._check_given_geometries(result, names)
        return result

    def _collect(
        self,
        outcomes: list[tuple[Optional[Conformer], Optional[str]]],
        items: Sequence[Any],
        log_failures: bool,
    ) -> np.ndarray:
        """The featurize result from ``(conformer or None, reason)`` per input; failures are
        kept in `failures` and, with ``log_failures``, logged one line each."""
        result = np.empty(len(outcomes), dtype=object)
        self.failures = []
        for i, (conformer, reason) in enumerate(outcomes):
            if conformer is not None:
                result[i] = conformer
                continue
            result[i] = np.array([])
            self.failures.append((i, items[i], reason))
            if log_failures:
                logger.warning(
                    "ConformerFeaturizer: input %d (%s) skipped: %s",
                    i,
                    describe_input(items[i]),
                    reason,
                )
        return result

    def _check_given_geometries(self, result: np.ndarray, items: Sequence[Any]) -> None:
        # Embedded geometries were refused already when they clash, so any clash found here
        # is in a geometry the user gave: theirs to keep, but never silently. One vectorised
        # pass over all of them costs less than tracking which ones were given.
        owners, numbers, geometries = [], [], []
        for i, conformer in enumerate(result):
            if isinstance(conformer, Conformer):
                stack = (
                    conformer.positions[None] if conformer.ensemble is None else conformer.ensemble
                )
                owners += [i] * len(stack)
                numbers += [conformer.atomic_numbers] * len(stack)
                geometries += list(stack)
        first: dict[int, str] = {}
        for k, text in clashing_molecules(numbers, geometries).items():
            first.setdefault(owners[k], text)
        self.clashes = [(i, items[i], text) for i, text in sorted(first.items())]
        if self.clashes:
            i, item, text = self.clashes[0]
            logger.warning(
                "ConformerFeaturizer: %d given geometr%s with overlapping atoms kept as given "
                "(listed in featurizer.clashes), e.g. input %d (%s): %s",
                len(self.clashes),
                "y" if len(self.clashes) == 1 else "ies",
                i,
                describe_input(item),
                text,
            )

    def _run(self, items: list[Any]) -> list[tuple[Optional[Conformer], Optional[str]]]:
        # An address is connected once, here, rather than once per use, and closed after.
        with connected(self.scheduler) as client:
            return self._run_on(items, client)

    def _run_on(
        self, items: list[Any], client: Any
    ) -> list[tuple[Optional[Conformer], Optional[str]]]:
        if client is not None:
            workers = sum(client.nthreads().values())
        else:
            workers = joblib.effective_n_jobs(self.n_jobs)
        size = max(1, min(_MAX_CHUNK, math.ceil(len(items) / (_CHUNKS_PER_WORKER * workers))))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        n_jobs = workers if client is None and len(chunks) > 1 else 1
        if client is not None or n_jobs > 1:
            chunks = [[_shipped(item) for item in chunk] for chunk in chunks]
        parts = map_ordered(
            featurize_chunk,
            ((self.settings, chunk) for chunk in chunks),
            n_jobs=n_jobs,
            scheduler=client,
        )
        show = self.progress
        if show is None:
            show = len(items) > 100 and sys.stderr.isatty()
        bar = tqdm(total=len(items), disable=not show, desc="featurize", unit="mol")
        outcomes: list[tuple[Optional[Conformer], Optional[str]]] = []
        with bar:
            for part in parts:
                outcomes.extend(part)
                bar.update(len(part))
        return outcomes

    def _changed_settings(self) -> list[tuple[str, Any]]:
        defaults = FeaturizerSettings()
        changed = [
            (name, getattr(self.settings, name))
            for name in FeaturizerSettings.__dataclass_fields__
            if getattr(self.settings, name) != getattr(defaults, name)
        ]
        return changed

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._changed_settings())
        return f"ConformerFeaturizer({inner})"

    def __str__(self) -> str:
        # DeepChem names its MoleculeNet cache folders after str(featurizer); its own version
        # only sees positional arguments, so every setting that changes the arrays goes here.
        parts = ["ConformerFeaturizer"]
        for name, value in self._changed_settings():
            text = "-".join(map(str, value)) if isinstance(value, tuple) else str(value)
            parts.append(f"{name}_{text}")
        return "_".join(parts)


__all__ = ["ConformerFeaturizer", "FeaturizationError"]


def _shipped(item: Any) -> Any:
    """``item`` as it should travel to another process: a Mol with its float64 coordinates."""
    return ShippedMol(item) if isinstance(item, Chem.Mol) else item
