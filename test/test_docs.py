"""The README and docs/node.md say what the node declares and publishes, and the README stays a front door."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
NODE_DOC = ROOT / 'docs' / 'node.md'
# Every node has these; they are ROS's, not the monitor's interface.
ROS_PARAMETERS = {'use_sim_time', 'start_type_description_service'}
ROS_TOPICS = {'/rosout', '/parameter_events', '/mcf_monitor/transition_event'}


def table(path: Path, heading: str) -> list[list[str]]:
    """Return the cells of the first markdown table under the heading that starts with `heading`."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip('#').strip().startswith(heading))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith('#'):
            break
        if line.startswith('|'):
            rows.append([cell.strip() for cell in line.strip('|').split('|')])
        elif rows:
            break
    assert len(rows) > 2, f'{path.name}: no table under {heading!r}'
    return rows[2:]  # the header and the separator


def code(cell: str) -> str:
    """Return the text of a cell that is one code span."""
    match = re.fullmatch(r'`([^`]*)`', cell)
    assert match, f'not a code span: {cell!r}'
    return match.group(1)


@pytest.fixture(scope='module')
def node():
    """The monitor, configured with the shipped model, in a private context."""
    import rclpy

    from mcf_ros.ros.monitor import MonitorNode

    context = rclpy.Context()
    rclpy.init(context=context)
    monitor = MonitorNode(context=context)
    try:
        assert monitor.trigger_configure().name == 'SUCCESS', monitor.error
        yield monitor
    finally:
        monitor.destroy_node()
        rclpy.shutdown(context=context)


def declared(node) -> dict:
    names = set(node._parameters) - ROS_PARAMETERS
    return {name: node.get_parameter(name).value for name in names if not name.startswith('qos_overrides.')}


def test_the_readme_lists_every_parameter_the_node_declares_with_its_default(node):
    documented = {code(row[0]): code(row[1]) for row in table(README, 'Parameters')}
    assert set(documented) == set(declared(node))
    assert documented == {name: repr(value) for name, value in declared(node).items()}


def test_the_node_reference_gives_every_parameter_its_default_and_range(node):
    from mcf_ros.ros.parameters import PARAMETERS

    rows = {code(row[0]): row for row in table(NODE_DOC, 'Parameters')}
    assert set(rows) == set(declared(node))
    for name, row in rows.items():
        assert code(row[1]) == repr(node.get_parameter(name).value), name
        ranges = PARAMETERS[name][2]
        if ranges:
            (bounds,) = next(iter(ranges.values()))
            assert row[2] == f'{bounds.from_value:g} \N{EN DASH} {bounds.to_value:g}', name
        else:
            assert row[2] == '', name


def test_the_readme_lists_every_topic_the_node_publishes_with_its_type(node):
    published = {
        name: types[0].replace('/msg/', '/')
        for name, types in node.get_publisher_names_and_types_by_node('mcf_monitor', '/')
        if name not in ROS_TOPICS
    }
    documented = {code(row[0]).replace('~/', '/mcf_monitor/'): code(row[1]) for row in table(README, 'Topics')}
    assert documented == published


def test_the_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024, f'README is {len(text.encode())} bytes'
    first_three_screens = '\n'.join(text.splitlines()[:150])
    for landmark in ('mcf demo', 'python -m pytest', '## Train on your own cell', '/mcf_monitor/anomaly'):
        assert landmark in first_three_screens, landmark
    for doc in [README, *sorted((ROOT / 'docs').glob('*.md'))]:
        assert '../shared' not in doc.read_text(), f'{doc.name} sends readers outside the repository'


def test_every_relative_link_in_the_docs_resolves():
    for doc in [README, *sorted((ROOT / 'docs').glob('*.md'))]:
        for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', doc.read_text()):
            if not target.startswith('http'):
                assert (doc.parent / target).exists(), f'{doc.name} links to {target}, which is not there'


def test_the_node_reference_names_every_diagnostics_key(node):
    from mcf_ros.data.clips import ClipWriter
    from mcf_ros.ros.diagnostics import fill_status
    from mcf_ros.ros.seams import DiagnosticStatusWrapper

    node.counts.update(rejected_image_step=1, rejected_joint_effort_not_finite=2)
    node.ignored_joints.add('gripper_joint')
    node.clip_writer = SimpleNamespace(counts=dict.fromkeys(ClipWriter.COUNTS, 0), last_error='disk full')
    node.clips = SimpleNamespace(trimmed=0)
    node.feedback = {'marks': 1, 'raised': 'camera_error x1.20', 'model': 'cell_feedback.mcf'}
    try:
        stat = fill_status(DiagnosticStatusWrapper(), node)
    finally:
        node.clip_writer = node.clips = node.feedback = None
    rows = table(NODE_DOC, '`/diagnostics` keys')
    documented = {key for row in rows for key in re.findall(r'`([a-z0-9_<>]+)`', row[0])}
    reasons = set(re.findall(r'`([a-z_]+)`', next(row[1] for row in rows if row[0] == '`rejected_<reason>`')))
    for item in stat.values:
        reason = item.key.removeprefix('rejected_')
        assert item.key in documented or (item.key != reason and reason in reasons), item.key


def test_the_node_reference_names_every_scores_field_in_order():
    from mcf_ros.presentation import SCORE_FIELDS

    text = NODE_DOC.read_text()
    fields = text[text.index('Fields: ') : text.index('`concept_0`')]
    assert re.findall(r'`([a-z_]+)`', fields) == list(SCORE_FIELDS)
