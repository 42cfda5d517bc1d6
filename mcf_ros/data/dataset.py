"""Windows from rosbags: learn the cell from an inspection of the bags, then cut labelled windows.

Nothing about a particular cell is assumed: joint names, interfaces, rates, image transport,
encoding and size are read from the bags (`inspection.inspect_bag`).
"""

import math
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from mcf_ros.data.bags import BagReader
from mcf_ros.data.images import CAMERA_TYPES, CompressedFrames, compressed_format, raw_rgb
from mcf_ros.data.inspection import BagInspection, JointStats, compressed_size
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import JOINT_STATE, joint_state_fields, parse, stamp_ns
from mcf_ros.data.windows import CHANNELS, RejectedInputError, Window, WindowBuilder, WindowSpec
from mcf_ros.errors import UserError

MOVING_TRAVEL = 1e-3  # a joint whose position spans less (rad, or m) does not move: a parked gripper
HOLDOUT_FRACTION = 0.5  # the last half of each normal bag calibrates
TRAIN_FRAME_STRIDE = 2  # every 2nd window of the first half trains
MIN_WINDOWS = 100  # training and held-out windows each, at the least
SEAM_OVERLAP_S = 5.0  # how far each half of a bag decoded in parallel reads into the other


def camera_topic_of(inspection: BagInspection, topic: str) -> str:
    """Return the camera topic to read for `topic`: itself, or `topic`/compressed when only that is recorded."""
    if inspection.topics.get(topic) in CAMERA_TYPES:
        return topic
    compressed = f'{topic.rstrip("/")}/compressed'
    if inspection.topics.get(compressed) in CAMERA_TYPES:
        return compressed
    cameras = [t for t, msgtype in sorted(inspection.topics.items()) if msgtype in CAMERA_TYPES]
    raise UserError(
        f'{inspection.path} has no sensor_msgs Image or CompressedImage topic {topic} '
        f'(its camera topics: {", ".join(cameras) or "none"})'
    )


def check_joint_topic(inspection: BagInspection, topic: str) -> None:
    """Raise UserError unless the bag has `topic` as a JointState topic."""
    if inspection.topics.get(topic) != JOINT_STATE:
        joint_topics = [t for t, msgtype in sorted(inspection.topics.items()) if msgtype == JOINT_STATE]
        raise UserError(
            f'{inspection.path} has no {JOINT_STATE} topic {topic} '
            f'(its JointState topics: {", ".join(joint_topics) or "none"})'
        )


def merged_joints(inspections: list[BagInspection], joint_topic: str) -> dict[str, JointStats]:
    """Return each joint name's statistics over all bags, in the order the names first appear."""
    merged: dict[str, JointStats] = {}
    for inspection in inspections:
        for name, stats in inspection.joint_topics[joint_topic].joints.items():
            total = merged.setdefault(name, JointStats())
            for channel in CHANNELS:
                total.interfaces[channel].add(stats.interfaces[channel])
            total.low, total.high = min(total.low, stats.low), max(total.high, stats.high)
    return merged


def choose_joints(joints: dict[str, JointStats], asked: list[str] | None, topic: str) -> list[str]:
    """Return the model's joints: those asked for, or every joint that moves; raise UserError naming why none."""
    if asked:
        unknown = [name for name in asked if name not in joints]
        if unknown:
            raise UserError(
                f'--joints {", ".join(unknown)}: not on {topic} (it carries: {", ".join(joints) or "none"})'
            )
        return list(dict.fromkeys(asked))
    moving = [name for name, stats in joints.items() if stats.travel > MOVING_TRAVEL]
    unusable = {name: stats.interfaces['position'] for name, stats in joints.items()}
    unusable = {name: position for name, position in unusable.items() if not position.present}
    if not moving and unusable:
        causes = '; '.join(sorted({position.describe() for position in unusable.values()}))
        raise UserError(
            f'{len(unusable)} of {len(joints)} joints on {topic} have no usable position ({causes}): '
            f'{", ".join(unusable)}'
        )
    if not moving:
        travel = ', '.join(f'{name} {stats.travel:.3g}' for name, stats in joints.items()) or 'no readable joint state'
        raise UserError(
            f'no joint on {topic} moves more than {MOVING_TRAVEL} rad in the training data ({travel}); '
            'record the cell while it runs its program, or pick joints with --joints'
        )
    return moving


def interfaces_of(name: str, stats: JointStats) -> tuple[str, ...]:
    """Return the channels of a joint the model uses: position (required), then velocity and effort where present."""
    position = stats.interfaces['position']
    if not position.present:
        raise UserError(f'joint {name} has no usable position: {position.describe()}')
    return tuple(channel for channel in CHANNELS if stats.interfaces[channel].present)


def infer_spec(
    inspections: list[BagInspection],
    camera_topic: str,
    joint_topic: str,
    image_size: int = 64,
    joints: list[str] | None = None,
) -> WindowSpec:
    """Learn the cell from inspected bags: joints, the interfaces each carries, the rate of each, the camera rate.

    An interface that is NaN, empty or malformed in most of a joint's messages is absent, not
    faulty: the model does without it. Velocity is not derived from position; the model's
    temporal encoder sees the position trace itself.
    """
    for inspection in inspections:
        check_joint_topic(inspection, joint_topic)
    stats = merged_joints(inspections, joint_topic)
    names = choose_joints(stats, joints, joint_topic)
    interfaces = tuple(interfaces_of(name, stats[name]) for name in names)
    first = inspections[0]
    joint_stream = first.joint_topics[joint_topic]
    rates = [joint_stream.rate_of(name) for name in names]
    if any(rate is None for rate in rates):
        slow = [name for name, rate in zip(names, rates, strict=True) if rate is None]
        raise UserError(f'{first.path}: too few joint states carry {", ".join(slow)} to measure their rate')
    camera = first.cameras[camera_topic_of(first, camera_topic)]
    camera_hz = camera.stamps.rate_hz
    if camera_hz is None:
        raise UserError(
            f'{first.path}: {camera.frames} frame(s) with a usable stamp; too few to measure the camera rate'
        )
    joint_hz = max(rates)
    spec = WindowSpec(
        joint_names=tuple(names), image_size=image_size, camera_hz=camera_hz, joint_hz=joint_hz,
        interfaces=interfaces, joint_rates_hz=tuple(rates),
    )  # fmt: skip
    return replace(spec, max_joint_gap_s=max(spec.max_joint_gap_s, 2.5 / joint_hz))


def training_split(windows: list[Window]) -> tuple[list[Window], list[Window]]:
    """Return one normal bag's (training, held-out) windows: every 2nd of its first half, and its second half."""
    split = int(len(windows) * (1.0 - HOLDOUT_FRACTION))
    return windows[:split:TRAIN_FRAME_STRIDE], windows[split:]


def shortest_training_s(spec: WindowSpec) -> float:
    """Return the shortest normal recording (s) that gives MIN_WINDOWS training windows, warm-up included."""
    return MIN_WINDOWS * TRAIN_FRAME_STRIDE / (1.0 - HOLDOUT_FRACTION) / spec.camera_hz + spec.length_s


@dataclass
class InputTally:
    """What a windowing pass read and what it could not use, by reason, with one example of each."""

    frames: int = 0
    joint_states: int = 0
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    ignored_joints: Counter = field(default_factory=Counter)
    joint_states_ignored: int = 0

    def reject(self, err: RejectedInputError) -> None:
        """Count one unusable message."""
        self.rejected[err.reason] += 1
        self.examples.setdefault(err.reason, str(err))

    def merge(self, other: 'InputTally') -> None:
        """Add another tally's counts to this one."""
        self.frames += other.frames
        self.joint_states += other.joint_states
        self.rejected.update(other.rejected)
        for reason, example in other.examples.items():
            self.examples.setdefault(reason, example)
        self.ignored_joints.update(other.ignored_joints)
        self.joint_states_ignored += other.joint_states_ignored

    def lines(self) -> list[str]:
        """Return one line per reason messages were rejected or joints ignored, with counts."""
        out = []
        for reason, count in self.rejected.most_common():
            stream = self.frames if reason.startswith('image') else self.joint_states
            every = 'every one' if count == stream else f'{count:,}'
            out.append(f'{every} of {stream:,} {"frames" if reason.startswith("image") else "joint states"} '
                       f'rejected: {self.examples[reason]}')  # fmt: skip
        if self.ignored_joints:
            names = ', '.join(sorted(self.ignored_joints))
            out.append(f'ignored joints not in the model ({names}) in {max(self.ignored_joints.values()):,} messages')
        return out


class FrameReader:
    """Turns a camera topic's messages (raw Image or CompressedImage) into RGB pixels for the window builder.

    `resolution` (width, height) is the camera's; for a compressed topic it sets the reduced decode
    and is read from the first frame's header when not given.
    """

    def __init__(self, msgtype: str, resolution: tuple[int, int] | None, image_size: int):
        self.compressed = CAMERA_TYPES[msgtype] == 'compressed'
        self.resolution = tuple(resolution) if resolution else None
        self.image_size = image_size
        self._decode: CompressedFrames | None = None

    def __call__(self, message) -> np.ndarray:
        """Return the frame's RGB pixels (mono stays HxW); raises RejectedInputError for a frame it cannot use."""
        if not self.compressed:
            return raw_rgb(message, self.resolution)
        if self._decode is None:
            size = self.resolution or compressed_size(bytes(message.data[:65536]), compressed_format(message.format))
            self._decode = CompressedFrames(size, self.image_size)
        return self._decode(message)


def bag_windows(
    bag_dir: str | Path,
    spec: WindowSpec,
    camera_topic: str,
    joint_topic: str,
    start_ns: int | None = None,
    stop_ns: int | None = None,
    resolution: tuple[int, int] | None = None,
    tally: InputTally | None = None,
    count_span_ns: tuple[float, float] = (-math.inf, math.inf),
) -> Iterator[Window]:
    """Yield every window of a bag after the warm-up, with the fault labels it overlaps.

    `start_ns` and `stop_ns` bound the log times read; the warm-up starts again at `start_ns`.
    Messages logged within `count_span_ns` [from, to) are counted in `tally`.
    """
    labels = read_labels(bag_dir)
    builder = WindowBuilder(spec)
    tally = tally if tally is not None else InputTally()
    with BagReader(bag_dir) as bag:
        if bag.topics.get(camera_topic) not in CAMERA_TYPES or bag.topics.get(joint_topic) != JOINT_STATE:
            raise UserError(f'{bag.path} lacks the camera topic {camera_topic} or the joint topic {joint_topic}')
        frames = FrameReader(bag.topics[camera_topic], resolution, spec.image_size)
        for message in bag.messages([camera_topic, joint_topic], start_ns, stop_ns):
            counted = count_span_ns[0] <= message.stamp_ns < count_span_ns[1]
            try:
                if message.topic == joint_topic:
                    tally.joint_states += counted
                    joint_ns, names, *joint_values = joint_state_fields(message.data)
                    ignored = builder.add_joint_state(joint_ns / 1e9, names, *joint_values)
                    if ignored and counted:
                        tally.ignored_joints.update(ignored)
                        tally.joint_states_ignored += len(ignored) == len(names)
                    continue
                tally.frames += counted
                parsed = parse(message.data, message.msgtype)
                stamp_s = stamp_ns(parsed) / 1e9
                window = builder.add_frame(stamp_s, frames(parsed))
            except RejectedInputError as err:
                if counted:
                    tally.reject(err)
                continue
            if not window.warming_up:
                window.labels = [label for label in labels if label.covers(stamp_s - spec.length_s, stamp_s)]
                yield window


def all_bag_windows(
    bag_dir: str | Path,
    spec: WindowSpec,
    camera_topic: str,
    joint_topic: str,
    resolution: tuple[int, int] | None = None,
    tally: InputTally | None = None,
) -> list[Window]:
    """Return `bag_windows` as a list, decoding the two halves of a long bag in two processes at once.

    Decoding is single-threaded Python, so this nearly halves its time on two cores. Each half reads
    SEAM_OVERLAP_S into the other, so the second builder has the history its windows need; the
    halves are joined at the first window after which both give the same windows to the end of
    the first half. The result equals `list(bag_windows(...))`, which is the fallback when they
    never agree (a stream gap longer than the overlap, say). Each half counts the messages logged
    in its own half into `tally`.
    """
    tally = tally if tally is not None else InputTally()
    with BagReader(bag_dir) as bag:
        start_ns, end_ns = bag.start_ns, bag.end_ns
    overlap_ns = round(SEAM_OVERLAP_S * 1e9)
    whole = (bag_dir, spec, camera_topic, joint_topic, None, None, resolution)
    if end_ns - start_ns < 4 * overlap_ns:
        return list(bag_windows(*whole, tally))
    middle_ns = (start_ns + end_ns) // 2
    context = multiprocessing.get_context('spawn')  # torch's threads make fork unsafe
    try:
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            halves = [
                pool.submit(_window_list, bag_dir, spec, camera_topic, joint_topic, start, stop, resolution, span)
                for start, stop, span in (
                    (None, middle_ns + overlap_ns, (-math.inf, middle_ns)),
                    (middle_ns - overlap_ns, None, (middle_ns, math.inf)),
                )
            ]
            (first, first_tally), (second, second_tally) = (half.result() for half in halves)
    except BrokenProcessPool:  # a worker could not start (a main module spawn cannot import) or was killed
        return list(bag_windows(*whole, tally))
    joined = join_halves(first, second)
    if joined is None:
        return list(bag_windows(*whole, tally))
    tally.merge(first_tally)
    tally.merge(second_tally)
    return joined


def _window_list(bag_dir, spec, camera_topic, joint_topic, start_ns, stop_ns, resolution, span):
    tally = InputTally()
    windows = list(bag_windows(bag_dir, spec, camera_topic, joint_topic, start_ns, stop_ns, resolution, tally, span))
    return windows, tally


def join_halves(first: list[Window], second: list[Window]) -> list[Window] | None:
    """Join two overlapping runs of windows where the second's equal the first's to its end; None if never."""
    index_in_first = {window.end_s: index for index, window in enumerate(first)}
    for index, window in enumerate(second):
        start = index_in_first.get(window.end_s)
        if start is None or len(first) - start > len(second) - index:
            continue
        if all(same_window(a, b) for a, b in zip(first[start:], second[index:], strict=False)):
            return first[:start] + second[index:]
    return None


def same_window(a: Window, b: Window) -> bool:
    """Return whether two windows hold the same data and evidence (NaN equals NaN)."""
    for attribute in fields(Window):
        x, y = getattr(a, attribute.name), getattr(b, attribute.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or not np.array_equal(x, y):
                return False
        elif isinstance(x, float) and isinstance(y, float):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return False
        elif x != y:
            return False
    return True
