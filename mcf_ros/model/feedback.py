"""Operator feedback: "that stretch was normal running" raises the scales of the channels it needs, within a cap. Pure.

The score joins the evidence channels' z values (excess over the normal tail / scale). A stretch
marked normal is made to score HEADROOM below the threshold by raising the scales of the channels
that were high in it, and only those: each such channel is brought down to a common ceiling,
the highest ceiling that is enough (bisection). The threshold is never touched, and no scale grows
beyond FEEDBACK_CAP times its value at the last fit (`mcf train` or `mcf calibrate`), however many
marks: a modality can never be muted by feedback. A stretch that needs more is refused, and a
recalibration or a retrain is what the cell needs.
"""

import datetime
import math
from dataclasses import replace

import numpy as np

from mcf_ros.errors import UserError
from mcf_ros.model.artifact import header_to_rewrite
from mcf_ros.model.scoring import BLAME_ONLY, CHANNELS, Calibration, combine

# The channels the score joins (camera_alone and kinematics_alone only decide the blame).
SCORED = ('camera_error', 'frame_gap', 'kinematics_error', 'joint_gap', 'joint_jerk', 'joint_repeats',
          'attention_shift', 'latent_disagreement', 'cycle_lag')  # fmt: skip
FEEDBACK_CAP = 3.0
# A marked stretch ends up this far below the threshold (score units: e^2, 7.4 times rarer in normal
# running), so that the next alarm of the same kind, a little stronger, stays below it too.
HEADROOM = 2.0
BISECTION_STEPS = 40


def excess(z: dict, calibration: Calibration) -> np.ndarray:
    """Return a window's excess over the normal tail per SCORED channel (raw units): z times the scale."""
    return np.array([z[channel] * calibration.scale[channel] for channel in SCORED])


def _anomaly(z: np.ndarray) -> np.ndarray:
    """The score of windows (N, len(SCORED)) of z values, as the scorer joins them."""
    columns = {channel: z[:, i] for i, channel in enumerate(SCORED)}
    zeros = np.zeros(len(z))
    others = {key: zeros for key in (*CHANNELS, *BLAME_ONLY, 'camera_locality') if key not in columns}
    return combine({**columns, **others})['anomaly']


def scale_factors(excesses: np.ndarray, calibration: Calibration) -> dict[str, float]:
    """Return the smallest factors (>= 1) on the SCORED scales that bring every window HEADROOM below the threshold.

    `excesses` (N, len(SCORED)) from `excess`. Channels already low enough keep factor 1.
    """
    scales = np.array([calibration.scale[channel] for channel in SCORED])
    z = excesses / scales
    target = calibration.threshold - HEADROOM
    if len(z) == 0 or _anomaly(z).max() <= target:
        return dict.fromkeys(SCORED, 1.0)
    peaks = np.maximum(z.max(axis=0), 0.0)

    def factors(ceiling: float) -> np.ndarray:
        return np.maximum(1.0, peaks / ceiling)

    low, high = 1e-6, float(peaks.max())  # a ceiling of `high` changes nothing; `low` is always enough
    for _ in range(BISECTION_STEPS):
        middle = math.sqrt(low * high)
        if _anomaly(z / factors(middle)).max() <= target:
            low = middle
        else:
            high = middle
    return {channel: float(factor) for channel, factor in zip(SCORED, factors(low), strict=True)}


def apply_feedback(
    header: dict, source_id: str, excesses: np.ndarray, stretch: dict, threshold: float
) -> tuple[dict, dict]:  # fmt: skip
    """Return (the new artifact header, its factors) for a stretch marked normal; UserError beyond the cap.

    `stretch`: what was marked (start_s, end_s, windows); `threshold`: the one in use. The header
    keeps the weights and the threshold; its scales are raised, and its `recalibration` record names
    the source model, the stretch, the factors and their running product since the last fit.
    """
    calibration = Calibration(**header['calibration'])
    factors = scale_factors(excesses, replace(calibration, threshold=threshold))
    record = header.get('recalibration') or {}
    before = record.get('operator_feedback', {}).get('total_factors', dict.fromkeys(SCORED, 1.0))
    total = {channel: before[channel] * factors[channel] for channel in SCORED}
    beyond = {channel: value for channel, value in total.items() if value > FEEDBACK_CAP * (1 + 1e-9)}
    if beyond:
        named = ', '.join(f'{channel} x{value:.2f}' for channel, value in beyond.items())
        raise UserError(
            f'this stretch would need the scales {named} since the last fit, beyond the feedback cap of '
            f'x{FEEDBACK_CAP:g}: nothing changed. What the cell shows is more than feedback may hide; recalibrate '
            'on new normal running (`mcf calibrate`) or retrain'
        )
    scale = {**calibration.scale, **{c: calibration.scale[c] * factors[c] for c in SCORED}}
    new_header = header_to_rewrite(header)
    new_header['calibration'] = {**header['calibration'], 'scale': scale}
    new_header['recalibration'] = {
        'source_model_id': source_id,
        'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'threshold_before': calibration.threshold,
        'operator_feedback': {**stretch, 'factors': factors, 'total_factors': total, 'cap': FEEDBACK_CAP},
        'previous': record or None,
    }
    return new_header, factors


def with_scales(calibration: Calibration, header: dict) -> Calibration:
    """Return `calibration` (overrides kept: threshold, persistence) with the scales of `header`."""
    return replace(calibration, scale=dict(header['calibration']['scale']))
