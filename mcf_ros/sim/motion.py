"""The robot program: inverse kinematics, smooth speed-limited joint trajectories, and a repetitive cycle.

A `Program` is a piecewise trajectory over program time (seconds): quintic moves between joint
waypoints (zero velocity and acceleration at each waypoint) and dwells. A cell's `Pacing` says how
cycles start (on a takt with a little jitter, or when an operator presses start) and when the
speed override changes; each cycle's targets, durations and dwells vary, drawn from the seed.
"""

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from mcf_ros.sim.scene import PART_HALF, PICK_XY, PLACE_XY, TABLE_TOP_Z, WELD_CENTER, CellModel

MAX_JOINT_SPEED = 1.5  # rad/s, peak of a quintic move
MIN_MOVE_S = 0.4
TOOL_DOWN = np.array([0.0, 0.0, -1.0])
HOVER_M = 0.12
APPROACH_SPEED = 0.5  # fraction of the joint speed limit near the table
MAX_IK_STEP = 0.1  # rad per iteration: keeps the solver on the branch it starts on
SETTLED_RAD = 1e-4  # the home pull's last step when a redundant arm counts as settled


def solve_ik(cell: CellModel, target: np.ndarray, seed_q: np.ndarray, iterations: int = 1000) -> np.ndarray:
    """Return joint angles (rad) that put the tool site at `target` (m) pointing straight down.

    Damped least squares on position plus tool-axis alignment, with a weak pull toward the cell's
    home that keeps the arm on its branch (elbow-up). A redundant arm (the YuMi's 7 joints) is then
    settled: the pull goes on within the targets' solutions until it stops moving the arm, so nearby
    targets get nearby joint angles, as a controller's fixed arm configuration gives. Without it the
    arm stopped wherever the solver first met the target: 15 of 232 cycles of an hour's dispensing
    took a configuration 0.3-1.8 rad away from the others. Raises if the target is out of reach.
    """
    model, data = cell.model, mujoco.MjData(cell.model)
    q = seed_q.copy()
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    for _ in range(iterations):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        position_error = target - data.site_xpos[cell.tool_site]
        axis_error = np.cross(data.site_xmat[cell.tool_site].reshape(3, 3)[:, 2], TOOL_DOWN)
        mujoco.mj_jacSite(model, data, jacp, jacr, cell.tool_site)
        jacobian = np.vstack([jacp, jacr])
        nullspace = np.eye(model.nv) - np.linalg.pinv(jacobian) @ jacobian
        pull = 0.05 * nullspace @ (cell.home - q)
        reached = np.linalg.norm(position_error) < 1e-5 and np.linalg.norm(axis_error) < 1e-4
        if reached and np.linalg.norm(pull) < SETTLED_RAD:
            return q
        error = np.concatenate([position_error, axis_error])
        damped = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + 1e-4 * np.eye(6), error)
        step = damped + pull
        q = q + step * min(1.0, MAX_IK_STEP / np.linalg.norm(step))
    raise ValueError(f'inverse kinematics did not converge for tool target {np.round(target, 3)}')


@dataclass(frozen=True)
class Segment:
    """A quintic move (or a dwell when q0 == q1) over program time [t0, t1)."""

    t0: float
    t1: float
    q0: np.ndarray
    q1: np.ndarray
    at_home: bool = False


@dataclass
class Program:
    """The whole run's trajectory, plus the program times of grasp, release and welding-arc events."""

    segments: list[Segment] = field(default_factory=list)
    grasps: list[float] = field(default_factory=list)
    releases: list[float] = field(default_factory=list)
    arcs: list[tuple[float, float]] = field(default_factory=list)
    cycle_starts: list[float] = field(default_factory=list)
    part_positions: list[np.ndarray] = field(default_factory=list)
    place_positions: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self):
        self._starts: list[float] = []

    def segment(self, tau: float) -> Segment:
        """Return the segment active at program time `tau` (the last one after the end)."""
        if len(self._starts) != len(self.segments):
            self._starts = [s.t0 for s in self.segments]
        index = bisect.bisect_right(self._starts, tau) - 1
        return self.segments[max(0, min(index, len(self.segments) - 1))]

    def at(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the desired joint position (rad) and velocity (rad/s of program time) at `tau`."""
        seg = self.segment(tau)
        span = seg.t1 - seg.t0
        s = np.clip((tau - seg.t0) / span, 0.0, 1.0)
        shape = 10 * s**3 - 15 * s**4 + 6 * s**5
        rate = (30 * s**2 - 60 * s**3 + 30 * s**4) / span
        delta = seg.q1 - seg.q0
        return seg.q0 + shape * delta, rate * delta

    def carrying(self, tau: float) -> bool:
        """Return whether the gripper holds a part at program time `tau`."""
        grasp = bisect.bisect_right(self.grasps, tau)
        release = bisect.bisect_right(self.releases, tau)
        return grasp > release

    def welding(self, tau: float) -> bool:
        """Return whether the welding arc burns at program time `tau`."""
        return any(start <= tau < end for start, end in self.arcs)

    def cycle_index(self, tau: float) -> int:
        """Return the index of the cycle running at `tau`."""
        return max(0, bisect.bisect_right(self.cycle_starts, tau) - 1)


class ProgramBuilder:
    """Appends moves and dwells to a Program, timing each move from the joint speed limit and the override."""

    def __init__(self, program: Program, rng: np.random.Generator, start_q: np.ndarray):
        self.program = program
        self.rng = rng
        self.q = start_q
        self.t = 0.0
        self.override = 1.0  # the speed override, as on a teach pendant: scales every move's speed

    def move(self, q: np.ndarray, speed_scale: float = 1.0) -> None:
        """Move to `q`: duration from the largest joint travel at the peak speed, jittered by 3 %."""
        travel = np.max(np.abs(q - self.q))
        duration = max(MIN_MOVE_S, 1.875 * travel / (MAX_JOINT_SPEED * speed_scale)) / self.override
        duration *= 1.0 + 0.03 * self.rng.standard_normal()
        self.program.segments.append(Segment(self.t, self.t + duration, self.q, q))
        self.t += duration
        self.q = q

    def dwell(self, duration: float, at_home: bool = False) -> None:
        """Hold still for `duration` seconds."""
        self.program.segments.append(Segment(self.t, self.t + duration, self.q, self.q, at_home))
        self.t += duration


@dataclass(frozen=True)
class Pacing:
    """How a cell's cycles start, and its speed override over program time.

    `home_dwell(rng)` is the wait at home before each cycle; `overrides` lists (program time, override)
    changes, each made at the start of the first cycle after its time.
    """

    home_dwell: Callable[[np.random.Generator], float]
    overrides: tuple[tuple[float, float], ...] = ()


def build_program(
    cell: CellModel,
    cycle: Callable[[CellModel, ProgramBuilder], None],
    duration_s: float,
    rng: np.random.Generator,
    pacing: Pacing,
) -> Program:
    """Plan cycles (each `cycle` then back home and the pacing's dwell) until `duration_s` is covered."""
    program = Program()
    builder = ProgramBuilder(program, rng, cell.home)
    builder.dwell(0.5, at_home=True)
    while builder.t < duration_s + 10.0:
        builder.override = next((o for t, o in reversed(pacing.overrides) if builder.t >= t), 1.0)
        program.cycle_starts.append(builder.t)
        cycle(cell, builder)
        builder.move(cell.home)
        builder.dwell(pacing.home_dwell(rng), at_home=True)
    return program


def pick_place_cycle(cell: CellModel, builder: ProgramBuilder) -> None:
    """Pick a part from the pick tray and place it on the place tray (the UR5e cell's default task)."""
    rng = builder.rng
    part = np.array([*PICK_XY, TABLE_TOP_Z + PART_HALF]) + np.r_[rng.normal(0.0, 0.01, 2), 0.0]
    place = np.array([*PLACE_XY, TABLE_TOP_Z + PART_HALF]) + np.r_[rng.normal(0.0, 0.005, 2), 0.0]
    builder.program.part_positions.append(part)
    builder.program.place_positions.append(place)
    hover = np.array([0.0, 0.0, HOVER_M])
    above_pick = solve_ik(cell, part + hover, builder.q)
    at_pick = solve_ik(cell, part, above_pick)
    above_place = solve_ik(cell, place + hover, above_pick)
    at_place = solve_ik(cell, place, above_place)
    _touch_down(builder, above_pick, at_pick, builder.program.grasps, settle_s=0.25)
    _touch_down(builder, above_place, at_place, builder.program.releases, settle_s=0.2)


def _touch_down(builder: ProgramBuilder, above: np.ndarray, at: np.ndarray, events: list[float], settle_s: float):
    """Go above a spot, descend slowly, settle, record the event (grasp or release) time, and lift."""
    builder.move(above)
    builder.move(at, speed_scale=APPROACH_SPEED)
    builder.dwell(settle_s)
    events.append(builder.t)
    builder.dwell(0.15)
    builder.move(above, speed_scale=APPROACH_SPEED)


def weld_cycle(cell: CellModel, builder: ProgramBuilder) -> None:
    """Weld a 20 cm weaving seam on the fixture (the UR5e cell's second task)."""
    rng = builder.rng
    seam_z = TABLE_TOP_Z + 0.03
    start = np.array([WELD_CENTER[0], WELD_CENTER[1] - 0.1, seam_z]) + np.r_[rng.normal(0.0, 0.003, 2), 0.0]
    builder.program.part_positions.append(start)
    builder.program.place_positions.append(start)
    hover = np.array([0.0, 0.0, HOVER_M])
    q = solve_ik(cell, start + hover, builder.q)
    builder.move(q)
    q = solve_ik(cell, start, q)
    builder.move(q, speed_scale=APPROACH_SPEED)
    builder.dwell(0.2)
    arc_start = builder.t
    for k in range(1, 9):
        point = start + np.array([0.015 * np.sin(k * np.pi / 4), 0.2 * k / 8, 0.0])
        q = solve_ik(cell, point, q)
        builder.move(q, speed_scale=0.15)
    builder.program.arcs.append((arc_start, builder.t))
    builder.dwell(0.2)
    builder.move(solve_ik(cell, start + np.array([0.0, 0.2, HOVER_M]), q), speed_scale=APPROACH_SPEED)
