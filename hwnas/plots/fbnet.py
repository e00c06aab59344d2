"""FBNet figures: the sharpening architecture distribution and temperature schedule.

Taught in: notebooks/10_fbnet.
"""

from __future__ import annotations

__all__: list[str] = []
