"""The one import seam for ROS packages that have no PyPI wheels.

On a ROS distro the real `message_filters`, `cv_bridge` and `diagnostic_updater` are used; on a
pip-only machine, small API-compatible stand-ins (`mcf_ros.ros.standins`) and rosbags-image.
The monitor's code is the same on both paths. `BACKENDS` says which were picked.
"""

from types import SimpleNamespace

import numpy as np

from mcf_ros.data.images import RAW_CHANNELS, check_image_layout

try:
    from message_filters import ApproximateTimeSynchronizer, Cache, Subscriber

    _SYNC = 'message_filters'
except ImportError:
    from mcf_ros.ros.standins.message_filters import ApproximateTimeSynchronizer, Cache, Subscriber

    _SYNC = 'stand-in'

try:
    from diagnostic_updater import DiagnosticStatusWrapper, Updater

    _DIAGNOSTICS = 'diagnostic_updater'
except ImportError:
    from mcf_ros.ros.standins.diagnostic_updater import DiagnosticStatusWrapper, Updater

    _DIAGNOSTICS = 'stand-in'

try:
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()

    def _convert(message) -> np.ndarray:
        return _BRIDGE.imgmsg_to_cv2(message, desired_encoding='rgb8')

    _IMAGES = 'cv_bridge'
except ImportError:
    from rosbags.image import image_to_cvimage

    def _convert(message) -> np.ndarray:
        channels = RAW_CHANNELS[message.encoding]
        rows = np.frombuffer(message.data, np.uint8).reshape(message.height, message.step)
        packed = SimpleNamespace(
            height=message.height, width=message.width, encoding=message.encoding,
            is_bigendian=message.is_bigendian, data=np.ascontiguousarray(rows[:, : message.width * channels]),
        )  # fmt: skip
        return image_to_cvimage(packed, 'rgb8')

    _IMAGES = 'rosbags-image'

BACKENDS = {'sync': _SYNC, 'diagnostics': _DIAGNOSTICS, 'images': _IMAGES}

__all__ = ['BACKENDS', 'ApproximateTimeSynchronizer', 'Cache', 'DiagnosticStatusWrapper', 'Subscriber', 'Updater']


def check_image(message, resolution: tuple[int, int] | None = None) -> None:
    """Raise RejectedInputError if a sensor_msgs/Image is malformed or not of `resolution` (width, height)."""
    check_image_layout(message.height, message.width, message.step, message.encoding, len(message.data), resolution)


def image_rgb(message, resolution: tuple[int, int] | None = None) -> np.ndarray:
    """Return a sensor_msgs/Image's pixels as HxWx3 RGB; raises RejectedInputError as check_image does."""
    check_image(message, resolution)
    return _convert(message)
