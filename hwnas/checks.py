"""Argument checks shared by every module: one wording for every error.

Taught in: notebooks/01_search_space (the library's conventions).

Each check raises :class:`ValueError` naming the argument (``where``) and what
is allowed, at the place where the input enters, and returns the value in its
canonical type, so a constructor can write ``self.x = require_int(x, "x", 1)``.
The command line turns these errors into one line and exit status 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "FRACTION",
    "NON_NEGATIVE",
    "POSITIVE",
    "Rule",
    "check_fields",
    "check_profile_covers",
    "flag",
    "integer",
    "member",
    "number",
    "require_choice",
    "require_enum",
    "require_finite_array",
    "require_float",
    "require_int",
    "require_optional_int",
    "require_positive",
    "require_type",
]

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


def require_int(value: Any, where: str, minimum: int | None = None,
                maximum: int | None = None) -> int:
    """``value`` as an ``int``; an integer (not a bool) within ``[minimum, maximum]``.

    Taught in: notebooks/01_search_space.
    """
    bounds = _bounds_text(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{where} must be an integer{bounds}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{where} must be an integer{bounds}, got {value}")
    return int(value)


def require_optional_int(value: Any, where: str, minimum: int | None = None) -> int | None:
    """Like :func:`require_int`, but ``None`` passes through.

    Taught in: notebooks/01_search_space.
    """
    if value is None:
        return None
    try:
        return require_int(value, where, minimum)
    except ValueError:
        raise ValueError(f"{where} must be an integer{_bounds_text(minimum, None)} or None, "
                         f"got {value!r}") from None


def require_float(value: Any, where: str, *, minimum: float | None = None,
                  maximum: float | None = None, strict_minimum: bool = False) -> float:
    """``value`` as a finite ``float``; ``strict_minimum`` makes the lower bound exclusive.

    Taught in: notebooks/01_search_space.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    if minimum is not None and (number < minimum or (strict_minimum and number == minimum)):
        relation = ">" if strict_minimum else ">="
        raise ValueError(f"{where} must be {relation} {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{where} must be <= {maximum}, got {value!r}")
    return number


def require_positive(value: Any, where: str) -> float:
    """A finite number strictly greater than zero.

    Taught in: notebooks/01_search_space.
    """
    return require_float(value, where, minimum=0.0, strict_minimum=True)


def require_type(value: T, where: str, cls: type | tuple[type, ...], hint: str = "") -> T:
    """``value`` if it is an instance of ``cls``; else a TypeError naming ``where`` and the type found.

    Taught in: notebooks/01_search_space.
    """
    if not isinstance(value, cls):
        names = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
        raise TypeError(f"{where} must be a {names}{hint}, got {type(value).__name__} {value!r:.60}")
    return value


def require_choice(value: T, where: str, allowed: Iterable[T]) -> T:
    """``value`` if it is one of ``allowed``; else an error listing them.

    Taught in: notebooks/01_search_space.
    """
    options = list(allowed)
    if value not in options:
        raise ValueError(f"{where} {value!r} is not allowed; choose one of "
                         f"{', '.join(repr(o) for o in options)}")
    return value


def require_enum(enum_cls: type[E], value: Any, where: str) -> E:
    """``value`` as a member of ``enum_cls`` (a member or its value); else an error listing them.

    Taught in: notebooks/01_search_space.
    """
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_cls)
        raise ValueError(f"{where}: {value!r} is not allowed; choose one of {allowed}") from None


def require_finite_array(values: Any, where: str, ndim: int | None = None) -> np.ndarray:
    """``values`` as a float array with no NaN or infinity (of ``ndim`` dimensions if given).

    Taught in: notebooks/01_search_space.
    """
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be an array of numbers, got {type(values).__name__}") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{where} must be a {ndim}-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{where} must not contain NaN or infinite values")
    return array


Rule = Callable[[Any, str], Any]
"""A field check: ``rule(value, where)`` returns the canonical value or raises ValueError."""


def integer(minimum: int | None = None, maximum: int | None = None) -> Rule:
    """A rule: an integer within ``[minimum, maximum]`` (see :func:`require_int`).

    Taught in: notebooks/01_search_space.
    """
    return lambda value, where: require_int(value, where, minimum, maximum)


def number(minimum: float | None = None, maximum: float | None = None, *,
           strict_minimum: bool = False) -> Rule:
    """A rule: a finite number within the bounds (see :func:`require_float`).

    Taught in: notebooks/01_search_space.
    """
    return lambda value, where: require_float(value, where, minimum=minimum, maximum=maximum,
                                              strict_minimum=strict_minimum)


def POSITIVE(value: Any, where: str) -> float:  # noqa: N802 - a rule constant, used as a value
    """A rule: a finite number > 0.

    Taught in: notebooks/01_search_space.
    """
    return require_positive(value, where)


def NON_NEGATIVE(value: Any, where: str) -> float:  # noqa: N802
    """A rule: a finite number >= 0.

    Taught in: notebooks/01_search_space.
    """
    return require_float(value, where, minimum=0.0)


def FRACTION(value: Any, where: str) -> float:  # noqa: N802
    """A rule: a number in (0, 1] (an efficiency, a share).

    Taught in: notebooks/01_search_space.
    """
    return require_float(value, where, minimum=0.0, maximum=1.0, strict_minimum=True)


def member(enum_cls: type[Enum]) -> Rule:
    """A rule: a member of ``enum_cls`` or its value (see :func:`require_enum`).

    Taught in: notebooks/01_search_space.
    """
    return lambda value, where: require_enum(enum_cls, value, where)


def flag(value: Any, where: str) -> bool:
    """``value`` as a ``bool``: True or False (numpy's booleans too), nothing else.

    Taught in: notebooks/01_search_space.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where} must be True or False, got {value!r}")
    return bool(value)


def check_fields(obj: Any, rules: Mapping[str | tuple[str, ...], Rule], prefix: str = "") -> None:
    """Check the named fields of ``obj`` (a dataclass, frozen or not), one rule per name or
    tuple of names, and store each canonical value back; the error names ``prefix + field``.

    A constructor's whole validation reads as one table::

        check_fields(self, {("dsp_slices", "bram_bytes"): integer(1), "clock_hz": POSITIVE},
                     "FpgaSpec.")

    Taught in: notebooks/01_search_space.
    """
    for names, rule in rules.items():
        for name in (names,) if isinstance(names, str) else names:
            object.__setattr__(obj, name, rule(getattr(obj, name), prefix + name))


def _bounds_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_profile_covers(profile: Any, space: Any, where: str, *, batch: int = 1, samples: int = 64,
                         seed: int = 0) -> None:
    """Fail before any work when ``profile`` cannot price ``space``'s architectures: ``samples``
    seeded draws from ``space`` are priced, and a ValueError naming ``where`` says which ops are
    missing and how to measure them (a profile of another space, or another batch).

    Taught in: notebooks/04_latency_lut.
    """
    missing: set[Any] = set()
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        arch = space.sample(rng)
        try:
            missing.update(profile.missing(arch, batch))
        except (KeyError, AttributeError, TypeError) as err:
            raise ValueError(f"{where}: profile {profile.label} cannot price the {space.name!r} space "
                             f"({type(err).__name__}: {err})") from None
    if missing:
        examples = ", ".join(sorted(str(key) for key in missing)[:3])
        raise ValueError(f"{where}: profile {profile.label} does not cover the {space.name!r} space at batch "
                         f"{batch}: {len(missing)} op(s) missing, e.g. {examples}; measure one for this space "
                         f"(hwnas profile-cpu --space {space.name})")
