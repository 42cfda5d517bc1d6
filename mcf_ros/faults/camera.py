"""Camera corruptions, each a factory of one fault episode's frame-to-frame function.

The function maps one uint8 HxWx3 frame to a corrupted frame, or to None when the frame is lost.
State (a frozen frame, a delay line, where a patch sits) lives in the closure, so one instance
serves one episode. `strength` in (0, 1] scales severity.
"""

from collections import deque
from collections.abc import Callable

import cv2
import numpy as np

FrameCorruption = Callable[[np.ndarray], np.ndarray | None]
DELAY_FRAMES = 15


def _clip(frame: np.ndarray) -> np.ndarray:
    return np.clip(frame, 0, 255).astype(np.uint8)


def black(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Frames go (nearly) black."""
    return lambda frame: _clip(frame * (1.0 - strength))


def frozen(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """The first frame of the episode repeats."""
    held = []

    def corrupt(frame):
        if not held:
            held.append(frame.copy())
        return held[0]

    return corrupt


def noise(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Gaussian pixel noise, sigma up to 40 grey levels."""
    return lambda frame: _clip(frame + rng.normal(0.0, 40.0 * strength, frame.shape))


def blur(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Defocus: a Gaussian blur of sigma up to 5 px per 128 px of image width."""
    return lambda frame: cv2.GaussianBlur(frame, (0, 0), max(0.5, 5.0 * strength * frame.shape[1] / 128))


def occlusion(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """A dark patch covering up to 40 % of the frame, fixed for the episode."""
    side = np.sqrt(0.4 * strength)
    corner = rng.uniform(0.0, 1.0 - side, size=2)
    shade = rng.uniform(20, 70)

    def corrupt(frame):
        height, width = frame.shape[:2]
        top, left = int(corner[0] * height), int(corner[1] * width)
        out = frame.copy()
        out[top : top + int(side * height), left : left + int(side * width)] = shade
        return out

    return corrupt


def color(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Per-channel gain and brightness jump, fixed for the episode."""
    gains = 1.0 + strength * rng.choice([-1, 1], size=3) * rng.uniform(0.3, 0.5, size=3)
    offset = strength * rng.choice([-1, 1]) * rng.uniform(30, 50)
    return lambda frame: _clip(frame * gains + offset)


def dust(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Dark dust blobs and a bright flare, fixed for the episode."""
    masks = {}

    def corrupt(frame):
        height, width = frame.shape[:2]
        if (height, width) not in masks:
            y, x = np.mgrid[0:height, 0:width] / max(height, width)
            shadow = np.zeros((height, width))
            for cy, cx, radius in rng.uniform([0, 0, 0.04], [1, 1, 0.1], size=(6, 3)):
                shadow = np.maximum(shadow, np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / radius**2))
            fy, fx = rng.uniform(0.1, 0.9, size=2)
            flare = np.exp(-((y - fy) ** 2 + (x - fx) ** 2) / 0.05)
            masks[height, width] = (1.0 - 0.8 * strength * shadow)[..., None], (200 * strength * flare)[..., None]
        attenuation, glow = masks[height, width]
        return _clip(frame * attenuation + glow)

    return corrupt


def dropped_frames(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Each frame is lost with probability 0.8 x strength."""
    return lambda frame: None if rng.random() < 0.8 * strength else frame


def delay(rng: np.random.Generator, strength: float) -> FrameCorruption:
    """Frames show the cell DELAY_FRAMES x strength frames ago (stamped now: a desync)."""
    lag = max(1, round(DELAY_FRAMES * strength))
    line = deque(maxlen=lag + 1)

    def corrupt(frame):
        line.append(frame.copy())
        return line[0]

    return corrupt


CAMERA_CORRUPTIONS = {
    'camera_black': black,
    'camera_frozen': frozen,
    'camera_noise': noise,
    'camera_blur': blur,
    'camera_occlusion': occlusion,
    'camera_color': color,
    'camera_dust': dust,
    'camera_dropped_frames': dropped_frames,
    'camera_delay': delay,
}
