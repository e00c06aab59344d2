"""What every ``hwnas`` subcommand's parser shares: help that shows each option's default.

Taught in: notebooks/01_search_space (the command line).
"""

from __future__ import annotations

import argparse

__all__ = ["DefaultsFormatter"]


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with ``(default: X)`` after every optional option that has a default and does not
    state it already; required options, flags and unset (None) defaults show none.

    Taught in: notebooks/01_search_space.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.required or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS
                or "default" in text or "None:" in text or not action.option_strings):
            return text
        return super()._get_help_string(action)
