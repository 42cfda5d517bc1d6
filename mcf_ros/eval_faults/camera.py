"""Evaluation faults that the camera carries: the camera lies, or (object_set_down) the world changed.

Each class is one episode: made with `(rng, width, height)`, it draws its
parameters; called with `(rgb, elapsed_s)`, it returns the frame the faulty camera sends `elapsed_s`
seconds into the episode. Frames are uint8 HxWx3 RGB.
"""

from collections import deque

import cv2
import numpy as np


def _uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0, 255).astype(np.uint8)


def _signed(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high) * rng.choice([-1.0, 1.0]))


def _warp(rgb: np.ndarray, degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


class Bumped:
    """The mount was knocked: the view is shifted and turned, and stays so."""

    def __init__(self, rng, width, height):
        self.shift = (_signed(rng, 0.04, 0.10) * width, _signed(rng, 0.04, 0.10) * height)
        self.degrees = _signed(rng, 2.0, 6.0)

    def __call__(self, rgb, elapsed_s):
        return _warp(rgb, self.degrees, 1.0, self.shift)


class ZoomSlip:
    """The zoom ring slipped: the view is magnified about its centre."""

    def __init__(self, rng, width, height):
        self.scale = float(rng.uniform(1.12, 1.30))

    def __call__(self, rgb, elapsed_s):
        return _warp(rgb, 0.0, self.scale, (0.0, 0.0))


class Flicker:
    """A failing lamp: the brightness swings at a few hertz."""

    def __init__(self, rng, width, height):
        self.depth, self.hz = float(rng.uniform(0.25, 0.45)), float(rng.uniform(2.0, 7.0))

    def __call__(self, rgb, elapsed_s):
        return _uint8(rgb * (1.0 + self.depth * np.sin(2 * np.pi * self.hz * elapsed_s)))


class Tearing:
    """A transfer that falls behind: the rows below a split come from a frame a few frames old, shifted."""

    def __init__(self, rng, width, height):
        self.age_frames = int(rng.integers(3, 9))
        self.split_row = round(rng.uniform(0.3, 0.7) * height)
        self.shift_px = round(_signed(rng, 0.02, 0.06) * width)
        self._history = deque(maxlen=self.age_frames + 1)

    def __call__(self, rgb, elapsed_s):
        self._history.append(rgb)
        torn = rgb.copy()
        torn[self.split_row :] = np.roll(self._history[0][self.split_row :], self.shift_px, axis=1)
        return torn


class Fog:
    """Condensation on the lens: a bright haze and a slight softening."""

    def __init__(self, rng, width, height):
        self.haze = float(rng.uniform(0.45, 0.70))
        self.sigma_px = max(float(rng.uniform(0.005, 0.012)) * width, 0.5)

    def __call__(self, rgb, elapsed_s):
        soft = cv2.GaussianBlur(rgb, (0, 0), self.sigma_px).astype(np.float32)
        return _uint8((1.0 - self.haze) * soft + self.haze * 215.0)


class ChannelSwap:
    """Red and blue trade places: a driver update publishes bgr8 data labelled rgb8."""

    def __init__(self, rng, width, height):
        pass

    def __call__(self, rgb, elapsed_s):
        return np.ascontiguousarray(rgb[..., ::-1])


class Banding:
    """Electrical interference: dark and bright horizontal bands roll down the image."""

    def __init__(self, rng, width, height):
        self.amplitude = float(rng.uniform(35.0, 60.0))  # grey levels
        self.period_rows = float(rng.uniform(0.08, 0.2)) * height
        self.roll_hz = float(rng.uniform(0.5, 2.0))

    def __call__(self, rgb, elapsed_s):
        phase = np.arange(rgb.shape[0]) / self.period_rows - self.roll_hz * elapsed_s
        return _uint8(rgb + self.amplitude * np.sign(np.sin(2 * np.pi * phase))[:, None, None])


class ObjectSetDown:
    """A box is set down in the cell, clear of the arm: it slides in from one side of the view and stays.

    The world changed and no sensor lies: only the camera can see it. It is drawn with a lit top,
    a shaded side and a shadow, on the lower part of the view, where the near table or floor is.
    """

    def __init__(self, rng, width, height):
        self.width, self.depth = rng.uniform(0.10, 0.16) * width, rng.uniform(0.04, 0.07) * height
        self.tall = rng.uniform(0.07, 0.12) * height
        self.rest_x = rng.uniform(0.05 * width, 0.95 * width - self.width)
        self.floor_y = rng.uniform(0.75, 0.95) * height
        self.start_x = -self.width if rng.random() < 0.5 else float(width)
        self.enter_s = float(rng.uniform(0.3, 0.8))
        self.colour = rng.uniform(50.0, 210.0, 3)

    def __call__(self, rgb, elapsed_s):
        x = self.start_x + (self.rest_x - self.start_x) * min(elapsed_s / self.enter_s, 1.0)
        w, d, tall, y = self.width, self.depth, self.tall, self.floor_y
        front = [(x, y), (x + w, y), (x + w, y - tall), (x, y - tall)]
        top = [(x, y - tall), (x + w, y - tall), (x + w + d, y - tall - d), (x + d, y - tall - d)]
        side = [(x + w, y), (x + w + d, y - d), (x + w + d, y - tall - d), (x + w, y - tall)]
        shadow = [(x + d, y), (x + w + 2 * d, y), (x + w + 2 * d, y - d), (x + 2 * d, y - d)]
        out = rgb.copy()
        shaded = out.copy()
        cv2.fillConvexPoly(shaded, np.round(shadow).astype(np.int32), (0, 0, 0))
        out = cv2.addWeighted(out, 0.65, shaded, 0.35, 0.0)
        for face, light in ((front, 1.0), (side, 0.7), (top, 1.25)):
            colour = tuple(float(c) for c in np.clip(self.colour * light, 0, 255))
            cv2.fillConvexPoly(out, np.round(face).astype(np.int32), colour)
        return out


CAMERA_KINDS = {
    'camera_bumped': Bumped,
    'camera_zoom_slip': ZoomSlip,
    'camera_flicker': Flicker,
    'camera_tearing': Tearing,
    'camera_fog': Fog,
    'camera_channel_swap': ChannelSwap,
    'camera_banding': Banding,
    'object_set_down': ObjectSetDown,
}
