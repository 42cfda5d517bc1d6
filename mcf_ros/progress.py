"""One progress line on stderr: redrawn in place on a terminal, a line every 10 s in a log."""

import sys
import time

LOG_PERIOD_S = 10.0


class ProgressLine:
    """Shows `prefix: text` at most once a second on a terminal, once every 10 s otherwise."""

    def __init__(self, prefix: str):
        self._prefix = prefix
        self._tty = sys.stderr.isatty()
        self._next = 0.0

    def update(self, text: str) -> None:
        """Show `text` if enough time has passed since the last update."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + (1.0 if self._tty else LOG_PERIOD_S)
        start, end = ('\r', '') if self._tty else ('', '\n')
        print(f'{start}{self._prefix}: {text}', end=end, file=sys.stderr, flush=True)

    def finish(self, text: str) -> None:
        """Show the final `text` on its own line."""
        start = '\r' if self._tty else ''
        print(f'{start}{self._prefix}: {text}', file=sys.stderr, flush=True)
