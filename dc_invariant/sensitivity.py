"""Conformer sensitivity: how much a target's output moves when a molecule is re-embedded.

Not a symmetry. Two ETKDG embeddings of one molecule are different geometries (torsions,
ring puckers), not copies moved by a group element, so no target has to agree on them. The
spread is reported on its own, as information: a large one means that predictions made from
a single embedded conformer carry that much noise from the embedding alone. (Just over 300
lines: the report type and the function that fills it.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd
from rdkit import Chem
from tqdm.auto import tqdm

from dc_invariant.auditing.targets import predictor, target_dtype
from dc_invariant.auditing.words import environment
from dc_invariant.conformer import Conformer
from dc_invariant.files import TableReport, columns_of, numbers_back, read_json
from dc_invariant.molecules import Molecules, split_segments
from dc_invariant.validation import check_bool, check_int

__all__ = ["SensitivityReport", "conformer_sensitivity"]

_COLUMNS = ["id", "smiles", "n_atoms", "n_conformers", "mean", "std", "range", "rel_range"]
# Floor of |mean| in rel_range, so that outputs near zero give finite numbers.
_TINY = 1e-12
# Molecules embedded and predicted per step: bounds memory and paces the progress bar.
# Each geometry depends only on (molecule, seed + j), so the chunking never changes a number.
_CHUNK = 500
_MAX_SEED = 2**31 - 2  # ConformerFeaturizer's own limit for random_seed


@dataclass
class SensitivityReport(TableReport):
    """Spread of a target's output over re-embedded conformers of each molecule.

    Attributes
    ----------
    molecules : pandas.DataFrame
        One row per measured molecule: ``id``, ``smiles``, ``n_atoms``, ``n_conformers``
        (geometries that embedded), ``mean`` and ``std`` (sample standard deviation,
        ``ddof=1``) of the first output over the conformers, ``range`` (max - min over the
        conformers, the largest over all outputs) and ``rel_range`` (each output's range over
        ``max(|mean|, 1e-12)``, the largest over all outputs).
    skipped : pandas.DataFrame
        Molecules not measured (``id``, ``reason``): fewer than two conformers embedded, or
        the target gave NaN or infinity.
    settings : dict
        ``n_conformers``, ``seed``, ``featurizer``, ``target``, ``dtype`` and library
        ``versions``: enough to rerun.
    summary : dict
        ``molecules`` (measured), ``skipped``, ``median_range``, ``p90_range``,
        ``max_range``, and ``max_range_id`` / ``max_range_smiles`` of the molecule with the
        largest range (NaN / None when nothing was measured).

    Examples
    --------
    >>> count = lambda r, x: len(r)  # the same for every conformer
    >>> report = conformer_sensitivity(count, ["CCO", "C1CC1", "oops"], n_conformers=2)
    >>> report.summary["max_range"], len(report.molecules), report.skipped["id"].tolist()
    (0.0, 2, ['oops'])
    """

    molecules: pd.DataFrame
    skipped: pd.DataFrame
    settings: dict[str, Any]
    summary: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        ranges = self.molecules["range"].to_numpy(dtype=np.float64)
        worst = self.molecules.iloc[int(np.argmax(ranges))] if len(ranges) else None
        self.summary = {
            "molecules": len(self.molecules),
            "skipped": len(self.skipped),
            "median_range": float(np.median(ranges)) if len(ranges) else np.nan,
            "p90_range": float(np.percentile(ranges, 90)) if len(ranges) else np.nan,
            "max_range": float(ranges.max()) if len(ranges) else np.nan,
            "max_range_id": None if worst is None else str(worst["id"]),
            "max_range_smiles": None if worst is None else worst["smiles"],
        }

    def format(self) -> str:
        """A few lines: counts, settings, the distribution of ranges and the worst molecule."""
        s, m = self.settings, self.summary
        n_in = m["molecules"] + m["skipped"]
        lines = [
            f"conformer sensitivity of {s['target']} ({s['dtype']}): "
            f"{s['n_conformers']} embeddings per molecule, seeds {s['seed']}.."
            f"{s['seed'] + s['n_conformers'] - 1}",
            f"{n_in} molecules in, {m['molecules']} measured, {m['skipped']} skipped",
        ]
        if m["molecules"]:
            lines.append(
                f"range over conformers: median {m['median_range']:.3g}, "
                f"p90 {m['p90_range']:.3g}, max {m['max_range']:.3g} "
                f"(molecule {m['max_range_id']}: {m['max_range_smiles']})"
            )
        lines.append("not a symmetry: different conformers are different geometries")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """Settings, summary, per-molecule rows and skips (`to_json`)."""
        return {
            "settings": self.settings,
            "summary": self.summary,
            "molecules": columns_of(self.molecules),
            "skipped": self.skipped.to_dict(orient="records"),
        }

    @classmethod
    def from_json(cls, path: str) -> SensitivityReport:
        """Read a report written by `to_json`."""
        data = read_json(path)
        molecules = numbers_back(
            pd.DataFrame(data["molecules"], columns=_COLUMNS), ["mean", "std", "range", "rel_range"]
        )
        skipped = pd.DataFrame(data["skipped"], columns=["id", "reason"])
        return cls(molecules, skipped, data["settings"])

    def tables(self) -> dict[str, pd.DataFrame]:
        """``molecules``, ``summary`` (one row) and ``skipped`` (`to_csv`)."""
        return {
            "molecules": self.molecules,
            "summary": pd.DataFrame([self.summary]),
            "skipped": self.skipped,
        }


def conformer_sensitivity(
    target: Any,
    molecules: Any,
    *,
    n_conformers: int = 5,
    seed: int = 0,
    featurizer: Optional[Any] = None,
    progress: bool = False,
) -> SensitivityReport:
    """Re-embed each molecule with several seeds and measure the spread of the target's output.

    Parameters
    ----------
    target : model, featurizer or callable
        What `dc_invariant.auditing.audit` accepts: a model with ``predict(dataset)``, a
        DeepChem featurizer, or a function ``f(positions, features) -> array``.
    molecules : str, rdkit.Chem.Mol or sequence of them
        SMILES or Mols. A Mol's own conformers are ignored (on a copy): the point is to
        re-embed. ``None`` (a record RDKit could not read) is skipped.
    n_conformers : int, default=5
        Embeddings per molecule, with seeds ``seed, seed + 1, ...``; at least 2.
    seed : int, default=0
        First embedding seed: the same seed gives the same report.
    featurizer : ConformerFeaturizer, optional
        Settings for the embedding and features (default: ``ConformerFeaturizer()``). Its
        ``random_seed`` and ``n_conformers`` are replaced; everything else is kept.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    SensitivityReport
        Molecules in = ``len(report.molecules) + len(report.skipped)``.

    Examples
    --------
    >>> import numpy as np
    >>> gyration = lambda r, x: np.sqrt(((r - r.mean(0)) ** 2).sum(1).mean())
    >>> report = conformer_sensitivity(gyration, ["CCCCO"], n_conformers=3)
    >>> report.molecules[["id", "n_conformers"]].values.tolist(), report.summary["max_range"] > 0
    ([['CCCCO', 3]], True)
    """
    from dc_invariant.featurizer import ConformerFeaturizer  # imports DeepChem: only on use

    if isinstance(molecules, (str, Chem.Mol)):
        molecules = [molecules]
    if not isinstance(molecules, (list, tuple, np.ndarray, pd.Series)):
        raise TypeError(
            f"molecules must be a list of SMILES strings or RDKit Mols, "
            f"got {type(molecules).__name__}"
        )
    items = list(molecules)
    if not items:
        raise ValueError("molecules is empty: pass at least one SMILES string or RDKit Mol")
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, (str, Chem.Mol)):
            raise TypeError(
                f"molecule {i} is {type(item).__name__}; expected a SMILES string or an RDKit Mol"
            )
    n_conformers = check_int(n_conformers, "n_conformers", min_val=2)
    # Conformer j is embedded with seed + j: every one must be a valid embedding seed.
    seed = check_int(seed, "seed", min_val=0, max_val=_MAX_SEED - n_conformers + 1)
    if featurizer is None:
        featurizer = ConformerFeaturizer()
    if not isinstance(featurizer, ConformerFeaturizer):
        raise TypeError(
            "featurizer must be a dc_invariant ConformerFeaturizer, "
            f"got {type(featurizer).__name__}"
        )
    # One featurize call per seed with n_conformers=1, rather than one ensemble call
    # (n_conformers=k + split_ensemble): an ensemble is all-or-nothing, so a molecule with
    # one failed embedding would be lost, and each geometry would depend on k as well as
    # on its seed. Per seed, geometry j is the one `ConformerFeaturizer(random_seed=seed + j)`
    # gives, and asking for more conformers only adds geometries.
    base = featurizer.replace(n_conformers=1, random_seed=seed, progress=False)
    check_bool(progress, "progress")
    run, dtype = predictor(target), target_dtype(target)
    ids = [item if isinstance(item, str) else str(i) for i, item in enumerate(items)]
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    with tqdm(total=len(items), disable=not progress, desc="sensitivity", unit="mol") as bar:
        for start in range(0, len(items), _CHUNK):
            part = slice(start, start + _CHUNK)
            chunk_rows, chunk_skipped = _measure(run, base, items[part], ids[part], n_conformers)
            rows.extend(chunk_rows)
            skipped.extend(chunk_skipped)
            bar.update(len(items[part]))
    settings = {
        "n_conformers": n_conformers,
        "seed": seed,
        "featurizer": str(base),
        "target": type(target).__name__,
        "dtype": dtype,
        "versions": environment(),
    }
    return SensitivityReport(
        pd.DataFrame(rows, columns=_COLUMNS),
        pd.DataFrame(skipped, columns=["id", "reason"]),
        settings,
    )


def _measure(
    run: Any, base: Any, items: list[Any], ids: list[str], k: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Rows and skips for one chunk: k embeddings each, then one call of the target."""
    inputs = [_one_stereoisomer(_without_conformers(item)) for item in items]
    geometries: list[list[Conformer]] = [[] for _ in items]
    reasons: list[list[str]] = [[] for _ in items]
    seed = base.settings.random_seed
    for j in range(k):
        featurizer = base.replace(random_seed=seed + j)
        out = featurizer.featurize(inputs, log_failures=False)
        failed = {i: why for i, _, why in featurizer.failures}
        for i, conformer in enumerate(out):
            if isinstance(conformer, Conformer):
                geometries[i].append(conformer)
            else:
                why = failed.get(i, "not featurized")
                if why not in reasons[i]:  # the same reason for every seed: say it once
                    reasons[i].append(why)
    skipped: list[tuple[str, str]] = []
    measured = []
    for i, conformers in enumerate(geometries):
        if len(conformers) >= 2:
            measured.append(i)
        else:
            why = "; ".join(reasons[i])
            skipped.append((ids[i], f"{len(conformers)} of {k} embeddings succeeded: {why}"))
    flat = [c for i in measured for c in geometries[i]]
    outputs = _outputs(run, flat) if flat else []  # one call: one large batch for models
    rows: list[dict[str, Any]] = []
    offset = 0
    for i in measured:
        n = len(geometries[i])
        mine, offset = outputs[offset : offset + n], offset + n
        sizes = {np.size(y) for y in mine}
        if len(sizes) > 1 or sizes == {0}:
            raise ValueError(
                f"the target returned outputs of sizes {sorted(sizes)} for the conformers of "
                f"molecule {ids[i]!r}; it must give the same, non-zero number of values for each"
            )
        y = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in mine])  # (n, n_out)
        if not np.isfinite(y).all():
            skipped.append((ids[i], "the target returned NaN or infinity"))
            continue
        mean = y.mean(axis=0)
        spread = y.max(axis=0) - y.min(axis=0)
        first = geometries[i][0]
        rows.append(
            {
                "id": ids[i],
                "smiles": first.smiles,
                "n_atoms": first.n_atoms,
                "n_conformers": n,
                "mean": float(mean[0]),
                "std": float(y[:, 0].std(ddof=1)),
                "range": float(spread.max()),
                "rel_range": float((spread / np.maximum(np.abs(mean), _TINY)).max()),
            }
        )
    return rows, skipped


def _outputs(run: Any, conformers: list[Conformer]) -> list[np.ndarray]:
    """One flat output array per conformer from `predictor`'s runner.

    The audit's runner takes molecules stacked atom by atom and returns every output
    concatenated with their lengths; this is the only place that knows that form.
    """
    outputs = run(Molecules.from_conformers(conformers))
    return split_segments(np.asarray(outputs.values, dtype=np.float64), outputs.lengths)


def _one_stereoisomer(item: Any) -> Any:
    """``item`` with its unassigned stereocentres and double bonds set as in the first
    stereoisomer RDKit enumerates: each seed would otherwise embed one at random (ClC=CCl:
    cis on some seeds, trans on others), a spread of isomers reported as one of conformers."""
    from rdkit.Chem.EnumerateStereoisomers import (
        EnumerateStereoisomers,
        StereoEnumerationOptions,
    )

    mol = Chem.MolFromSmiles(item) if isinstance(item, str) else item
    if not isinstance(mol, Chem.Mol):
        return item  # the featurizer names what is wrong with it
    options = StereoEnumerationOptions(onlyUnassigned=True, unique=True)
    first = next(iter(EnumerateStereoisomers(mol, options=options)), None)
    if first is None or Chem.MolToSmiles(first) == Chem.MolToSmiles(mol):
        return item
    return Chem.MolToSmiles(first) if isinstance(item, str) else first


def _without_conformers(item: Any) -> Any:
    """A copy of a Mol with no conformers, so that the featurizer embeds it anew."""
    if isinstance(item, Chem.Mol) and item.GetNumConformers():
        item = Chem.Mol(item)
        item.RemoveAllConformers()
    return item
