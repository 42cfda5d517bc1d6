"""From model outputs to a decision: evidence channels, calibration, the threshold, the flag and the blame.

Evidence per window (raw units):
- camera_error: mean squared reconstruction residual of the observed image (pixels in [0, 1]).
  kinematics_error: the largest, over joint channels (each joint's position, velocity, effort), of
  the channel's mean squared residual relative to its normal 90th percentile, so a fault on one
  joint is not averaged away over the others. A corrupted sensor's input differs from what the
  fused concept expects.
- attention_shift: mean absolute deviation of the attention vector a from its normal mean.
- latent_disagreement: cosine distance between the camera and the kinematics latent (both
  present): the two sensors telling different stories, as a stale frame or a frozen encoder does.
- frame_gap: seconds since the previous frame; joint_gap: the share of joint data missing (grid
  points with no sample nearby, or expected messages that never came); joint_jerk: the largest
  jump between raw joint samples; joint_repeats: the longest run of raw joint samples in which a
  position or velocity reads exactly its previous value (stream health).
- cycle_lag: seconds the arm is off the timing of its normal cycle on the path it is on
  (`mcf_ros.model.cycle`): later than half speed would make it (after a stop), or early after
  catching up at home.
- camera_alone, kinematics_alone: the same residuals when each sensor rebuilds its own input alone
  (the other masked out). They decide the blame, not the score (see blame()).
Each channel is put on a common scale by its normal tail: centred on its 90th percentile on held-out
normal windows and divided by the mean excess above it, so channels with heavy normal tails do not
dominate the maximum (a robust z-score would let them). The camera channels are spread over the
window span (their trailing maximum) before they are compared, so their tail is measured on the
spread values: a maximum over a second of frames sits higher than a single frame. The camera
evidence is the larger of its two channels, the kinematics evidence likewise. The anomaly score
joins camera, kinematics, attention, disagreement and cycle evidence as the log of the sum of their
exponentials: with exponential normal tails, exp(-z) is how often normal running reaches a value,
so the score is -log of how often normal running reaches one of them (a union bound). It is within
log(5) of the largest, but a window where two sources are raised outranks one where a single
source is, which the largest alone does not see. The threshold is set from an exponential fit to
the peaks of held-out normal score episodes, for a target rate of false alarms, with a margin
(THRESHOLD_MARGIN) for the normal tail that held-out data do not show.
"""

import math
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from mcf_ros.model.cycle import CLOCK_WINDOWS, CycleLag, CycleReference

CHANNELS = (
    'camera_error',
    'kinematics_error',
    'attention_shift',
    'latent_disagreement',
    'frame_gap',
    'joint_gap',
    'joint_jerk',
    'joint_repeats',
    'cycle_lag',
    'camera_alone',
    'kinematics_alone',
)
# Evidence for the blame alone, measured on kinematics_alone's scale (see blame()).
BLAME_ONLY = ('joint_motion_alone', 'joint_effort_alone_second')
# Channels the scorer derives from a stream of windows, not from one window's evidence.
DERIVED = ('attention_shift', 'cycle_lag')
BLAME = ('none', 'camera', 'kinematics', 'physical')
TAIL_QUANTILE = 0.9
# The episode fit starts higher: a channel that adds many small normal excursions (each channel
# has its own) must not pull the extrapolated tail down while the largest peaks stay where they were.
EPISODE_QUANTILE = 0.95
# Held-out normal data understate the rarest normal poses. On the development bags the worst normal
# episode peaked at 3.15x the score fitted on the held-out data, and the weakest fault at 3.99x, when
# the margin was chosen (about their geometric mean); with the residual floor and the joined score
# they are 2.27x and 3.85x.
THRESHOLD_MARGIN = 3.5
MIN_SCALE = 1e-6
RELATIVE_MIN_SCALE = 0.05
# A stream-health channel is often constant in normal running (MAD 0); its scale never drops below
# these, so a missing grid sample or one jittered frame is not an alarm by itself, and only a
# reading that jumps by centiradians between two samples (an encoder glitch, not the vibration of a
# real impact) counts as a jerk. Noisy readings never repeat, so a cell whose normal running
# repeats none scales repeats by one sample: a reading stuck for the threshold's worth of samples
# (about 25, 50 ms at 500 Hz) is an alarm; a driver that repeats values (a quantised encoder at
# rest, a broadcaster faster than its hardware) sets its own, larger scale.
# The cycle lag's scale is at least CLOCK_WINDOWS camera frames (see calibrate()). The jerk floor
# stays in radians: an encoder glitch is as large whatever the program.
ABSOLUTE_MIN_SCALE = {'joint_gap': 0.02, 'joint_jerk': 0.01, 'joint_repeats': 1.0}
# Blame. A sensor is abnormal alone above this many scales of its normal tail (normal running
# stays under 2.3 in 99 % of windows). The camera's own residual is local when this share of its
# excess lies in LOCAL_AREA of the image. Both chosen on the UR5e cell's development bags: camera
# faults spread 0.16-0.69 of their excess there, an obstacle or a displaced arm 0.9-1.0.
BLAME_LEVEL = 3.0
LOCAL_AREA = 0.1
LOCAL_SHARE = 0.85


@dataclass
class Calibration:
    """Normal statistics per evidence channel and the alarm threshold, stored in the artifact."""

    centre: dict
    scale: dict
    attention_mean: list
    threshold: float
    target_false_alarms_per_hour: float
    persistence: int
    windows_per_hour: float
    cycle: dict | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


def tail_stats(values: np.ndarray, floor: float = MIN_SCALE) -> tuple[float, float]:
    """Return (centre, scale) of finite values: the 90th percentile and the mean excess above it.

    The scale is at least 5 % of |centre| and `floor`. A channel with no finite value (one a
    single-modality baseline does not have) gets (0, 1).
    """
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0.0, 1.0
    centre = float(np.quantile(finite, TAIL_QUANTILE))
    excess = finite[finite > centre] - centre
    mean_excess = float(excess.mean()) if len(excess) else 0.0
    return centre, max(mean_excess, RELATIVE_MIN_SCALE * abs(centre), floor)


def persistent(scores: np.ndarray, windows: int) -> np.ndarray:
    """Return, per window, the smallest score of it and the `windows - 1` before it."""
    if windows <= 1:
        return scores.copy()
    padded = np.concatenate([np.full(windows - 1, -np.inf), scores])
    return np.lib.stride_tricks.sliding_window_view(padded, windows).min(axis=1)


def local_share(excess: np.ndarray) -> np.ndarray:
    """Return, per row of cell residual excesses over their normal level (N, C), the share in LOCAL_AREA of the cells.

    The excess is absolute (how much the image differs there, not how many times a cell's own
    level): a flare over a dark corner is as local as it looks.

    0 where no cell exceeds its normal level, NaN where the row has none (no camera).
    """
    positive = np.maximum(excess, 0.0)
    largest = max(1, round(LOCAL_AREA * positive.shape[1]))
    total = positive.sum(axis=1)
    share = np.sort(positive, axis=1)[:, -largest:].sum(axis=1) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, share, np.where(np.isnan(total), np.nan, 0.0))


def episode_threshold(scores: np.ndarray, windows_per_hour: float, episodes_per_hour: float) -> float:
    """Return the score above which alarm episodes start `episodes_per_hour` times an hour on normal data.

    Peaks over a threshold with declustering: runs of windows above the 95th percentile u are
    episodes; their peak excesses over u are fitted by an exponential, so an episode peaks above
    s with probability exp(-(s - u) / mean_excess). The fit can understate a heavy tail, so the
    threshold is never below what the held-out data show: no more of their own episodes peak
    above it than the target allows for their duration (with less than 1 / target hours of data,
    none do).
    """
    u = float(np.quantile(scores, EPISODE_QUANTILE))
    above = np.concatenate([[False], scores > u, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    peaks = np.array([scores[start:stop].max() for start, stop in zip(edges[::2], edges[1::2], strict=True)])
    if len(peaks) == 0:
        return u
    episodes_seen_per_hour = len(peaks) / len(scores) * windows_per_hour
    mean_excess = max(float((peaks - u).mean()), MIN_SCALE)
    fitted = u + mean_excess * math.log(max(episodes_seen_per_hour / episodes_per_hour, 1.0))
    allowed = int(episodes_per_hour * len(scores) / windows_per_hour)
    highest = np.sort(peaks)[::-1]
    observed = float(highest[allowed]) if allowed < len(highest) else u
    return max(fitted, observed)


def attention_shift(attention: np.ndarray, normal_mean) -> np.ndarray:
    """Return the mean absolute deviation of each attention vector (N, D) from the normal mean (D,)."""
    return np.abs(attention - np.asarray(normal_mean)).mean(axis=1)


def combine(z: dict) -> dict[str, np.ndarray]:
    """Return camera, kinematics and overall anomaly evidence, and what blame() weighs, from the z-scores.

    `z` holds each channel's z-score, the BLAME_ONLY values on kinematics_alone's scale, and
    camera_locality as it is (a share).
    """
    camera = np.maximum(z['camera_error'], z['frame_gap'])
    kinematics_health = np.maximum.reduce([z['joint_gap'], z['joint_jerk'], z['joint_repeats']])
    kinematics = np.maximum(z['kinematics_error'], kinematics_health)
    sources = np.stack([camera, kinematics, z['attention_shift'], z['latent_disagreement'], z['cycle_lag']])
    anomaly = np.logaddexp.reduce(sources, axis=0)
    return {
        'camera': camera,
        'kinematics': kinematics,
        'disagreement': z['latent_disagreement'],
        'anomaly': anomaly,
        'camera_health': z['frame_gap'],
        'kinematics_health': kinematics_health,
        'camera_alone': z['camera_alone'],
        'kinematics_alone': z['kinematics_alone'],
        'motion_alone': z['joint_motion_alone'],
        'effort_alone_second': z['joint_effort_alone_second'],
        'camera_locality': z['camera_locality'],
    }


class PersistentFlag:
    """A flag that rises after `persistence` windows above the threshold and clears after as many below."""

    def __init__(self, persistence: int):
        self.persistence = persistence
        self.raised, self._run = False, 0

    def update(self, above: bool) -> bool:
        """Take one window's verdict; return the flag."""
        self._run = self._run + 1 if above != self.raised else 0
        if self._run >= self.persistence:
            self.raised, self._run = above, 0
        return self.raised


class TrailingMax:
    """The running maximum of the values pushed in the last `span_s` seconds; time going back clears it."""

    def __init__(self, span_s: float):
        self.span_s = span_s
        self._entries: deque[tuple[float, float]] = deque()  # (time, value), values decreasing

    def push(self, t: float, value: float) -> float:
        """Add a value at time t (NaN counts as missing) and return the maximum over (t - span_s, t]."""
        entries = self._entries
        if entries and t < entries[-1][0]:
            entries.clear()
        if not math.isnan(value):
            while entries and entries[-1][1] <= value:
                entries.pop()
            entries.append((t, value))
        while entries and entries[0][0] < t - self.span_s + 1e-9:
            entries.popleft()
        return entries[0][1] if entries else math.nan


def trailing_max(values: np.ndarray, end_s: np.ndarray, span_s: float) -> np.ndarray:
    """Return each value's trailing maximum over `span_s` seconds of a time-ordered sequence."""
    window = TrailingMax(span_s)
    return np.array([window.push(float(t), float(v)) for t, v in zip(end_s, values, strict=True)])


class StreamScorer:
    """Turns each window's raw evidence into its score, flag and blame, one window at a time.

    The node and `mcf eval` both score through this, so online and offline decisions are the same.
    Camera evidence is spread over the window's span: the model sees only a window's newest frame,
    but the window covers `span_s` seconds of the cell, and a camera fault inside that span is
    evidence for the window, as a joint fault inside it is. The flag rises after `persistence`
    windows above the threshold and clears after as many below it. A window that ends before the
    previous one (a bag loop, a sim-time reset) starts the stream afresh.
    """

    SPREAD = ('camera_error', 'frame_gap', 'camera_alone')

    def __init__(self, calibration: 'Calibration', span_s: float):
        self.calibration = calibration
        self.span_s = span_s
        self._cycle = CycleReference.from_dict(calibration.cycle) if calibration.cycle else None
        self.reset()

    def reset(self) -> None:
        """Forget the recent windows and lower the flag."""
        self._last_end_s = -math.inf
        self._spread = {channel: TrailingMax(self.span_s) for channel in self.SPREAD}
        self._flag = PersistentFlag(self.calibration.persistence)
        self._lag = CycleLag(self._cycle) if self._cycle else None
        self.last_z: dict = {}  # the z values of the last window (operator feedback reads them)

    def step(self, end_s: float, evidence: dict) -> dict:
        """Score one window from its raw evidence: attention, joint_path, channels but DERIVED, BLAME_ONLY, locality."""
        calibration = self.calibration
        if end_s < self._last_end_s:
            self.reset()
        self._last_end_s = end_s
        shift = attention_shift(evidence['attention'][None], calibration.attention_mean)[0]
        lag = self._lag.push(end_s, evidence['joint_path']) if self._lag else math.nan
        raw = {**evidence, 'attention_shift': shift, 'cycle_lag': lag}
        z = {}
        scales = {**{channel: channel for channel in CHANNELS}, **dict.fromkeys(BLAME_ONLY, 'kinematics_alone')}
        for key, channel in scales.items():
            value = (float(raw[key]) - calibration.centre[channel]) / calibration.scale[channel]
            z[key] = 0.0 if math.isnan(value) else value
        z['camera_locality'] = float(raw['camera_locality'])
        for channel in self.SPREAD:
            z[channel] = self._spread[channel].push(end_s, z[channel])
        combined = combine(z)
        self.last_z = z
        raised = self._flag.update(bool(combined['anomaly'] > calibration.threshold))
        return {
            'attention_shift': raw['attention_shift'],
            'latent_disagreement': float(raw['latent_disagreement']),
            'cycle_lag': float(lag),
            'concept_score': float(np.mean(evidence['attention'])),
            'camera_evidence': float(combined['camera']),
            'kinematics_evidence': float(combined['kinematics']),
            'anomaly_score': float(combined['anomaly']),
            'threshold': calibration.threshold,
            'is_anomaly': raised,
            'blame': str(blame(combined, calibration.threshold)) if raised else 'none',
        }


def score_sequence(calibration: 'Calibration', span_s: float, end_s: np.ndarray, evidence: dict) -> dict:
    """Score time-ordered windows (arrays of what StreamScorer.step takes; attention (N, D)) through a StreamScorer."""
    scorer = StreamScorer(calibration, span_s)
    keys = ['attention', 'joint_path', 'camera_locality', *BLAME_ONLY, *(c for c in CHANNELS if c not in DERIVED)]
    rows = [scorer.step(float(t), {key: evidence[key][i] for key in keys}) for i, t in enumerate(end_s)]
    return {key: np.array([row[key] for row in rows]) for key in rows[0]} if rows else {}


def calibrate(
    evidence: dict[str, np.ndarray],
    end_s: np.ndarray,
    span_s: float,
    windows_per_hour: float,
    target_false_alarms_per_hour: float = 1.0,
    persistence: int = 3,
    margin: float = THRESHOLD_MARGIN,
    cycle: CycleReference | None = None,
) -> Calibration:
    """Fit per-channel normal statistics and the threshold on held-out normal windows (in time order).

    `cycle` is the normal cycle learnt from the training windows (None: the arm does not cycle, and
    the cycle lag is never evidence). The threshold is `margin` times the score that the held-out
    data put at the target rate.
    """
    # The lag is measured against the stored (rounded) reference, as the scorer will measure it.
    stored = cycle.to_dict() if cycle else None
    lag = CycleLag(CycleReference.from_dict(stored)) if stored else None
    attention_mean = evidence['attention'].mean(0)
    evidence = {
        **evidence,
        'attention_shift': attention_shift(evidence['attention'], attention_mean),
        'cycle_lag': np.array(
            [lag.push(float(t), q) if lag else math.nan for t, q in zip(end_s, evidence['joint_path'], strict=True)]
        ),
    }
    # The cycle clocks count in camera frames and the normal cycle keeps every second window, so a
    # lag scale under a frame and a half would be the rounding of the clocks, not the cycle.
    floors = {**ABSOLUTE_MIN_SCALE, 'cycle_lag': CLOCK_WINDOWS * 3600.0 / windows_per_hour}
    centre, scale = {}, {}
    for channel in CHANNELS:
        values = evidence[channel]
        if channel in StreamScorer.SPREAD:
            values = trailing_max(values, end_s, span_s)
        centre[channel], scale[channel] = tail_stats(values, floors.get(channel, MIN_SCALE))
    calibration = Calibration(
        centre=centre,
        scale=scale,
        attention_mean=[float(v) for v in attention_mean],
        threshold=math.inf,
        target_false_alarms_per_hour=target_false_alarms_per_hour,
        persistence=persistence,
        windows_per_hour=windows_per_hour,
        cycle=stored,
    )
    held = persistent(score_sequence(calibration, span_s, end_s, evidence)['anomaly_score'], persistence)
    fitted = episode_threshold(held[np.isfinite(held)], windows_per_hour, target_false_alarms_per_hour)
    calibration.threshold = margin * fitted
    return calibration


def blame(combined: dict, threshold: float) -> np.ndarray:
    """Name the modality to blame for each window: a sensor that lies, or the world that changed.

    A stream that is unhealthy on its own (frames or joint messages missing, joint readings that
    jump or stop changing) is blamed alone. Otherwise each sensor is asked what it shows alone (above BLAME_LEVEL):
    - both abnormal alone: the world changed and both saw it (physical);
    - the camera alone: a change spread over the image (blur, glare, colour, a moved mount) is the
      camera; a local one (LOCAL_SHARE of the excess in LOCAL_AREA) is something in the cell that
      only the camera sees (physical);
    - the joints alone: a motion the camera does not confirm is the joint sensor; efforts off on two
      joints or more, by more than the motion is, are the arm's dynamics that the joints report
      faithfully (physical: a payload, friction);
    - neither alone (each sensor normal, not together: a stale frame, late joint states): both
      sensors disagreeing with normal is physical. So is a window raised with neither sensor's
      evidence above the threshold nor the two disagreeing: what raised it is how the sensors
      look together (the concepts' attention, an arm off its cycle), and each shows a normal,
      consistent cell (a dropped part). Else the sensor with more evidence.
    """
    camera_sick = combined['camera_health'] > threshold
    joints_sick = combined['kinematics_health'] > threshold
    camera, kinematics = combined['camera'] > threshold, combined['kinematics'] > threshold
    agreeing = combined['disagreement'] <= threshold
    world = (camera & kinematics) | (~camera & ~kinematics & agreeing & (combined['anomaly'] > threshold))
    larger = np.where(combined['camera'] >= combined['kinematics'], 'camera', 'kinematics')
    together = np.where(world, 'physical', larger)
    camera_alone = combined['camera_alone'] > BLAME_LEVEL
    joints_alone = combined['kinematics_alone'] > BLAME_LEVEL
    local = combined['camera_locality'] > LOCAL_SHARE
    dynamics = combined['effort_alone_second'] > combined['motion_alone']
    by_camera = np.where(local, 'physical', 'camera')
    by_joints = np.where(dynamics, 'physical', 'kinematics')
    by_sensor = np.where(
        camera_alone & joints_alone,
        'physical',
        np.where(camera_alone, by_camera, np.where(joints_alone, by_joints, together)),
    )
    return np.where(joints_sick & ~camera_sick, 'kinematics', np.where(camera_sick & ~joints_sick, 'camera', by_sensor))
