"""Symmetry audit, in layers: `inputs` prepares molecules, `copies` moves and renumbers them,
`compute` measures, `report` holds the verdicts and `html` draws them; `assert_invariant`
turns an audit into a test assertion. Conformer sensitivity is not a symmetry: it lives in
`dc_invariant.sensitivity`.
"""

from dc_invariant.auditing.compute import SYMMETRIES, TOLERANCES, assert_invariant, audit
from dc_invariant.auditing.inputs import AuditInput, prepare
from dc_invariant.auditing.report import AuditReport

__all__ = [
    "SYMMETRIES",
    "TOLERANCES",
    "AuditInput",
    "AuditReport",
    "assert_invariant",
    "audit",
    "prepare",
]
