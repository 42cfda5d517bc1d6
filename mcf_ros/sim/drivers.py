"""Driver habits: the simulated cell's two streams rewritten the way real drivers publish them.

The simulator writes one clean `/joint_states` message per sample (six arm joints, every
interface) and raw rgb8 frames. Real cells differ: ros2_control's joint_state_broadcaster fills
interfaces the hardware lacks with NaN, some drivers publish position only, a gripper driver
shares the topic, joints arrive split across controllers or in another order, and most cameras
are recorded compressed. Each habit here rewrites the clean stream message by message, so that a
variant holds the same cell, the same faults and the same stamps as its clean twin.
"""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from mcf_ros.data.bags import BagReader, bag_writer
from mcf_ros.data.images import COMPRESSED_IMAGE, IMAGE, raw_pixels
from mcf_ros.data.labels import read_labels, write_labels
from mcf_ros.data.messages import (
    JOINT_STATE,
    compressed_image_cdr,
    image_cdr,
    joint_state_cdr,
    joint_state_fields,
    parse,
)
from mcf_ros.sim.cell import JOINT_NOISE

HABITS = {
    'nan_effort': 'effort is NaN in every joint state (joint_state_broadcaster on an arm without torque sensing)',
    'position_only': 'velocity and effort are empty (a position-only driver)',
    'gripper': 'a gripper driver publishes its two finger joints on the same topic at 20 Hz, position only',
    'parked_axis': 'a seventh axis that stays parked shares every message; only its encoder noise moves it',
    'split_joints': "the arm's joints arrive in two messages per sample, three joints each",
    'reordered': 'the joint names come in a different order in every message',
    'jpeg': 'the camera is recorded as CompressedImage (JPEG, quality 90) on <topic>/compressed',
    'png': 'the camera is recorded as CompressedImage (PNG) on <topic>/compressed',
    'bgr8': 'the camera publishes bgr8',
    'mono8': 'the camera publishes mono8',
}
CAMERA_HABITS = ('jpeg', 'png', 'bgr8', 'mono8')
GRIPPER_JOINTS = ('gripper_left_finger_joint', 'gripper_right_finger_joint')
GRIPPER_HZ = 20.0
GRIPPER_OPEN_M = 0.04  # the gripper is not in the rendered scene, so its fingers hold still
JPEG_QUALITY = 90
PARKED_AXIS_JOINT = 'parked_axis_joint'

Message = tuple[str, str, int, bytes]  # topic, type, log stamp (ns), CDR bytes


def parse_habits(text: str) -> list[str]:
    """Return the habits named in a comma-separated list; raise ValueError for an unknown or clashing one."""
    habits = [name for name in text.split(',') if name]
    unknown = [name for name in habits if name not in HABITS]
    if unknown:
        raise ValueError(f'unknown driver habit {", ".join(unknown)}; choose from {", ".join(HABITS)}')
    if sum(name in CAMERA_HABITS for name in habits) > 1:
        raise ValueError(f'choose at most one camera habit of {", ".join(CAMERA_HABITS)}')
    if {'nan_effort', 'position_only'} <= set(habits):
        raise ValueError('nan_effort and position_only both rewrite effort; choose one')
    return habits


class DriverHabits:
    """Rewrites clean sim messages per a list of habits (see HABITS); `seed` fixes the reordering."""

    def __init__(self, habits: list[str], seed: int = 0):
        self.habits = set(habits)
        self._rng = np.random.default_rng(seed)
        self._next_gripper_ns: int | None = None
        self._parked_noise = np.random.default_rng([seed, 1])

    def camera_topic(self, topic: str) -> tuple[str, str]:
        """Return the (topic, type) the camera is written on."""
        if self.habits & {'jpeg', 'png'}:
            return f'{topic}/compressed', COMPRESSED_IMAGE
        return topic, IMAGE

    def rewrite(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> Iterator[Message]:
        """Yield what a driver with these habits would have published for one clean message."""
        if msgtype == JOINT_STATE and self.habits - set(CAMERA_HABITS):
            yield from self._joint_state(topic, stamp_ns, data)
        elif msgtype == IMAGE and self.habits & set(CAMERA_HABITS):
            yield self._frame(topic, stamp_ns, data)
        else:
            yield topic, msgtype, stamp_ns, data

    def _joint_state(self, topic: str, log_ns: int, data: bytes) -> Iterator[Message]:
        header_ns, names, position, velocity, effort = joint_state_fields(data)
        if 'gripper' in self.habits:
            if self._next_gripper_ns is None:
                self._next_gripper_ns = header_ns
            while self._next_gripper_ns <= header_ns:
                fingers = np.full(len(GRIPPER_JOINTS), GRIPPER_OPEN_M)
                empty = np.zeros(0)
                gripper = joint_state_cdr(self._next_gripper_ns, list(GRIPPER_JOINTS), fingers, empty, empty)
                yield topic, JOINT_STATE, log_ns, gripper
                self._next_gripper_ns += round(1e9 / GRIPPER_HZ)
        if 'parked_axis' in self.habits:
            names = [*names, PARKED_AXIS_JOINT]
            noise = self._parked_noise.standard_normal(3) * JOINT_NOISE
            position, velocity, effort = (
                np.append(c, n) for c, n in zip((position, velocity, effort), noise, strict=True)
            )
        if 'nan_effort' in self.habits:
            effort = np.full(len(names), np.nan)
        if 'position_only' in self.habits:
            velocity = effort = np.zeros(0)
        parts = [np.arange(len(names))]
        if 'split_joints' in self.habits:
            parts = np.array_split(parts[0], 2)
        for part in parts:
            order = self._rng.permutation(part) if 'reordered' in self.habits else part
            values = [channel[order] if len(channel) else channel for channel in (position, velocity, effort)]
            yield topic, JOINT_STATE, log_ns, joint_state_cdr(header_ns, [names[i] for i in order], *values)

    def _frame(self, topic: str, log_ns: int, data: bytes) -> Message:
        message = parse(data, IMAGE)
        stamp = message.header.stamp.sec * 10**9 + message.header.stamp.nanosec
        rgb = raw_pixels(message)
        frame_id = message.header.frame_id
        out_topic, out_type = self.camera_topic(topic)
        if 'jpeg' in self.habits or 'png' in self.habits:
            extension, image_format = ('.jpg', 'jpeg') if 'jpeg' in self.habits else ('.png', 'png')
            params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if image_format == 'jpeg' else []
            encoded = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)[1].tobytes()
            cdr = compressed_image_cdr(stamp, f'rgb8; {image_format} compressed bgr8', encoded, frame_id)
        elif 'bgr8' in self.habits:
            cdr = image_cdr(stamp, np.ascontiguousarray(rgb[..., ::-1]), frame_id, 'bgr8')
        elif 'mono8' in self.habits:
            cdr = image_cdr(stamp, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), frame_id, 'mono8')
        else:
            return topic, IMAGE, log_ns, data
        return out_topic, out_type, log_ns, cdr


def rewrite_bag(source: str | Path, out: str | Path, habits: list[str], seed: int = 0) -> Path:
    """Write a copy of a clean bag (and its faults.csv) as drivers with `habits` would have published it."""
    rewriter = DriverHabits(habits, seed)
    with BagReader(source) as bag, bag_writer(out) as writer:
        for message in bag.messages():
            for topic, msgtype, stamp_ns, data in rewriter.rewrite(
                message.topic, message.msgtype, message.stamp_ns, message.data
            ):
                writer.add_topic(topic, msgtype)
                writer.write(topic, stamp_ns, data)
    write_labels(out, read_labels(source))
    return Path(out)
