"""Trained weights beside a search result, so a search's models can be deployed as trained.

Taught in: notebooks/07_pareto (and notebooks/11_deployment, where they are exported).

``hwnas search --out r.json`` writes ``r.weights/<key>.pt`` for the front's models: each a
``state_dict`` saved with :func:`torch.save` and read back with ``weights_only=True`` (no
code is unpickled), trained with the search's own proxy recipe and evaluation seed, so the
file holds the model the search scored. ``hwnas export r.json --rank N`` finds it again.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store import architecture_key

if TYPE_CHECKING:
    from torch import nn

    from ..architecture import Architecture
    from ..proxy.task import ProxyTask

__all__ = ["WEIGHTS_SAVE", "load_state_dict", "save_state_dict", "save_trained", "weights_file",
           "weights_folder"]

WEIGHTS_SAVE = ("front", "best", "none")
"""What ``hwnas search --save-weights`` trains and saves: every front member, the best one, or nothing."""


def weights_folder(result_path: str | os.PathLike[str]) -> Path:
    """The folder of a result file's weights: ``r.json`` -> ``r.weights``.

    Taught in: notebooks/07_pareto.
    """
    return Path(result_path).with_suffix(".weights")


def weights_file(folder: str | os.PathLike[str], arch: Architecture) -> Path:
    """The weights file of ``arch`` in ``folder`` (named by its architecture key's first 16 digits).

    Taught in: notebooks/07_pareto.
    """
    return Path(folder) / f"{architecture_key(arch)[:16]}.pt"


def save_state_dict(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model.state_dict()`` to ``path`` atomically (``torch.save`` format).

    Taught in: notebooks/07_pareto.
    """
    import torch

    from ..fileio import write_bytes_atomic

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_state_dict(path: str | os.PathLike[str], where: str = "weights") -> dict[str, Any]:
    """A state dict read with ``weights_only=True``; ValueError naming ``where`` and the file when it
    is missing, not a ``torch.save`` file (a truncated or foreign file) or not a state dict.

    Taught in: notebooks/11_deployment.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise ValueError(f"{where} {str(path)!r}: {err.strerror or err}") from None
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError...: the file is not weights
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{where} {str(path)!r} is not a torch.save state dict "
                         f"({type(err).__name__}: {first[:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(f"{where} {str(path)!r} is not a state dict (found {type(state).__name__})")
    return dict(state)


def save_trained(archs: Iterable[Architecture], task: ProxyTask, folder: str | os.PathLike[str],
                 seed: int = 0) -> list[Path]:
    """Train each architecture with ``task``'s recipe and ``seed`` (what the search's evaluator
    did) and save its weights in ``folder`` (:func:`weights_file`); return the files.

    Taught in: notebooks/07_pareto.
    """
    from ..proxy.training import train_model

    folder = Path(folder)
    written = []
    for arch in archs:
        written.append(save_state_dict(train_model(arch, task, seed), weights_file(folder, arch)))
    return written
