"""How far each transformed copy's output is from what the symmetry says it should be.

Outputs arrive ragged (every molecule's output flattened, with its length), because
featurizers and per-atom outputs differ in size from molecule to molecule. All comparisons
are made on the flat arrays at once; per-copy maxima come from segment reductions.
"""

from __future__ import annotations

import numpy as np

from dc_invariant.auditing.copies import Copies
from dc_invariant.molecules import segment_arange, starts_of

__all__ = ["compare", "segment_reduce"]


def segment_reduce(
    ufunc: np.ufunc, values: np.ndarray, lengths: np.ndarray, empty: float | bool
) -> np.ndarray:
    """``ufunc.reduce`` over consecutive segments of the given lengths (``empty`` if 0)."""
    out = np.full(len(lengths), empty, dtype=np.result_type(values, type(empty)))
    filled = lengths > 0
    if filled.any():
        starts = starts_of(lengths)[filled]
        # Zero-length segments are left out of ``starts``; they hold no values, so every
        # remaining segment still ends where the next non-empty one begins.
        out[filled] = ufunc.reduceat(values, starts)
    return out


def compare(
    output: str,
    values: np.ndarray,
    lengths: np.ndarray,
    n_molecules: int,
    copies: Copies,
    counts: np.ndarray,
    rtol: float,
    atol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deviation of every copy from its molecule's expected output.

    Parameters
    ----------
    output : {"invariant", "per_atom", "vector", "pseudoscalar"}
    values, lengths : np.ndarray
        The target's outputs, flat, for the molecules followed by their copies.
    n_molecules : int
        How many of the outputs belong to the original molecules.
    copies : Copies
        The copies, with their owners and group elements.
    counts : np.ndarray of shape (n_molecules,)
        Atoms per original molecule.
    rtol, atol : float
        A value passes when ``|moved - expected| <= max(atol, rtol * |expected|)``.

    Returns
    -------
    absolute, relative : np.ndarray of shape (n_copies,)
        Largest absolute deviation, and relative one (over ``max(|expected|, atol)``);
        infinite when a copy's output has a different size from its molecule's.
    passed : np.ndarray of bool, shape (n_copies,)
    finite : np.ndarray of bool, shape (n_molecules + n_copies,)
        Whether every output value of each molecule / copy is finite.
    """
    offsets = starts_of(lengths)
    finite = segment_reduce(np.logical_and, np.isfinite(values), lengths, True)
    base_length, base_offset = lengths[:n_molecules], offsets[:n_molecules]
    copy_length, copy_offset = lengths[n_molecules:], offsets[n_molecules:]
    owner = copies.owner
    if output in ("per_atom", "vector"):
        width = base_length // counts
        # A molecule the target failed on holds one NaN: skipped, not a shape error.
        given = finite[:n_molecules]
        uneven = np.flatnonzero(given & (base_length != width * counts))
        wrong = np.flatnonzero(given & (width != 3)) if output == "vector" else uneven[:0]
        if len(uneven) or len(wrong):
            m = int(uneven[0]) if len(uneven) else int(wrong[0])
            what = "3 values (a vector)" if output == "vector" else "the same number of values"
            raise ValueError(
                f"output={output!r} needs {what} per atom, but molecule {m} has "
                f"{counts[m]} atoms and {base_length[m]} output values"
            )

    n_copies = len(owner)
    absolute = np.full(n_copies, np.inf)
    relative = np.full(n_copies, np.inf)
    passed = np.zeros(n_copies, dtype=bool)
    # A change of size fails outright; copies of a molecule without a finite output of its
    # own (skipped) are not compared.
    k = np.flatnonzero((copy_length == base_length[owner]) & finite[:n_molecules][owner])
    size = copy_length[k]
    element = segment_arange(np.zeros(len(k), np.int64), size)
    source = np.repeat(base_offset[owner[k]], size)
    if output in ("invariant", "pseudoscalar"):
        source = source + element
    else:
        w = np.repeat(width[owner[k]], size)
        copy_atom_start = copies.molecules.starts
        atom = copies.order[np.repeat(copy_atom_start[k], size) + element // w]
        source = source + atom * w + element % w
    expected = values[source]
    if output == "pseudoscalar":
        expected = expected * np.repeat(np.sign(np.linalg.det(copies.rotation[k])), size)
    elif output == "vector":
        vectors = expected.reshape(-1, 3)
        rotation = copies.rotation[np.repeat(k, size // 3)]
        expected = np.einsum("aij,aj->ai", rotation, vectors).reshape(-1)
    moved = values[np.repeat(copy_offset[k], size) + element]
    difference = np.abs(moved - expected)
    scale = np.abs(expected)
    if output == "vector":
        # Rounding scales with each atom's whole vector: a component near 0 only because of
        # how the molecule lies must not get a tolerance of its own (exact forces failed).
        scale = np.repeat(np.linalg.norm(expected.reshape(-1, 3), axis=1), 3)
    absolute[k] = segment_reduce(np.maximum, difference, size, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # An exact match is relative 0 even where the expected value and atol are both 0.
        ratio = np.where(difference == 0, 0.0, difference / np.maximum(scale, atol))
    relative[k] = segment_reduce(np.maximum, ratio, size, 0.0)
    ok = difference <= np.maximum(atol, rtol * scale)
    passed[k] = segment_reduce(np.logical_and, ok, size, True)
    return absolute, relative, passed, finite
