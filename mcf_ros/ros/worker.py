"""Inference off the executor thread: one thread serves one monitor or several, and each monitor's newest job wins."""

import threading
from collections.abc import Callable, Hashable


class InferenceThread:
    """Runs the jobs of its lanes (one per monitor) on one thread.

    A lane keeps only its newest job: one replaced before it ran is that lane's drop, so a flooded
    or slow cell loses its own windows and never another's. Each pass takes the waiting job of
    every lane, starting one lane further on each time, and scores the jobs of lanes with the same
    `key` (the same model) in one call of `batch` of the earliest lane of that key still here (so
    one model copy, and on a GPU one set of CUDA graphs, serves them all); then each lane's
    `finish` publishes its own result. A batch that fails is retried job by job, so one cell's bad window
    counts against that cell only. The thread starts with the first lane and runs `setup()` first
    (torch's thread count).

    Memory is bounded by design: per lane, at most one job waits and one runs.
    """

    def __init__(self, setup: Callable[[], None] = lambda: None, name: str = 'inference'):
        self._setup = setup
        self._condition = threading.Condition()
        self._serving = threading.Lock()  # held while a pass runs: a lane leaves between passes
        self._lanes: list[Lane] = []
        self._rotation = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def lane(self, batch: Callable[[list], list], finish: Callable[[object, object], None], key: Hashable) -> 'Lane':
        """Add a lane: `batch(jobs)` returns one result per job, `finish(job, result)` publishes one."""
        lane = Lane(self, batch, finish, key)
        with self._condition:
            self._lanes.append(lane)
            if not self._thread.is_alive() and not self._stopping:
                self._thread.start()  # on the first lane: `setup` may read what the monitors configured
        return lane

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the running pass, discard the waiting jobs (counted as dropped), and end the thread."""
        with self._condition:
            self._stopping = True
            for lane in self._lanes:
                lane.discard()
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _submit(self, lane: 'Lane', job) -> None:
        with self._condition:
            lane.submitted += 1
            if lane not in self._lanes:  # it has left: nothing will run the job
                lane.dropped += 1
                return
            if lane.pending is not None:
                lane.dropped += 1
            lane.pending = job
            self._condition.notify()

    def _leave(self, lane: 'Lane') -> None:
        with self._condition:
            lane.discard()
            if lane in self._lanes:
                self._lanes.remove(lane)
        with self._serving:  # a pass that took this lane's job has finished it
            pass

    def _run(self) -> None:
        self._setup()
        while True:
            with self._condition:
                while not self._stopping and all(lane.pending is None for lane in self._lanes):
                    self._condition.wait()
                if self._stopping:
                    return
                self._serving.acquire()
                start = self._rotation % len(self._lanes)
                self._rotation += 1
                groups: dict[Hashable, list[tuple[Lane, object]]] = {}
                for lane in self._lanes[start:] + self._lanes[:start]:
                    if lane.pending is not None:
                        groups.setdefault(lane.key, []).append((lane, lane.pending))
                        lane.pending = None
                batchers = {key: next(lane.batch for lane in self._lanes if lane.key == key) for key in groups}
            try:
                for key, group in groups.items():
                    self._serve(batchers[key], group)
            finally:
                self._serving.release()

    def _serve(self, batch: Callable[[list], list], group: list) -> None:
        try:
            results = batch([job for _, job in group])
        except Exception as err:  # a failed window must not end inference; it is counted
            if len(group) > 1:
                for item in group:
                    self._serve(batch, [item])
            else:
                group[0][0].failed(err)
            return
        for (lane, job), result in zip(group, results, strict=True):
            try:
                lane.finish(job, result)
                lane.done += 1
            except Exception as err:
                lane.failed(err)


class Lane:
    """One monitor's place on an InferenceThread: its newest job, and its counts."""

    def __init__(self, thread: InferenceThread, batch, finish, key: Hashable):
        self.thread, self.batch, self.finish, self.key = thread, batch, finish, key
        self.pending = None
        self.submitted = 0
        self.dropped = 0
        self.done = 0
        self.failures = 0
        self.last_error: str | None = None

    def submit(self, job) -> None:
        """Queue `job`, replacing (and counting as dropped) this lane's job that has not started yet."""
        self.thread._submit(self, job)

    def leave(self) -> None:
        """Wait for the running pass, discard this lane's waiting job (counted as dropped), and take no more."""
        self.thread._leave(self)

    def discard(self) -> None:
        """Drop the waiting job (the thread's lock held)."""
        if self.pending is not None:
            self.dropped += 1
            self.pending = None

    def failed(self, err: Exception) -> None:
        """Count a job whose scoring or publishing raised."""
        self.failures += 1
        self.last_error = f'{type(err).__name__}: {err}'
