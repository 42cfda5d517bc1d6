"""One pass over a bag that says what it holds: streams, joints, interfaces, stamps and images, counted.

`mcf inspect` prints it, and `mcf train` and `mcf eval` learn the cell from it (dataset.infer_spec)
before their one windowing pass. Nothing here assumes a particular arm, driver or camera.
Stamps are nanoseconds; rates are Hz on the header-stamp clock.
"""

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcf_ros.data.bags import BagReader
from mcf_ros.data.images import CAMERA_TYPES, RAW_CHANNELS, compressed_format
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import JOINT_STATE, joint_state_fields, parse, stamp_ns
from mcf_ros.data.windows import CHANNELS, RejectedInputError

FAR_FROM_LOG_S = 1.0  # a header stamp this far from the time the message was logged is suspicious
GAP_PERIODS = 5.0  # a silence this many median periods long (and over GAP_MIN_S) is a gap
GAP_MIN_S = 0.05
_FLUSH = 2048  # joint values are reduced in blocks of this many messages


@dataclass
class StampStats:
    """Header stamps of one stream (one joint layout, or a camera): their rate and their problems."""

    stamps_ns: list[int] = field(default_factory=list)
    zero: int = 0
    backwards: int = 0
    repeated: int = 0
    far_from_log: int = 0

    def add(self, header_ns: int, log_ns: int) -> None:
        """Count one message's stamp against the previous one and its log time."""
        if header_ns <= 0:
            self.zero += 1
            return
        if self.stamps_ns:
            if header_ns < self.stamps_ns[-1]:
                self.backwards += 1
            elif header_ns == self.stamps_ns[-1]:
                self.repeated += 1
        if abs(header_ns - log_ns) > FAR_FROM_LOG_S * 1e9:
            self.far_from_log += 1
        self.stamps_ns.append(header_ns)

    @property
    def rate_hz(self) -> float | None:
        """Return the rate: the mean period, ignoring gaps longer than 1.5 median periods; None under 3 stamps."""
        return stream_rate(np.array(self.stamps_ns) / 1e9)

    @property
    def gaps(self) -> list[float]:
        """Return the silences (s) longer than GAP_PERIODS median periods and GAP_MIN_S."""
        periods = np.diff(np.sort(np.array(self.stamps_ns))) / 1e9
        if len(periods) < 2:
            return []
        limit = max(GAP_PERIODS * float(np.median(periods)), GAP_MIN_S)
        return [float(p) for p in periods[periods > limit]]

    def problems(self) -> list[str]:
        """Return one phrase per kind of stamp problem, with its count."""
        found = [
            (self.zero, 'zero stamps'),
            (self.backwards, 'stamps going back'),
            (self.repeated, 'repeated stamps'),
            (self.far_from_log, f'header stamps over {FAR_FROM_LOG_S:g} s from the log time'),
            (len(self.gaps), 'gaps'),
        ]
        return [f'{count:,} {what}' for count, what in found if count]


def stream_rate(stamps_s: np.ndarray) -> float | None:
    """Return a stream's rate in Hz: the mean period, ignoring gaps longer than 1.5 median periods."""
    periods = np.diff(np.sort(stamps_s))
    periods = periods[periods > 0]
    if len(periods) < 2:
        return None
    return 1.0 / float(periods[periods <= 1.5 * np.median(periods)].mean())


@dataclass
class InterfaceStats:
    """What one joint's channel (position, velocity or effort) carried, in messages."""

    finite: int = 0
    not_finite: int = 0  # NaN or inf
    empty: int = 0  # the message's array for this channel was empty
    mismatched: int = 0  # the array was neither empty nor as long as the names

    def add(self, other: 'InterfaceStats') -> None:
        """Add another bag's counts of the same channel."""
        self.finite += other.finite
        self.not_finite += other.not_finite
        self.empty += other.empty
        self.mismatched += other.mismatched

    @property
    def messages(self) -> int:
        """Return how many messages named the joint."""
        return self.finite + self.not_finite + self.empty + self.mismatched

    @property
    def present(self) -> bool:
        """Return whether the channel carries data: finite in more than half of the joint's messages."""
        return self.finite > self.messages / 2

    def describe(self, short: bool = False) -> str:
        """Return e.g. 'all finite', or 'NaN or inf in every one of 150,000 messages' ('NaN in all 150,000' short)."""
        if self.finite == self.messages:
            return 'all finite'
        parts = [
            (self.not_finite, 'NaN' if short else 'NaN or inf'),
            (self.empty, 'empty'),
            (self.mismatched, 'bad length' if short else 'of another length than the names'),
        ]
        for count, what in parts:
            if count == self.messages:
                return f'{what} in all {count:,}' if short else f'{what} in every one of {count:,} messages'
        found = ', '.join(f'{what} in {count:,}' for count, what in parts if count)
        return f'finite in {self.finite:,} of {self.messages:,}' + ('' if short else f' messages ({found})')


@dataclass
class JointStats:
    """One joint name as the bag carries it: its channels and the range of its finite positions."""

    interfaces: dict[str, InterfaceStats] = field(default_factory=lambda: {c: InterfaceStats() for c in CHANNELS})
    low: float = np.inf
    high: float = -np.inf

    @property
    def travel(self) -> float:
        """Return the range of finite positions (rad, or m for a prismatic joint); 0 when none."""
        return max(self.high - self.low, 0.0)


class _Layout:
    """Joint states with one set of names (in any order): their stamps, and their values reduced block by block.

    Values are kept in the order of `names` (sorted).
    """

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.stamps = StampStats()
        self._pending: list[list[np.ndarray]] = [[] for _ in CHANNELS]
        self._short: list[Counter] = [Counter() for _ in CHANNELS]  # channel -> {'empty', 'mismatched'} counts

    def add(self, arrays) -> None:
        for channel, values in enumerate(arrays):
            if len(values) == len(self.names):
                self._pending[channel].append(values)
            else:
                self._short[channel]['empty' if len(values) == 0 else 'mismatched'] += 1

    def reduce_into(self, joints: dict[str, JointStats], final: bool = False) -> None:
        """Fold the pending values into per-joint counts (every _FLUSH messages, and at the end)."""
        if not final and len(self._pending[0]) < _FLUSH:
            return
        for channel, pending in enumerate(self._pending):
            finite = np.isfinite(np.array(pending)) if pending else np.zeros((0, len(self.names)), bool)
            for j, name in enumerate(self.names):
                stats = joints.setdefault(name, JointStats()).interfaces[CHANNELS[channel]]
                ok = int(finite[:, j].sum())
                stats.finite += ok
                stats.not_finite += len(finite) - ok
                if final:
                    stats.empty += self._short[channel]['empty']
                    stats.mismatched += self._short[channel]['mismatched']
            if channel == 0 and pending:
                positions = np.where(finite, np.array(pending), np.nan)
                for j, name in enumerate(self.names):
                    column = positions[:, j]
                    if np.isfinite(column).any():
                        stats = joints[name]
                        stats.low, stats.high = min(stats.low, np.nanmin(column)), max(stats.high, np.nanmax(column))
            pending.clear()


@dataclass
class JointTopic:
    """A JointState topic: its layouts (the name sets messages carry), per-joint statistics, bad messages."""

    messages: int = 0
    unreadable: int = 0
    layouts: dict[tuple[str, ...], _Layout] = field(default_factory=dict)  # sorted names -> layout
    joints: dict[str, JointStats] = field(default_factory=dict)  # in the order names first appear
    _orders: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)  # message names -> sorting order

    def add(self, data: bytes, log_ns: int) -> None:
        """Take one serialized joint state."""
        self.messages += 1
        try:
            header_ns, names, *arrays = joint_state_fields(data)
        except RejectedInputError:
            self.unreadable += 1
            return
        order = self._orders.get(names)
        if order is None:
            order = self._orders[names] = np.argsort(names, kind='stable')
            for name in names:
                self.joints.setdefault(name, JointStats())
        key = tuple(sorted(names))
        layout = self.layouts.get(key)
        if layout is None:
            layout = self.layouts[key] = _Layout(key)
        layout.stamps.add(header_ns, log_ns)
        layout.add([values[order] if len(values) == len(names) else values for values in arrays])
        layout.reduce_into(self.joints)

    def finish(self) -> None:
        """Reduce what is left; call once after the last message."""
        for layout in self.layouts.values():
            layout.reduce_into(self.joints, final=True)

    def rate_of(self, name: str) -> float | None:
        """Return the rate of the layout that carries `name` most often."""
        carriers = [layout for layout in self.layouts.values() if name in layout.names]
        if not carriers:
            return None
        return max(carriers, key=lambda layout: len(layout.stamps.stamps_ns)).stamps.rate_hz


@dataclass
class CameraTopic:
    """An Image or CompressedImage topic: encodings or formats, resolutions and stamps, counted."""

    msgtype: str
    frames: int = 0
    kinds: Counter = field(default_factory=Counter)  # encoding (raw) or format (compressed) -> frames
    resolutions: Counter = field(default_factory=Counter)  # (width, height) -> frames
    unreadable: Counter = field(default_factory=Counter)  # reason -> frames
    stamps: StampStats = field(default_factory=StampStats)

    @property
    def transport(self) -> str:
        """Return 'raw' or 'compressed'."""
        return CAMERA_TYPES[self.msgtype]

    @property
    def resolution(self) -> tuple[int, int] | None:
        """Return the most common (width, height), or None when no frame could be read."""
        return self.resolutions.most_common(1)[0][0] if self.resolutions else None

    def add(self, data: bytes, log_ns: int) -> None:
        """Take one serialized frame."""
        self.frames += 1
        try:
            message = parse(data, self.msgtype)
        except Exception:  # rosbags raises several types for bytes that are no such message
            self.unreadable['not a message of its type'] += 1
            return
        self.stamps.add(stamp_ns(message), log_ns)
        if self.transport == 'raw':
            self.kinds[message.encoding] += 1
            if message.encoding not in RAW_CHANNELS:
                self.unreadable[f'encoding {message.encoding}'] += 1
            elif len(message.data) != message.step * message.height or message.width * message.height == 0:
                self.unreadable['data length does not match step x height'] += 1
            else:
                self.resolutions[(message.width, message.height)] += 1
            return
        try:
            image_format = compressed_format(message.format)
        except RejectedInputError:
            self.kinds[message.format] += 1
            self.unreadable[f'format {message.format!r}'] += 1
            return
        self.kinds[image_format] += 1
        size = compressed_size(bytes(message.data[:65536]), image_format)
        if size is None:
            self.unreadable[f'no {image_format} header'] += 1
        else:
            self.resolutions[size] += 1


def compressed_size(data: bytes, image_format: str) -> tuple[int, int] | None:
    """Return the (width, height) written in a PNG's or JPEG's header without decoding it; None if absent."""
    if image_format == 'png':
        if data[:8] != b'\x89PNG\r\n\x1a\n' or data[12:16] != b'IHDR':
            return None
        return struct.unpack('>II', data[16:24])
    offset = 2 if data[:2] == b'\xff\xd8' else len(data)
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            height, width = struct.unpack('>HH', data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + struct.unpack('>H', data[offset + 2 : offset + 4])[0]
    return None


@dataclass
class BagInspection:
    """What one bag holds: its topics and counts, and the camera and joint streams read in full."""

    path: Path
    topics: dict[str, str]
    counts: dict[str, int]
    start_ns: int
    end_ns: int
    cameras: dict[str, CameraTopic]
    joint_topics: dict[str, JointTopic]
    labelled_faults: int

    @property
    def duration_s(self) -> float:
        """Return the log-time span."""
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def message_count(self) -> int:
        """Return the messages on all topics."""
        return sum(self.counts.values())

    def fingerprint_fields(self) -> list:
        """Return what identifies the bag's data: topics, message count and time span."""
        return [sorted(self.topics.items()), self.message_count, self.start_ns, self.end_ns]


def inspect_bag(path: str | Path, topics: list[str] | None = None) -> BagInspection:
    """Read a bag once: every camera and JointState topic (or only `topics`) in full, the rest counted."""
    with BagReader(path) as bag:
        chosen = [
            topic
            for topic, msgtype in bag.topics.items()
            if (topics is None or topic in topics) and (msgtype in CAMERA_TYPES or msgtype == JOINT_STATE)
        ]
        cameras = {t: CameraTopic(bag.topics[t]) for t in chosen if bag.topics[t] in CAMERA_TYPES}
        joint_topics = {t: JointTopic() for t in chosen if bag.topics[t] == JOINT_STATE}
        if chosen and bag.message_count:
            for message in bag.messages(chosen):
                stream = cameras.get(message.topic) or joint_topics[message.topic]
                stream.add(message.data, message.stamp_ns)
        for joint_topic in joint_topics.values():
            joint_topic.finish()
        return BagInspection(
            bag.path, bag.topics, bag.topic_counts, bag.start_ns, bag.end_ns, cameras, joint_topics,
            len(read_labels(bag.path)),
        )  # fmt: skip
