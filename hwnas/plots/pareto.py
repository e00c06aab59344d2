"""Search and Pareto figures: fronts, hypervolume boxes, reward iso-lines, curves.

Taught in: notebooks/07_pareto.
"""

from __future__ import annotations

__all__: list[str] = []
