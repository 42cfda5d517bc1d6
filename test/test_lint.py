"""Lint, as ament packages do in their test suite: ruff (pycodestyle, pyflakes, pep257, isort)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_no_problems():
    ruff = shutil.which('ruff')
    assert ruff, 'ruff is not installed; install the test extra: pip install -e .[test]'
    result = subprocess.run([ruff, 'check', '--no-cache', str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = subprocess.run(
        [shutil.which('ruff'), 'format', '--check', '--no-cache', str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
