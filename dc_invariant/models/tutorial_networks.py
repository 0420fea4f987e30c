"""The tutorial's four networks in torch, each computing its `dc_invariant.reference` twin
for a whole batch at once.

The invariant three work on the batch's atoms stacked together (and, for the pair networks,
on every molecule's atom pairs), so no padding ever enters a sum and a molecule's prediction
does not depend on what it is batched with. The pair networks have two evaluations of one
function: autograd-friendly tensors for training and forces, and an in-place path for
inference that runs at a small multiple of the arithmetic floor (benchmarks/inference.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Optional

import numpy as np
import torch

from dc_invariant.models.elementwise import tanh_
from dc_invariant.models.pooling import molecule_of_atoms, sum_over_molecules
from dc_invariant.molecules import segment_arange, starts_of

__all__ = [
    "DenseNetwork",
    "PermutationNetwork",
    "RotationNetwork",
    "TranslationNetwork",
    "activation",
    "pair_envelope",
]


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name``."""
    functions = {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "silu": torch.nn.functional.silu,
        "softplus": torch.nn.functional.softplus,
    }
    if name not in functions:
        raise ValueError(f"activation must be one of {sorted(functions)}, got {name!r}")
    return functions[name]


class _TwoLayer(torch.nn.Module):
    """Shared head: ``layer2(pool(act(layer1(inputs))))`` with the tutorial's shapes."""

    def __init__(self, n_inputs: int, hidden: int, n_outputs: int, act: str) -> None:
        super().__init__()
        self.layer1 = torch.nn.Linear(n_inputs, hidden)
        self.layer2 = torch.nn.Linear(hidden, n_outputs)
        self.act = activation(act)
        self.act_in_place = _IN_PLACE.get(act)


class DenseNetwork(_TwoLayer):
    """All atoms' ``[r, x]`` flattened into one input vector of a fixed size."""

    def __init__(self, n_atoms: int, n_features: int, hidden: int, n_outputs: int, act: str):
        super().__init__(n_atoms * (3 + n_features), hidden, n_outputs, act)

    def forward(self, positions: torch.Tensor, features: torch.Tensor, mask: torch.Tensor):
        inputs = torch.cat([positions, features], dim=-1).flatten(1)
        return self.layer2(self.act(self.layer1(inputs)))


class PermutationNetwork(_TwoLayer):
    """Per-atom hidden layer on ``[r_i, x_i]``, summed over each molecule's atoms."""

    def __init__(self, n_features: int, hidden: int, n_outputs: int, act: str):
        super().__init__(3 + n_features, hidden, n_outputs, act)

    def forward(self, positions: torch.Tensor, features: torch.Tensor, counts: torch.Tensor):
        hidden = self.act(self.layer1(torch.cat([positions, features], dim=-1)))
        return self.layer2(sum_over_molecules(hidden, counts))


# Bytes of (pairs, hidden) pre-activations per dense piece: large enough to amortise the
# per-piece overhead, small enough to stay in a core's L2 cache while the activation and the
# sum pass over it (1 MiB beat 256 KiB and 4 MiB on one thread, 10,000 QM9 molecules).
_PIECE_BYTES = 1 << 20

# Bytes of pair geometry (difference planes and squared distances) per call of the dense
# inference path: molecules of one size are processed in chunks of this much.
_PLANE_BYTES = 16 << 20

# Activations that can overwrite their input, for the inference path (no autograd graph).
_IN_PLACE = {
    "tanh": tanh_,  # torch's or NumPy's kernel, whichever this CPU runs faster
    "relu": torch.Tensor.relu_,
    "silu": lambda x: torch.nn.functional.silu(x, inplace=True),
}


def _fold_plan(rows: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """The in-place adds of `_fold_sum` over ``rows`` (m, k), as views, and the result row.

    A plan made once serves every piece that reuses the same buffer: a piece then costs
    log2(m) adds and no slicing.
    """
    adds = []
    m = rows.shape[0]
    while m > 1:
        half = m // 2
        adds.append((rows[:half], rows[m - half : m]))
        m -= half
    return adds, rows[0]


def _fold_sum(rows: torch.Tensor) -> torch.Tensor:
    """Sum of ``rows`` (m, k) over m, as a fixed tree of element-wise adds (overwrites rows).

    ``torch.sum`` picks its order of additions by the tensor's shape, so a molecule's float32
    sum would change with the number of batch-mates in its piece. Folding the upper half of
    the rows onto the lower half, again and again, adds every column in the same order
    whatever k is: a prediction never depends on its batch-mates.
    """
    adds, result = _fold_plan(rows)
    for into, other in adds:
        into.add_(other)
    return result


def pair_envelope(squared: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``(1 - d²/cutoff²)²`` inside the cutoff, 0 outside: smooth, 1 at ``d = 0``.

    A polynomial in ``d²`` rather than a cosine in ``d`` so that no square root enters the
    graph: its gradient at ``d = 0`` (every atom's pair with itself) would be NaN.
    """
    inside = (1.0 - squared / cutoff**2).clamp(min=0.0)
    return inside * inside


class _PairNetwork(_TwoLayer):
    """Per-pair hidden layer on ``[g(r_j - r_i), x_j]``, summed over each molecule's pairs.

    Two evaluations of the same function. Molecules of equal size are evaluated together on
    dense (molecules, n, n) pair tensors, which needs no index gathering. Molecules listed
    in ``sparse`` use the pair list ``pairs`` instead (neighbour lists within the cutoff, plus
    ``i == j``), so their cost grows with the number of close pairs rather than with n².
    """

    geometry_width: ClassVar[int]

    def __init__(
        self, n_features: int, hidden: int, n_outputs: int, act: str, cutoff: Optional[float]
    ):
        super().__init__(self.geometry_width + n_features, hidden, n_outputs, act)
        self.cutoff = cutoff

    def pair_geometry(self, differences: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _pair_terms(self, differences: torch.Tensor, per_atom_j: torch.Tensor) -> torch.Tensor:
        """``act(g W_g + a_j) f(d) W2ᵀ`` for every pair: its share of the output."""
        w = self.layer1.weight[:, : self.geometry_width]
        geometry = self.pair_geometry(differences)
        if self.geometry_width == 1:
            pre = torch.addcmul(per_atom_j, geometry, w[:, 0])
        else:
            pre = per_atom_j + geometry @ w.T
        hidden = self.act(pre)
        if self.cutoff is not None:
            squared = (differences * differences).sum(-1, keepdim=True)
            hidden = hidden * pair_envelope(squared, self.cutoff)
        # layer2 is linear, so it can act on every pair before the sum: the sum then runs
        # over n_outputs numbers per pair instead of `hidden`.
        return hidden @ self.layer2.weight.T

    def _dense_group_in_place(
        self, r: torch.Tensor, a: torch.Tensor, workspace: torch.Tensor, step: int
    ) -> torch.Tensor:
        """Σ over each molecule's (n, n) pairs of ``act(g W_g + a_j) f(d)``, for inference.

        ``r`` (B, n, 3) and ``a`` (B, n, hidden) hold B molecules of n atoms; returns
        (B, hidden), before ``layer2``. Pairs are laid out (i, j, molecule): every
        element-wise step then runs along B molecules (or B x hidden values) instead of
        along n (~18) atoms, which torch does not vectorise. The pre-activations of ``step``
        molecules at a time are written into ``workspace`` (one fused multiply-add),
        activated in place and folded: three passes over memory that stays in cache, where
        the autograd path allocates (and page-faults) a fresh tensor at each step.
        """
        b_all, n, hidden = a.shape
        # One (n, n, B) plane per axis, [i, j, m] = that component of r_j - r_i in molecule
        # m: contiguous element-wise passes, 4x faster than reducing an axis of length 3.
        axes = r.permute(2, 1, 0).contiguous()  # (3, n, B)
        planes = [x[None, :, :] - x[:, None, :] for x in axes]
        squared = None
        if self.geometry_width == 1 or self.cutoff is not None:
            squared = planes[0] * planes[0]
            for p in planes[1:]:
                squared.addcmul_(p, p)
        w = self.layer1.weight[:, : self.geometry_width]
        if self.geometry_width == 1:
            geometry, w = squared[..., None], w[:, 0].contiguous()
        else:
            geometry = self.pair_geometry(torch.stack(planes, dim=-1))
            w = w.T.contiguous()
        envelope = None if self.cutoff is None else pair_envelope(squared, self.cutoff)[..., None]
        a = a.transpose(0, 1)[None]  # (1, n, B, hidden): a_j of molecule m at [0, j, m]
        out = a.new_empty(b_all, hidden)
        plans = {}  # piece size -> (buffer view, its fold's adds, the fold's result)
        for k in range(0, b_all, step):
            b = min(step, b_all - k)
            if b not in plans:
                pre = workspace[: n * n * b * hidden].view(n, n, b, hidden)
                plans[b] = (pre, *_fold_plan(pre.view(n * n, b * hidden)))
            pre, adds, summed = plans[b]
            g = geometry[:, :, k : k + b]
            if self.geometry_width == 1:
                torch.addcmul(a[:, :, k : k + b], g, w, out=pre)
            else:
                # Column by column rather than a matmul, whose order of additions depends on
                # the number of molecules in the piece (see `_fold_sum`).
                torch.addcmul(a[:, :, k : k + b], g[..., :1], w[0], out=pre)
                for c in range(1, self.geometry_width):
                    pre.addcmul_(g[..., c : c + 1], w[c])
            self.act_in_place(pre)
            if envelope is not None:
                pre.mul_(envelope[:, :, k : k + b])
            for into, other in adds:
                into.add_(other)
            out[k : k + b] = summed.view(b, hidden)
        return out

    def _dense_sums(
        self, positions: torch.Tensor, per_atom: torch.Tensor, sizes: np.ndarray, dense: np.ndarray
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Outputs (less ``layer2.bias``) of the ``dense`` molecules, and their indices."""
        # Molecules sorted by size, their atoms gathered once: the molecules of each size
        # are then one slice, not a gather of their own.
        order = np.flatnonzero(dense)
        order = order[np.argsort(sizes[order], kind="stable")]
        counts = sizes[order]
        starts = starts_of(sizes)
        atoms = torch.as_tensor(segment_arange(starts[order], counts), device=positions.device)
        # index_select: 3.5x faster than advanced indexing on these (atoms, 16) arrays.
        positions, per_atom = positions.index_select(0, atoms), per_atom.index_select(0, atoms)
        hidden = per_atom.shape[1]
        in_place = self.act_in_place is not None and not (
            torch.is_grad_enabled() and (positions.requires_grad or per_atom.requires_grad)
        )
        piece = max(1, _PIECE_BYTES // (hidden * per_atom.element_size()))
        groups = []  # (n, first atom, molecules, molecules per piece)
        first = 0
        for n, total in zip(*np.unique(counts, return_counts=True)):
            n, total = int(n), int(total)
            groups.append((n, first, total, max(1, piece // (n * n))))
            first += n * total
        workspace = None
        if in_place:
            # One buffer for every piece of this batch, sized for the largest.
            largest = max(min(step, total) * n * n for n, _, total, step in groups)
            workspace = per_atom.new_empty(largest * hidden)
        sums = []
        for n, lo, total, step in groups:
            r = positions[lo : lo + total * n].view(total, n, 3)
            a = per_atom[lo : lo + total * n].view(total, n, hidden)
            if workspace is not None:
                # The geometry planes of a call hold 4 n² numbers per molecule: bounded too.
                chunk = max(1, _PLANE_BYTES // (4 * n * n * per_atom.element_size()))
                chunk = max(step, chunk // step * step)
                for k in range(0, total, chunk):
                    part = slice(k, k + chunk)
                    sums.append(self._dense_group_in_place(r[part], a[part], workspace, step))
                continue
            for k in range(0, total, step):
                rk, ak = r[k : k + step], a[k : k + step]
                # [b, i, j] = r_j - r_i, paired with a_j
                pre = self._pair_terms(rk[:, None, :, :] - rk[:, :, None, :], ak[:, None, :, :])
                sums.append(pre.sum((1, 2)))
        out = torch.cat(sums)
        if not in_place:
            return out, order
        # layer2 is linear: applied once to the pooled hidden units of every molecule, as
        # products folded over the hidden units (a matrix product's order of additions
        # depends on the number of molecules; see `_fold_sum`).
        terms = out.T[:, :, None] * self.layer2.weight.T[:, None, :]  # (hidden, B, n_out)
        return _fold_sum(terms.reshape(len(terms), -1)).view(len(out), -1), order

    def forward(
        self,
        positions: torch.Tensor,
        features: torch.Tensor,
        counts: torch.Tensor,
        pairs: Optional[torch.Tensor] = None,
        sparse: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        w = self.layer1.weight
        # Linear([g_ij, x_j]) = g_ij W_g + (x_j W_x + b): the bracket is computed once per
        # atom instead of once per pair.
        per_atom = torch.addmm(self.layer1.bias, features, w[:, self.geometry_width :].T)
        sizes = counts.cpu().numpy()
        dense = np.ones(len(sizes), bool) if sparse is None else ~sparse.cpu().numpy()
        out = per_atom.new_zeros(len(sizes), self.layer2.out_features)
        if dense.any():
            sums, members = self._dense_sums(positions, per_atom, sizes, dense)
            out = out.index_copy(0, torch.as_tensor(members, device=out.device), sums)
        if pairs is not None and pairs.shape[1]:
            i, j = pairs[0], pairs[1]
            terms = self._pair_terms(positions[j] - positions[i], per_atom[j])
            out = out.index_add(0, molecule_of_atoms(counts)[i], terms)
        return out + self.layer2.bias


class TranslationNetwork(_PairNetwork):
    """Pairs see difference vectors ``r_j - r_i``: permutation and translation invariant."""

    geometry_width = 3

    def pair_geometry(self, differences: torch.Tensor) -> torch.Tensor:
        return differences


class RotationNetwork(_PairNetwork):
    """Pairs see squared distances ``|r_j - r_i|²``: invariant to all of E(3)."""

    geometry_width = 1

    def pair_geometry(self, differences: torch.Tensor) -> torch.Tensor:
        return (differences * differences).sum(dim=-1, keepdim=True)
