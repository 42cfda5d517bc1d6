"""The cell camera as the monitor receives it: a raw Image or a CompressedImage, checked and turned into RGB.

Raw frames go through the image seam (cv_bridge on a distro, rosbags-image on pip); compressed
frames are decoded here, reduced as the model's input allows, exactly as `mcf train` and
`mcf eval` decode them.
"""

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from mcf_ros.data.images import CompressedFrames
from mcf_ros.ros.seams import image_rgb


def compressed_topic(topic: str) -> str:
    """Return image_transport's compressed topic for a camera topic (a topic already ending so stays)."""
    topic = topic.rstrip('/')
    return topic if topic.endswith('/compressed') else f'{topic}/compressed'


class CameraFrames:
    """One camera transport: the message type and topic to subscribe to, and how a message becomes RGB pixels.

    `resolution` (width, height) is the camera's as the model was trained; other sizes are rejected.
    """

    def __init__(self, transport: str, topic: str, resolution: tuple[int, int] | None, model_side: int):
        self.transport = transport
        self.compressed = transport == 'compressed'
        self.message_type = CompressedImage if self.compressed else Image
        self.topic = compressed_topic(topic) if self.compressed else topic
        self._resolution = tuple(resolution) if resolution else None
        self._decode = CompressedFrames(self._resolution, model_side) if self.compressed else None

    def rgb(self, message) -> np.ndarray:
        """Return the frame's RGB pixels; raises RejectedInputError naming what is wrong with it."""
        if self._decode is not None:
            return self._decode(message)
        return image_rgb(message, self._resolution)
