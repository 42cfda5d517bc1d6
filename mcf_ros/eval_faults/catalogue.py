"""The evaluation fault kinds: name, modality, and what a user of the cell would see."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalFaultKind:
    """One kind of evaluation fault."""

    name: str
    modality: str  # camera or kinematics: which sensor lies; physical: the world changed
    description: str


EVAL_FAULTS = {
    kind.name: kind
    for kind in [
        EvalFaultKind('camera_bumped', 'camera', 'the mount was knocked: the view shifts 4-10 % and turns 2-6 degrees'),
        EvalFaultKind('camera_zoom_slip', 'camera', 'the zoom ring slipped: the view is magnified 1.12-1.3 times'),
        EvalFaultKind('camera_flicker', 'camera', 'a failing lamp: brightness swings 25-45 % at 2-7 Hz'),
        EvalFaultKind('camera_tearing', 'camera', 'the lower part of each frame is 3-8 frames old and shifted'),
        EvalFaultKind('camera_fog', 'camera', 'condensation on the lens: a bright haze takes 45-70 % of the contrast'),
        EvalFaultKind('camera_channel_swap', 'camera', 'red and blue are swapped (a driver publishing bgr8 as rgb8)'),
        EvalFaultKind('camera_banding', 'camera', 'interference: dark and bright bands roll down the image'),
        EvalFaultKind(
            'object_set_down', 'physical', 'a box is set down in view, clear of the arm; only the camera sees it'
        ),
        EvalFaultKind('joint_slow_drift', 'kinematics', 'one encoder drifts away at a set rate (0.005-0.1 rad/s)'),
        EvalFaultKind('joint_sign_flip', 'kinematics', "one joint's position and velocity read with the wrong sign"),
        EvalFaultKind('joint_quantized', 'kinematics', 'one encoder loses resolution: steps of 0.02-0.06 rad'),
        EvalFaultKind('joint_lag', 'kinematics', 'every reading is 80-250 ms old but stamped now (a stale bus buffer)'),
        EvalFaultKind('joint_velocity_zero', 'kinematics', "one moving joint's velocity reads 0"),
        EvalFaultKind('joint_effort_bias', 'kinematics', "one joint's torque sensor reads 25-50 % of its range off"),
        EvalFaultKind('joint_swap', 'kinematics', "two joints report each other's readings (a mapping mistake)"),
    ]
}
