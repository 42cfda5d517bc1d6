"""Camera frames as drivers publish them: five raw encodings and JPEG/PNG CompressedImage, decoded the same
way offline and in the node."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mcf_ros.data.images import (
    CompressedFrames,
    compressed_format,
    decode_compressed,
    decode_reduction,
    raw_rgb,
    reduced_size,
)
from mcf_ros.data.inspection import compressed_size
from mcf_ros.data.windows import RejectedInputError

RGB = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def raw(pixels, encoding, padding=0):
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.zeros((height, padding), np.uint8)], axis=1)
    return SimpleNamespace(height=height, width=width, encoding=encoding, step=padded.shape[1], data=padded.tobytes())


def compressed(pixels, extension, image_format):
    encoded = cv2.imencode(extension, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))[1].tobytes()
    return SimpleNamespace(format=image_format, data=encoded)


@pytest.mark.parametrize(
    ('encoding', 'as_sent'),
    [
        ('rgb8', lambda p: p),
        ('bgr8', lambda p: p[..., ::-1]),
        ('rgba8', lambda p: np.dstack([p, np.full(p.shape[:2], 7, np.uint8)])),
        ('bgra8', lambda p: np.dstack([p[..., ::-1], np.full(p.shape[:2], 7, np.uint8)])),
    ],
)
def test_every_colour_encoding_gives_the_same_rgb_pixels_with_or_without_row_padding(encoding, as_sent):
    for padding in (0, 5):
        np.testing.assert_array_equal(raw_rgb(raw(np.ascontiguousarray(as_sent(RGB)), encoding, padding)), RGB)


def test_mono8_stays_one_channel():
    grey = RGB[..., 0].copy()
    np.testing.assert_array_equal(raw_rgb(raw(grey, 'mono8', padding=3)), grey)


def test_a_raw_frame_of_another_resolution_is_rejected():
    with pytest.raises(RejectedInputError) as rejected:
        raw_rgb(raw(RGB, 'rgb8'), resolution=(32, 24))
    assert rejected.value.reason == 'image_resolution'


@pytest.mark.parametrize(
    ('field', 'expected'),
    [
        ('rgb8; jpeg compressed bgr8', 'jpeg'),
        ('bgr8; png compressed bgr8', 'png'),
        ('jpeg', 'jpeg'),
        ('JPG', 'jpeg'),
        ('png', 'png'),
    ],
)
def test_image_transport_format_fields_name_the_codec(field, expected):
    assert compressed_format(field) == expected


@pytest.mark.parametrize('field', ['16UC1; compressedDepth png', 'tiff', ''])
def test_depth_and_unknown_compressed_formats_are_rejected(field):
    with pytest.raises(RejectedInputError) as rejected:
        compressed_format(field)
    assert rejected.value.reason == 'image_format'


def test_png_is_lossless_and_jpeg_is_close():
    np.testing.assert_array_equal(decode_compressed(compressed(RGB, '.png', 'png').data), RGB)
    smooth = cv2.GaussianBlur(RGB, (9, 9), 3)
    jpeg = decode_compressed(compressed(smooth, '.jpg', 'jpeg').data)
    assert np.abs(jpeg.astype(int) - smooth).mean() < 4


@pytest.mark.parametrize(
    ('width', 'height', 'side', 'expected'), [(640, 480, 64, 4), (128, 128, 64, 2), (64, 48, 32, 1), (1280, 720, 64, 8)]
)
def test_the_reduction_is_the_largest_that_keeps_both_sides_at_least_the_models_input(width, height, side, expected):
    assert decode_reduction(width, height, side) == expected


@pytest.mark.parametrize(('extension', 'image_format'), [('.jpg', 'jpeg'), ('.png', 'png')])
def test_reduced_decodes_have_the_size_reduced_size_predicts(extension, image_format):
    frame = np.random.default_rng(1).integers(0, 256, (243, 321, 3), dtype=np.uint8)
    data = compressed(frame, extension, image_format).data
    assert compressed_size(data, image_format) == (321, 243)
    for reduction in (1, 2, 4, 8):
        pixels = decode_compressed(data, reduction)
        assert (pixels.shape[1], pixels.shape[0]) == reduced_size(321, 243, reduction, image_format)


def test_compressed_frames_decode_reduced_and_refuse_another_size():
    decode = CompressedFrames((64, 48), model_side=16)
    assert decode.reduction == 2
    assert decode(compressed(RGB, '.png', 'png')).shape == (24, 32, 3)
    with pytest.raises(RejectedInputError) as rejected:
        decode(compressed(RGB[:32, :32].copy(), '.png', 'png'))
    assert rejected.value.reason == 'image_resolution'


def test_bytes_that_are_no_image_are_rejected():
    with pytest.raises(RejectedInputError) as rejected:
        CompressedFrames((64, 48), 16)(SimpleNamespace(format='jpeg', data=b'\xff\xd8 not a jpeg'))
    assert rejected.value.reason == 'image_decode'
