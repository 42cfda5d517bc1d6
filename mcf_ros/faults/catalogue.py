"""Every fault the simulator can inject: its name, the modality it belongs to, and what it does.

`physical` faults change the world (both sensors see it) and are simulated; `camera` and
`kinematics` faults corrupt one sensor's stream after the world was simulated, through the
corruption library in this package.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultSpec:
    """One entry of the catalogue. `duration_s` is the default length of an injected episode."""

    name: str
    modality: str
    description: str
    duration_s: float = 3.0


CATALOGUE = {
    spec.name: spec
    for spec in [
        FaultSpec('collision', 'physical', 'an obstacle moves into the arm path; contact deflects the arm'),
        FaultSpec('heavy_payload', 'physical', 'the carried part is 4 kg heavier than usual (and looks larger)'),
        FaultSpec('dropped_payload', 'physical', 'the part falls from the gripper onto the table'),
        FaultSpec('slow_motion', 'physical', 'joint friction and damping rise (a failing gearbox); the arm lags'),
        FaultSpec('joint_brake', 'physical', 'the base-joint brake drags: that joint nearly stops'),
        FaultSpec(
            'foreign_object',
            'physical',
            'an object enters the cell without contact; the safety scanner slows the robot until it leaves',
        ),
        FaultSpec('wrong_waypoint', 'physical', 'the program goes to a waypoint 15 cm off the taught one'),
        FaultSpec('camera_black', 'camera', 'the camera sends black frames'),
        FaultSpec('camera_frozen', 'camera', 'the camera repeats its last good frame'),
        FaultSpec('camera_noise', 'camera', 'heavy pixel noise (failing sensor or cable)'),
        FaultSpec('camera_blur', 'camera', 'the image is out of focus'),
        FaultSpec('camera_occlusion', 'camera', 'a patch covers part of the view'),
        FaultSpec('camera_color', 'camera', 'colour balance and brightness jump'),
        FaultSpec('camera_dust', 'camera', 'dust on the lens and a flare'),
        FaultSpec('camera_dropped_frames', 'camera', 'most frames are never sent'),
        FaultSpec('camera_delay', 'camera', 'frames arrive stamped now but show the cell 0.5 s ago (desync)'),
        FaultSpec('joint_frozen', 'kinematics', 'one encoder reading freezes while the arm keeps moving'),
        FaultSpec('joint_offset', 'kinematics', 'one encoder reads 0.15 rad off'),
        FaultSpec('joint_drift', 'kinematics', 'one encoder drifts away at 0.1 rad/s'),
        FaultSpec('joint_noise', 'kinematics', 'all joint readings get heavy noise'),
        FaultSpec('joint_spikes', 'kinematics', 'single readings jump by up to 0.5 rad'),
        FaultSpec('joint_dropped_samples', 'kinematics', 'half of the joint-state messages are lost'),
        FaultSpec('joint_gap', 'kinematics', 'joint-state messages stop altogether', duration_s=1.5),
    ]
}
