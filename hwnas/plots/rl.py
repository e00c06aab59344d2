"""MnasNet controller figures: learning curves and decision heatmaps.

Taught in: notebooks/08_mnasnet_rl.
"""

from __future__ import annotations

__all__: list[str] = []
