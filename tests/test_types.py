"""The library type-checks: mypy (pinned in requirements.txt) over hwnas/, at its default strictness.

Configured in pyproject.toml (``[tool.mypy]``: untyped third-party packages are
ignored). Takes about a minute on two cores with a cold cache; ``.mypy_cache``
makes reruns fast.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean_on_the_package():
    pytest.importorskip("mypy")
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    command = [mypy] if mypy else [sys.executable, "-m", "mypy"]
    out = subprocess.run([*command, "hwnas/"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Success: no issues found" in out.stdout
