"""Anomaly clips: the monitor's recent input in a bounded ring, cut into a rosbag2 clip around each flag episode.

Pure (no rclpy): the node hands in each message as it receives it, with its header stamp, and
the episodes as they open and end.

- `ClipKeeper` keeps the last `pre_s` seconds of input on the header-stamp clock, and everything
  since `pre_s` before an episode under way, up to `max_bytes`; past that the oldest input goes
  first and the clip says it is truncated.
- When an episode has ended and the input has reached `post_s` after it, its clip is cut: the
  input from `pre_s` before its start to `post_s` after its end. Clips of close episodes overlap:
  each episode has its own.
- `ClipWriter` writes the clips on its own thread, at the lowest CPU priority: an MCAP bag (the
  input's bytes as received, logged at their reception time, and the node's scores), a
  `faults.csv` with a row for each episode in its span (kind `flag_episode`, modality the blame;
  a neighbour under way ends at the clip's end), then the episode's line in `episodes.jsonl`.
  Before each clip, the oldest clips are removed until the new one fits in `max_bytes`.
"""

import contextlib
import json
import math
import os
import queue
import shutil
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcf_ros.data.bags import bag_writer
from mcf_ros.data.labels import FaultLabel, write_labels
from mcf_ros.errors import UserError
from mcf_ros.model.episodes import Episode

CLIP_PREFIX = 'clip_'
EPISODE_LOG = 'episodes.jsonl'
EPISODE_KIND = 'flag_episode'
PARTIAL = '.partial'  # clips being written
CUT_MARGIN_S = 0.25  # input past the clip's end before it is cut: the last windows' scores are published by then
TIME_BACK_S = 1.0  # a stamp this far behind the newest is a new stream (a bag loop): the ring starts afresh
RECENT_EPISODES = 100  # ended episodes kept to label the clips that overlap them
QUEUED_CLIPS = 2  # clips waiting for the writer; more are dropped and counted
WRITER_NICE = 19  # the writer takes only the CPU that the executor and inference leave


@dataclass(frozen=True)
class Entry:
    """One message in the ring: its topic, header stamp (s), reception time (ns), size and bytes (or a serializer)."""

    stamp_s: float
    topic: str
    log_ns: int
    size: int
    payload: bytes | Callable[[], bytes]

    def data(self) -> bytes:
        """Return the serialized message."""
        return self.payload if isinstance(self.payload, bytes) else self.payload()


@dataclass
class Clip:
    """A cut clip, ready to write: its episode, its input, whether the ring's bound cut its start off, and its labels.

    The labels are every episode inside the clip's span: its own and neighbours that overlap it.
    """

    episode: Episode
    entries: list[Entry]
    truncated: bool
    labels: list[FaultLabel]

    @property
    def size(self) -> int:
        """Return the bytes of its messages."""
        return sum(entry.size for entry in self.entries)


@dataclass
class _Pending:
    """A clip to cut: from `pre_s` before its episode's start until `post_s` after its end (unknown while under way)."""

    start_s: float
    blame: str  # as the flag rose; the episode's own when it has ended
    from_s: float
    episode: Episode | None = None
    due_s: float = math.inf
    truncated: bool = False


class ClipKeeper:
    """Keeps the recent input and cuts a clip per episode; thread-safe."""

    def __init__(self, pre_s: float, post_s: float, max_bytes: int, cut: Callable[[Clip], None]):
        self.pre_s, self.post_s, self.max_bytes = pre_s, post_s, max_bytes
        self._cut = cut
        self._ring: deque[Entry] = deque()
        self._bytes = 0
        self._clock_s = -math.inf  # the newest stamp
        self._pending: list[_Pending] = []  # in the order the episodes started
        self._ended: deque[Episode] = deque(maxlen=RECENT_EPISODES)  # labels for the clips of their neighbours
        self._lock = threading.Lock()
        self.trimmed = 0  # messages the byte bound removed while a clip needed them

    def add(self, topic: str, stamp_s: float | None, log_ns: int, size: int, payload) -> None:
        """Keep one message; `stamp_s` None (an unreadable one) files it at the newest stamp."""
        with self._lock:
            if stamp_s is not None and stamp_s < self._clock_s - TIME_BACK_S:
                self._cut_ended(math.inf)
                self._ring.clear()
                self._bytes, self._clock_s = 0, stamp_s
            if stamp_s is not None and stamp_s > self._clock_s:
                self._clock_s = stamp_s
            if self._clock_s == -math.inf:
                return  # nothing stamped yet: no clock to file it on
            self._ring.append(Entry(self._clock_s if stamp_s is None else stamp_s, topic, log_ns, size, payload))
            self._bytes += size
            self._trim()
            self._cut_ended(self._clock_s - CUT_MARGIN_S)

    def episode_started(self, start_s: float, blame: str) -> None:
        """Keep the input from `pre_s` before `start_s` until the episode's clip is cut; `blame`: as the flag rose."""
        with self._lock:
            self._pending.append(_Pending(start_s, blame, from_s=start_s - self.pre_s))

    def episode_ended(self, episode: Episode) -> None:
        """Cut the episode's clip once the input reaches `post_s` after its end."""
        with self._lock:
            under_way = [pending for pending in self._pending if pending.episode is None]
            if under_way:
                pending = under_way[0]
            else:  # not told of its start
                pending = _Pending(episode.start_s, episode.blame, from_s=episode.start_s - self.pre_s)
                self._pending.append(pending)
            pending.episode, pending.due_s = episode, episode.end_s + self.post_s
            self._ended.append(episode)

    def flush(self) -> None:
        """Cut the clips of the ended episodes now, with what the ring holds (the streams stopped)."""
        with self._lock:
            self._cut_ended(math.inf)

    def _trim(self) -> None:
        keep_from = min([self._clock_s - self.pre_s, *(pending.from_s for pending in self._pending)])
        ring = self._ring
        while ring and (ring[0].stamp_s < keep_from or self._bytes > self.max_bytes):
            entry = ring.popleft()
            self._bytes -= entry.size
            needed = [pending for pending in self._pending if entry.stamp_s >= pending.from_s]
            for pending in needed:
                pending.truncated = True
            self.trimmed += bool(needed)

    def _cut_ended(self, reached_s: float) -> None:
        """Cut every clip whose end the input has passed (`reached_s`), in order."""
        while self._pending and self._pending[0].episode is not None and self._pending[0].due_s <= reached_s:
            pending = self._pending.pop(0)
            start_s, end_s = pending.from_s, pending.due_s
            entries = [entry for entry in self._ring if start_s <= entry.stamp_s <= end_s]
            spans = [(e.start_s, e.end_s, e.blame) for e in self._ended]
            spans += [(p.start_s, end_s, p.blame) for p in self._pending if p.episode is None]
            labels = [
                FaultLabel(start, end, EPISODE_KIND, blame)
                for start, end, blame in sorted(spans)
                if start < end_s and end > start_s
            ]
            self._cut(Clip(pending.episode, entries, pending.truncated, labels))


class ClipWriter:
    """Writes clips into `clip_dir` on its own thread, keeping the clips within `max_bytes` (oldest removed first).

    After each clip, its episode goes to `episodes.jsonl` and to `announce` as a record
    (Episode.record with the clip's path, or None and why, and `extra`).
    """

    COUNTS = ('clips_written', 'clips_removed', 'clips_dropped', 'clip_failures')

    def __init__(
        self, clip_dir: Path, topics: dict[str, str], max_bytes: int, extra: dict,
        announce: Callable[[dict], None],
    ):  # fmt: skip
        self.clip_dir = Path(clip_dir)
        try:
            self.clip_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f'cannot create clip_dir {clip_dir}: {err.strerror}') from None
        shutil.rmtree(self.clip_dir / PARTIAL, ignore_errors=True)  # left by a process that was killed
        self.topics, self.max_bytes, self.extra = topics, max_bytes, extra
        self._announce = announce
        self._queue: queue.Queue[Clip | None] = queue.Queue(QUEUED_CLIPS)
        self.counts = dict.fromkeys(self.COUNTS, 0)
        self.last_error: str | None = None
        self._log_lock = threading.Lock()  # a dropped clip's line is written by the thread that dropped it
        self._thread = threading.Thread(target=self._run, name='clip writer', daemon=True)
        self._thread.start()

    def submit(self, clip: Clip) -> None:
        """Queue a clip; drop it (counted, and announced without a path) if the writer is behind."""
        try:
            self._queue.put_nowait(clip)
        except queue.Full:
            self.counts['clips_dropped'] += 1
            self._finish(clip, None, f'dropped: {QUEUED_CLIPS} clips were still being written')

    def stop(self, timeout_s: float = 60.0) -> None:
        """Write the queued clips, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # Linux: a thread has its own nice value
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
        while (clip := self._queue.get()) is not None:
            try:
                path = self._write(clip)
            except (OSError, UserError) as err:
                self.counts['clip_failures'] += 1
                self.last_error = str(err)
                self._finish(clip, None, f'failed: {err}')
            else:
                self.counts['clips_written'] += 1
                self._finish(clip, path, '')

    def _finish(self, clip: Clip, path: Path | None, why_none: str) -> None:
        record = clip.episode.record(clip=None if path is None else str(path), clip_truncated=clip.truncated)
        record |= self.extra | ({'clip_missing': why_none} if why_none else {})
        try:
            with self._log_lock, (self.clip_dir / EPISODE_LOG).open('a') as handle:
                handle.write(json.dumps(record) + '\n')
        except OSError as err:
            self.counts['clip_failures'] += 1
            self.last_error = f'cannot append to {EPISODE_LOG}: {err.strerror}'
        self._announce(record)

    def _write(self, clip: Clip) -> Path:
        self._make_room(clip.size)
        name = CLIP_PREFIX + datetime.now(UTC).strftime('%Y%m%dT%H%M%S_%f')
        partial = self.clip_dir / PARTIAL / name
        partial.parent.mkdir(exist_ok=True)
        with bag_writer(partial) as bag:
            for topic in dict.fromkeys(entry.topic for entry in clip.entries):
                bag.add_topic(topic, self.topics[topic])
            for entry in sorted(clip.entries, key=lambda entry: entry.log_ns):
                bag.write(entry.topic, entry.log_ns, entry.data())
        write_labels(partial, clip.labels)
        path = self.clip_dir / name
        partial.rename(path)
        return path

    def _make_room(self, size: int) -> None:
        clips = sorted(path for path in self.clip_dir.glob(f'{CLIP_PREFIX}*') if path.is_dir())
        used = sum(directory_bytes(path) for path in clips)
        while clips and used + size > self.max_bytes:
            oldest = clips.pop(0)
            used -= directory_bytes(oldest)
            shutil.rmtree(oldest)
            self.counts['clips_removed'] += 1


def directory_bytes(path: Path) -> int:
    """Return the bytes of the files under `path`."""
    return sum(file.stat().st_size for file in path.rglob('*') if file.is_file())
