"""The width and regularization of `KernelModel`, chosen where the error has its minimum.

Each width costs a pass over the atom pairs and, on the training molecules (a seeded subset
of ``search_size`` of them when there are more), one eigendecomposition, which scores every
``lambda`` at once: by exact leave-one-out (`loo`) or on a given validation set. The
``lambda`` grid spans 1e-10 to 10 times the kernel's mean diagonal, so noise-free energies
(small ``lambda``) and noisy experimental labels (large) both find an interior optimum. The
widths grow or shrink by the grid's end ratio while the best one lies on an edge, then one
more is tried halfway (geometrically) toward the best's better neighbour. On a subset,
``lambda`` is then walked on the whole training set with Cholesky leave-one-out (an
eigendecomposition of a large kernel costs many factorisations: 2,000 molecules, 3.6 s
against 0.08 s here). A choice still on an edge is warned about.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from dc_invariant.models.kernel.kernels import AtomSet, kernel_matrices, select_molecules
from dc_invariant.models.kernel.scoring import Holdout, Scorer
from dc_invariant.models.kernel.settings import KernelSettings

__all__ = [
    "RELATIVE_REGULARIZATIONS",
    "Choice",
    "choose",
    "edges_of_regularization",
    "walk",
    "warn_edges",
]

#: ``lambda`` candidates as multiples of the kernel's mean diagonal: 1e-10 ... 10, 4 a decade.
RELATIVE_REGULARIZATIONS = tuple(10.0 ** np.arange(-10.0, 1.01, 0.25))
# Widths added beyond an edge of the grid before the search gives up and warns.
_MAX_EXTENSIONS = 4
# Fewer molecules than this are fitted with the given or middle candidates, unsearched;
# then lambda is this multiple of the kernel's scale (small: such sets are toy curves).
_MIN_SEARCH = 10
_UNSEARCHED = 1e-6


@dataclass
class Choice:
    """What the search chose, and the training kernel of the chosen width.

    ``mae`` and ``rmse`` are the selection errors (leave-one-out or validation, ``y`` units,
    mean over tasks) of the choice: NaN when nothing was searched. ``alpha`` is the fit's
    coefficients when the search already solved for them, else None. A width-only choice
    has no ``kernel`` and gives ``relative``, the index of its ``lambda`` in
    `RELATIVE_REGULARIZATIONS` (None when the candidates were given).
    """

    kernel: Optional[np.ndarray]
    sigma: float
    regularization: float
    mae: float = np.nan
    rmse: float = np.nan
    table: list[dict[str, Any]] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)
    alpha: Optional[np.ndarray] = None
    relative: Optional[int] = None


def choose(
    sets: list[AtomSet],
    counts: np.ndarray,
    y: np.ndarray,
    settings: KernelSettings,
    holdout: Optional[Holdout] = None,
    width_only: bool = False,
) -> Choice:
    """The chosen width and regularization, and the training kernel of that width.

    Parameters
    ----------
    sets : list of AtomSet
        Training atoms, one set per element.
    counts : np.ndarray of shape (n, n_elements)
        Atoms of each element per molecule.
    y : np.ndarray of shape (n, n_tasks)
    settings : KernelSettings
        Given ``sigma`` / ``regularization`` (or None), the candidates ``sigmas`` /
        ``regularizations`` (None: `RELATIVE_REGULARIZATIONS`), ``search_size``, ``seed``.
    holdout : Holdout, optional
        Select on this validation set instead of by leave-one-out.
    width_only : bool, default=False
        Stop after the search molecules (the Nystrom solve walks ``lambda`` itself): no
        kernel of the whole set, and ``relative`` gives the search's ``lambda``.
    """
    s = settings
    n = len(y)
    if (s.sigma and s.regularization) or n < _MIN_SEARCH:
        sigma = s.sigma or float(np.exp(np.log(s.sigmas).mean()))
        if width_only:
            given = s.regularization or (s.regularizations and float(np.median(s.regularizations)))
            default = int(np.argmin(np.abs(np.log(RELATIVE_REGULARIZATIONS) - np.log(_UNSEARCHED))))
            return Choice(None, sigma, given or np.nan, relative=None if given else default)
        kernel = kernel_matrices(sets, None, n, n, [sigma], s.memory_bytes)[0]
        if s.regularization:
            return Choice(kernel, sigma, s.regularization)
        if s.regularizations is not None:
            return Choice(kernel, sigma, float(np.median(s.regularizations)))
        return Choice(kernel, sigma, _scale(kernel) * _UNSEARCHED)
    sub = None
    if n > s.search_size:
        sub = np.sort(np.random.default_rng(s.seed).choice(n, s.search_size, replace=False))
    search = _Grid(sets if sub is None else select_molecules(sets, sub), counts, y, s, holdout, sub)
    search.run()
    sigma, reg_index, regs = search.best()
    table = search.table
    edges = search.edges(reg_index, regs)
    if width_only:
        given = s.regularization or s.regularizations is not None
        edges = [e for e in edges if not e.startswith("regularization")]
        return Choice(None, sigma, float(regs[reg_index]), table=table, edges=edges,
                      relative=None if given else reg_index)  # fmt: skip
    if sub is None:
        kernel = search.kernels.pop(sigma)
        best = search.results[sigma]
        return Choice(
            kernel, sigma, float(regs[reg_index]), float(best[1][reg_index]),
            float(best[2][reg_index]), table, edges,
        )  # fmt: skip
    # lambda on the whole set, walked from the subset's choice (see the module docstring).
    del search
    kernel = kernel_matrices(sets, None, n, n, [sigma], s.memory_bytes)[0]
    cross = None
    if holdout is not None:
        cross = kernel_matrices(holdout.sets, sets, len(holdout.y), n, [sigma], s.memory_bytes)[0]
    scorer = Scorer(counts, y, holdout)
    at, mae, rmse, alpha, rows = _walk(kernel, cross, scorer, regs, reg_index, s.regularization)
    table += [{**row, "sigma": sigma, "n_train": n} for row in rows]
    edges = [e for e in edges if not e.startswith("regularization")]
    if s.regularization is None and at in (0, len(regs) - 1):
        edges += edges_of_regularization(float(regs[at]), regs)
    reg = s.regularization or float(regs[at])
    return Choice(kernel, sigma, reg, mae, rmse, table, edges, alpha)


def _walk(
    kernel: np.ndarray,
    cross: Optional[np.ndarray],
    scorer: Scorer,
    regs: np.ndarray,
    start: int,
    given: Optional[float],
) -> tuple[int, float, float, np.ndarray, list[dict[str, Any]]]:
    """`walk` the ``lambda`` grid with Cholesky leave-one-out (or validation) errors; the
    best's index, MAE, RMSE, coefficients, and a table row per ``lambda`` tried."""

    def evaluate(reg: float) -> tuple[float, float, float, np.ndarray]:
        try:
            residuals, alpha = scorer.one(kernel, cross, reg)
        except ValueError:  # not positive definite: never the best
            return np.inf, np.nan, np.nan, np.empty(0)
        score, mae, rmse = scorer.score(residuals)
        return float(score), float(mae), float(rmse), alpha

    candidates = [given] if given else list(regs)
    best, (_, mae, rmse, alpha), rows = walk(candidates, 0 if given else start, evaluate)
    return best, mae, rmse, alpha, rows


def walk(
    candidates: Sequence[float],
    start: int,
    evaluate: Callable[[float], tuple[float, float, float, Any]],
) -> tuple[int, tuple[float, float, float, Any], list[dict[str, Any]]]:
    """Walk a ``lambda`` grid from ``start`` in steps of two (half a decade) while the error
    falls, then one step either side; each candidate is evaluated once.

    ``evaluate(lambda)`` gives (score, MAE, RMSE, anything), the score ``inf`` for a
    ``lambda`` that failed (a factorisation that was not positive definite). Returns the
    best's index, its evaluation, and a table row per ``lambda`` tried. Raises
    ``ValueError`` when every ``lambda`` tried failed.
    """
    tried: dict[int, tuple[float, float, float, Any]] = {}

    def at(k: int) -> float:
        if k not in tried:
            tried[k] = evaluate(float(candidates[k]))
        return tried[k][0]

    best = start
    at(best)
    for step in (-2, 2):
        while 0 <= best + step < len(candidates) and at(best + step) < at(best):
            best += step
    for step in (-1, 1):  # the grid's own resolution, around the best
        if 0 <= best + step < len(candidates) and at(best + step) < at(best):
            best += step
            break
    if not np.isfinite(tried[best][0]):
        raise ValueError("every regularization tried left the kernel singular; try larger ones")
    rows = [
        {"regularization": float(candidates[k]), "score": _num(v[0]), "mae": _num(v[1]),
         "rmse": _num(v[2])}
        for k, v in sorted(tried.items())
    ]  # fmt: skip
    return best, tried[best], rows


class _Grid:
    """Widths on the search molecules: scored for every ``lambda``, extended, refined."""

    def __init__(
        self,
        sets: list[AtomSet],
        counts: np.ndarray,
        y: np.ndarray,
        settings: KernelSettings,
        holdout: Optional[Holdout],
        sub: Optional[np.ndarray],
    ) -> None:
        self.sets, self.settings, self.holdout = sets, settings, holdout
        self.n = len(y) if sub is None else len(sub)
        self.scorer = Scorer(counts if sub is None else counts[sub], y if sub is None else y[sub],
                              holdout)  # fmt: skip
        self.kernels: dict[float, np.ndarray] = {}
        self.cross: dict[float, np.ndarray] = {}
        self.results: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.table: list[dict[str, Any]] = []

    def run(self) -> None:
        """Score the starting widths, extend past an edge, then refine around the best.

        Each pass over the atom pairs computes several widths from one GEMM, so the
        midpoints between the starting widths are computed with them; one is scored (an
        eigendecomposition), between the best and its better neighbour.
        """
        s = self.settings
        if s.sigma:
            self.compute([s.sigma])
            self.score(s.sigma)
            return
        coarse = sorted(s.sigmas)
        self.compute(coarse + _midpoints(coarse))
        for sigma in coarse:
            self.score(sigma)
        if len(coarse) == 1:
            return
        low, high = coarse[1] / coarse[0], coarse[-1] / coarse[-2]
        for _ in range(_MAX_EXTENSIONS):
            best = self.best()[0]
            if best == coarse[0]:
                new = coarse[0] / low
            elif best == coarse[-1]:
                new = coarse[-1] * high
            else:
                break
            self.compute([new, float(np.sqrt(new * best))])
            self.score(new)
            coarse = sorted([*coarse, new])
        # Refine toward the better neighbour only: one eigendecomposition, not two.
        k = coarse.index(self.best()[0])
        beside = [j for j in (k - 1, k + 1) if 0 <= j < len(coarse)]
        j = min(beside, key=lambda i: np.nanmin(self.results[coarse[i]][0]))
        self.score(float(np.sqrt(coarse[k] * coarse[j])))
        self.kernels = {self.best()[0]: self.kernels[self.best()[0]]}

    def compute(self, sigmas: Sequence[float]) -> None:
        """The kernels of ``sigmas`` (and their validation kernels), in one pass."""
        s = self.settings
        sigmas = [float(v) for v in sigmas]
        kernels = kernel_matrices(self.sets, None, self.n, self.n, sigmas, s.memory_bytes)
        self.kernels.update(zip(sigmas, kernels))
        if self.holdout is not None:
            cross = kernel_matrices(
                self.holdout.sets, self.sets, len(self.holdout.y), self.n, sigmas,
                s.memory_bytes,
            )  # fmt: skip
            self.cross.update(zip(sigmas, cross))

    def score(self, sigma: float) -> None:
        """Every ``lambda``'s error at a computed width (one eigendecomposition)."""
        kernel = self.kernels[sigma]
        regs = self.regularizations(kernel)
        residuals = self.scorer.eigen(kernel, self.cross.get(sigma), regs)
        score, mae, rmse = self.scorer.score(residuals)
        self.results[sigma] = (score, mae, rmse, regs)
        self.table += [
            {"sigma": sigma, "regularization": float(r), "score": _num(c), "mae": _num(m),
             "rmse": _num(e), "n_train": self.n}
            for r, c, m, e in zip(regs, score, mae, rmse)
        ]  # fmt: skip

    def regularizations(self, kernel: np.ndarray) -> np.ndarray:
        s = self.settings
        if s.regularization:
            return np.array([s.regularization])
        if s.regularizations is not None:
            return np.array(sorted(s.regularizations))
        return _scale(kernel) * np.array(RELATIVE_REGULARIZATIONS)

    def best(self) -> tuple[float, int, np.ndarray]:
        """(sigma, index of its best lambda, its lambda grid) of the lowest score."""
        sigma = min(self.results, key=lambda v: np.nanmin(self.results[v][0]))
        score, _, _, regs = self.results[sigma]
        return sigma, int(np.nanargmin(score)), regs

    def edges(self, reg_index: int, regs: np.ndarray) -> list[str]:
        """A sentence for each chosen value on an edge of its searched range."""
        out = []
        s = self.settings
        sigma = self.best()[0]
        order = sorted(self.results)
        if not s.sigma and len(order) > 1 and sigma in (order[0], order[-1]):
            out.append(
                f"sigma={sigma:g} lies on the edge of the widths searched ({order[0]:g} to "
                f"{order[-1]:g}, the grid extended up to {_MAX_EXTENSIONS} times): pass "
                "sigmas= reaching further, or sigma= to fix it"
            )
        if not s.regularization and len(regs) > 1 and reg_index in (0, len(regs) - 1):
            out += edges_of_regularization(float(regs[reg_index]), regs)
        return out


def _midpoints(sigmas: list[float]) -> list[float]:
    """Geometric midpoints of neighbouring widths."""
    return [float(np.sqrt(a * b)) for a, b in zip(sigmas[:-1], sigmas[1:])]


def edges_of_regularization(reg: float, regs: Sequence[float]) -> list[str]:
    """The warning's sentence for a ``lambda`` on an end of the range searched."""
    return [
        f"regularization={reg:g} lies on the edge of the range searched ({regs[0]:g} to "
        f"{regs[-1]:g}): pass regularizations= reaching further, or regularization= to fix it"
    ]


def warn_edges(edges: list[str]) -> None:
    """One ``UserWarning`` per chosen value on an edge of its range."""
    for edge in edges:
        warnings.warn(f"KernelModel search: {edge}", UserWarning, stacklevel=4)


def _scale(kernel: np.ndarray) -> float:
    """The kernel's scale, its mean diagonal (a molecule's similarity with itself)."""
    return float(np.mean(np.diag(kernel)))


def _num(value: float) -> Optional[float]:
    return None if not np.isfinite(value) else float(value)
