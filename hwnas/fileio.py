"""Atomic file writes: a temporary file beside the target, then a rename.

A reader never sees a half-written cache, profile or result file: either the
old file or the complete new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = [
    "check_writable",
    "write_atomic",
    "write_bytes_atomic",
    "write_text_atomic",
]


def write_atomic(path: str | os.PathLike[str], write: Callable[[TextIO], object], *,
                 newline: str | None = None) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it into place.

    The data is flushed to disk before the rename; on any error the temporary
    file is removed and ``path`` is left as it was. The file gets mode 0644.

    Taught in: notebooks/04_latency_lut.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`write_atomic`).

    Taught in: notebooks/04_latency_lut.
    """
    return write_atomic(path, lambda handle: handle.write(text))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`write_atomic` (temporary file, rename).

    Taught in: notebooks/11_deployment.
    """
    return write_atomic(path, lambda handle: handle.buffer.write(data))  # type: ignore[attr-defined]


def check_writable(path: str | os.PathLike[str], option: str) -> Path:
    """Fail early, before any work, if ``path`` could not be written.

    Raises ValueError naming ``option`` (e.g. ``"--out"``) when ``path`` is a
    directory, or its folder does not exist, is not a directory or is not
    writable; nothing is created. The command line calls this before it
    measures or searches, so a bad path never costs a long run.

    Taught in: notebooks/04_latency_lut.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {str(target)!r} is a directory; give a file path")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise ValueError(f"{option} {str(target)!r}: folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{option} {str(target)!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"{option} {str(target)!r} is not writable")
    return target
