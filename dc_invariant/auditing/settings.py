"""What an audit was asked for, checked once and handed on whole (`AuditSettings`).

Every chunk of an audit, on this process or another, reads its symmetries, samples, seed and
tolerances from one frozen `AuditSettings`; the report and the resume store keep its JSON
form, so a stored audit can say exactly what it checked.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Optional

from dc_invariant.auditing.copies import BLOCK
from dc_invariant.validation import (
    check_choice,
    check_int,
    check_names,
    check_seed,
    check_tolerance,
    store,
)

__all__ = ["OUTPUTS", "SYMMETRIES", "TOLERANCES", "AuditSettings"]

#: The symmetries an audit checks by default. ``"identity"`` is also accepted, as a control
#: that must always give zero deviation.
SYMMETRIES: tuple[str, ...] = ("permutation", "translation", "rotation", "reflection")
_KNOWN = (*SYMMETRIES, "identity")

#: How outputs should change: ``"invariant"`` not at all; ``"per_atom"`` values permute
#: with the atoms; ``"vector"`` per-atom polar vectors such as forces permute and turn,
#: ``F(gx) = R F(x)``; ``"pseudoscalar"`` flips sign under reflections.
OUTPUTS: tuple[str, ...] = ("invariant", "per_atom", "vector", "pseudoscalar")

#: Default (rtol, atol) by the precision of the target's output.
TOLERANCES: dict[str, tuple[float, float]] = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}


@dataclass(frozen=True, kw_only=True)
class AuditSettings:
    """The settings of one audit (see `audit` for their meaning).

    ``rtol`` and ``atol`` may be left None until the target's precision is known;
    `for_dtype` fills them from `TOLERANCES`. ``chunk_size`` is rounded up to a whole number
    of random-number blocks (64 molecules), so the group elements of a molecule never depend
    on the chunking.

    Examples
    --------
    >>> settings = AuditSettings(symmetries=["rotation"], chunk_size=100).for_dtype("float64")
    >>> settings.chunk_size, settings.rtol, settings.symmetries
    (128, 1e-09, ('rotation',))
    """

    symmetries: tuple[str, ...] = SYMMETRIES
    n_samples: int = 3
    seed: int = 0
    rtol: Optional[float] = None
    atol: Optional[float] = None
    output: str = "invariant"
    chunk_size: int = 1024
    dtype: Optional[str] = None

    def __post_init__(self) -> None:
        symmetries = tuple(check_names(self.symmetries, "symmetries"))
        unknown = [s for s in symmetries if s not in _KNOWN]
        if unknown or not symmetries or len(set(symmetries)) != len(symmetries):
            raise ValueError(
                f"symmetries must be distinct names drawn from {_KNOWN}, got {list(symmetries)}"
            )
        store(self, "symmetries", symmetries)
        store(self, "n_samples", check_int(self.n_samples, "n_samples", min_val=1))
        store(self, "seed", check_seed(self.seed))
        store(self, "rtol", check_tolerance(self.rtol, "rtol"))
        store(self, "atol", check_tolerance(self.atol, "atol"))
        check_choice(self.output, "output", OUTPUTS)
        chunk_size = check_int(self.chunk_size, "chunk_size", min_val=1)
        store(self, "chunk_size", -(-chunk_size // BLOCK) * BLOCK)
        if self.dtype is not None:
            check_choice(self.dtype, "dtype", tuple(TOLERANCES))

    def for_dtype(self, dtype: Optional[str]) -> AuditSettings:
        """These settings for a target of precision ``dtype`` (float32 when unknown), with
        the default tolerances of that precision where none were given."""
        if dtype is not None and dtype not in TOLERANCES:
            given = self.rtol is not None and self.atol is not None
            if not given:  # float16 and kin: float32's tolerances call rounding a break
                warnings.warn(
                    f"outputs of precision {dtype!r} have no default tolerances; float32's "
                    f"(rtol {TOLERANCES['float32'][0]:g}, atol {TOLERANCES['float32'][1]:g}) "
                    "are used: pass rtol and atol for this precision",
                    UserWarning,
                    stacklevel=3,
                )
        dtype = dtype if dtype in TOLERANCES else "float32"
        rtol, atol = TOLERANCES[dtype]
        return dataclasses.replace(
            self,
            dtype=dtype,
            rtol=rtol if self.rtol is None else self.rtol,
            atol=atol if self.atol is None else self.atol,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in reports and resume stores (``chunk_size`` is the store's)."""
        data = dataclasses.asdict(self)
        data["symmetries"] = list(self.symmetries)
        del data["chunk_size"]
        return data
