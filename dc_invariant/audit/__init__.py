"""Symmetry audit, in layers: `compute` measures, `report` formats, `assert_invariant` asserts."""

from dc_invariant.audit.compute import SYMMETRIES, TOLERANCES, assert_invariant, audit
from dc_invariant.audit.report import AuditReport

__all__ = ["SYMMETRIES", "TOLERANCES", "AuditReport", "assert_invariant", "audit"]
