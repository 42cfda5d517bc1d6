"""Kinematics evaluation faults.

Each class is one episode: made with `(rng, profile, rate_rad_s)`, it
draws its parameters, choosing the joints it touches among those that move in the bag (`JointProfile`);
called with `(stamp_s, elapsed_s, readings)`, it rewrites one message's readings in place: a dict joint
name -> [position, velocity, effort], NaN where the message carries none. `rate_rad_s` sets a drift's rate.
"""

from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

MOVING_TRAVEL_RAD = 0.1
DRIFT_RATES_RAD_S = (0.005, 0.1)


@dataclass
class JointProfile:
    """What one pass over a bag's joint states tells about each joint: travel, mean |position|, effort range."""

    travel: dict[str, float]
    mean_abs_position: dict[str, float]
    effort_range: dict[str, float]  # 0 where the joint reports no effort

    def moving(self) -> list[str]:
        """Return the joints that travel more than MOVING_TRAVEL_RAD; ValueError if none does."""
        names = [name for name, travel in self.travel.items() if travel > MOVING_TRAVEL_RAD]
        if not names:
            raise ValueError(f'no joint moves more than {MOVING_TRAVEL_RAD} rad: nothing for a joint fault to act on')
        return names


def _sign(rng: np.random.Generator) -> float:
    return float(rng.choice([-1.0, 1.0]))


class SlowDrift:
    """One encoder drifts away from the truth at a constant rate."""

    def __init__(self, rng, profile, rate_rad_s=None):
        rate = rng.uniform(*DRIFT_RATES_RAD_S) if rate_rad_s is None else rate_rad_s
        self.joint, self.rate_rad_s = str(rng.choice(profile.moving())), float(rate) * _sign(rng)

    def __call__(self, stamp_s, elapsed_s, readings):
        if self.joint in readings:
            readings[self.joint][0] += self.rate_rad_s * elapsed_s


class SignFlip:
    """One joint's position and velocity read with the wrong sign (an encoder mounted the other way)."""

    def __init__(self, rng, profile, rate_rad_s=None):
        # A joint that sits near zero would hardly change; take one of the two farthest from it.
        farthest = sorted(profile.moving(), key=lambda name: -profile.mean_abs_position[name])[:2]
        self.joint = str(rng.choice(farthest))

    def __call__(self, stamp_s, elapsed_s, readings):
        if self.joint in readings:
            readings[self.joint][0] *= -1.0
            readings[self.joint][1] *= -1.0


class Quantized:
    """One encoder loses resolution: its position moves in coarse steps."""

    def __init__(self, rng, profile, rate_rad_s=None):
        self.joint, self.step_rad = str(rng.choice(profile.moving())), float(rng.uniform(0.02, 0.06))

    def __call__(self, stamp_s, elapsed_s, readings):
        if self.joint in readings:
            readings[self.joint][0] = float(np.round(readings[self.joint][0] / self.step_rad) * self.step_rad)


class Lag:
    """Every reading is a fixed time old but stamped now (a stale bus buffer)."""

    def __init__(self, rng, profile, rate_rad_s=None):
        self.lag_s = float(rng.uniform(0.08, 0.25))
        self._history = defaultdict(deque)  # per group of joints that arrive together

    def __call__(self, stamp_s, elapsed_s, readings):
        history = self._history[tuple(readings)]
        history.append((stamp_s, {name: list(values) for name, values in readings.items()}))
        while len(history) > 1 and history[1][0] <= stamp_s - self.lag_s:
            history.popleft()
        readings.update(history[0][1])


class VelocityZero:
    """One moving joint's velocity reads 0 (its velocity estimate failed)."""

    def __init__(self, rng, profile, rate_rad_s=None):
        self.joint = str(rng.choice(profile.moving()))

    def __call__(self, stamp_s, elapsed_s, readings):
        if self.joint in readings:
            readings[self.joint][1] = 0.0


class EffortBias:
    """One joint's torque sensor reads a fixed share of its range off."""

    def __init__(self, rng, profile, rate_rad_s=None):
        with_effort = [name for name, span in profile.effort_range.items() if span > 0]
        if not with_effort:
            raise ValueError('no joint reports effort: joint_effort_bias has nothing to act on')
        self.joint = str(rng.choice(with_effort))
        self.bias = float(rng.uniform(0.25, 0.5)) * _sign(rng) * profile.effort_range[self.joint]

    def __call__(self, stamp_s, elapsed_s, readings):
        if self.joint in readings:
            readings[self.joint][2] += self.bias


class Swap:
    """Two moving joints report each other's readings (a mapping mistake after a repair)."""

    def __init__(self, rng, profile, rate_rad_s=None):
        moving = profile.moving()
        if len(moving) < 2:
            raise ValueError('joint_swap needs two joints that move; the bag has one')
        self.first, self.second = (str(name) for name in rng.choice(moving, 2, replace=False))

    def __call__(self, stamp_s, elapsed_s, readings):
        if self.first in readings and self.second in readings:
            readings[self.first], readings[self.second] = readings[self.second], readings[self.first]


JOINT_KINDS = {
    'joint_slow_drift': SlowDrift,
    'joint_sign_flip': SignFlip,
    'joint_quantized': Quantized,
    'joint_lag': Lag,
    'joint_velocity_zero': VelocityZero,
    'joint_effort_bias': EffortBias,
    'joint_swap': Swap,
}
