"""Deployment figures: runtime speed-ups and SLA latency histograms.

Taught in: notebooks/11_deployment.
"""

from __future__ import annotations

__all__: list[str] = []
