"""Symmetry audit, in layers: `compute` measures, `report` formats, `assert_invariant` asserts.

Conformer sensitivity (`conformer_sensitivity`) is not a symmetry; it is reported separately.
"""

from dc_invariant.auditing.compute import SYMMETRIES, TOLERANCES, assert_invariant, audit
from dc_invariant.auditing.inputs import AuditInput, prepare
from dc_invariant.auditing.report import AuditReport
from dc_invariant.auditing.sensitivity import SensitivityReport, conformer_sensitivity

__all__ = [
    "SYMMETRIES",
    "TOLERANCES",
    "AuditInput",
    "AuditReport",
    "SensitivityReport",
    "assert_invariant",
    "audit",
    "conformer_sensitivity",
    "prepare",
]
