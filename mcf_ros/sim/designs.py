"""The simulated cells `mcf sim --cell NAME` can run: what each is made of, and how it runs and reports."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mcf_ros.sim import yumi
from mcf_ros.sim.motion import Pacing, ProgramBuilder, pick_place_cycle, weld_cycle
from mcf_ros.sim.scene import VISITOR_POS, CellModel, build_ur5e_cell


@dataclass(frozen=True)
class CellDesign:
    """One simulated cell. Rates in Hz; `wrong_waypoint_rad` is the wrong_waypoint fault's offset per joint."""

    name: str
    description: str
    build: Callable[[], CellModel]
    tasks: dict[str, Callable[[CellModel, ProgramBuilder], None]]
    pacing: str  # how its cycles start by default: a name in PACINGS
    camera_hz: float
    joint_hz: float
    image_size: tuple[int, int]  # default (width, height)
    visitor_pos: tuple[float, float, float]
    wrong_waypoint_rad: np.ndarray
    publishes_effort: bool  # False: effort is NaN, as joint_state_broadcaster fills it without torque sensing
    working_joints: int  # the first N joints run the program; the rest (a parked arm) hold still


def takt(duration_s: float, rng: np.random.Generator) -> Pacing:
    """Cycles on a takt: a wait at home of 1.5 s and a little, no override change."""
    return Pacing(home_dwell=lambda draw: 1.5 + 0.2 * draw.standard_normal() ** 2)


def operator_paced(duration_s: float, rng: np.random.Generator) -> Pacing:
    """Cycles an operator starts after loading a part, and a speed override lowered for a while.

    The wait at home is 1-12 s (median 3 s); the override drops to 60-80 % for a fifth to a third of
    the run, from somewhere in its middle.
    """
    lowered_at = rng.uniform(0.3, 0.5) * duration_s
    raised_at = lowered_at + rng.uniform(0.2, 0.33) * duration_s
    return Pacing(
        home_dwell=lambda draw: float(np.clip(draw.lognormal(np.log(3.0), 0.6), 1.0, 12.0)),
        overrides=((lowered_at, float(rng.uniform(0.6, 0.8))), (raised_at, 1.0)),
    )


# How a run's cycles start: (duration, rng) -> the run's pacing.
PACINGS: dict[str, Callable[[float, np.random.Generator], Pacing]] = {'takt': takt, 'operator': operator_paced}

CELLS = {
    design.name: design
    for design in [
        CellDesign(
            name='ur5e',
            description='a UR5e picking and placing (or welding) on a takt; camera 30 Hz, joints 500 Hz',
            build=build_ur5e_cell,
            tasks={'pick_place': pick_place_cycle, 'weld_seam': weld_cycle},
            pacing='takt',
            camera_hz=30.0,
            joint_hz=500.0,
            image_size=(128, 128),
            visitor_pos=VISITOR_POS,
            wrong_waypoint_rad=np.array([0.3, -0.2, 0.15, 0.0, 0.0, 0.0]),
            publishes_effort=True,
            working_joints=6,
        ),
        CellDesign(
            name='yumi',
            description='an ABB YuMi dispensing beads of varying length, operator-paced, with a speed-override '
            'change; camera 15 Hz 160x120, joints 250 Hz without effort',
            build=yumi.build_yumi_cell,
            tasks={'dispense': yumi.dispense_cycle},
            pacing='operator',
            camera_hz=15.0,
            joint_hz=250.0,
            image_size=(160, 120),
            visitor_pos=yumi.VISITOR_POS,
            wrong_waypoint_rad=np.r_[0.25, -0.2, 0.0, 0.2, 0.0, 0.0, 0.0, np.zeros(7)],
            publishes_effort=False,
            working_joints=7,
        ),
    ]
}
