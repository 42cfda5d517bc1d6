"""The one import seam for ROS packages that have no PyPI wheels.

On a ROS distro the real `message_filters`, `cv_bridge` and `diagnostic_updater` are used; on a
pip-only machine, small API-compatible stand-ins (`mcf_ros.ros.standins`) and rosbags-image.
The monitor's code is the same on both paths. `BACKENDS` says which were picked. `cv_bridge` is
trusted only once it converts small known rgb8, bgr8 and mono8 images right (the `cv-bridge`
package on PyPI, a port of ROS 1's, does not); otherwise rosbags-image converts, and `BACKENDS`
says why.
"""

from types import SimpleNamespace

import numpy as np
from rosbags.image import image_to_cvimage

from mcf_ros.data.images import RAW_CHANNELS, check_image_layout

try:
    from message_filters import ApproximateTimeSynchronizer, Cache, SimpleFilter, Subscriber

    _SYNC = 'message_filters'
except ImportError:
    from mcf_ros.ros.standins.message_filters import ApproximateTimeSynchronizer, Cache, SimpleFilter, Subscriber

    _SYNC = 'stand-in'

try:
    from diagnostic_updater import DiagnosticStatusWrapper, Updater

    _DIAGNOSTICS = 'diagnostic_updater'
except ImportError:
    from mcf_ros.ros.standins.diagnostic_updater import DiagnosticStatusWrapper, Updater

    _DIAGNOSTICS = 'stand-in'


def _rosbags_convert(message) -> np.ndarray:
    channels = RAW_CHANNELS[message.encoding]
    rows = np.frombuffer(message.data, np.uint8).reshape(message.height, message.step)
    packed = SimpleNamespace(
        height=message.height, width=message.width, encoding=message.encoding,
        is_bigendian=message.is_bigendian, data=np.ascontiguousarray(rows[:, : message.width * channels]),
    )  # fmt: skip
    return image_to_cvimage(packed, 'rgb8')


def _bridge_problem(convert) -> str | None:
    """Convert small known rgb8, bgr8 and mono8 images; return what went wrong, or None when all are right."""
    from sensor_msgs.msg import Image

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    cases = {'rgb8': rgb, 'bgr8': rgb[..., ::-1], 'mono8': rgb[..., 0]}
    for encoding, pixels in cases.items():
        message = Image(height=2, width=3, encoding=encoding, step=3 * (1 if pixels.ndim == 2 else 3))
        message.data = np.ascontiguousarray(pixels).tobytes()
        expected = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else rgb
        try:
            converted = np.asarray(convert(message))
        except Exception as err:  # a broken bridge fails in any way
            return f'{encoding}: {type(err).__name__}: {err}'
        if converted.shape != expected.shape or not np.array_equal(converted, expected):
            return f'{encoding} gave {converted.shape} pixels that are not the image'
    return None


try:
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()

    def _bridge_convert(message) -> np.ndarray:
        return _BRIDGE.imgmsg_to_cv2(message, desired_encoding='rgb8')

    _PROBLEM = _bridge_problem(_bridge_convert)
except ImportError:
    _PROBLEM = 'not installed'

if _PROBLEM is None:
    _convert, _IMAGES = _bridge_convert, 'cv_bridge'
else:
    _convert = _rosbags_convert
    _IMAGES = (
        'rosbags-image' if _PROBLEM == 'not installed' else f'rosbags-image (cv_bridge failed its check: {_PROBLEM})'
    )

BACKENDS = {'sync': _SYNC, 'diagnostics': _DIAGNOSTICS, 'images': _IMAGES}

__all__ = [
    'BACKENDS', 'ApproximateTimeSynchronizer', 'Cache', 'DiagnosticStatusWrapper', 'SimpleFilter', 'Subscriber',
    'Updater',
]  # fmt: skip


def check_image(message, resolution: tuple[int, int] | None = None) -> None:
    """Raise RejectedInputError if a sensor_msgs/Image is malformed or not of `resolution` (width, height)."""
    check_image_layout(message.height, message.width, message.step, message.encoding, len(message.data), resolution)


def image_rgb(message, resolution: tuple[int, int] | None = None) -> np.ndarray:
    """Return a sensor_msgs/Image's pixels as HxWx3 RGB; raises RejectedInputError as check_image does."""
    check_image(message, resolution)
    return _convert(message)
