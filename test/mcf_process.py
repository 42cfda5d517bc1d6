"""Run `mcf` subcommands as separate processes, the way users do, in the test environment."""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MCF = [sys.executable, '-m', 'mcf_ros']


def run_mcf(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `mcf ARGS` to completion and capture its output."""
    return subprocess.run([*MCF, *args], capture_output=True, text=True, timeout=timeout)


def run_mcf_together(*commands: list[str], timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Run independent `mcf` commands at the same time (each sim uses about one core); results in order."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: run_mcf(*command, timeout=timeout), commands))


def start_mcf(*args: str, log: Path) -> subprocess.Popen:
    """Start `mcf ARGS` in the background, its stdout and stderr going to `log`."""
    return subprocess.Popen([*MCF, *args], stdout=log.open('w'), stderr=subprocess.STDOUT, text=True)


def wait_for_line(log: Path, text: str, count: int = 1, timeout: float = 20) -> None:
    """Wait until `text` has appeared `count` times in `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f'{text!r} did not appear {count}x in {timeout} s; log:\n{log.read_text()}')
