"""Per-message costs of the monitor's own Python, in a tight loop (no DDS): `python scripts/message_costs.py`.

Joint states: a built `JointState` (what a typed subscription hands over) against the CDR bytes
parsed as the node now reads them, through the window builder and the synchronizer's Cache. The
camera: rclpy building a 640x480 `Image` from its bytes, and the area resize to the model's input.
"""

import time

import cv2
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, JointState

from mcf_ros.data.messages import joint_state_fields, stamp_ns
from mcf_ros.data.windows import WindowBuilder
from mcf_ros.model.artifact import load_artifact
from mcf_ros.model.inference import Detector
from mcf_ros.paths import share_dir
from mcf_ros.ros.monitor import ParsedJointState
from mcf_ros.ros.seams import BACKENDS, ApproximateTimeSynchronizer, Cache, SimpleFilter

JOINT_STATES = 5000
JOINT_HZ = 500


def per_call_us(calls, function) -> float:
    """Run `function(item)` over `calls`; return the mean microseconds per call."""
    started = time.perf_counter()
    for item in calls:
        function(item)
    return 1e6 * (time.perf_counter() - started) / len(calls)


def synchronised_cache():
    """A Cache feeding an ApproximateTimeSynchronizer, as the node wires them; returns the Cache's source."""
    joints, frames = SimpleFilter(), SimpleFilter()
    sync = ApproximateTimeSynchronizer([frames, Cache(joints, 20)], 20, 0.003)
    sync.registerCallback(lambda *_: None)
    return joints


def main() -> None:
    """Print the per-message costs, each a mean over many calls."""
    cv2.setNumThreads(1)
    spec = Detector(load_artifact(share_dir() / 'models' / 'ur5e_cell.mcf')).spec
    raw = []
    for k in range(JOINT_STATES):
        message = JointState(name=list(spec.joint_names), position=[0.001 * k] * 6, velocity=[0.2] * 6)
        message.effort = [0.3] * 6
        message.header.stamp.sec, message.header.stamp.nanosec = 100 + k // JOINT_HZ, (k % JOINT_HZ) * 2_000_000
        raw.append(bytes(serialize_message(message)))
    typed = [deserialize_message(data, JointState) for data in raw]
    print(f'backends: {BACKENDS["sync"]}; per joint state, mean of {JOINT_STATES}:')

    builder, cache = WindowBuilder(spec), synchronised_cache()
    build = per_call_us(typed, lambda m: builder.add_joint_state(stamp_ns(m) / 1e9, m.name, *_fields(m)))
    sync = per_call_us(typed, cache.signalMessage)
    print(f'  typed JointState: builder {build:.1f} us + Cache and synchronizer {sync:.1f} us = {build + sync:.1f} us')

    fields = [joint_state_fields(data) for data in raw]
    parse = per_call_us(raw, lambda data: ParsedJointState(joint_state_fields(data)[0], ()))
    builder, cache = WindowBuilder(spec), synchronised_cache()
    build = per_call_us(fields, lambda f: builder.add_joint_state(f[0] / 1e9, *f[1:]))
    sync = per_call_us([ParsedJointState(f[0], f[1]) for f in fields], cache.signalMessage)
    total = parse + build + sync
    print(
        f'  CDR bytes: parse {parse:.1f} us + builder {build:.1f} us + Cache and synchronizer {sync:.1f} us '
        f'= {total:.1f} us'
    )

    image = Image(height=480, width=640, encoding='rgb8', step=1920)
    image.data = np.random.default_rng(0).integers(0, 256, 480 * 1920, dtype=np.uint8).tobytes()
    data = bytes(serialize_message(image))
    pixels = np.frombuffer(image.data, np.uint8).reshape(480, 640, 3)
    frames = [None] * 300
    build = per_call_us(frames, lambda _: deserialize_message(data, Image))
    print(f'640x480 rgb8 frame: rclpy builds the Image in {build:.0f} us', end='')
    for side in (64, 128):
        cost = per_call_us(frames, lambda _, s=side: cv2.resize(pixels, (s, s), interpolation=cv2.INTER_AREA))
        print(f'; area resize to {side}x{side} {cost:.0f} us', end='')
    print()


def _fields(message):
    return message.position, message.velocity, message.effort


if __name__ == '__main__':
    main()
