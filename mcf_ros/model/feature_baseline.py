"""The PyOD baseline: ECOD on summary features of each window, in the same harness as the autoencoders.

It shares with the MCF model the windows, the training and held-out split of the model's own
training bags, the threshold rule (the target false-alarm rate on held-out normal windows, times
the same margin) and the flag's persistence. It sees both sensors but has no modalities to blame
with, so its blame accuracy is not reported.
"""

import cv2
import numpy as np

from mcf_ros.data.windows import Window
from mcf_ros.errors import UserError
from mcf_ros.model.scoring import THRESHOLD_MARGIN, PersistentFlag, episode_threshold, persistent, tail_stats

THUMBNAIL_SIDE = 8


def window_features(windows: list[Window], joint_features: int) -> np.ndarray:
    """Return (N, F) window features; a missing stream's values are NaN.

    Per joint channel its mean, std, min, max and change over the window; an 8x8 grey thumbnail of
    the frame; the stream-health values.
    """
    rows = []
    for window in windows:
        joints = window.joints
        if joints is None:
            joint_part = np.full(5 * joint_features, np.nan)
        else:
            joint_part = np.concatenate(
                [joints.mean(0), joints.std(0), joints.min(0), joints.max(0), joints[-1] - joints[0]]
            )
        if window.image is None:
            image_part = np.full(THUMBNAIL_SIDE**2, np.nan)
        else:
            grey = window.image.astype(np.float32).mean(axis=2)
            side = (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
            image_part = cv2.resize(grey, side, interpolation=cv2.INTER_AREA).ravel() / 255.0
        health = [window.frame_gap_s, window.joint_gap, window.joint_jerk, window.joint_repeats]
        rows.append(np.concatenate([joint_part, image_part, health]))
    return np.array(rows, dtype=np.float64)


def require_pyod():
    """Return PyOD's ECOD class; raise UserError naming the install command if pyod is missing."""
    try:
        from pyod.models.ecod import ECOD
    except ImportError:
        raise UserError("--baselines needs pyod for its PyOD baseline: pip install 'mcf_ros[baselines]'") from None
    return ECOD


class FeatureBaseline:
    """ECOD on standardised window features, with its score calibrated like the MCF model's."""

    def __init__(self, train: list[Window], holdout: list[Window], joint_features: int, calibration: dict):
        ECOD = require_pyod()  # noqa: N806 (a class)
        self.joint_features = joint_features
        features = window_features(train, joint_features)
        self.center = np.nanmedian(features, axis=0)
        spread = np.nanpercentile(features, 75, axis=0) - np.nanpercentile(features, 25, axis=0)
        self.spread = np.where(spread > 1e-9, spread, 1.0)
        self.detector = ECOD().fit(self._standardised(features))
        held = self.detector.decision_function(self._standardised(window_features(holdout, joint_features)))
        self.centre, self.scale = tail_stats(held)
        self.persistence = calibration['persistence']
        z = persistent((held - self.centre) / self.scale, self.persistence)
        fitted = episode_threshold(z, calibration['windows_per_hour'], calibration['target_false_alarms_per_hour'])
        self.threshold = THRESHOLD_MARGIN * fitted

    def _standardised(self, features: np.ndarray) -> np.ndarray:
        """Centre and scale by the training median and IQR; a missing value is put far out (a lost stream)."""
        scaled = (features - self.center) / self.spread
        return np.where(np.isfinite(scaled), scaled, 1e3)

    def score(self, windows: list[Window]) -> dict:
        """Score time-ordered windows: the arrays `mcf eval` reports (no blame)."""
        raw = self.detector.decision_function(self._standardised(window_features(windows, self.joint_features)))
        scores = (raw - self.centre) / self.scale
        flag = PersistentFlag(self.persistence)
        raised = np.array([flag.update(bool(score > self.threshold)) for score in scores])
        return {
            'end_s': np.array([w.end_s for w in windows]),
            'anomaly_score': scores,
            'threshold': np.full(len(scores), self.threshold),
            'is_anomaly': raised,
            'blame': np.where(raised, 'unknown', 'none'),
        }
