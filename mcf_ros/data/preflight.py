"""`mcf inspect`: what a bag holds, whether a model can be trained on it, and whether it fits a model.

Pure reporting over a `BagInspection`: every count comes from the one pass `inspect_bag` made.
A verdict is a list of one-line reasons; a bag is trainable when none of them blocks.
"""

from dataclasses import dataclass

from mcf_ros.data.dataset import MOVING_TRAVEL, camera_topic_of, infer_spec, merged_joints, shortest_training_s
from mcf_ros.data.images import CAMERA_TYPES
from mcf_ros.data.inspection import BagInspection, CameraTopic, JointTopic
from mcf_ros.data.messages import JOINT_STATE
from mcf_ros.data.windows import CHANNELS, WindowSpec
from mcf_ros.errors import UserError
from mcf_ros.presentation import SCORE_FIELDS

RECOMMENDED_MIN = 20.0  # minutes of normal running the shipped model was trained on
RATE_TOLERANCE = 0.2  # a stream this much faster or slower than the model's training data is another setup


@dataclass(frozen=True)
class Finding:
    """One line of a verdict; `blocks` when it makes the bag unusable for the purpose."""

    blocks: bool
    text: str

    def __str__(self) -> str:
        """Return the line with its mark: 'no' for a blocker, 'ok' otherwise."""
        return f'{"no  " if self.blocks else "ok  "} {self.text}'


def pick_topics(inspection: BagInspection, camera_topic: str | None, joint_topic: str | None) -> tuple[str, str]:
    """Return the camera and joint topics to judge: those given, else the defaults, else the bag's only ones."""
    cameras = sorted(t for t, msgtype in inspection.topics.items() if msgtype in CAMERA_TYPES)
    joints = sorted(t for t, msgtype in inspection.topics.items() if msgtype == JOINT_STATE)
    if camera_topic is None:
        camera_topic = '/camera/image_raw'
        if len(cameras) == 1 and cameras[0] not in (camera_topic, f'{camera_topic}/compressed'):
            camera_topic = cameras[0]
    if joint_topic is None:
        joint_topic = '/joint_states' if '/joint_states' in joints or len(joints) != 1 else joints[0]
    return camera_topic, joint_topic


def describe(inspection: BagInspection) -> list[str]:
    """Return the report: topics, cameras, joint layouts and each joint's interfaces, with counts."""
    faults = f', {inspection.labelled_faults} labelled faults' if inspection.labelled_faults else ''
    lines = [
        f'bag {inspection.path}: {inspection.duration_s:.1f} s, {inspection.message_count:,} messages, '
        f'{len(inspection.topics)} topics{faults}',
        'topics:',
    ]
    width = max((len(topic) for topic in inspection.topics), default=0)
    for topic, msgtype in sorted(inspection.topics.items()):
        count = inspection.counts.get(topic, 0)
        rate = count / inspection.duration_s if inspection.duration_s > 0 else 0.0
        lines.append(f'  {topic:{width}}  {msgtype:34} {count:>9,}  {rate:7.1f} Hz (log time)')
    for topic, camera in inspection.cameras.items():
        lines += _describe_camera(topic, camera)
    for topic, joints in inspection.joint_topics.items():
        if _is_monitor_scores(joints):
            lines += _describe_monitor_scores(topic, joints)
            continue
        lines.append(f'joint states on {topic}: {len(joints.joints)} names in {len(joints.layouts)} layout(s)')
        if joints.unreadable:
            lines.append(f'  {joints.unreadable:,} of {joints.messages:,} messages are not readable JointStates')
        for names, layout in joints.layouts.items():
            rate = layout.stamps.rate_hz
            stamps = '; '.join(layout.stamps.problems()) or 'stamps in order'
            lines.append(
                f'  [{", ".join(names)}]: {len(layout.stamps.stamps_ns) + layout.stamps.zero:,} messages'
                f' at {rate or 0:.1f} Hz; {stamps}'
            )
        name_width = max((len(name) for name in joints.joints), default=0)
        lines.append(f'  {"joint":{name_width}}  {"travel":>8}  ' + '  '.join(f'{c:22}' for c in CHANNELS).rstrip())
        for name, stats in joints.joints.items():
            cells = '  '.join(f'{stats.interfaces[c].describe(short=True):22}' for c in CHANNELS)
            lines.append(f'  {name:{name_width}}  {stats.travel:8.3f}  {cells}'.rstrip())
    return lines


def _is_monitor_scores(joints: JointTopic) -> bool:
    """Return whether a JointState topic is a monitor's ~/scores (a clip records it): its names are the score fields."""
    return bool(joints.joints) and set(SCORE_FIELDS) <= set(joints.joints)


def _describe_monitor_scores(topic: str, joints: JointTopic) -> list[str]:
    raised = 'raised' if joints.joints['is_anomaly'].high >= 1.0 else 'never raised'
    rates = ', '.join(f'{layout.stamps.rate_hz or 0:.1f} Hz' for layout in joints.layouts.values())
    concepts = len(joints.joints) - len(SCORE_FIELDS)
    return [
        f'monitor scores on {topic}: {joints.messages:,} messages at {rates}, {len(SCORE_FIELDS)} score fields and '
        f'{concepts} concept values each (not joints); the flag was {raised} within it'
    ]


def _describe_camera(topic: str, camera: CameraTopic) -> list[str]:
    kinds = ', '.join(f'{kind} {count:,}' for kind, count in camera.kinds.most_common())
    sizes = ', '.join(f'{w}x{h} ({count:,} frames)' for (w, h), count in camera.resolutions.most_common())
    lines = [
        f'camera {topic}: {camera.transport} ({kinds or "no frames"}), {sizes or "no readable frame"}, '
        f'{camera.stamps.rate_hz or 0:.1f} Hz; ' + ('; '.join(camera.stamps.problems()) or 'stamps in order')
    ]
    lines += [f'  {count:,} frames unreadable: {reason}' for reason, count in camera.unreadable.most_common()]
    return lines


def training_verdict(inspection: BagInspection, camera_topic: str, joint_topic: str) -> list[Finding]:
    """Return why the bag can or cannot train a model, one finding a line (the first names the topics judged)."""
    if inspection.message_count == 0:
        return [Finding(True, 'the bag has no messages')]
    findings = []
    if inspection.labelled_faults:
        findings.append(
            Finding(
                True, f'it has {inspection.labelled_faults} labelled faults: evaluate on it, train on normal running'
            )
        )
    try:
        camera_topic = camera_topic_of(inspection, camera_topic)
        spec = infer_spec([inspection], camera_topic, joint_topic)
    except UserError as err:
        return [*findings, Finding(True, str(err))]
    findings.insert(0, Finding(False, f'topics: camera {camera_topic}, joints {joint_topic}'))
    findings += _camera_findings(inspection.cameras[camera_topic], camera_topic)
    findings += _joint_findings(inspection, joint_topic, spec)
    seconds = min(
        inspection.cameras[camera_topic].resolutions.total() / spec.camera_hz,
        inspection.duration_s,
    )
    if seconds < shortest_training_s(spec):
        needed = shortest_training_s(spec)
        findings.append(Finding(True, f'{seconds:.0f} s of usable frames; training needs at least {needed:.0f} s'))
    elif round(seconds / 60, 1) < RECOMMENDED_MIN:
        findings.append(
            Finding(False, f'{seconds / 60:.1f} min of running; {RECOMMENDED_MIN:g} min gives a tighter calibration')
        )
    else:
        findings.append(Finding(False, f'{seconds / 60:.1f} min of running'))
    return findings


def _camera_findings(camera: CameraTopic, topic: str) -> list[Finding]:
    findings = []
    if camera.resolution is None:
        return [Finding(True, f'no frame on {topic} can be read: {dict(camera.unreadable)}')]
    if len(camera.resolutions) > 1:
        findings.append(
            Finding(True, f'{topic} has frames of {len(camera.resolutions)} sizes: {dict(camera.resolutions)}')
        )
    readable = camera.resolutions.total()
    if readable < camera.frames:
        reasons = ', '.join(f'{reason} ({count:,})' for reason, count in camera.unreadable.most_common())
        unread = f'{camera.frames - readable:,} of {camera.frames:,} frames cannot be read: {reasons}'
        findings.append(Finding(readable < camera.frames / 2, unread))
    problems = camera.stamps.problems()
    findings.append(
        Finding(
            camera.stamps.zero + camera.stamps.backwards > camera.frames / 2,
            f'camera {topic}: {camera.transport}, {camera.resolution[0]}x{camera.resolution[1]}, '
            f'{camera.stamps.rate_hz or 0:.1f} Hz' + (f'; {", ".join(problems)}' if problems else ''),
        )
    )
    return findings


def _joint_findings(inspection: BagInspection, joint_topic: str, spec: WindowSpec) -> list[Finding]:
    stats = merged_joints([inspection], joint_topic)
    findings = [
        Finding(
            False,
            f'joints: {len(spec.joint_names)} move ({", ".join(spec.joint_names)}), at '
            + ', '.join(sorted({f'{rate:.0f} Hz' for rate in spec.joint_rates_hz})),
        )
    ]
    absent = {
        channel: [name for name, used in zip(spec.joint_names, spec.interfaces, strict=True) if channel not in used]
        for channel in CHANNELS[1:]
    }
    for channel, names in absent.items():
        if names:
            example = stats[names[0]].interfaces[channel].describe()
            findings.append(
                Finding(False, f'{channel} absent for {len(names)} joint(s) ({example}): trained without it')
            )
    others = [name for name in stats if name not in spec.joint_names]
    if others:
        findings.append(
            Finding(False, f'not in the model (travel under {MOVING_TRAVEL} rad): {", ".join(others)}; ignored')
        )
    joints = inspection.joint_topics[joint_topic]
    bad = sum(layout.stamps.zero + layout.stamps.backwards for layout in joints.layouts.values())
    if bad or joints.unreadable:
        findings.append(
            Finding(
                bad + joints.unreadable > joints.messages / 2,
                f'{bad:,} joint states with zero or backward stamps and {joints.unreadable:,} unreadable, '
                f'of {joints.messages:,}: they are rejected',
            )
        )
    return findings


def model_findings(header: dict, inspection: BagInspection, joint_topic: str) -> list[Finding]:
    """Return whether the bag fits a model (its artifact header): joints, interfaces, camera and rates."""
    spec = WindowSpec.from_dict(header['window'])
    trained = header['modalities']['camera']
    try:
        topic = camera_topic_of(inspection, trained['topic'])
    except UserError as err:
        return [Finding(True, str(err))]
    findings = []
    if inspection.topics.get(joint_topic) != JOINT_STATE:
        return [Finding(True, f'the model reads joint states on {joint_topic}, which the bag lacks')]
    stats = merged_joints([inspection], joint_topic)
    missing = [name for name in spec.joint_names if name not in stats]
    if missing:
        findings.append(Finding(True, f'the bag lacks the model joints {", ".join(missing)}'))
    for channel in CHANNELS:
        lacking = [
            name
            for name, used in zip(spec.joint_names, spec.interfaces, strict=True)
            if channel in used and name in stats and not stats[name].interfaces[channel].present
        ]
        if lacking:
            described = stats[lacking[0]].interfaces[channel].describe()
            findings.append(
                Finding(True, f'the model uses the {channel} of {", ".join(lacking)}; this bag lacks it ({described})')
            )
    camera = inspection.cameras[topic]
    resolution = tuple(trained.get('resolution') or ())
    if resolution and camera.resolution != resolution:
        here = 'no readable frame' if camera.resolution is None else 'frames of {}x{}'.format(*camera.resolution)
        findings.append(
            Finding(
                True,
                f'{topic} has {here}; the model was trained on {resolution[0]}x{resolution[1]}: '
                'train on data from this camera',
            )
        )
    if trained.get('transport', 'raw') != camera.transport:
        findings.append(
            Finding(
                False,
                f'the camera is {camera.transport}; the model was trained on {trained.get("transport", "raw")} '
                'frames, which decode a little differently',
            )
        )
    if camera.stamps.rate_hz and abs(camera.stamps.rate_hz / spec.camera_hz - 1) > RATE_TOLERANCE:
        findings.append(
            Finding(False, f'camera at {camera.stamps.rate_hz:.1f} Hz, the model at {spec.camera_hz:.1f} Hz')
        )
    joints = inspection.joint_topics[joint_topic]
    for name, rate in zip(spec.joint_names, spec.joint_rates_hz, strict=True):
        here = joints.rate_of(name) if name in stats else None
        if here and abs(here / rate - 1) > RATE_TOLERANCE:
            findings.append(Finding(False, f'{name} at {here:.0f} Hz, the model at {rate:.0f} Hz'))
    if not findings:
        findings.append(Finding(False, 'joints, interfaces, camera and rates match the model'))
    return findings
