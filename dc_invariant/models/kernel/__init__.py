"""`KernelModel`: kernel ridge regression over FCHL19 local environments.

The modules, in the order the data flows: `representation` (FCHL19 in torch) ->
`projection` (per-element centring and principal axes) -> `kernels` (blocked local
Gaussian kernels) -> `search` (width and regularization, each scored by `scoring`: `loo`,
the closed-form leave-one-out, or on a validation set) + `solve` (offsets, the exact ridge)
or `nystrom` (the ridge on landmark molecules, past 20,000 training molecules) ->
`trained` (predictions and forces of a fitted model) -> `store` (save and load) ->
`model` (`KernelModel`, the DeepChem Model). `inputs` checks and stacks the datasets;
`settings` holds `KernelSettings`.
"""

from dc_invariant.models.kernel.model import KernelModel
from dc_invariant.models.kernel.settings import KernelSettings
from dc_invariant.models.kernel.store import ARRAYS_FILE

__all__ = ["ARRAYS_FILE", "KernelModel", "KernelSettings"]
