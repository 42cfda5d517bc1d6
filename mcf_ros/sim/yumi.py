"""The second cell: an ABB YuMi dispensing a sealing bead on parts an operator loads by hand.

It differs from the UR5e cell wherever a customer's cell would: a 7-joint arm (YuMi's right arm;
the left arm is parked but, as YuMi's driver does, published too), another task whose cycles are
irregular (the operator starts each cycle after loading a part, and each part's seam has its own
length), a speed override lowered and raised again during normal running, a camera elsewhere at
15 Hz and 160x120, and joint states at 250 Hz with position and velocity only (effort NaN, as
joint_state_broadcaster publishes an arm without torque sensing). The arm model comes from the
`robosuite-models` package, which ships its meshes; nothing is downloaded.
"""

import importlib.util
from pathlib import Path

import mujoco
import numpy as np

from mcf_ros.sim.scene import ROBOT_CONTACT, CellModel, add_props

TABLE_TOP_Z = 0.10
FIXTURE_XY = (0.42, -0.22)
SEAM_LENGTH_M = (0.06, 0.16)  # each part's seam, drawn per cycle
BEAD_SPEED = 0.12  # fraction of the joint speed limit while dispensing
HOVER_M = 0.08
VISITOR_POS = (0.62, -0.05, TABLE_TOP_Z + 0.12)
KP, KV = 300.0, 30.0  # position servo gains of every joint
# Right arm: the tool 25 cm above the fixture's near corner, pointing down; left arm folded away.
HOME = np.array([-0.6, -0.7, 0.0, 0.8, -0.4, 0.4, 0.2, -1.0, -2.2, 1.5, 0.6, 0.5, 0.6, 0.0])


def robot_xml() -> Path:
    """Return YuMi's MJCF in the installed robosuite-models (found without importing it: it imports robosuite)."""
    spec = importlib.util.find_spec('robosuite_models')
    if spec is None or not spec.submodule_search_locations:
        raise ValueError('the yumi cell needs the robosuite-models package (pip install robosuite-models==1.0.0)')
    return Path(spec.submodule_search_locations[0]) / 'assets' / 'robots' / 'yumi' / 'robot.xml'


def build_yumi_cell() -> CellModel:
    """Compile the YuMi cell: position servos on every joint, links gravity-compensated, a dispenser held."""
    spec = mujoco.MjSpec.from_file(str(robot_xml()))
    spec.option.timestep = 0.002
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    for actuator in spec.actuators:
        actuator.set_to_position(kp=KP, kv=KV)
        actuator.ctrlrange = [-6.5, 6.5]
    for body in spec.bodies:
        if body.name.startswith('yumi_link'):
            body.gravcomp = 1.0
    # The camera sees 160x120: the coarse collision meshes are drawn, and the fine visual ones (4x the
    # rendering time) are dropped.
    for geom in list(spec.geoms):
        if geom.name.endswith('_visual'):
            spec.delete(geom)
        elif geom.name.endswith('_collision'):
            geom.contype, geom.conaffinity = ROBOT_CONTACT, 0
            geom.rgba = [0.72, 0.72, 0.74, 1]
    for mesh in list(spec.meshes):
        if not mesh.name.startswith('coarse_'):
            spec.delete(mesh)
    world = spec.worldbody
    box, plane = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_PLANE
    world.add_light(name='ceiling', pos=[0.5, -0.3, 2.2], dir=[0, 0, -1], diffuse=[0.5, 0.5, 0.5], castshadow=False)
    world.add_geom(type=plane, size=[3, 3, 0.1], pos=[0, 0, -0.6], rgba=[0.3, 0.33, 0.3, 1], contype=0, conaffinity=0)
    world.add_geom(
        name='table', type=box, size=[0.22, 0.45, 0.02], pos=[0.5, -0.05, TABLE_TOP_Z - 0.02],
        rgba=[0.62, 0.62, 0.66, 1], contype=0, conaffinity=0,
    )  # fmt: skip
    world.add_geom(
        name='fixture', type=box, size=[0.1, 0.05, 0.01], pos=[*FIXTURE_XY, TABLE_TOP_Z + 0.01],
        rgba=[0.2, 0.2, 0.25, 1], contype=0, conaffinity=0,
    )  # fmt: skip
    world.add_geom(
        name='part', type=box, size=[0.085, 0.035, 0.006], pos=[*FIXTURE_XY, TABLE_TOP_Z + 0.026],
        rgba=[0.78, 0.78, 0.8, 1], contype=0, conaffinity=0,
    )  # fmt: skip
    world.add_geom(
        name='bin', type=box, size=[0.06, 0.08, 0.03], pos=[0.5, 0.2, TABLE_TOP_Z + 0.03],
        rgba=[0.15, 0.35, 0.6, 1], contype=0, conaffinity=0,
    )  # fmt: skip
    target = world.add_body(name='camera_target', pos=[0.42, -0.12, 0.2])
    world.add_camera(
        name='cell_camera', pos=[0.55, -1.15, 0.85], mode=mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY,
        targetbody=target.name, fovy=48,
    )  # fmt: skip

    dispenser = spec.body('right_hand').add_body(name='dispenser', gravcomp=1.0)
    dispenser.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.016, 0.045, 0], pos=[0, 0, 0.045],
        rgba=[0.85, 0.85, 0.8, 1], mass=0.25, contype=ROBOT_CONTACT, conaffinity=0,
    )  # fmt: skip
    dispenser.add_site(name='tool', pos=[0, 0, 0.1])
    payload = dispenser.add_body(name='payload', pos=[0, 0, 0.05])
    payload.add_geom(type=box, size=[0.01] * 3, rgba=[0, 0, 0, 0], contype=0, conaffinity=0, mass=1e-4)

    boxes = {
        'part': ([0.01] * 3, [0.75, 0.75, 0.78, 1]),  # no part is carried in this cell
        'heavy_part': ([0.03, 0.03, 0.06], [0.3, 0.3, 0.35, 1]),  # a full cartridge fitted
        'obstacle': ([0.04, 0.04, 0.2], [0.8, 0.1, 0.1, 1]),
        'visitor': ([0.06, 0.06, 0.1], [0.95, 0.85, 0.1, 1]),
    }
    add_props(world, boxes, 0.012, [0.2, 0.8, 1.0, 1])  # the bead
    return CellModel.from_model(spec.compile(), HOME)


def dispense_cycle(cell: CellModel, builder) -> None:
    """Go to the part on the fixture, lay a bead along its seam (its length drawn per part), and lift off.

    The operator swaps the part while the arm is home, so a part always lies on the fixture.
    """
    from mcf_ros.sim.motion import solve_ik

    rng = builder.rng
    length = rng.uniform(*SEAM_LENGTH_M)
    start = np.array([FIXTURE_XY[0] - length / 2, FIXTURE_XY[1], TABLE_TOP_Z + 0.03])
    start[:2] += rng.normal(0.0, 0.003, 2)
    hover = np.array([0.0, 0.0, HOVER_M])
    q = solve_ik(cell, start + hover, builder.q)
    builder.move(q)
    q = solve_ik(cell, start, q)
    builder.move(q, speed_scale=0.5)
    builder.dwell(0.3)
    bead_start = builder.t
    steps = max(3, round(length / 0.02))
    for k in range(1, steps + 1):
        q = solve_ik(cell, start + np.array([length * k / steps, 0.0, 0.0]), q)
        builder.move(q, speed_scale=BEAD_SPEED)
    builder.program.arcs.append((bead_start, builder.t))
    builder.dwell(0.3)
    builder.move(solve_ik(cell, start + np.array([length, 0.0, HOVER_M]), q), speed_scale=0.5)
