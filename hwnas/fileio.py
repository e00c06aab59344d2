"""Atomic file writes: a temporary file beside the target, then a rename.

A reader never sees a half-written cache, profile or result file: either the
old file or the complete new one.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = [
    "check_out_dir",
    "check_writable",
    "remove_stale_temps",
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
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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
    _probe(folder, f"{option} {str(target)!r}")
    remove_stale_temps(target)
    return target


def check_out_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Fail early if the output folder ``path`` could not be created or written (ValueError naming
    ``option``); nothing is left behind: a folder this check had to create is removed again.

    Taught in: notebooks/12_capstone.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {str(folder)!r} is a file; give a folder")
    if not folder.exists():
        parent = folder.parent if str(folder.parent) else Path(".")
        if not parent.is_dir():
            raise ValueError(f"{option} {str(folder)!r}: folder {str(parent)!r} does not exist")
        try:
            folder.mkdir()
        except OSError as err:
            raise ValueError(f"{option} {str(folder)!r} cannot be created: {err.strerror or err}") from None
        try:
            _probe(folder, f"{option} {str(folder)!r}")
        finally:
            folder.rmdir()
        return folder
    _probe(folder, f"{option} {str(folder)!r}")
    return folder


def _probe(folder: Path, what: str) -> None:
    """Create and remove a probe file in ``folder``: a ValueError naming ``what`` when that fails
    (``/proc``, ``/sys``, a read-only mount, a full disk: what ``os.access`` cannot tell)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".hwnas-probe.", dir=folder)
    except OSError as err:
        raise ValueError(f"{what} is not writable: {err.strerror or err}") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed process left beside ``path`` (its id in the name no
    longer runs); return them. A write in progress in a live process is left alone.

    Taught in: notebooks/04_latency_lut.
    """
    path = Path(path)
    removed: list[Path] = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for temp in candidates:
        pid_text = temp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        try:
            temp.unlink()
            removed.append(temp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
