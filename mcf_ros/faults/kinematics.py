"""Joint-state corruptions, each a factory of one fault episode's sample-to-sample function.

The function maps one sample (t in s; position rad, velocity rad/s, effort N·m, each of shape
(J,)) to a corrupted sample, or to None when the message is lost. One instance serves one
episode; `strength` in (0, 1] scales severity.
"""

from collections.abc import Callable, Sequence

import numpy as np

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]
SampleCorruption = Callable[[float, np.ndarray, np.ndarray, np.ndarray], Sample | None]


def frozen(
    rng: np.random.Generator, strength: float, n_joints: int, joints: Sequence[int] | None = None
) -> SampleCorruption:
    """One joint (of `joints`, default any) holds its first position reading, and its velocity reads zero."""
    joint = rng.integers(n_joints) if joints is None else joints[rng.integers(len(joints))]
    held = []

    def corrupt(t, position, velocity, effort):
        if not held:
            held.append(position[joint])
        position, velocity = position.copy(), velocity.copy()
        position[joint], velocity[joint] = held[0], 0.0
        return position, velocity, effort

    return corrupt


def offset(rng: np.random.Generator, strength: float, n_joints: int) -> SampleCorruption:
    """One joint reads 0.15 rad x strength off, with a random sign."""
    shift = np.zeros(n_joints)
    shift[rng.integers(n_joints)] = rng.choice([-1, 1]) * 0.15 * strength
    return lambda t, position, velocity, effort: (position + shift, velocity, effort)


def drift(rng: np.random.Generator, strength: float, n_joints: int) -> SampleCorruption:
    """One joint drifts at 0.1 rad/s x strength from the start of the episode."""
    rate = np.zeros(n_joints)
    rate[rng.integers(n_joints)] = rng.choice([-1, 1]) * 0.1 * strength
    start = []

    def corrupt(t, position, velocity, effort):
        if not start:
            start.append(t)
        return position + rate * (t - start[0]), velocity + rate, effort

    return corrupt


def noise(rng: np.random.Generator, strength: float, n_joints: int) -> SampleCorruption:
    """Heavy noise on every reading: 0.03 rad, 0.3 rad/s, 5 N·m (x strength)."""

    def corrupt(t, position, velocity, effort):
        scale = strength * np.array([0.03, 0.3, 5.0])
        jitter = rng.normal(size=(3, n_joints)) * scale[:, None]
        return position + jitter[0], velocity + jitter[1], effort + jitter[2]

    return corrupt


def spikes(rng: np.random.Generator, strength: float, n_joints: int) -> SampleCorruption:
    """Five percent of samples carry a jump of up to 0.5 rad x strength on one joint."""

    def corrupt(t, position, velocity, effort):
        if rng.random() < 0.05:
            position = position.copy()
            position[rng.integers(n_joints)] += rng.uniform(-0.5, 0.5) * strength
        return position, velocity, effort

    return corrupt


def dropped_samples(rng: np.random.Generator, strength: float, n_joints: int) -> SampleCorruption:
    """Each message is lost with probability 0.5 x strength."""
    return lambda t, position, velocity, effort: None if rng.random() < 0.5 * strength else (position, velocity, effort)


def gap(rng: np.random.Generator, strength: float, n_joints: int) -> SampleCorruption:
    """No message at all."""
    return lambda t, position, velocity, effort: None


JOINT_CORRUPTIONS = {
    'joint_frozen': frozen,
    'joint_offset': offset,
    'joint_drift': drift,
    'joint_noise': noise,
    'joint_spikes': spikes,
    'joint_dropped_samples': dropped_samples,
    'joint_gap': gap,
}
