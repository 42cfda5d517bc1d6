"""Windows from rosbags: infer the cell from the data, then cut labelled windows.

Nothing about a particular cell is assumed: joint names, image size and encoding, and stream
rates are read from the bags.
"""

import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields, replace
from pathlib import Path

import cv2
import numpy as np

from mcf_ros.data.bags import BagReader
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import IMAGE, JOINT_STATE, image_pixels, joint_state_fields, parse, stamp_ns
from mcf_ros.data.windows import RejectedInputError, Window, WindowBuilder, WindowSpec
from mcf_ros.errors import UserError

ENCODINGS = ('rgb8', 'bgr8', 'mono8')
RATE_SAMPLE = 200
SEAM_OVERLAP_S = 5.0  # how far each half of a bag decoded in parallel reads into the other


def _check_topics(bag: BagReader, camera_topic: str, joint_topic: str) -> None:
    for topic, msgtype in ((camera_topic, IMAGE), (joint_topic, JOINT_STATE)):
        if bag.topics.get(topic) != msgtype:
            raise UserError(f'{bag.path} has no {msgtype} topic {topic} (it has: {", ".join(sorted(bag.topics))})')


def stream_rate(stamps: list[float]) -> float:
    """Return a stream's rate in Hz: the mean period, ignoring gaps longer than 1.5 median periods."""
    periods = np.diff(stamps)
    return 1.0 / float(periods[periods <= 1.5 * np.median(periods)].mean())


def infer_spec(bag_dir: str | Path, camera_topic: str, joint_topic: str, image_size: int = 64) -> WindowSpec:
    """Read the cell's joints, image encoding and stream rates from the start of a bag."""
    joint_stamps, frame_stamps, names = [], [], None
    with BagReader(bag_dir) as bag:
        _check_topics(bag, camera_topic, joint_topic)
        for message in bag.messages([camera_topic, joint_topic]):
            if message.topic == joint_topic:
                try:
                    joint_ns, joint_names, *_ = joint_state_fields(message.data)
                except RejectedInputError:
                    continue
                names = names or joint_names
                joint_stamps.append(joint_ns / 1e9)
            else:
                parsed = parse(message.data, message.msgtype)
                if parsed.encoding not in ENCODINGS:
                    raise UserError(f'{bag_dir}: image encoding {parsed.encoding} is not one of {", ".join(ENCODINGS)}')
                frame_stamps.append(stamp_ns(parsed) / 1e9)
            if len(joint_stamps) >= RATE_SAMPLE and len(frame_stamps) >= 10:
                break
    if not names or len(frame_stamps) < 2:
        raise UserError(f'{bag_dir}: too few joint states or frames to learn the cell from')
    joint_hz, camera_hz = stream_rate(joint_stamps), stream_rate(frame_stamps)
    spec = WindowSpec(joint_names=names, image_size=image_size, camera_hz=camera_hz, joint_hz=joint_hz)
    return replace(spec, max_joint_gap_s=max(spec.max_joint_gap_s, 2.5 / joint_hz))


def camera_resolution(bag_dir: str | Path, camera_topic: str) -> tuple[int, int]:
    """Return the (width, height) of the first camera frame of a bag."""
    with BagReader(bag_dir) as bag:
        for message in bag.messages([camera_topic]):
            parsed = parse(message.data, message.msgtype)
            return parsed.width, parsed.height
    raise UserError(f'{bag_dir} has no frames on {camera_topic}')


def frame_rgb(message) -> np.ndarray:
    """Return an Image message's pixels as RGB (mono stays 2-D)."""
    pixels = image_pixels(message)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if message.encoding == 'bgr8' else pixels


def bag_windows(
    bag_dir: str | Path,
    spec: WindowSpec,
    camera_topic: str,
    joint_topic: str,
    start_ns: int | None = None,
    stop_ns: int | None = None,
) -> Iterator[Window]:
    """Yield every window of a bag after the warm-up, with the fault labels it overlaps.

    `start_ns` and `stop_ns` bound the log times read; the warm-up starts again at `start_ns`.
    """
    labels = read_labels(bag_dir)
    builder = WindowBuilder(spec)
    with BagReader(bag_dir) as bag:
        _check_topics(bag, camera_topic, joint_topic)
        for message in bag.messages([camera_topic, joint_topic], start_ns, stop_ns):
            try:
                if message.topic == joint_topic:
                    joint_ns, *joint_values = joint_state_fields(message.data)
                    builder.add_joint_state(joint_ns / 1e9, *joint_values)
                    continue
                parsed = parse(message.data, message.msgtype)
                stamp_s = stamp_ns(parsed) / 1e9
                if parsed.encoding not in ENCODINGS:
                    continue
                window = builder.add_frame(stamp_s, frame_rgb(parsed))
            except RejectedInputError:
                continue
            if not window.warming_up:
                window.labels = [label for label in labels if label.covers(stamp_s - spec.length_s, stamp_s)]
                yield window


def all_bag_windows(bag_dir: str | Path, spec: WindowSpec, camera_topic: str, joint_topic: str) -> list[Window]:
    """Return `bag_windows` as a list, decoding the two halves of a long bag in two processes at once.

    Decoding is single-threaded Python, so this nearly halves its time on two cores. Each half reads
    SEAM_OVERLAP_S into the other, so the second builder has the history its windows need; the
    halves are joined at the first window after which both give the same windows to the end of
    the first half. The result equals `list(bag_windows(...))`, which is the fallback when they
    never agree (a stream gap longer than the overlap, say).
    """
    with BagReader(bag_dir) as bag:
        _check_topics(bag, camera_topic, joint_topic)
        start_ns, end_ns = bag.start_ns, bag.end_ns
    overlap_ns = round(SEAM_OVERLAP_S * 1e9)
    if end_ns - start_ns < 4 * overlap_ns:
        return list(bag_windows(bag_dir, spec, camera_topic, joint_topic))
    middle_ns = (start_ns + end_ns) // 2
    context = multiprocessing.get_context('spawn')  # torch's threads make fork unsafe
    try:
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            halves = [
                pool.submit(_window_list, bag_dir, spec, camera_topic, joint_topic, start, stop)
                for start, stop in ((None, middle_ns + overlap_ns), (middle_ns - overlap_ns, None))
            ]
            first, second = (half.result() for half in halves)
    except BrokenProcessPool:  # a worker could not start (a main module spawn cannot import) or was killed
        return list(bag_windows(bag_dir, spec, camera_topic, joint_topic))
    joined = join_halves(first, second)
    return joined if joined is not None else list(bag_windows(bag_dir, spec, camera_topic, joint_topic))


def _window_list(bag_dir, spec, camera_topic, joint_topic, start_ns, stop_ns) -> list[Window]:
    return list(bag_windows(bag_dir, spec, camera_topic, joint_topic, start_ns, stop_ns))


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
    for field in fields(Window):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or not np.array_equal(x, y):
                return False
        elif isinstance(x, float) and isinstance(y, float):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return False
        elif x != y:
            return False
    return True
