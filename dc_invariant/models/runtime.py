"""Run-time settings of the prediction paths: how they use this machine, not what they compute.

They are not saved with models and may be changed at any time, from the public name
``dc_invariant.models.RUNTIME``::

    from dc_invariant.models import RUNTIME
    RUNTIME.inference_threads = 2       # a quiet machine with cores to spare
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dc_invariant.validation import check_int

__all__ = ["RUNTIME", "Runtime"]


@dataclass
class Runtime:
    """Settings every model reads when it predicts.

    Attributes
    ----------
    inference_threads : int, default=1
        Torch threads for forward passes without gradients, or 0 to keep torch's own
        setting. One by default: a forward pass is many small operations, each ending in a
        barrier across threads, and on a shared machine a barrier waits a scheduler tick
        whenever another core is busy (measured: 16x slower predictions with two threads
        while other work ran; `benchmarks/inference.py`).
    schnet_keep_bytes : int, default=64 MiB
        Largest pair tensor a `SchNetModel` keeps between prediction batches (a 1,024-atom
        QM9 batch needs about 11 MB); a larger one, for one big system, is freed after its
        batch.
    """

    inference_threads: int = 1
    schnet_keep_bytes: int = 64 << 20

    def __setattr__(self, name: str, value: Any) -> None:
        # Checked on every change: a bad value would otherwise surface deep in a prediction.
        super().__setattr__(name, check_int(value, name, min_val=0))


#: The settings in force (one per process).
RUNTIME = Runtime()
