"""What the monitor shows, as plain data: the ~/scores field mapping, the state line and the overlay image.

Pure (numpy and OpenCV only), so it is tested without ROS.

`~/scores` is a sensor_msgs/JointState, a stamped standard type that rqt_plot and PlotJuggler
plot by name: `name[i]` is a field name and `position[i]` its value (velocity and effort are
empty). The header stamp is the window's end and frame_id the camera's frame. Fields, in order:
SCORE_FIELDS, then `concept_0` .. `concept_{D-1}` (the attention vector a).
"""

import math

import cv2
import numpy as np

from mcf_ros.model.scoring import BLAME

SCORE_FIELDS = (
    'concept_score',  # mean of a: high = shared (joint) information, low = marginal
    'anomaly_score',  # the evidence sources joined as log-sum-exp of their normal-tail z values
    'threshold',
    'is_anomaly',  # 1.0 when the flag is raised
    'camera_error',  # raw reconstruction residual, NaN when the camera is missing
    'kinematics_error',  # likewise for the joints
    'camera_evidence',
    'kinematics_evidence',
    'latent_disagreement',  # cosine distance of the camera and kinematics latents, NaN unless both
    'blame',  # index into BLAME: 0 none, 1 camera, 2 kinematics, 3 physical
    'mode',  # index into MODES
    'latency_ms',  # frame received -> scores published, in this process
    'model_id',  # the artifact's 12-hex-digit id as an integer (exact in float64)
    'cycle_lag',  # seconds the arm is off its normal cycle's timing; NaN when not judged
)
MODES = ('nominal', 'degraded-camera', 'degraded-kinematics', 'stale')


def score_values(scored: dict, mode: str, latency_ms: float, model_id: str) -> tuple[list[str], list[float]]:
    """Return the JointState names and values of one scored window."""
    coded = {
        'blame': float(BLAME.index(scored['blame'])),
        'mode': float(MODES.index(mode)),
        'latency_ms': latency_ms,
        'model_id': float(int(model_id, 16)),
    }
    values = {key: coded[key] if key in coded else float(scored[key]) for key in SCORE_FIELDS}
    attention = [float(v) for v in scored['attention']]
    names = [*SCORE_FIELDS, *(f'concept_{i}' for i in range(len(attention)))]
    return names, list(values.values()) + attention


def state_line(scored: dict, mode: str) -> str:
    """Return the one-line state people read in rviz: flag, blame, scores and mode."""
    flag = f'ANOMALY ({scored["blame"]})' if scored['is_anomaly'] else 'normal'
    return (
        f'{flag}  score {scored["anomaly_score"]:.1f} / {scored["threshold"]:.1f}  '
        f'concept {scored["concept_score"]:.3f}  [{mode}]'
    )


MIN_OVERLAY_WIDTH = 480
ALARM_RGB = (220, 40, 40)
NORMAL_RGB = (40, 180, 80)


def draw_overlay(rgb: np.ndarray, scored: dict, mode: str) -> np.ndarray:
    """Return a copy of the camera frame with the score bar, the flag, the blame and the mode drawn on it.

    A frame narrower than MIN_OVERLAY_WIDTH is enlarged (whole pixels) so that the text stays legible.
    """
    zoom = math.ceil(MIN_OVERLAY_WIDTH / rgb.shape[1])
    if zoom > 1:
        image = cv2.resize(rgb, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    else:
        image = np.ascontiguousarray(rgb).copy()
    height, width = image.shape[:2]
    scale = width / 640.0
    band = int(44 * scale) + 4
    image[:band] = (0.35 * image[:band]).astype(np.uint8)
    colour = ALARM_RGB if scored['is_anomaly'] else NORMAL_RGB
    text = state_line(scored, mode)
    cv2.putText(image, text, (6, int(18 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour, 1, cv2.LINE_AA)
    # The bar fills to the threshold at its middle; past that it is the alarm colour.
    fill = min(float(scored['anomaly_score']) / max(float(scored['threshold']), 1e-9) / 2.0, 1.0)
    top, bottom = int(28 * scale) + 2, band - 4
    cv2.rectangle(image, (6, top), (width - 6, bottom), (200, 200, 200), 1)
    cv2.rectangle(image, (6, top), (6 + int(max(fill, 0.0) * (width - 12)), bottom), colour, -1)
    cv2.line(image, (width // 2, top - 2), (width // 2, bottom + 2), (255, 255, 255), 1)
    if scored['is_anomaly']:
        cv2.rectangle(image, (0, 0), (width - 1, height - 1), ALARM_RGB, max(2, int(4 * scale)))
    return image
