"""A DeepChem `NumpyDataset` that knows its task names, through selections and splits.

DeepChem's `NumpyDataset` answers `get_task_names()` with ``0..n_tasks-1``, and its
`select` (which every splitter calls) builds a plain `NumpyDataset` again. QM9's datasets
carry DeepChem's own task names (``"u0"``, ``"gap"``, ...) as `dc.molnet` loaders do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from dc_invariant._deepchem import import_deepchem

__all__ = ["NamedNumpyDataset"]

dc = import_deepchem()


class NamedNumpyDataset(dc.data.NumpyDataset):
    """`NumpyDataset` with task names kept by `select`, and so by DeepChem's splitters.

    Parameters
    ----------
    X, y, w, ids : np.ndarray
        As for ``dc.data.NumpyDataset``.
    tasks : sequence of str
        One name per column of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> data = NamedNumpyDataset(np.zeros((4, 1)), np.ones((4, 2)), tasks=["u0", "gap"])
    >>> data.select([0, 2]).get_task_names().tolist()
    ['u0', 'gap']
    """

    def __init__(
        self,
        X: Any,
        y: Optional[Any] = None,
        w: Optional[Any] = None,
        ids: Optional[Any] = None,
        *,
        tasks: Sequence[str],
    ) -> None:
        super().__init__(X, y, w, ids, n_tasks=len(tasks))
        width = 1 if self.y.ndim < 2 else self.y.shape[1]
        if width != len(tasks):
            raise ValueError(f"{len(tasks)} task names for {width} label columns")
        self._tasks = np.array(list(tasks))

    def get_task_names(self) -> np.ndarray:
        """The task names given at construction."""
        return self._tasks.copy()

    def select(self, indices: Any, select_dir: Optional[str] = None) -> NamedNumpyDataset:
        """The datapoints at ``indices``, with the same task names (``select_dir`` is ignored)."""
        return NamedNumpyDataset(
            self.X[indices], self.y[indices], self.w[indices], self.ids[indices], tasks=self._tasks
        )

    def transform(self, transformer: Any, **args: Any) -> NamedNumpyDataset:
        """DeepChem's transform, keeping the task names (DeepChem's drops them)."""
        plain = super().transform(transformer, **args)
        return NamedNumpyDataset(plain.X, plain.y, plain.w, plain.ids, tasks=self._tasks)
