"""Windows: what the model sees at one instant, built the same way offline (bags) and online (the node).

A window ends at a camera frame. It holds that frame, resized to the model's square input, and
the last `length_s` seconds of joint position, velocity and effort resampled onto a fixed grid
(linear interpolation), in the joint order of the spec. It also carries two stream-health
measures: the time since the previous frame and the fraction of grid points with a joint sample
nearby, the share of the expected joint messages that arrived, and the largest jump (second
difference) of any joint position between raw samples. Times are seconds on the header-stamp
clock; positions are radians; images are uint8 RGB.
"""

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

CHANNELS = ('position', 'velocity', 'effort')
MIN_JOINT_COVERAGE = 0.5


class RejectedInputError(ValueError):
    """A message the builder cannot use; `reason` is a short key for counters (e.g. 'joint_names')."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f'{reason}: {detail}')
        self.reason = reason


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut: the joints (in order), the window length and grid, and the model's image side."""

    joint_names: tuple[str, ...]
    length_s: float = 1.0
    grid_hz: float = 50.0
    image_size: int = 64
    max_joint_gap_s: float = 0.05
    camera_hz: float = 30.0
    joint_hz: float = 500.0

    @property
    def grid_points(self) -> int:
        """Return the number of joint samples per window."""
        return round(self.length_s * self.grid_hz)

    @property
    def joint_features(self) -> int:
        """Return the number of joint values per grid point (joints x channels)."""
        return len(self.joint_names) * len(CHANNELS)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return {**asdict(self), 'joint_names': list(self.joint_names)}

    @classmethod
    def from_dict(cls, values: dict) -> 'WindowSpec':
        """Build from `to_dict` output."""
        return cls(**{**values, 'joint_names': tuple(values['joint_names'])})


@dataclass
class Window:
    """One window. `joints` is (grid_points, joints x channels) float32, channel-major; None if missing."""

    end_s: float
    image: np.ndarray | None
    joints: np.ndarray | None
    frame_gap_s: float
    joint_coverage: float
    warming_up: bool = False
    joint_rate_ratio: float = 1.0
    joint_jerk: float = 0.0
    labels: list = field(default_factory=list)


class WindowBuilder:
    """Incremental window builder: feed joint states and frames in stamp order; each frame closes a window.

    A stamp that goes back in time (a bag loop, a sim-time reset) clears the buffers, so old and new
    data never mix. Until a full window of joints has been seen since the start or a reset, windows
    are marked `warming_up`: they are not evidence of anything.
    """

    def __init__(self, spec: WindowSpec):
        self.spec = spec
        self._order = {name: i for i, name in enumerate(spec.joint_names)}
        self._stamps: deque[float] = deque()
        self._samples: deque[np.ndarray] = deque()
        self._last_frame_s: float | None = None
        self._first_joint_s: float | None = None
        self.resets = 0

    def add_joint_state(
        self, stamp_s: float, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
        effort: Sequence[float],
    ) -> None:  # fmt: skip
        """Buffer one joint state; raises RejectedInputError if it cannot be used."""
        if len(names) != len(set(names)) or any(name not in names for name in self._order):
            raise RejectedInputError('joint_names', f'expected {list(self._order)}, got {list(names)}')
        values = np.empty((len(CHANNELS), len(self._order)))
        for row, channel in enumerate((position, velocity, effort)):
            if len(channel) != len(names):
                raise RejectedInputError(
                    'joint_lengths', f'{CHANNELS[row]} has {len(channel)} values for {len(names)} names'
                )
            source = np.asarray(channel, dtype=np.float64)
            values[row] = [source[list(names).index(name)] for name in self._order]
        if not np.all(np.isfinite(values)):
            raise RejectedInputError('joint_not_finite', 'NaN or inf in joint state')
        self._check_time(stamp_s)
        if self._stamps and stamp_s <= self._stamps[-1]:
            raise RejectedInputError('joint_stamp_repeated', f'stamp {stamp_s:.6f} s is not after the previous one')
        self._stamps.append(stamp_s)
        self._samples.append(values.reshape(-1))
        if self._first_joint_s is None:
            self._first_joint_s = stamp_s
        horizon = stamp_s - self.spec.length_s - 1.0
        while self._stamps and self._stamps[0] < horizon:
            self._stamps.popleft()
            self._samples.popleft()

    def add_frame(self, stamp_s: float, pixels: np.ndarray) -> Window:
        """Close the window that ends at this frame (uint8 HxWx3 RGB or HxW mono)."""
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) == 0:
            raise RejectedInputError('image_shape', f'expected HxWx3 or HxW, got {pixels.shape}')
        self._check_time(stamp_s)
        size = self.spec.image_size
        image = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
        gap = stamp_s - self._last_frame_s if self._last_frame_s is not None else 1.0 / self.spec.camera_hz
        self._last_frame_s = stamp_s
        joints, coverage = self._resample(stamp_s)
        warming_up = self._first_joint_s is None or stamp_s - self._first_joint_s < self.spec.length_s
        rate_ratio, jerk = self._raw_health(stamp_s)
        return Window(stamp_s, image, joints, gap, coverage, warming_up, rate_ratio, jerk)

    def _raw_health(self, end_s: float) -> tuple[float, float]:
        """Return (received / expected joint messages, largest |second difference| of a position) in the span."""
        stamps = np.fromiter(self._stamps, dtype=np.float64, count=len(self._stamps))
        inside = stamps > end_s - self.spec.length_s
        ratio = min(1.0, inside.sum() / (self.spec.joint_hz * self.spec.length_s))
        if inside.sum() < 3:
            return ratio, 0.0
        positions = np.stack([sample for sample, keep in zip(self._samples, inside, strict=True) if keep])
        positions = positions[:, : len(self.spec.joint_names)]
        return ratio, float(np.abs(np.diff(positions, n=2, axis=0)).max())

    def _check_time(self, stamp_s: float) -> None:
        latest = max(self._stamps[-1] if self._stamps else -np.inf, self._last_frame_s or -np.inf)
        if stamp_s < latest - self.spec.length_s:
            self._stamps.clear()
            self._samples.clear()
            self._last_frame_s = None
            self._first_joint_s = None
            self.resets += 1

    def _resample(self, end_s: float) -> tuple[np.ndarray | None, float]:
        """Resample the buffer onto the grid ending at `end_s`; None when too little of it is covered."""
        grid = end_s - self.spec.length_s + np.arange(1, self.spec.grid_points + 1) / self.spec.grid_hz
        if not self._stamps:
            return None, 0.0
        stamps = np.fromiter(self._stamps, dtype=np.float64, count=len(self._stamps))
        nearest = np.abs(stamps[np.clip(np.searchsorted(stamps, grid), 0, len(stamps) - 1)] - grid)
        before = np.abs(stamps[np.clip(np.searchsorted(stamps, grid) - 1, 0, len(stamps) - 1)] - grid)
        coverage = float(np.mean(np.minimum(nearest, before) <= self.spec.max_joint_gap_s))
        if coverage < MIN_JOINT_COVERAGE:
            return None, coverage
        samples = np.stack(self._samples)
        resampled = np.stack([np.interp(grid, stamps, samples[:, k]) for k in range(samples.shape[1])], axis=1)
        return resampled.astype(np.float32), coverage
