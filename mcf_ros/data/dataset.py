"""Windows from rosbags: infer the cell from the data, then cut labelled windows.

Nothing about a particular cell is assumed: joint names, image size and encoding, and stream
rates are read from the bags.
"""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from mcf_ros.data.bags import BagReader
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import IMAGE, JOINT_STATE, image_pixels, parse, stamp_ns
from mcf_ros.data.windows import RejectedInputError, Window, WindowBuilder, WindowSpec
from mcf_ros.errors import UserError

ENCODINGS = ('rgb8', 'bgr8', 'mono8')
RATE_SAMPLE = 200


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
            parsed = parse(message.data, message.msgtype)
            if message.topic == joint_topic:
                names = names or tuple(parsed.name)
                joint_stamps.append(stamp_ns(parsed) / 1e9)
            else:
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
    bag_dir: str | Path, spec: WindowSpec, camera_topic: str, joint_topic: str, frame_stride: int = 1
) -> Iterator[Window]:
    """Yield every `frame_stride`-th window of a bag (after the warm-up), with the fault labels it overlaps."""
    labels = read_labels(bag_dir)
    builder = WindowBuilder(spec)
    with BagReader(bag_dir) as bag:
        _check_topics(bag, camera_topic, joint_topic)
        frames = 0
        for message in bag.messages([camera_topic, joint_topic]):
            parsed = parse(message.data, message.msgtype)
            stamp_s = stamp_ns(parsed) / 1e9
            try:
                if message.topic == joint_topic:
                    builder.add_joint_state(stamp_s, parsed.name, parsed.position, parsed.velocity, parsed.effort)
                    continue
                if parsed.encoding not in ENCODINGS:
                    continue
                window = builder.add_frame(stamp_s, frame_rgb(parsed))
            except RejectedInputError:
                continue
            frames += 1
            if not window.warming_up and frames % frame_stride == 0:
                window.labels = [label for label in labels if label.covers(stamp_s - spec.length_s, stamp_s)]
                yield window
