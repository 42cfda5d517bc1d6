"""Windows: what the model sees at one instant, built the same way offline (bags) and online (the node).

A window ends at a camera frame. It holds that frame, resized to the model's square input, and
the `length_s` seconds of joint position, velocity and effort before it, resampled onto a fixed
grid (linear interpolation) in the joint order of the spec. Only joint samples stamped up to the
frame count, so a window's content never depends on which stream's messages arrived first.
It also carries stream-health measures: the time since the previous frame, the fraction of grid
points with a joint sample nearby, the share of the expected joint messages that arrived, and
the largest jump (second difference) of any joint position between raw samples. Times are
seconds on the header-stamp clock; positions are radians; images are uint8 RGB.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

CHANNELS = ('position', 'velocity', 'effort')
MIN_JOINT_COVERAGE = 0.5
# Joint samples stamped up to this long after a frame belong to its window (stamps are ns on the wire).
SAME_INSTANT_S = 1e-6
# A stamp this far ahead of the stream is a jump; it is followed when the next message lands within
# CONFIRM_JUMP_S of it.
MAX_STAMP_JUMP_S = 10.0
CONFIRM_JUMP_S = 1.0


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

    @property
    def joint_gap(self) -> float:
        """Return the share of the window the joint stream failed to cover (by samples or by rate); NaN if lost."""
        return 1.0 - min(self.joint_coverage, self.joint_rate_ratio)

    def without_joints(self) -> 'Window':
        """Return this window with the joint stream marked lost: no data and no stream-health evidence."""
        return replace(
            self, joints=None, joint_coverage=math.nan, joint_rate_ratio=math.nan, joint_jerk=math.nan, warming_up=False
        )


class WindowBuilder:
    """Incremental window builder: feed joint states and frames in stamp order; each frame closes a window.

    A confirmed jump of the stamps (a bag loop, a sim-time reset) clears the buffers, so old and new
    data never mix; a lone stray stamp is rejected. Until a full window of joints has been seen
    since the start or a reset, windows are marked `warming_up`: they are not evidence of anything.
    """

    def __init__(self, spec: WindowSpec):
        self.spec = spec
        self._order = {name: i for i, name in enumerate(spec.joint_names)}
        self._joints = _JointBuffer(len(CHANNELS) * len(spec.joint_names))
        self._names: tuple[str, ...] | None = None
        self._index: np.ndarray | None = None
        self._last_frame_s: float | None = None
        self._first_joint_s: float | None = None
        self._jump_to: float | None = None
        self.resets = 0

    @property
    def latest_joint_s(self) -> float | None:
        """Return the stamp of the newest joint state buffered, or None."""
        return self._joints.latest_s

    def add_joint_state(
        self, stamp_s: float, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
        effort: Sequence[float],
    ) -> None:  # fmt: skip
        """Buffer one joint state; raises RejectedInputError if it cannot be used."""
        index = self._joint_index(tuple(names))
        for channel, values in zip(CHANNELS, (position, velocity, effort), strict=True):
            if len(values) != len(names):
                raise RejectedInputError('joint_lengths', f'{channel} has {len(values)} values for {len(names)} names')
        values = np.array((position, velocity, effort), dtype=np.float64)
        if index is not None:
            values = values[:, index]
        if not np.isfinite(values).all():
            raise RejectedInputError('joint_not_finite', 'NaN or inf in joint state')
        self._admit(stamp_s)
        latest = self._joints.latest_s
        if latest is not None and stamp_s <= latest:
            raise RejectedInputError('joint_stamp_repeated', f'stamp {stamp_s:.6f} s is not after the previous one')
        self._joints.append(stamp_s, values.reshape(-1), horizon_s=stamp_s - self.spec.length_s - 1.0)
        if self._first_joint_s is None:
            self._first_joint_s = stamp_s

    def _joint_index(self, names: tuple[str, ...]) -> np.ndarray | None:
        """Return where each spec joint sits in a message's names; None when they are the spec's, in order.

        The answer for the last names seen is kept: a stream sends the same names every time.
        """
        if names != self._names:
            if len(names) != len(set(names)) or any(name not in names for name in self._order):
                raise RejectedInputError('joint_names', f'expected {list(self._order)}, got {list(names)}')
            index = [names.index(name) for name in self._order]
            self._names, self._index = names, None if index == list(range(len(names))) else np.array(index)
        return self._index

    def add_frame(self, stamp_s: float, pixels: np.ndarray) -> Window:
        """Close the window that ends at this frame (uint8 HxWx3 RGB or HxW mono)."""
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) == 0:
            raise RejectedInputError('image_shape', f'expected HxWx3 or HxW, got {pixels.shape}')
        self._admit(stamp_s)
        size = self.spec.image_size
        image = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
        gap = stamp_s - self._last_frame_s if self._last_frame_s is not None else 1.0 / self.spec.camera_hz
        self._last_frame_s = stamp_s
        return self._close(stamp_s, image, gap)

    def close_without_frame(self, stamp_s: float) -> Window:
        """Close a window at `stamp_s` from the joints alone (the camera is lost)."""
        self._admit(stamp_s)
        return self._close(stamp_s, None, math.nan)

    def _close(self, end_s: float, image: np.ndarray | None, frame_gap_s: float) -> Window:
        stamps, samples = self._span(end_s)
        joints, coverage = self._resample(end_s, stamps, samples)
        warming_up = self._first_joint_s is None or end_s - self._first_joint_s < self.spec.length_s
        inside = stamps > end_s - self.spec.length_s
        rate_ratio = min(1.0, inside.sum() / (self.spec.joint_hz * self.spec.length_s))
        positions = samples[inside, : len(self.spec.joint_names)]
        jerk = float(np.abs(np.diff(positions, n=2, axis=0)).max()) if len(positions) >= 3 else 0.0
        return Window(end_s, image, joints, frame_gap_s, coverage, warming_up, rate_ratio, jerk)

    def _span(self, end_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the buffered stamps and samples that can matter for the window ending at `end_s`."""
        stamps, samples = self._joints.stamps, self._joints.samples
        first = int(np.searchsorted(stamps, end_s - self.spec.length_s - self.spec.max_joint_gap_s, side='left'))
        last = int(np.searchsorted(stamps, end_s + SAME_INSTANT_S, side='right'))
        first = min(first, last)
        return stamps[first:last], samples[first:last]

    def _admit(self, stamp_s: float) -> None:
        """Accept a stamp on the current timeline; follow a jump only once a second message confirms it.

        A zero, negative or non-finite stamp is rejected. A stamp more than a window before, or more
        than MAX_STAMP_JUMP_S after, the newest one is a jump: a lone stray stamp is rejected, and
        when the next message lands near it too (a bag loop, a sim-time reset) the buffers are
        cleared and the new timeline is followed, so old and new data never mix.
        """
        if not math.isfinite(stamp_s) or stamp_s <= 0.0:
            raise RejectedInputError('stamp_invalid', f'stamp {stamp_s} s')
        latest = max(self._joints.latest_s or -math.inf, self._last_frame_s or -math.inf)
        if not math.isfinite(latest) or -self.spec.length_s <= stamp_s - latest <= MAX_STAMP_JUMP_S:
            self._jump_to = None
            return
        if self._jump_to is None or abs(stamp_s - self._jump_to) > CONFIRM_JUMP_S:
            self._jump_to = stamp_s
            raise RejectedInputError(
                'stamp_jump',
                f'stamp {stamp_s:.3f} s is {stamp_s - latest:+.1f} s from the stream; followed once confirmed',
            )
        self._joints.clear()
        self._last_frame_s = None
        self._first_joint_s = None
        self._jump_to = None
        self.resets += 1

    def _resample(self, end_s: float, stamps: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray | None, float]:
        """Resample onto the grid ending at `end_s`; None when too little of it is covered."""
        grid = end_s - self.spec.length_s + np.arange(1, self.spec.grid_points + 1) / self.spec.grid_hz
        if len(stamps) == 0:
            return None, 0.0
        after = np.searchsorted(stamps, grid)
        nearest = np.abs(stamps[np.clip(after, 0, len(stamps) - 1)] - grid)
        before = np.abs(stamps[np.clip(after - 1, 0, len(stamps) - 1)] - grid)
        coverage = float(np.mean(np.minimum(nearest, before) <= self.spec.max_joint_gap_s))
        if coverage < MIN_JOINT_COVERAGE:
            return None, coverage
        return _interpolate(grid, stamps, samples).astype(np.float32), coverage


def _interpolate(grid: np.ndarray, stamps: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Interpolate every column of `samples` linearly at `grid`, holding the end values outside the stamps."""
    if len(stamps) == 1:
        return np.repeat(samples, len(grid), axis=0)
    right = np.clip(np.searchsorted(stamps, grid, side='right'), 1, len(stamps) - 1)
    left = right - 1
    weight = np.clip((grid - stamps[left]) / (stamps[right] - stamps[left]), 0.0, 1.0)[:, None]
    return samples[left] + weight * (samples[right] - samples[left])


class _JointBuffer:
    """Joint stamps and flattened samples in growable arrays, oldest first; old ones go when room is needed."""

    def __init__(self, features: int, capacity: int = 4096):
        self._stamps = np.empty(capacity)
        self._samples = np.empty((capacity, features))
        self._begin = self._end = 0

    @property
    def stamps(self) -> np.ndarray:
        """Return the buffered stamps (a view)."""
        return self._stamps[self._begin : self._end]

    @property
    def samples(self) -> np.ndarray:
        """Return the buffered samples, one row per stamp (a view)."""
        return self._samples[self._begin : self._end]

    @property
    def latest_s(self) -> float | None:
        """Return the newest stamp, or None when empty."""
        return float(self._stamps[self._end - 1]) if self._end > self._begin else None

    def append(self, stamp_s: float, sample: np.ndarray, horizon_s: float) -> None:
        """Add a sample; when the arrays are full, first drop those stamped before `horizon_s`."""
        if self._end == len(self._stamps):
            self._make_room(horizon_s)
        self._stamps[self._end] = stamp_s
        self._samples[self._end] = sample
        self._end += 1

    def clear(self) -> None:
        """Drop every sample."""
        self._begin = self._end = 0

    def _make_room(self, horizon_s: float) -> None:
        """Drop the samples before `horizon_s`, move the rest to the front, and double the arrays if half full."""
        self._begin += int(np.searchsorted(self.stamps, horizon_s, side='left'))
        count = self._end - self._begin
        if count > len(self._stamps) // 2:
            self._stamps = np.concatenate([self._stamps, np.empty_like(self._stamps)])
            self._samples = np.concatenate([self._samples, np.empty_like(self._samples)])
        self._stamps[:count] = self._stamps[self._begin : self._end]
        self._samples[:count] = self._samples[self._begin : self._end]
        self._begin, self._end = 0, count
