"""The figures the chapters share, one module per part of the course.

Each function takes data that a chapter has already computed (plain numbers,
sequences or mappings), draws it on ``ax`` (a new figure's axes when ``ax`` is
None) and returns the :class:`matplotlib.axes.Axes`, so a chapter can add a
title, a budget line or a second series. Nothing here computes a cost, samples
an architecture or runs a model: computing lives in the other modules. A figure
of several panels returns its :class:`matplotlib.figure.Figure` instead.
Colours per strategy and per hardware target come from :mod:`hwnas.plots.style`.
"""

from __future__ import annotations

from . import beyond, capstone, deploy, fbnet, foundations, hardware, market, pareto, rl, scaling, style
from .beyond import *  # noqa: F401,F403
from .capstone import *  # noqa: F401,F403
from .deploy import *  # noqa: F401,F403
from .fbnet import *  # noqa: F401,F403
from .foundations import *  # noqa: F401,F403
from .hardware import *  # noqa: F401,F403
from .market import *  # noqa: F401,F403
from .pareto import *  # noqa: F401,F403
from .rl import *  # noqa: F401,F403
from .scaling import *  # noqa: F401,F403
from .style import *  # noqa: F401,F403

__all__ = [name for module in (foundations, hardware, market, style, pareto, rl, scaling, fbnet, deploy, capstone,
                               beyond)
           for name in module.__all__]
