"""Child processes that `mcf demo` and `mcf bench` start: wait until one says it is up, then stop it."""

import signal
import subprocess
import time
from pathlib import Path

from mcf_ros.errors import UserError

STARTUP_TIMEOUT_S = 60.0


def wait_for_text(log: Path, text: str, process: subprocess.Popen, what: str) -> None:
    """Wait until `text` appears in the process's log; fail with the log's tail if it exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while text not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise UserError(f'{what} did not start; its log ({log}):\n{log.read_text()[-2000:]}')
        time.sleep(0.1)


def interrupt(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGINT a running process and wait for it; kill it if it does not end in `timeout_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
