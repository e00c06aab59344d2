"""Atomic file writes: a temporary file beside the target, then a rename.

A reader never sees a half-written cache, profile or result file: either the
old file or the complete new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, TextIO


def write_atomic(path: str | os.PathLike[str], write: Callable[[TextIO], object], *,
                 newline: str | None = None) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it into place.

    The data is flushed to disk before the rename; on any error the temporary
    file is removed and ``path`` is left as it was. The file gets mode 0644.
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
    """Write ``text`` to ``path`` atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda handle: handle.write(text))
