"""Symmetry audit, in layers: `inputs` prepares molecules, `copies` moves and renumbers them,
`compute` measures, `report` holds the verdicts and `html` draws them; `assert_invariant`
turns an audit into a test assertion. Conformer sensitivity is not a symmetry: it lives in
`dc_invariant.sensitivity`.
"""

from dc_invariant.auditing.compute import assert_invariant, audit
from dc_invariant.auditing.inputs import AuditInput, prepare
from dc_invariant.auditing.report import AuditReport
from dc_invariant.auditing.settings import OUTPUTS, SYMMETRIES, TOLERANCES, AuditSettings
from dc_invariant.auditing.targets import PipelineMismatch, TargetFailed

__all__ = [
    "OUTPUTS",
    "SYMMETRIES",
    "TOLERANCES",
    "AuditInput",
    "AuditReport",
    "AuditSettings",
    "PipelineMismatch",
    "TargetFailed",
    "assert_invariant",
    "audit",
    "prepare",
]
