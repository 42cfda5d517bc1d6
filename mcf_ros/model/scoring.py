"""From model outputs to a decision: evidence channels, calibration, the threshold, the flag and the blame.

Evidence per window (raw units):
- camera_error, kinematics_error: mean squared reconstruction residual of each observed input
  (images in [0, 1]; joints in normalised units). A corrupted sensor's input differs from what
  the fused concept expects.
- attention_shift: mean absolute deviation of the attention vector a from its normal mean.
- frame_gap: seconds since the previous frame; joint_gap: the share of joint data missing (grid
  points with no sample nearby, or expected messages that never came); joint_jerk: the largest
  jump between raw joint samples (stream health).
Each channel becomes a robust z-score (median, MAD) on held-out normal windows. The camera
evidence is the larger of its two channels, the kinematics evidence likewise, and the anomaly
score is the largest of camera, kinematics and attention evidence. The threshold is set from an
exponential fit to the peaks of held-out normal score episodes, for a target rate of false alarms.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

CHANNELS = ('camera_error', 'kinematics_error', 'attention_shift', 'frame_gap', 'joint_gap', 'joint_jerk')
BLAME = ('none', 'camera', 'kinematics', 'physical')
TAIL_QUANTILE = 0.9
MIN_SCALE = 1e-6
RELATIVE_MIN_SCALE = 0.05
# A stream-health channel is often constant in normal running (MAD 0); its scale never drops below
# these, so a missing grid sample or one jittered frame is not an alarm by itself, and only a
# reading that jumps by centiradians between two samples (an encoder glitch, not the vibration of a
# real impact) counts as a jerk.
ABSOLUTE_MIN_SCALE = {'joint_gap': 0.02, 'joint_jerk': 0.01}


@dataclass
class Calibration:
    """Normal statistics per evidence channel and the alarm threshold, stored in the artifact."""

    median: dict
    scale: dict
    attention_mean: list
    threshold: float
    target_false_alarms_per_hour: float
    persistence: int
    windows_per_hour: float

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


def robust_stats(values: np.ndarray, floor: float = MIN_SCALE) -> tuple[float, float]:
    """Return (median, scale) of finite values; scale is 1.4826 x MAD, at least 5 % of |median| and `floor`.

    A channel with no finite value (one a single-modality baseline does not have) gets (0, 1).
    """
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0.0, 1.0
    median = float(np.median(finite))
    mad = 1.4826 * float(np.median(np.abs(finite - median)))
    return median, max(mad, RELATIVE_MIN_SCALE * abs(median), floor)


def persistent(scores: np.ndarray, windows: int) -> np.ndarray:
    """Return, per window, the smallest score of it and the `windows - 1` before it."""
    if windows <= 1:
        return scores.copy()
    padded = np.concatenate([np.full(windows - 1, -np.inf), scores])
    return np.lib.stride_tricks.sliding_window_view(padded, windows).min(axis=1)


def episode_threshold(scores: np.ndarray, windows_per_hour: float, episodes_per_hour: float) -> float:
    """Return the score above which alarm episodes start `episodes_per_hour` times an hour on normal data.

    Peaks over a threshold with declustering: runs of windows above the 90th percentile u are
    episodes; their peak excesses over u are fitted by an exponential, so an episode peaks above
    s with probability exp(-(s - u) / mean_excess).
    """
    u = float(np.quantile(scores, TAIL_QUANTILE))
    above = np.concatenate([[False], scores > u, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    peaks = np.array([scores[start:stop].max() for start, stop in zip(edges[::2], edges[1::2], strict=True)])
    if len(peaks) == 0:
        return u
    episodes_seen_per_hour = len(peaks) / len(scores) * windows_per_hour
    mean_excess = max(float((peaks - u).mean()), MIN_SCALE)
    return u + mean_excess * math.log(max(episodes_seen_per_hour / episodes_per_hour, 1.0))


def attention_shift(attention: np.ndarray, normal_mean) -> np.ndarray:
    """Return the mean absolute deviation of each attention vector (N, D) from the normal mean (D,)."""
    return np.abs(attention - np.asarray(normal_mean)).mean(axis=1)


def evidence_z(evidence: dict[str, np.ndarray], calibration_median: dict, calibration_scale: dict) -> dict:
    """Return each channel's robust z-score (missing values become 0, i.e. normal)."""
    z = {}
    for channel in CHANNELS:
        value = (evidence[channel] - calibration_median[channel]) / calibration_scale[channel]
        z[channel] = np.nan_to_num(value, nan=0.0)
    return z


def trailing_max(values: np.ndarray, end_s: np.ndarray, span_s: float) -> np.ndarray:
    """Return, per window, the largest value among the windows that end within the last `span_s` seconds."""
    start = np.searchsorted(end_s, end_s - span_s + 1e-9)
    return np.array([values[first : last + 1].max() for last, first in enumerate(start)])


def span_evidence(z: dict, end_s: np.ndarray, span_s: float) -> dict:
    """Spread the per-frame camera evidence over the window's span.

    The model sees only a window's newest frame, but the window covers `span_s` seconds of the
    cell; a camera fault inside that span is evidence for the window, as a joint fault inside it is.
    """
    return {**z, **{channel: trailing_max(z[channel], end_s, span_s) for channel in ('camera_error', 'frame_gap')}}


def combine(z: dict) -> dict[str, np.ndarray]:
    """Return camera, kinematics and overall anomaly evidence from the channel z-scores."""
    camera = np.maximum(z['camera_error'], z['frame_gap'])
    kinematics = np.maximum.reduce([z['kinematics_error'], z['joint_gap'], z['joint_jerk']])
    anomaly = np.maximum.reduce([camera, kinematics, z['attention_shift']])
    return {
        'camera': camera,
        'kinematics': kinematics,
        'anomaly': anomaly,
        'camera_health': z['frame_gap'],
        'kinematics_health': np.maximum(z['joint_gap'], z['joint_jerk']),
    }


def calibrate(
    evidence: dict[str, np.ndarray],
    attention_mean: np.ndarray,
    end_s: np.ndarray,
    span_s: float,
    windows_per_hour: float,
    target_false_alarms_per_hour: float = 1.0,
    persistence: int = 3,
) -> Calibration:
    """Fit per-channel normal statistics and the threshold on held-out normal windows (in time order)."""
    median, scale = {}, {}
    for channel in CHANNELS:
        median[channel], scale[channel] = robust_stats(evidence[channel], ABSOLUTE_MIN_SCALE.get(channel, MIN_SCALE))
    scores = combine(span_evidence(evidence_z(evidence, median, scale), end_s, span_s))['anomaly']
    held = persistent(scores, persistence)
    threshold = episode_threshold(held[np.isfinite(held)], windows_per_hour, target_false_alarms_per_hour)
    return Calibration(
        median=median,
        scale=scale,
        attention_mean=[float(v) for v in attention_mean],
        threshold=threshold,
        target_false_alarms_per_hour=target_false_alarms_per_hour,
        persistence=persistence,
        windows_per_hour=windows_per_hour,
    )


def flags(scores: np.ndarray, threshold: float, persistence: int) -> np.ndarray:
    """Raise the flag once `persistence` consecutive windows exceed the threshold; clear it likewise."""
    raised = np.zeros(len(scores), dtype=bool)
    state, run = False, 0
    for index, above in enumerate(scores > threshold):
        run = run + 1 if above != state else 0
        if run >= persistence:
            state, run = above, 0
        raised[index] = state
    return raised


def blame(combined: dict, threshold: float) -> np.ndarray:
    """Name the modality to blame for each window.

    A stream that is unhealthy on its own (frames or joint messages missing, joint readings that
    jump) is blamed alone. Otherwise both sensors disagreeing with normal means the world changed
    (physical); else the sensor with more evidence is blamed.
    """
    camera_sick = combined['camera_health'] > threshold
    joints_sick = combined['kinematics_health'] > threshold
    both = (combined['camera'] > threshold) & (combined['kinematics'] > threshold)
    larger = np.where(combined['camera'] >= combined['kinematics'], 'camera', 'kinematics')
    by_evidence = np.where(both, 'physical', larger)
    return np.where(
        joints_sick & ~camera_sick, 'kinematics', np.where(camera_sick & ~joints_sick, 'camera', by_evidence)
    )
