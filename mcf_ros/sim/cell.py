"""The simulated cell: physics at 500 Hz, joint states and camera frames at the cell's rates, faults on schedule.

Everything is drawn from the seed through separate random streams (program, joint noise, camera
noise, one per fault episode), so a fault never shifts the randomness outside its own window
and the same seed gives byte-identical messages. Times are seconds of sim time; stamps are
SIM_EPOCH_NS plus sim time.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from mcf_ros.data.labels import FaultLabel
from mcf_ros.data.messages import image_cdr, joint_state_cdr
from mcf_ros.faults.camera import CAMERA_CORRUPTIONS
from mcf_ros.faults.catalogue import CATALOGUE
from mcf_ros.faults.kinematics import JOINT_CORRUPTIONS
from mcf_ros.sim.designs import CELLS, PACINGS
from mcf_ros.sim.motion import build_program
from mcf_ros.sim.scene import HIDDEN, PART_HALF, TABLE_TOP_Z, TIMESTEP_S

SIM_EPOCH_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
CAMERA_TOPIC = '/camera/image_raw'
JOINT_TOPIC = '/joint_states'
CAMERA_FRAME = 'cell_camera'
PART_KG = 1.0
HEAVY_EXTRA_KG = 4.0
SETTLE_S = 0.3
SETTLED_RAD = 0.003  # tracking error below which the arm counts as back on its program
LEAD_IN_S = 6.0
PHYSICAL_SLACK_S = 13.0
DROP_SLACK_S = 20.0  # waits up to a cycle for a carried part, then a cycle for the next part
SENSOR_SLACK_S = 3.0
JOINT_NOISE = (2e-4, 2e-3, 0.3)  # rad, rad/s, N·m
CAMERA_NOISE = 2.0  # grey levels
SAFETY_SPEED = 0.4
BRAKED_JOINT, BRAKE_DAMPING = 0, 4000.0  # the base joint; N·m·s/rad
# Physical faults that only show while joints move, and which joints (all: any of them).
MOTION_FAULTS = {'collision': slice(None), 'joint_brake': [BRAKED_JOINT], 'slow_motion': slice(None)}
MOVING_RAD_S = 0.3  # program joint speed from which a motion fault counts as observable
FROZEN_MIN_TRAVEL_RAD = 0.05  # a frozen encoder must hide at least this much motion to be observable
WORN_DAMPING_S, WORN_FRICTION_RAD = 0.05, 0.005  # as fractions of each joint's position gain

Sink = Callable[[str, int, bytes], None]


MIN_LIGHT, MAX_LIGHT = 0.2, 3.0


@dataclass
class SimConfig:
    """What to simulate. Image size in pixels; duration in seconds of sim time.

    The cell's own task, pacing and image size are taken where `task`, `pacing`, `width` or
    `height` is None.
    """

    duration_s: float = 60.0
    seed: int = 0
    task: str | None = None
    faults: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    fault_duration_s: float | None = None
    cell: str = 'ur5e'
    light: float = 1.0  # the cell's lamps at this multiple of their brightness: a cell relit
    pacing: str | None = None  # a name in PACINGS

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f'unknown cell {self.cell!r}; choose one of {", ".join(CELLS)}')
        if not MIN_LIGHT <= self.light <= MAX_LIGHT:
            raise ValueError(f'--light {self.light:g} is outside {MIN_LIGHT:g} to {MAX_LIGHT:g}')
        design = CELLS[self.cell]
        self.task = self.task or next(iter(design.tasks))
        if self.task not in design.tasks:
            raise ValueError(f'the {self.cell} cell runs {", ".join(design.tasks)}, not {self.task!r}')
        self.pacing = self.pacing or design.pacing
        if self.pacing not in PACINGS:
            raise ValueError(f'unknown pacing {self.pacing!r}; choose one of {", ".join(PACINGS)}')
        self.width = self.width or design.image_size[0]
        self.height = self.height or design.image_size[1]


@dataclass
class Episode:
    """One injected fault: active (the world or a sensor is altered) over [start_s, end_s) of sim time."""

    name: str
    start_s: float
    end_s: float
    label_end_s: float = 0.0
    state: dict = field(default_factory=dict)

    @property
    def modality(self) -> str:
        """Return the catalogue modality: camera, kinematics or physical."""
        return CATALOGUE[self.name].modality

    def active(self, t: float) -> bool:
        """Return whether sim time `t` lies in the active window."""
        return self.start_s <= t < self.end_s


def _schedule(faults: list[str], fault_duration_s: float | None) -> tuple[list[Episode], float]:
    """Return the faults' episodes laid out after the lead-in, and when the last one's slack ends."""
    unknown = [name for name in faults if name not in CATALOGUE]
    if unknown:
        raise ValueError(f'unknown fault {", ".join(unknown)}; `mcf sim --list-faults` lists them')
    episodes, t = [], LEAD_IN_S
    for name in faults:
        duration = fault_duration_s or CATALOGUE[name].duration_s
        episodes.append(Episode(name, t, t + duration))
        if name == 'dropped_payload':
            t += duration + DROP_SLACK_S
        else:
            t += duration + (PHYSICAL_SLACK_S if CATALOGUE[name].modality == 'physical' else SENSOR_SLACK_S)
    return episodes, t


def plan_episodes(config: SimConfig) -> list[Episode]:
    """Lay the requested faults out one after another after a normal lead-in.

    Each fault gets its active time plus slack: physical faults wait for the cycle phase they need
    and then for their effect to die out (up to a cycle), sensor faults only need a gap.
    """
    episodes, t = _schedule(config.faults, config.fault_duration_s)
    if t > config.duration_s:
        raise ValueError(f'--duration {config.duration_s:g} s is too short for these faults; use >= {t:g}')
    return episodes


def required_duration(faults: list[str], fault_duration_s: float | None = None) -> float:
    """Return the shortest sim duration that fits these faults."""
    return _schedule(faults, fault_duration_s)[1]


def relight(model: mujoco.MjModel, factor: float) -> None:
    """Scale every lamp of the cell (the headlight and the scene's lights) by `factor`, as a new lamp does."""
    if factor == 1.0:
        return
    headlight = model.vis.headlight
    headlight.ambient, headlight.diffuse = headlight.ambient * factor, headlight.diffuse * factor
    model.light_ambient *= factor
    model.light_diffuse *= factor


class CellSimulator:
    """Runs the cell and hands every serialized message to a sink as (topic, stamp_ns, cdr_bytes)."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.design = CELLS[config.cell]
        self.cell = self.design.build()
        self.model = self.cell.model
        relight(self.model, config.light)
        self.data = mujoco.MjData(self.model)
        pacing = PACINGS[config.pacing](config.duration_s, np.random.default_rng([config.seed, 4]))
        cycle = self.design.tasks[config.task]
        self.program = build_program(
            self.cell, cycle, config.duration_s, np.random.default_rng([config.seed, 1]), pacing
        )
        self._joint_every = round(1.0 / (self.design.joint_hz * TIMESTEP_S))  # physics steps per joint state
        self.episodes = plan_episodes(config)
        self._joint_noise = np.random.default_rng([config.seed, 2])
        self._camera_noise = np.random.default_rng([config.seed, 3])
        self._defaults = {
            'damping': self.model.dof_damping.copy(),
            'friction': self.model.dof_frictionloss.copy(),
        }
        self._gain = self.model.actuator_gainprm[:, 0].copy()
        self._velocity_feedforward = -self.model.actuator_biasprm[:, 2] / self._gain
        self._settled_since: float | None = 0.0
        self._align_to_program_phase()
        for index, episode in enumerate(self.episodes):
            rng = np.random.default_rng([config.seed, 100 + index])
            if episode.name in CAMERA_CORRUPTIONS:
                episode.state['corrupt'] = CAMERA_CORRUPTIONS[episode.name](rng, 1.0)
            elif episode.name in JOINT_CORRUPTIONS:
                choice = {'joints': self._moving_joints(episode)} if episode.name == 'joint_frozen' else {}
                arm = self.design.working_joints
                episode.state['corrupt'] = JOINT_CORRUPTIONS[episode.name](rng, 1.0, arm, **choice)
        self.tau = 0.0
        self.dropped_at: np.ndarray | None = None

    def _align_to_program_phase(self) -> None:
        """Move episodes that need a phase of the cycle (arm moving, part carried) to the next such moment.

        A fault that only shows while joints move (an obstacle in the arm's path, worn joints, a
        dragging brake on the base joint) starts when those joints next move, so its label covers a
        fault that can be observed.
        """
        for episode in self.episodes:
            length = episode.end_s - episode.start_s
            if episode.name == 'dropped_payload':
                if not self.program.grasps:
                    raise ValueError('dropped_payload needs a task that carries parts (pick_place)')
                carried = [
                    (g, r)
                    for g, r in zip(self.program.grasps, self.program.releases, strict=False)
                    if g >= episode.start_s
                ]
                if not carried or sum(carried[0]) / 2 >= self.config.duration_s - 2.0:
                    raise ValueError('no part is carried after the dropped_payload slot; lengthen --duration')
                episode.start_s = sum(carried[0]) / 2  # mid-transfer
                episode.end_s = episode.start_s + length
            elif episode.name in MOTION_FAULTS:
                t = episode.start_s
                while np.abs(self.program.at(t)[1][MOTION_FAULTS[episode.name]]).max() < MOVING_RAD_S:
                    t += 0.05
                episode.start_s, episode.end_s = t, t + length

    def _moving_joints(self, episode: Episode) -> list[int]:
        """Return the joints whose program moves >= FROZEN_MIN_TRAVEL_RAD during the episode (else the farthest one).

        A frozen reading of a joint the program holds still is the truth: no sensor can tell.
        """
        positions = np.array([self.program.at(t)[0] for t in np.arange(episode.start_s, episode.end_s, 0.01)])
        travel = np.abs(positions - positions[0]).max(axis=0)
        moving = np.flatnonzero(travel >= FROZEN_MIN_TRAVEL_RAD)
        return [int(j) for j in moving] if moving.size else [int(travel.argmax())]

    # -- physics -------------------------------------------------------------------------------

    def run(self, sink: Sink, progress: Callable[[float], None] | None = None) -> list[FaultLabel]:
        """Simulate `duration_s` seconds; return the fault labels (absolute seconds, header-stamp clock)."""
        model, data = self.model, self.data
        q0, _ = self.program.at(0.0)
        data.qpos[:] = q0
        data.ctrl[:] = q0
        mujoco.mj_forward(model, data)
        # The offscreen buffer must hold the frame (the model's default is 640x480).
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.config.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.config.height)
        renderer = mujoco.Renderer(model, self.config.height, self.config.width)
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        steps = round(self.config.duration_s / TIMESTEP_S)
        next_frame = 0
        try:
            for step in range(1, steps + 1):
                t = step * TIMESTEP_S
                self._update_world(t)
                mujoco.mj_step(model, data)
                stamp = SIM_EPOCH_NS + round(data.time * 1e9)
                if step % self._joint_every == 0:
                    self._emit_joint_state(t, stamp, sink)
                if t + 1e-9 >= next_frame / self.design.camera_hz:
                    self._place_props(t)
                    mujoco.mj_kinematics(model, data)  # the props' new poses, for this frame
                    renderer.update_scene(data, camera=self.cell.camera)
                    self._emit_frame(t, stamp, renderer.render(), sink)
                    next_frame += 1
                if progress and step % 2500 == 0:
                    progress(t)
        finally:
            renderer.close()
        return [
            FaultLabel(SIM_EPOCH_NS / 1e9 + e.start_s, SIM_EPOCH_NS / 1e9 + e.label_end_s, e.name, e.modality)
            for e in self.episodes
        ]

    def _active(self, name: str, t: float) -> Episode | None:
        return next((e for e in self.episodes if e.name == name and e.active(t)), None)

    def _update_world(self, t: float) -> None:
        """Advance program time, apply physical faults, and set the position + velocity feed-forward command."""
        model, data = self.model, self.data
        rate = SAFETY_SPEED if self._active('foreign_object', t) else 1.0
        self.tau += rate * TIMESTEP_S
        segment = self.program.segment(self.tau)
        if self.tau < t and segment.at_home:
            self.tau = min(t, segment.t1)  # back on takt: the lost time is absorbed while waiting at home
        q, qd = self.program.at(self.tau)
        qd = qd * rate
        waypoint = self._active('wrong_waypoint', t)
        if waypoint:
            phase = (t - waypoint.start_s) / (waypoint.end_s - waypoint.start_s)
            offset = self.design.wrong_waypoint_rad
            q = q + np.sin(np.pi * phase) ** 2 * offset
            qd = qd + np.pi / (waypoint.end_s - waypoint.start_s) * np.sin(2 * np.pi * phase) * offset
        data.ctrl[:] = q + self._velocity_feedforward * qd

        model.dof_damping[:] = self._defaults['damping']
        model.dof_frictionloss[:] = self._defaults['friction']
        if self._active('slow_motion', t):
            model.dof_damping[:] += WORN_DAMPING_S * self._gain
            model.dof_frictionloss[:] += WORN_FRICTION_RAD * self._gain
        if self._active('joint_brake', t):
            model.dof_damping[BRAKED_JOINT] += BRAKE_DAMPING

        carrying = self.program.carrying(self.tau)
        drop = self._active('dropped_payload', t)
        if drop and self.dropped_at is None:
            tool = data.site_xpos[self.cell.tool_site]
            self.dropped_at = np.array([tool[0], tool[1], TABLE_TOP_Z + PART_HALF])
        if self.dropped_at is not None and self.program.cycle_index(self.tau) != self._drop_cycle(t):
            self.dropped_at = None
        mass = PART_KG if carrying and self.dropped_at is None else 0.0
        if self._active('heavy_payload', t):
            mass += HEAVY_EXTRA_KG
        model.body_mass[self.cell.payload_body] = max(mass, 1e-4)

        collision = self._active('collision', t)
        if collision and 'obstacle_at' not in collision.state:
            ahead, _ = self.program.at(self.tau + 0.3)
            probe = mujoco.MjData(model)
            probe.qpos[:] = ahead
            mujoco.mj_kinematics(model, probe)
            collision.state['obstacle_at'] = probe.site_xpos[self.cell.tool_site] + np.array([0.0, 0.0, 0.1])
        data.mocap_pos[self.cell.obstacle_mocap] = collision.state['obstacle_at'] if collision else HIDDEN
        self._close_labels(t, np.abs(data.qpos - q).max())

    def _drop_cycle(self, t: float) -> int:
        episode = next(e for e in self.episodes if e.name == 'dropped_payload')
        return self.program.cycle_index(episode.start_s)

    def _close_labels(self, t: float, tracking_error: float) -> None:
        """End each episode's label once its effect is over.

        A sensor fault ends with its window. A physical fault ends after its window once the robot
        is back on takt, no dropped part lies about, and the arm has tracked its program within
        SETTLED_RAD for SETTLE_S.
        """
        if tracking_error >= SETTLED_RAD:
            self._settled_since = None
        elif self._settled_since is None:
            self._settled_since = t
        for episode in self.episodes:
            if episode.label_end_s or t < episode.end_s:
                continue
            if episode.modality != 'physical':
                episode.label_end_s = episode.end_s
                continue
            settled = self._settled_since is not None and t - max(self._settled_since, episode.end_s) >= SETTLE_S
            if settled and self.tau >= t - 1e-9 and self.dropped_at is None:
                episode.label_end_s = t

    def _place_props(self, t: float) -> None:
        """Put the part, the heavy part, the visitor and the arc light where the camera should see them."""
        data, cell, program = self.data, self.cell, self.program
        tool = data.site_xpos[cell.tool_site].copy()
        cycle = program.cycle_index(self.tau)
        if program.grasps:
            if self.dropped_at is not None:
                part = self.dropped_at
            elif program.carrying(self.tau):
                part = tool
            elif cycle < len(program.releases) and program.releases[cycle] <= self.tau:
                part = program.place_positions[cycle]
            else:
                part = program.part_positions[cycle]
            data.mocap_pos[cell.part_mocap] = part
        data.mocap_pos[cell.heavy_part_mocap] = tool if self._active('heavy_payload', t) else HIDDEN
        data.mocap_pos[cell.visitor_mocap] = self.design.visitor_pos if self._active('foreign_object', t) else HIDDEN
        data.mocap_pos[cell.arc_mocap] = tool if program.welding(self.tau) else HIDDEN

    # -- sensors ---------------------------------------------------------------------------------

    def _emit_joint_state(self, t: float, stamp: int, sink: Sink) -> None:
        data = self.data
        noise = self._joint_noise.standard_normal((3, self.model.nu)) * np.array(JOINT_NOISE)[:, None]
        effort = data.actuator_force + data.qfrc_gravcomp + noise[2]
        sample = (
            data.qpos + noise[0],
            data.qvel + noise[1],
            effort if self.design.publishes_effort else np.full_like(effort, np.nan),
        )
        arm = self.design.working_joints  # a sensor fault strikes the joints that work, not a parked arm
        for episode in self.episodes:
            if episode.modality == 'kinematics' and episode.active(t) and sample is not None:
                corrupted = episode.state['corrupt'](t, *(channel[:arm] for channel in sample))
                if corrupted is None:
                    sample = None
                else:
                    sample = tuple(
                        np.concatenate([c, channel[arm:]]) for c, channel in zip(corrupted, sample, strict=True)
                    )
        if sample is not None:
            sink(JOINT_TOPIC, stamp, joint_state_cdr(stamp, self.cell.joint_names, *sample))

    def _emit_frame(self, t: float, stamp: int, frame: np.ndarray, sink: Sink) -> None:
        noisy = np.clip(frame + self._camera_noise.normal(0.0, CAMERA_NOISE, frame.shape), 0, 255).astype(np.uint8)
        for episode in self.episodes:
            if episode.modality == 'camera' and noisy is not None:
                corrupt = episode.state['corrupt']
                if episode.name == 'camera_delay' and t >= episode.start_s - 1.0:
                    delayed = corrupt(noisy)  # the delay line fills before the window opens
                    noisy = delayed if episode.active(t) else noisy
                elif episode.active(t):
                    noisy = corrupt(noisy)
        if noisy is not None:
            sink(CAMERA_TOPIC, stamp, image_cdr(stamp, noisy, CAMERA_FRAME))
