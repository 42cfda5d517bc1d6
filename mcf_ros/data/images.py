"""Camera frames as drivers publish them: raw `Image` in five encodings, or `CompressedImage` (JPEG, PNG).

Every frame becomes uint8 RGB (HxWx3; mono8 stays HxW) for the window builder, which area-resizes
it to the model's input. A compressed frame is decoded at 1/2, 1/4 or 1/8 of its size when the
model's input is that much smaller (libjpeg scales in the DCT, so a 640x480 JPEG costs a fraction
of a full decode). Offline (`mcf train`, `mcf eval`) and in the node the same functions run, so a
window holds the same bytes either way.
"""

import cv2
import numpy as np

from mcf_ros.data.windows import RejectedInputError

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_TYPES = {IMAGE: 'raw', COMPRESSED_IMAGE: 'compressed'}
RAW_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, 'rgba8': 4, 'bgra8': 4}
COMPRESSED_FORMATS = ('jpeg', 'png')
REDUCTIONS = (8, 4, 2, 1)
MAX_IMAGE_PIXELS = 4096 * 4096
_TO_RGB = {'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB, 'bgra8': cv2.COLOR_BGRA2RGB}
_DECODE_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def check_image_layout(
    height: int, width: int, step: int, encoding: str, data_bytes: int, resolution: tuple[int, int] | None = None
) -> None:
    """Raise RejectedInputError naming what is wrong with a raw Image's layout, before any pixel is read.

    `resolution` (width, height), when given, is the only frame size accepted.
    """
    if encoding not in RAW_CHANNELS:
        raise RejectedInputError('image_encoding', f'encoding {encoding!r} is not one of {", ".join(RAW_CHANNELS)}')
    if height == 0 or width == 0:
        raise RejectedInputError('image_empty', f'image is {width}x{height}')
    if height * width > MAX_IMAGE_PIXELS:
        raise RejectedInputError('image_too_large', f'{width}x{height} is over {MAX_IMAGE_PIXELS} pixels')
    if step < width * RAW_CHANNELS[encoding]:
        raise RejectedInputError('image_step', f'step {step} < width {width} x {RAW_CHANNELS[encoding]} bytes')
    if data_bytes != step * height:
        raise RejectedInputError('image_data_length', f'{data_bytes} bytes of data for step {step} x height {height}')
    if resolution is not None and (width, height) != tuple(resolution):
        raise RejectedInputError(
            'image_resolution', f'{width}x{height} frames; the model was trained on {resolution[0]}x{resolution[1]}'
        )


def raw_pixels(message) -> np.ndarray:
    """Return a raw Image's pixels as an HxWxC uint8 view in its own encoding (row padding removed; mono is HxW)."""
    channels = RAW_CHANNELS[message.encoding]
    rows = np.frombuffer(message.data, np.uint8).reshape(message.height, message.step)
    pixels = rows[:, : message.width * channels].reshape(message.height, message.width, channels)
    return pixels[..., 0] if channels == 1 else pixels


def raw_rgb(message, resolution: tuple[int, int] | None = None) -> np.ndarray:
    """Return a raw Image as RGB (mono8 stays HxW); raises RejectedInputError for a bad layout or size."""
    check_image_layout(message.height, message.width, message.step, message.encoding, len(message.data), resolution)
    pixels = raw_pixels(message)
    conversion = _TO_RGB.get(message.encoding)
    return cv2.cvtColor(pixels, conversion) if conversion is not None else pixels


def compressed_format(format_field: str) -> str:
    """Return 'jpeg' or 'png' from a CompressedImage's `format`.

    image_transport's compressed plugin writes e.g. 'rgb8; jpeg compressed bgr8'; older drivers
    write just 'jpeg' or 'png'. Depth formats and anything else are refused.
    """
    words = format_field.lower().replace(';', ' ').split()
    if 'compresseddepth' not in words:
        for name in COMPRESSED_FORMATS:
            if name in words or (name == 'jpeg' and 'jpg' in words):
                return name
    raise RejectedInputError('image_format', f'compressed format {format_field!r} is not JPEG or PNG')


def decode_reduction(width: int, height: int, model_side: int) -> int:
    """Return the largest of 8, 4, 2, 1 by which a frame can shrink while both sides stay >= the model's input."""
    return next(k for k in REDUCTIONS if min(width, height) // k >= model_side)  # k = 1 always qualifies last


def reduced_size(width: int, height: int, reduction: int, image_format: str) -> tuple[int, int]:
    """Return the (width, height) OpenCV decodes a frame to at `reduction`: JPEG rounds up, PNG down."""
    if image_format == 'jpeg':
        return -(-width // reduction), -(-height // reduction)
    return width // reduction, height // reduction


def decode_compressed(data, reduction: int = 1) -> np.ndarray:
    """Decode JPEG or PNG bytes to RGB at 1/`reduction` of their size; raise RejectedInputError if undecodable."""
    buffer = np.frombuffer(data, np.uint8)
    pixels = cv2.imdecode(buffer, _DECODE_FLAGS[reduction]) if len(buffer) else None
    if pixels is None:
        raise RejectedInputError('image_decode', f'{len(buffer)} bytes do not decode as JPEG or PNG')
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def full_frame_rgb(message, msgtype: str) -> np.ndarray | None:
    """Return any camera message's frame as full-size RGB for people to look at; None if it cannot be read."""
    try:
        if CAMERA_TYPES[msgtype] == 'raw':
            return raw_rgb(message)
        compressed_format(message.format)
        return decode_compressed(message.data)
    except RejectedInputError:
        return None


class CompressedFrames:
    """Decodes one camera's CompressedImage frames for a model: reduced as its input allows, at its resolution.

    `resolution` is the (width, height) the camera was recorded at; frames of another size are
    rejected, as raw frames are.
    """

    def __init__(self, resolution: tuple[int, int] | None, model_side: int):
        self.resolution = tuple(resolution) if resolution else None
        self.reduction = decode_reduction(*self.resolution, model_side) if self.resolution else 1

    def __call__(self, message) -> np.ndarray:
        """Return the frame as RGB at the reduced size; raises RejectedInputError for a bad format, data or size."""
        image_format = compressed_format(message.format)
        pixels = decode_compressed(message.data, self.reduction)
        if self.resolution is not None:
            expected = reduced_size(*self.resolution, self.reduction, image_format)
            if (pixels.shape[1], pixels.shape[0]) != expected:
                width, height = self.resolution
                raise RejectedInputError(
                    'image_resolution',
                    f'a {image_format} frame decoded to {pixels.shape[1]}x{pixels.shape[0]} at 1/{self.reduction}, '
                    f'not {expected[0]}x{expected[1]}: the model was trained on {width}x{height}',
                )
        return pixels
