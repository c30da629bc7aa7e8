"""The code stays as STYLE.md asks: ruff and mypy (configured in pyproject.toml) are clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_tool_is_clean(tool: str) -> None:
    if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
        pytest.skip(f"{tool} is not installed (it comes with the [test] extra)")
    args = [sys.executable, "-m", tool] + (["check", "bot", "handlers", "models", "scheduler", "tests"]
                                           if tool == "ruff" else [])
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
