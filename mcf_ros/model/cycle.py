"""The cell's cycle: how long after leaving and after reaching its rest pose a normal arm passes each path.

A robot cell repeats a program: the arm rests at home, runs a cycle and comes back. A fault that
costs the program time (a stop, a safety slowdown) leaves the arm late for the rest of that
cycle, and a program that catches up at home leaves early: each pose is normal, and both sensors
agree on it, but not its time in the cycle. Two clocks time the cycle: the seconds since the arm
was last home (departure) and since it last arrived there (arrival). A window's path is its joint
positions at its start, middle and end. The lag evidence of a window away from home compares its
clocks with those of the normal windows on the same path (within the path tolerance). It is late
when its departure clock exceeds what the normal window's would be at any speed override down to
SLOWEST_OVERRIDE (the time the normal arm spent moving, stretched; its stops kept), or ahead of
it; the lag is the smallest such gap over the normal windows, or how much earlier than any normal
one it left home after arriving, whichever is larger. So a lowered override is not a fault. A
path no normal window took gives no lag evidence: a novel pose is the autoencoder's to judge.
Home is learnt from normal data as the pose the arm rests at longest, and at least all joints
but one must be near it, so one faulty encoder cannot hide a visit home. Positions are radians,
times seconds. The tolerances scale with the data (CycleScale): nothing here is specific to one
cell, its speed or its camera rate.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

MIN_CYCLES = 5  # visits home the normal data must show for a cycle to be learnt
SLOWEST_OVERRIDE = 0.5  # normal running may run its moves at any speed override down to this
# The learnt cycle must judge held-out normal running before its lag can be evidence: most windows away
# from home on a path a training window took, and their lag small against the time the arm is away.
# On the UR5e cell's 20 min development bag: 98.6 % judged, lag p99 0.5 % of the time away (3 min: 88 %, 1 %).
MIN_JUDGED = 0.5
MAX_LAG_SHARE = 0.1


# How the tolerances follow the training windows (CycleScale.from_data). Chosen on the UR5e cell's
# development recording, where they give the fixed values used before (paths 0.05 rad, home 0.1 rad,
# a 1 s pause) and a rest speed of 0.02 rad/s, under the 0.05 rad/s used before: a slow welding pass
# is not rest.
REST_NOISE_QUANTILE = 5  # percentile of window speeds taken as the noise of an arm at rest
REST_NOISE_FACTOR = 4.0
TOP_SPEED_QUANTILE = 99  # percentile of window speeds taken as the arm's top speed
STILL_SHARE_OF_TOP = 1 / 30  # the rest speed is never above this share of the top speed
PATH_SHARE_OF_STEP = 0.5  # paths within half the largest step between two training windows are the same
HOME_PATHS = 2.0  # home is within this many path tolerances of the rest pose
MAX_STEP_WINDOWS = 15  # a pause of this many training-window steps restarts the clocks
CLOCK_WINDOWS = 1.5  # the lag's scale is at least this many camera frames: the clocks' resolution


def window_speeds(end_s: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the largest joint speed from each window to the next (N - 1), and the time step between them.

    A step that does not move forward in time gives speed 0.
    """
    step = np.diff(end_s)
    return np.abs(np.diff(positions, axis=0)).max(axis=1) / np.where(step > 0, step, np.inf), step


@dataclass
class CycleScale:
    """The cycle's tolerances, learnt from the training windows and stored with the reference.

    The arm rests at `still_rad_s` or slower; it is home within `home_tol_rad` of the rest pose (on all
    joints but one); two windows are on the same path within `path_tol_rad` (largest joint
    distance); a pause longer than `max_step_s` restarts the clocks.
    """

    still_rad_s: float
    home_tol_rad: float
    path_tol_rad: float
    max_step_s: float

    @classmethod
    def from_data(cls, end_s: np.ndarray, paths: np.ndarray, n_joints: int) -> 'CycleScale | None':
        """Scale the tolerances to the windows (in time order): their spacing, the arm's top speed and its rest noise.

        The path tolerance is half the step the arm takes between two windows at its top speed, so
        a faster arm or a slower camera gets a wider one; the rest speed is a few times the noise of
        the arm at rest, and never above a thirtieth of its top speed. None without two windows.
        """
        speed, step = window_speeds(end_s, paths[:, -n_joints:])
        positive = step[step > 0]
        if len(positive) == 0:
            return None
        period = float(np.median(positive))
        joined = (step > 0) & (step <= MAX_STEP_WINDOWS * period)
        speed = speed[joined & np.isfinite(speed)]
        if len(speed) == 0:
            return None
        top, rest = np.percentile(speed, [TOP_SPEED_QUANTILE, REST_NOISE_QUANTILE])
        path_tol = PATH_SHARE_OF_STEP * float(top) * period
        return cls(
            still_rad_s=min(REST_NOISE_FACTOR * float(rest), STILL_SHARE_OF_TOP * float(top)),
            home_tol_rad=HOME_PATHS * path_tol,
            path_tol_rad=path_tol,
            max_step_s=MAX_STEP_WINDOWS * period,
        )


def window_path(joints: np.ndarray, n_joints: int) -> np.ndarray:
    """Return a window's path: its joint positions at its start, middle and end (3 x J) from its grid."""
    grid = len(joints)
    return joints[[0, grid // 2, grid - 1], :n_joints].reshape(-1)


@dataclass
class CycleReference:
    """Home, the normal windows away from home (paths (N, 3J), both clocks) and the tolerances; in the artifact."""

    home: np.ndarray
    paths: np.ndarray
    departure_s: np.ndarray
    arrival_s: np.ndarray
    scale: CycleScale

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (positions to 1 mrad, clocks to 1 ms)."""
        return {
            'home': np.round(self.home, 4).tolist(),
            'paths': np.round(self.paths, 3).tolist(),
            'departure_s': np.round(self.departure_s, 3).tolist(),
            'arrival_s': np.round(self.arrival_s, 3).tolist(),
            'scale': asdict(self.scale),
        }

    @classmethod
    def from_dict(cls, values: dict) -> 'CycleReference':
        """Build from `to_dict` output."""
        arrays = (np.array(values[key]) for key in ('home', 'paths', 'departure_s', 'arrival_s'))
        return cls(*arrays, CycleScale(**values['scale']))


def rest_pose(end_s: np.ndarray, paths: np.ndarray, n_joints: int, scale: CycleScale) -> np.ndarray | None:
    """Return the pose the arm rests at longest (the still window end with most still neighbours), or None."""
    positions = paths[:, -n_joints:]
    speed, step = window_speeds(end_s, positions)
    still = positions[1:][(speed <= scale.still_rad_s) & (step <= scale.max_step_s)]
    if len(still) == 0:
        return None
    counts = np.zeros(len(still), int)
    for start in range(0, len(still), 512):
        block = still[start : start + 512]
        distance = np.abs(block[:, None] - still[None]).max(axis=2)
        counts[start : start + 512] = (distance < scale.path_tol_rad).sum(axis=1)
    return still[counts.argmax()]


def still_time(reference: CycleReference) -> np.ndarray:
    """Return the seconds each normal window away from home had spent still since the arm left home.

    The reference's windows are in time order; from one to the next the arm was still when its end
    pose moved at the rest speed or slower. A departure clock that does not grow (or jumps by more
    than a pause) starts another cycle.
    """
    n_joints = len(reference.home)
    speed, step = window_speeds(reference.departure_s, reference.paths[:, -n_joints:])
    same_cycle = (step > 0) & (step <= reference.scale.max_step_s)
    still_steps = np.where(same_cycle & (speed <= reference.scale.still_rad_s), step, 0.0)
    total = np.concatenate([[0.0], np.cumsum(still_steps)])
    cycle_starts = np.concatenate([[0], np.flatnonzero(~same_cycle) + 1])
    return total - total[cycle_starts[np.searchsorted(cycle_starts, np.arange(len(total)), side='right') - 1]]


class CycleClock:
    """Times the cycle from each window's end pose: seconds since the arm was last home, and since it arrived there.

    A clock is NaN until the arm has been seen leaving or arriving, and again after a pause longer
    than the scale's `max_step_s` or a window without joints: the arm may have been home unseen.
    """

    def __init__(self, home: np.ndarray, scale: CycleScale):
        self.home, self.scale = home, scale
        self.reset()

    def reset(self) -> None:
        """Forget the cycle."""
        self._home_s = self._arrived_s = math.nan
        self._was_home: bool | None = None
        self._last_s = -math.inf

    def push(self, t: float, pose: np.ndarray) -> tuple[float, float]:
        """Return (departure, arrival) clocks at `t`; the departure clock is 0 while the arm is home."""
        if not 0.0 <= t - self._last_s <= self.scale.max_step_s or np.isnan(pose).any():
            self.reset()
        self._last_s = t
        if np.isnan(pose).any():
            return math.nan, math.nan
        home = int(np.count_nonzero(np.abs(pose - self.home) < self.scale.home_tol_rad)) >= len(pose) - 1
        if home:
            self._home_s = t
            if self._was_home is False:
                self._arrived_s = t
        self._was_home = home
        return t - self._home_s, t - self._arrived_s


def fit_cycle(end_s: np.ndarray, paths: np.ndarray, n_joints: int) -> CycleReference | None:
    """Learn the cycle from normal windows in time order (end times, paths (N, 3J)); None if the arm does not cycle."""
    scale = CycleScale.from_data(end_s, paths, n_joints)
    home = rest_pose(end_s, paths, n_joints, scale) if scale else None
    if home is None:
        return None
    clock = CycleClock(home, scale)
    clocks = np.array([clock.push(float(t), path[-n_joints:]) for t, path in zip(end_s, paths, strict=True)])
    departure_s, arrival_s = clocks[:, 0], clocks[:, 1]
    if np.count_nonzero(np.diff(arrival_s) < 0) < MIN_CYCLES:
        return None
    away = (departure_s > 0) & np.isfinite(arrival_s)
    return CycleReference(home, paths[away], departure_s[away], arrival_s[away], scale)


class CycleLag:
    """The lag evidence of a stream of windows (seconds), against the normal cycle."""

    def __init__(self, reference: CycleReference):
        self.n_joints = len(reference.home)
        self.clock = CycleClock(reference.home, reference.scale)
        self.tolerance = reference.scale.path_tol_rad
        # Sorted on the path coordinate that varies most, so a window is compared only with the
        # normal windows within the path tolerance of it on that coordinate.
        self._axis = int(np.argmax(reference.paths.std(axis=0))) if len(reference.paths) else 0
        order = np.argsort(reference.paths[:, self._axis], kind='stable')
        self._paths = reference.paths[order]
        self._axis_values = self._paths[:, self._axis]
        self._departure_s, self._arrival_s = reference.departure_s[order], reference.arrival_s[order]
        still_s = still_time(reference)[order]
        # The departure clock the normal window would show with its moves run at the slowest override.
        self._slowest_s = still_s + (self._departure_s - still_s) / SLOWEST_OVERRIDE

    def push(self, t: float, path: np.ndarray) -> float:
        """Return the lag evidence of the window ending at `t` with this path: 0 at home, NaN when not judged."""
        departure_s, arrival_s = self.clock.push(t, path[-self.n_joints :])
        if math.isnan(departure_s) or departure_s == 0.0:
            return 0.0 if departure_s == 0.0 else math.nan
        value = path[self._axis]
        first, last = np.searchsorted(self._axis_values, [value - self.tolerance, value + self.tolerance])
        same_path = first + np.flatnonzero(np.abs(self._paths[first:last] - path).max(axis=1) < self.tolerance)
        if not len(same_path):
            return math.nan
        ahead = self._departure_s[same_path] - departure_s
        late = departure_s - self._slowest_s[same_path]
        off_time = max(0.0, float(np.maximum(ahead, late).min()))
        early = 0.0 if math.isnan(arrival_s) else max(0.0, float(self._arrival_s[same_path].min()) - arrival_s)
        return max(off_time, early)


def cycle_trouble(reference: CycleReference, end_s: np.ndarray, paths: np.ndarray) -> str | None:
    """Return why the learnt cycle cannot judge held-out normal windows (in time order), or None if it can.

    An irregular program (cycles of varying content or pace that the training windows do not cover)
    leaves held-out normal windows on paths no training window took, or late and early against them.
    """
    lag = CycleLag(reference)
    values = np.array([lag.push(float(t), path) for t, path in zip(end_s, paths, strict=True)])
    away = values[values != 0.0]
    if len(away) == 0:
        return 'the held-out normal running never leaves home'
    judged = away[np.isfinite(away)]
    if len(judged) < MIN_JUDGED * len(away):
        return (
            f'{len(away) - len(judged):,} of {len(away):,} held-out normal windows away from home are on '
            'paths the training windows never took'
        )
    away_s = float(np.percentile(reference.departure_s, 95))
    lag_p99 = float(np.percentile(judged, 99))
    if lag_p99 > MAX_LAG_SHARE * away_s:
        return (
            f'held-out normal running is off the learnt cycle by up to {lag_p99:.2f} s (p99), more than '
            f'{MAX_LAG_SHARE:.0%} of the {away_s:.1f} s the arm is away from home'
        )
    return None
