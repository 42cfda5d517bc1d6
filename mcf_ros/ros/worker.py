"""Inference off the executor thread: a one-slot queue where the newest job wins."""

import threading
from collections.abc import Callable


class LatestWins:
    """Runs `work(job)` on its own thread for the newest submitted job; a job replaced before it ran is a drop.

    `setup()` runs first on that thread (for per-thread settings such as torch's thread count).

    Memory is bounded by design: at most one job waits, and one runs.
    """

    def __init__(
        self, work: Callable[[object], None], setup: Callable[[], None] = lambda: None, name: str = 'inference'
    ):
        self._work = work
        self._setup = setup
        self._condition = threading.Condition()
        self._pending = None
        self._stopping = False
        self.submitted = 0
        self.dropped = 0
        self.done = 0
        self.failures = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job) -> None:
        """Queue `job`, replacing (and counting as dropped) one that has not started yet."""
        with self._condition:
            self.submitted += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = job
            self._condition.notify()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the running job, discard a waiting one, and end the thread."""
        with self._condition:
            self._stopping = True
            if self._pending is not None:
                self.dropped += 1
                self._pending = None
            self._condition.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        self._setup()
        while True:
            with self._condition:
                while self._pending is None and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                job, self._pending = self._pending, None
            try:
                self._work(job)
                self.done += 1
            except Exception as err:  # a failed window must not end inference; it is counted
                self.failures += 1
                self.last_error = f'{type(err).__name__}: {err}'
