"""Synthetic rosbag2 bags for tests: a camera and a joint-state stream with distinct payloads."""

from pathlib import Path

import numpy as np

from mcf_ros.data.bags import bag_writer, typestore

UR_JOINTS = [
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
]
START_NS = 1_700_000_000 * 10**9


def write_camera_joint_bag(
    path: Path,
    storage: str = 'mcap',
    duration_s: float = 10.0,
    camera_hz: float = 30.0,
    joint_hz: float = 500.0,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    joint_names: list[str] = UR_JOINTS,
) -> Path:
    """Write a bag with rgb8 images and 6-joint JointStates; every payload differs, stamps on the header clock."""
    store = typestore()
    image_cls = store.types['sensor_msgs/msg/Image']
    joint_cls = store.types['sensor_msgs/msg/JointState']
    header_cls = store.types['std_msgs/msg/Header']
    time_cls = store.types['builtin_interfaces/msg/Time']
    rng = np.random.default_rng(seed)

    def header(stamp_ns: int, frame: str):
        return header_cls(stamp=time_cls(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame)

    events = [(START_NS + round(k * 1e9 / camera_hz), 'camera') for k in range(int(duration_s * camera_hz))]
    events += [(START_NS + round(k * 1e9 / joint_hz), 'joints') for k in range(int(duration_s * joint_hz))]
    events.sort()
    with bag_writer(path, storage) as writer:
        writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
        for stamp_ns, kind in events:
            if kind == 'camera':
                pixels = rng.integers(0, 256, size=height * width * 3, dtype=np.uint8)
                message = image_cls(
                    header=header(stamp_ns, 'cell_camera'),
                    height=height,
                    width=width,
                    encoding='rgb8',
                    is_bigendian=0,
                    step=width * 3,
                    data=pixels,
                )
                writer.write('/camera/image_raw', stamp_ns, store.serialize_cdr(message, image_cls.__msgtype__))
            else:
                values = rng.normal(size=(3, len(joint_names)))
                message = joint_cls(
                    header=header(stamp_ns, ''),
                    name=joint_names,
                    position=values[0],
                    velocity=values[1],
                    effort=values[2],
                )
                writer.write('/joint_states', stamp_ns, store.serialize_cdr(message, joint_cls.__msgtype__))
    return path
