"""The evidence layer: what several checks read, built once per scan as one ``Evidence`` object."""

from auditor.evidence.shared import Evidence

__all__ = ["Evidence"]
