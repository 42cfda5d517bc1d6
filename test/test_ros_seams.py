"""The import seam's stand-ins and image conversion, driven directly (no DDS): the same API the node uses."""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.clock import ClockType
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState

from mcf_ros.data.windows import RejectedInputError
from mcf_ros.ros.seams import BACKENDS, check_image, image_rgb
from mcf_ros.ros.standins.diagnostic_updater import DiagnosticStatusWrapper
from mcf_ros.ros.standins.message_filters import ApproximateTimeSynchronizer, Cache, SimpleFilter


def stamped(message, stamp_ms: int):
    message.header.stamp = TimeMsg(sec=stamp_ms // 1000, nanosec=(stamp_ms % 1000) * 10**6)
    return message


def at(stamp_ms: int) -> Time:
    return Time(nanoseconds=stamp_ms * 10**6, clock_type=ClockType.ROS_TIME)


def test_the_seam_names_its_backends():
    assert set(BACKENDS) == {'sync', 'diagnostics', 'images'}
    assert BACKENDS['images'] in ('cv_bridge', 'rosbags-image')


def test_cache_keeps_the_newest_messages_and_answers_interval_queries():
    source = SimpleFilter()
    cache = Cache(source, cache_size=3)
    passed = []
    cache.registerCallback(passed.append)
    for ms in (10, 20, 30, 40):
        source.signalMessage(stamped(JointState(), ms))
    assert len(passed) == 4, 'a Cache passes every message on'
    assert [Time.from_msg(m.header.stamp) for m in cache.getInterval(at(0), at(35))] == [at(20), at(30)]
    assert cache.getOldestTime() == at(20) and cache.getLastestTime() == at(40)
    assert Time.from_msg(cache.getElemAfterTime(at(25)).header.stamp) == at(30)
    assert Time.from_msg(cache.getElemBeforeTime(at(25)).header.stamp) == at(20)
    assert cache.getLast() is passed[-1]


def test_synchronizer_pairs_a_frame_with_the_nearest_joint_state_within_slop():
    frames, joints = SimpleFilter(), SimpleFilter()
    sync = ApproximateTimeSynchronizer([frames, joints], queue_size=10, slop=0.003)
    pairs = []
    sync.registerCallback(lambda frame, joint: pairs.append((frame.header.stamp.nanosec, joint.header.stamp.nanosec)))
    for ms in (96, 98, 100):
        joints.signalMessage(stamped(JointState(), ms))
    frames.signalMessage(stamped(Image(), 101))
    assert pairs == [(101 * 10**6, 100 * 10**6)]
    frames.signalMessage(stamped(Image(), 150))  # no joint state within 3 ms: waits
    assert len(pairs) == 1
    joints.signalMessage(stamped(JointState(), 149))
    assert pairs[-1] == (150 * 10**6, 149 * 10**6)
    frames.signalMessage(stamped(Image(), 101))  # its partner was consumed
    assert len(pairs) == 2


def test_a_header_stamped_with_an_rclpy_time_is_cached_and_synchronised():
    """As the ROS 2 package does: the monitor stamps the joint states it parses from CDR bytes so."""
    source, frames = SimpleFilter(), SimpleFilter()
    cache = Cache(source, cache_size=3)
    sync = ApproximateTimeSynchronizer([frames, cache], queue_size=10, slop=0.003)
    pairs = []
    sync.registerCallback(lambda frame, joint: pairs.append(joint.header.stamp))
    source.signalMessage(SimpleNamespace(header=SimpleNamespace(stamp=at(100))))
    frames.signalMessage(stamped(Image(), 101))
    assert cache.getLastestTime() == at(100) and pairs == [at(100)]


def test_synchronizer_drops_a_message_older_than_a_full_queue():
    frames, joints = SimpleFilter(), SimpleFilter()
    sync = ApproximateTimeSynchronizer([frames, joints], queue_size=3, slop=0.003)
    pairs = []
    sync.registerCallback(lambda frame, joint: pairs.append(frame))
    for ms in (100, 110, 120):
        frames.signalMessage(stamped(Image(), ms))
    joints.signalMessage(stamped(JointState(), 5))
    frames.signalMessage(stamped(Image(), 5))  # a bag loop: older than every queued frame
    assert pairs == [] and sorted(sync.queues[0]) == [100 * 10**6, 110 * 10**6, 120 * 10**6]


def test_synchronizer_queues_are_bounded():
    frames, joints = SimpleFilter(), SimpleFilter()
    sync = ApproximateTimeSynchronizer([frames, joints], queue_size=5, slop=0.001)
    for ms in range(100):
        joints.signalMessage(stamped(JointState(), ms * 10))
    assert len(sync.queues[1]) == 5


def image(encoding: str, pixels: np.ndarray, step: int | None = None) -> Image:
    height, width = pixels.shape[:2]
    row_bytes = pixels[0].size
    step = step or row_bytes
    rows = np.zeros((height, step), np.uint8)
    rows[:, :row_bytes] = pixels.reshape(height, -1)
    message = Image(height=height, width=width, encoding=encoding, step=step)
    message.data = rows.tobytes()
    return message


@pytest.mark.parametrize('step', [None, 16])
def test_images_convert_to_rgb_from_every_supported_encoding(step):
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(image_rgb(image('rgb8', rgb, step)), rgb)
    assert np.array_equal(image_rgb(image('bgr8', rgb[..., ::-1].copy(), step)), rgb)
    mono = rgb[..., 0].copy()
    assert np.array_equal(image_rgb(image('mono8', mono, step)), np.repeat(mono[..., None], 3, axis=2))
    alpha = np.full((2, 3, 1), 9, np.uint8)
    assert np.array_equal(image_rgb(image('rgba8', np.concatenate([rgb, alpha], axis=2), step)), rgb)
    assert np.array_equal(image_rgb(image('bgra8', np.concatenate([rgb[..., ::-1], alpha], axis=2), step)), rgb)


def broken(**fields) -> Image:
    message = image('rgb8', np.zeros((4, 4, 3), np.uint8))
    for key, value in fields.items():
        setattr(message, key, value)
    return message


@pytest.mark.parametrize(
    ('message', 'reason'),
    [
        (broken(encoding='16UC1'), 'image_encoding'),
        (broken(height=0, data=b''), 'image_empty'),
        (broken(height=5000, width=5000, step=15000, data=b''), 'image_too_large'),
        (broken(step=6), 'image_step'),
        (broken(data=bytes(47)), 'image_data_length'),
        (broken(data=bytes(49)), 'image_data_length'),
    ],
)
def test_bad_images_are_rejected_with_a_reason(message, reason):
    with pytest.raises(RejectedInputError) as rejected:
        image_rgb(message)
    assert rejected.value.reason == reason


def test_frames_of_another_resolution_than_the_models_are_rejected():
    check_image(broken(), resolution=(4, 4))
    with pytest.raises(RejectedInputError, match='4x4 frames; the model was trained on 640x480') as rejected:
        check_image(broken(), resolution=(640, 480))
    assert rejected.value.reason == 'image_resolution'


def test_the_diagnostics_stand_in_refuses_a_value_that_is_not_a_string_as_diagnostic_updater_does():
    status = DiagnosticStatusWrapper()
    status.add('windows_scored', '3')
    with pytest.raises(TypeError, match='windows_scored'):
        status.add('windows_scored', 3)


FAKE_BRIDGES = {
    # the PyPI port of ROS 1's cv_bridge maps rgb8 to 9 channels
    'nine channels': 'return np.zeros((message.height, message.width, 9), np.uint8)',
    'right': (
        'rows = np.frombuffer(bytes(message.data), np.uint8).reshape(message.height, message.step)\n'
        '        pixels = rows[:, : message.width * (1 if message.encoding == "mono8" else 3)]\n'
        '        if message.encoding == "mono8":\n'
        '            return np.repeat(pixels[..., None], 3, axis=2)\n'
        '        pixels = pixels.reshape(message.height, message.width, 3)\n'
        '        return pixels[..., ::-1] if message.encoding == "bgr8" else pixels'
    ),
}


@pytest.mark.parametrize(
    ('bridge', 'expected'),
    [
        ('nine channels', 'rosbags-image (cv_bridge failed its check: rgb8 gave (2, 3, 9) pixels'),
        ('right', 'cv_bridge'),
    ],
)
def test_cv_bridge_is_used_only_when_it_converts_known_images_right(tmp_path, bridge, expected):
    package = tmp_path / 'cv_bridge'
    package.mkdir()
    (package / '__init__.py').write_text(
        'import numpy as np\n\n\nclass CvBridge:\n    def imgmsg_to_cv2(self, message, desired_encoding):\n'
        f'        {FAKE_BRIDGES[bridge]}\n'
    )
    check = (
        'import numpy as np\nfrom sensor_msgs.msg import Image\nfrom mcf_ros.ros.seams import BACKENDS, image_rgb\n'
        'image = Image(height=1, width=2, encoding="bgr8", step=6, data=bytes([1, 2, 3, 4, 5, 6]))\n'
        'print(BACKENDS["images"]); print(image_rgb(image).ravel().tolist())\n'
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get('PYTHONPATH')]))
    result = subprocess.run(
        [sys.executable, '-c', check],
        env={**os.environ, 'PYTHONPATH': path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    backend, pixels = result.stdout.strip().splitlines()
    assert backend.startswith(expected), backend
    assert pixels == '[3, 2, 1, 6, 5, 4]', 'bgr8 converts to rgb8 whichever backend'
