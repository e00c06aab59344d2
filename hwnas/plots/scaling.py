"""Compound-scaling figures: the coefficient grid and scaled families.

Taught in: notebooks/09_efficientnet_scaling.
"""

from __future__ import annotations

__all__: list[str] = []
