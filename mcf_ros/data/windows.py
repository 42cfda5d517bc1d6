"""Windows: what the model sees at one instant, built the same way offline (bags) and online (the node).

A window ends at a camera frame. It holds that frame, resized to the model's square input, and
the `length_s` seconds of joint position, velocity and effort before it, resampled onto a fixed
grid (linear interpolation) in the joint order of the spec. Only joint samples stamped up to the
frame count, so a window's content never depends on which stream's messages arrived first.
It also carries stream-health measures: the time since the previous frame, the fraction of grid
points with a joint sample nearby, the share of the expected joint messages that arrived, and
the largest jump (second difference) of any joint position between raw samples, and the longest
run of raw samples in which a joint's position or velocity reads exactly what it read before (an
encoder that stopped updating, a velocity that reads zero; noisy readings never repeat). Times are
seconds on the header-stamp clock; positions are radians; images are uint8 RGB.
"""

import math
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

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
    """How windows are cut: the joints (in order), the window length and grid, and the model's image side.

    `interfaces` names, per joint, the channels the model uses (position always; velocity and effort
    where the training data had them); `joint_rates_hz` is each joint's publish rate (joints that
    arrive in one message share it). Both default to every channel and `joint_hz` for every joint.
    """

    joint_names: tuple[str, ...]
    length_s: float = 1.0
    grid_hz: float = 50.0
    image_size: int = 64
    max_joint_gap_s: float = 0.05
    camera_hz: float = 30.0
    joint_hz: float = 500.0
    interfaces: tuple[tuple[str, ...], ...] = ()
    joint_rates_hz: tuple[float, ...] = ()

    def __post_init__(self):
        joints = len(self.joint_names)
        interfaces = tuple(tuple(c for c in CHANNELS if c in used) for used in self.interfaces) or (CHANNELS,) * joints
        rates = tuple(float(rate) for rate in self.joint_rates_hz) or (float(self.joint_hz),) * joints
        if len(interfaces) != joints or len(rates) != joints:
            raise ValueError(f'{joints} joints, {len(interfaces)} interface lists and {len(rates)} rates')
        if any('position' not in used for used in interfaces):
            raise ValueError('every joint needs its position')
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        object.__setattr__(self, 'interfaces', interfaces)
        object.__setattr__(self, 'joint_rates_hz', rates)

    @property
    def grid_points(self) -> int:
        """Return the number of joint samples per window."""
        return round(self.length_s * self.grid_hz)

    @property
    def features(self) -> tuple[tuple[int, int], ...]:
        """Return the (channel index, joint index) of each joint feature, channel-major: every position comes first."""
        return tuple(
            (c, j) for c, channel in enumerate(CHANNELS) for j, used in enumerate(self.interfaces) if channel in used
        )

    @property
    def joint_features(self) -> int:
        """Return the number of joint values per grid point."""
        return len(self.features)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return {
            **asdict(self),
            'joint_names': list(self.joint_names),
            'interfaces': [list(used) for used in self.interfaces],
            'joint_rates_hz': list(self.joint_rates_hz),
        }

    @classmethod
    def from_dict(cls, values: dict) -> 'WindowSpec':
        """Build from `to_dict` output (an artifact from before interfaces and rates gets every channel at joint_hz)."""
        interfaces = tuple(tuple(used) for used in values.get('interfaces', ()))
        return cls(**{**values, 'joint_names': tuple(values['joint_names']), 'interfaces': interfaces})


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
    joint_repeats: float = 0.0
    labels: list = field(default_factory=list)

    @property
    def joint_gap(self) -> float:
        """Return the share of the window the joint stream failed to cover (by samples or by rate); NaN if lost."""
        return 1.0 - min(self.joint_coverage, self.joint_rate_ratio)

    def without_joints(self) -> 'Window':
        """Return this window with the joint stream marked lost: no data and no stream-health evidence."""
        return replace(
            self,
            joints=None,
            joint_coverage=math.nan,
            joint_rate_ratio=math.nan,
            joint_jerk=math.nan,
            joint_repeats=math.nan,
            warming_up=False,
        )


class WindowBuilder:
    """Incremental window builder: feed joint states and frames in stamp order; each frame closes a window.

    Joint states come as drivers publish them: the model's joints are taken by name from whichever
    messages carry them, in any order, split across messages or next to other joints (a gripper, a
    conveyor), whose names `add_joint_state` returns and otherwise leaves alone. The joints that
    arrive together form a group with its own buffer, rate and coverage; a channel the model does
    not use may be empty or NaN. A confirmed jump of the stamps (a bag loop, a sim-time reset)
    clears the buffers, so old and new data never mix; a lone stray stamp is rejected. Until a full
    window of joints has been seen since the start or a reset, windows are marked `warming_up`.
    """

    def __init__(self, spec: WindowSpec):
        self.spec = spec
        self._order = {name: i for i, name in enumerate(spec.joint_names)}
        self._routes: dict[tuple[str, ...], _Route | None] = {}
        self._groups: dict[tuple[int, ...], _JointGroup] = {}
        self._last_frame_s: float | None = None
        self._first_joint_s: float | None = None
        self._latest_joint_s: float | None = None
        self._jump_to: float | None = None
        self.resets = 0

    @property
    def latest_joint_s(self) -> float | None:
        """Return the stamp of the newest joint state buffered, or None."""
        return self._latest_joint_s

    def add_joint_state(
        self, stamp_s: float, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
        effort: Sequence[float],
    ) -> tuple[str, ...]:  # fmt: skip
        """Buffer the model's joints of one joint state and return the names it ignored (all, without a model joint).

        Raises RejectedInputError if the model's joints in it cannot be used.
        """
        names = tuple(names)
        route = self._route(names)
        if route is None:
            return names
        values = route.take((position, velocity, effort), len(names))
        self._admit(stamp_s)
        group = self._group(route.group, stamp_s)
        latest = group.buffer.latest_s
        if latest is not None and stamp_s <= latest:
            raise RejectedInputError('joint_stamp_repeated', f'stamp {stamp_s:.6f} s is not after the previous one')
        group.buffer.append(stamp_s, values, horizon_s=stamp_s - self.spec.length_s - 1.0)
        self._latest_joint_s = max(stamp_s, self._latest_joint_s or stamp_s)
        if self._first_joint_s is None:
            self._first_joint_s = stamp_s
        return route.ignored

    def _route(self, names: tuple[str, ...]) -> '_Route | None':
        """Return how a message with these names feeds the model's joints (kept per names); None without any."""
        if names not in self._routes:
            if len(names) != len(set(names)):
                raise RejectedInputError('joint_names', f'a name appears twice in {list(names)}')
            self._routes[names] = _Route.plan(self.spec, names, self._order)
        return self._routes[names]

    def _group(self, key: tuple[int, ...], stamp_s: float) -> '_JointGroup':
        """Return the group of joints `key`, making it if new.

        A new layout that shares joints with another is refused while the other is live (it sent
        within a window of `stamp_s`), and replaces it once it has gone quiet.
        """
        group = self._groups.get(key)
        if group is not None:
            return group
        joints = set(key)
        for other_key, other in list(self._groups.items()):
            if joints.isdisjoint(other_key):
                continue
            latest = other.buffer.latest_s
            if latest is not None and stamp_s - latest <= self.spec.length_s:
                names = [self.spec.joint_names[j] for j in sorted(joints & set(other_key))]
                raise RejectedInputError(
                    'joint_layout', f'joints {names} also arrive in messages with other joints; one layout at a time'
                )
            del self._groups[other_key]
        group = self._groups[key] = _JointGroup(self.spec, key)
        return group

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
        warming_up = self._first_joint_s is None or end_s - self._first_joint_s < self.spec.length_s
        covered = sum(len(key) for key in self._groups)
        if covered < len(self.spec.joint_names):  # a model joint has not arrived (yet)
            return Window(end_s, image, None, frame_gap_s, 0.0, warming_up, 0.0, 0.0, 0.0)
        joints = np.empty((self.spec.grid_points, self.spec.joint_features), np.float32)
        coverage, rate_ratio, jerk, repeats = 1.0, 1.0, 0.0, 0
        for group in self._groups.values():
            values, health = group.resample(end_s)
            coverage, rate_ratio = min(coverage, health.coverage), min(rate_ratio, health.rate_ratio)
            jerk, repeats = max(jerk, health.jerk), max(repeats, health.repeats)
            if values is None or joints is None:
                joints = None
            else:
                joints[:, group.columns] = values
        return Window(end_s, image, joints, frame_gap_s, coverage, warming_up, rate_ratio, jerk, float(repeats))

    def _admit(self, stamp_s: float) -> None:
        """Accept a stamp on the current timeline; follow a jump only once a second message confirms it.

        A zero, negative or non-finite stamp is rejected. A stamp more than a window before, or more
        than MAX_STAMP_JUMP_S after, the newest one is a jump: a lone stray stamp is rejected, and
        when the next message lands near it too (a bag loop, a sim-time reset) the buffers are
        cleared and the new timeline is followed, so old and new data never mix.
        """
        if not math.isfinite(stamp_s) or stamp_s <= 0.0:
            raise RejectedInputError('stamp_invalid', f'stamp {stamp_s} s')
        latest = max(self.latest_joint_s or -math.inf, self._last_frame_s or -math.inf)
        if not math.isfinite(latest) or -self.spec.length_s <= stamp_s - latest <= MAX_STAMP_JUMP_S:
            self._jump_to = None
            return
        if self._jump_to is None or abs(stamp_s - self._jump_to) > CONFIRM_JUMP_S:
            self._jump_to = stamp_s
            raise RejectedInputError(
                'stamp_jump',
                f'stamp {stamp_s:.3f} s is {stamp_s - latest:+.1f} s from the stream; followed once confirmed',
            )
        self._groups.clear()
        self._last_frame_s = None
        self._first_joint_s = None
        self._latest_joint_s = None
        self._jump_to = None
        self.resets += 1


@dataclass(frozen=True)
class _Route:
    """How one message layout (its names, in order) feeds the model's joints.

    `takes` holds, per channel the model uses for these joints, (channel index, the positions in
    the message's arrays, the slice of the group's sample they fill).
    """

    group: tuple[int, ...]
    width: int
    takes: tuple[tuple[int, np.ndarray, slice], ...]
    ignored: tuple[str, ...]
    uniform: tuple[tuple[int, ...], np.ndarray | None] | None  # (channels, picks) when every channel takes the same

    @classmethod
    def plan(cls, spec: WindowSpec, names: tuple[str, ...], order: dict[str, int]) -> '_Route | None':
        group = tuple(sorted(order[name] for name in names if name in order))
        if not group:
            return None
        takes, width = [], 0
        for channel in range(len(CHANNELS)):
            joints = [j for j in group if CHANNELS[channel] in spec.interfaces[j]]
            if joints:
                picks = np.array([names.index(spec.joint_names[j]) for j in joints])
                takes.append((channel, picks, slice(width, width + len(joints))))
                width += len(joints)
        uniform = None
        if all(np.array_equal(picks, takes[0][1]) for _, picks, _ in takes):
            picks = takes[0][1]
            uniform = (tuple(c for c, _, _ in takes), None if np.array_equal(picks, np.arange(len(names))) else picks)
        ignored = tuple(name for name in names if name not in order)
        return cls(group, width, tuple(takes), ignored, uniform)

    def take(self, arrays, names: int) -> np.ndarray:
        """Return the group's sample from a message's (position, velocity, effort) for `names` names.

        Raises RejectedInputError naming the channel whose length or values are unusable.
        """
        if self.uniform is not None:  # one stack and one index, as most drivers publish
            channels, picks = self.uniform
            try:
                stacked = np.array([arrays[c] for c in channels], dtype=np.float64)
            except ValueError:  # lengths differ: said below
                stacked = None
            if stacked is not None and stacked.shape == (len(channels), names):
                values = (stacked if picks is None else stacked[:, picks]).ravel()
                if np.isfinite(values).all():
                    return values
        values = np.empty(self.width)
        for channel, picks, columns in self.takes:
            given = arrays[channel]
            if len(given) != names:
                name = CHANNELS[channel]
                raise RejectedInputError(f'joint_{name}_length', f'{len(given)} {name} values for {names} names')
            doubles = isinstance(given, array) and given.typecode == 'd'  # rclpy's float64[], read in place
            values[columns] = (np.frombuffer(given, np.float64) if doubles else np.asarray(given, np.float64))[picks]
        if not np.isfinite(values).all():
            channel = next(c for c, _, columns in self.takes if not np.isfinite(values[columns]).all())
            name = CHANNELS[channel]
            raise RejectedInputError(f'joint_{name}_not_finite', f'NaN or inf {name} of a model joint')
        return values


class _JointGroup:
    """The joints that arrive in one message layout: their buffer, their columns in a window and their rate."""

    def __init__(self, spec: WindowSpec, joints: tuple[int, ...]):
        self.spec = spec
        members = set(joints)
        self.columns = np.array([i for i, (_, j) in enumerate(spec.features) if j in members])
        # A sample's first values are its positions, then its velocities, as features are channel-major.
        self.positions = len(joints)
        self.motion = sum(CHANNELS[spec.features[feature][0]] != 'effort' for feature in self.columns)
        self.rate_hz = min(spec.joint_rates_hz[j] for j in joints)
        self.max_gap_s = max(spec.max_joint_gap_s, 2.5 / self.rate_hz)
        self.buffer = _JointBuffer(len(self.columns))

    def resample(self, end_s: float) -> tuple[np.ndarray | None, '_GroupHealth']:
        """Return the samples on the window's grid (None when too few) and the stream's health in the window."""
        spec = self.spec
        stamps, samples = self.buffer.stamps, self.buffer.samples
        first = int(np.searchsorted(stamps, end_s - spec.length_s - self.max_gap_s, side='left'))
        last = int(np.searchsorted(stamps, end_s + SAME_INSTANT_S, side='right'))
        stamps, samples = stamps[min(first, last) : last], samples[min(first, last) : last]
        inside = stamps > end_s - spec.length_s
        rate_ratio = min(1.0, inside.sum() / (self.rate_hz * spec.length_s))
        motion = samples[inside, : self.motion]
        positions = motion[:, : self.positions]
        jerk = float(np.abs(np.diff(positions, n=2, axis=0)).max()) if len(positions) >= 3 else 0.0
        repeats = longest_repeat(motion)
        grid = end_s - spec.length_s + np.arange(1, spec.grid_points + 1) / spec.grid_hz
        if len(stamps) == 0:
            return None, _GroupHealth(0.0, rate_ratio, jerk, repeats)
        after = np.searchsorted(stamps, grid)
        nearest = np.abs(stamps[np.clip(after, 0, len(stamps) - 1)] - grid)
        before = np.abs(stamps[np.clip(after - 1, 0, len(stamps) - 1)] - grid)
        coverage = float(np.mean(np.minimum(nearest, before) <= self.max_gap_s))
        health = _GroupHealth(coverage, rate_ratio, jerk, repeats)
        if coverage < MIN_JOINT_COVERAGE:
            return None, health
        return _interpolate(grid, stamps, samples), health


class _GroupHealth(NamedTuple):
    """A joint group's stream health in one window (see Window)."""

    coverage: float
    rate_ratio: float
    jerk: float  # the largest second difference of a raw position
    repeats: int  # the longest run of raw samples in which one value repeats its previous one exactly


def longest_repeat(values: np.ndarray) -> int:
    """Return the most consecutive rows of `values` (N, K) in which one column repeats its previous row exactly."""
    if len(values) < 2 or values.shape[1] == 0:
        return 0
    same = values[1:] == values[:-1]
    # Each column's flags after a False, so a run never joins the end of one column to the next.
    flags = np.concatenate([np.zeros((same.shape[1], 1), bool), same.T], axis=1).ravel()
    breaks = np.flatnonzero(~np.append(flags, False))
    return int(np.diff(breaks).max() - 1)


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
