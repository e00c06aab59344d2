"""One look for every figure: a colour per search strategy and per hardware target.

Taught in: notebooks/07_pareto (first used there; every later chapter keeps it).
"""

from __future__ import annotations

from ..hardware import DeviceType
from ..space import SpaceName

__all__ = ["COLOR_CYCLE", "STRATEGY_COLORS", "TARGET_COLORS", "is_space_name", "space_color", "strategy_color",
           "target_color"]

#: Colours in the order a figure's series, periods or groups take them.
COLOR_CYCLE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")

#: The same strategy has the same colour in every chapter (matplotlib's tab10).
STRATEGY_COLORS: dict[str, str] = {
    "random": "#7f7f7f",
    "evolution": "#1f77b4",
    "optuna": "#9467bd",
    "mnasnet": "#d62728",
    "scaling": "#2ca02c",
    "fbnet": "#ff7f0e",
    "prefilter": "#e377c2",
    "baseline": "#8c564b",
}

#: And the same hardware target (keyed by :class:`~hwnas.hardware.DeviceType`, a ``str`` enum:
#: ``TARGET_COLORS["gpu"]`` works too).
TARGET_COLORS: dict[str, str] = {
    DeviceType.CPU: "#1f77b4",
    DeviceType.MOBILE: "#17becf",
    DeviceType.GPU: "#2ca02c",
    DeviceType.FPGA: "#d62728",
}


def strategy_color(name: str) -> str:
    """The colour of a strategy (olive for a name without one).

    Taught in: notebooks/07_pareto.
    """
    return STRATEGY_COLORS.get(name, "#bcbd22")


def target_color(name: str) -> str:
    """The colour of a hardware target, matched by its device kind (cpu, gpu, fpga, mobile).

    Taught in: notebooks/05_hardware_targets.
    """
    lowered = name.lower()
    for key, colour in TARGET_COLORS.items():
        if key in lowered:
            return colour
    return "#bcbd22"



def space_color(name: str) -> str:
    """The colour of a search space: that of its hardware target (the default space is the CPU's).

    Taught in: notebooks/01_search_space.
    """
    return TARGET_COLORS[DeviceType.CPU] if name == SpaceName.DEFAULT else target_color(name)


def is_space_name(name: str) -> bool:
    """Whether ``name`` is one of the named search spaces (a :class:`~hwnas.space.SpaceName`).

    Taught in: notebooks/01_search_space.
    """
    return name in SpaceName.__members__.values()
