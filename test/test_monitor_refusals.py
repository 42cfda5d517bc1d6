"""The monitor refuses to run with a bad model or on another arm: one ERROR log line, ERROR on /diagnostics."""

import pickle
import struct
from pathlib import Path

import pytest
from live_cell import LiveCell, start_monitor, stop_process
from synthetic_bags import UR_JOINTS

from mcf_ros.model.artifact import FORMAT_VERSION, MAGIC

ERROR = 2  # diagnostic_msgs/DiagnosticStatus.ERROR
SHIPPED = Path(__file__).resolve().parent.parent / 'models' / 'ur5e_cell.mcf'
BOMB_MARKER = Path('/tmp/mcf_monitor_pickle_bomb_went_off')


class PickleBomb:
    def __reduce__(self):
        return (BOMB_MARKER.touch, ())


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def corrupt(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF
    return bytes(flipped)


def wrong_version(data: bytes) -> bytes:
    (length,) = struct.unpack('>I', data[8:12])
    header = data[12 : 12 + length].replace(f'"format_version": {FORMAT_VERSION}'.encode(), b'"format_version": 99')
    return MAGIC + struct.pack('>I', len(header)) + header + data[12 + length :]


def pickle_bomb(_data: bytes) -> bytes:
    return pickle.dumps({'weight': PickleBomb()})


@pytest.mark.parametrize(
    ('damage', 'expected'),
    [
        (None, 'model not found'),
        (truncated, 'truncated'),
        (corrupt, 'corrupt'),
        (wrong_version, 'artifact format 99'),
        (pickle_bomb, 'not an mcf model artifact'),
    ],
    ids=['missing', 'truncated', 'corrupt', 'wrong_version', 'pickle_bomb'],
)
def test_a_bad_model_is_refused_with_one_error_line_and_an_error_on_diagnostics(tmp_path, damage, expected):
    model = tmp_path / 'cell.mcf'
    if damage is not None:
        model.write_bytes(damage(SHIPPED.read_bytes()))
    BOMB_MARKER.unlink(missing_ok=True)
    log = tmp_path / 'monitor.log'
    monitor = start_monitor(log, f'model_path:={model}', 'diagnostics_period_s:=0.2')
    try:
        with LiveCell() as cell:
            message = cell.wait_for(
                lambda: next((m for _, level, m, _ in cell.received.diagnostics if level == ERROR), None), 30, 'ERROR'
            )
            assert str(model) in message and expected in message, message
            assert not cell.received.scores
    finally:
        assert stop_process(monitor) == 0
    text = log.read_text()
    errors = [line for line in text.splitlines() if '[ERROR]' in line]
    assert len(errors) == 1 and 'cannot configure' in errors[0] and expected in errors[0], text
    assert 'Traceback' not in text
    assert not BOMB_MARKER.exists(), 'loading the model executed code'


def test_joint_states_of_another_arm_refuse_activation(tmp_path):
    other_arm = [f'panda_joint{k}' for k in range(1, 8)]
    log = tmp_path / 'monitor.log'
    with LiveCell(joint_names=other_arm) as cell:
        # A generous check timeout: on a loaded machine discovery can take longer than the default 2 s.
        monitor = start_monitor(log, 'diagnostics_period_s:=0.2', 'joint_check_timeout_s:=15.0')
        try:
            message = cell.wait_for(
                lambda: next((m for _, level, m, _ in cell.received.diagnostics if level == ERROR), None), 30, 'ERROR'
            )
            assert 'cannot activate' in message and UR_JOINTS[0] in message and 'panda_joint1' in message, message
            cell.joint_names = UR_JOINTS  # the right arm appears: still inactive until asked to activate again
            time_of_fix = len(cell.received.diagnostics)
            cell.wait_for(lambda: len(cell.received.diagnostics) > time_of_fix + 5, 10, 'more diagnostics')
            assert not cell.received.scores, 'a node that refused activation scores nothing'
        finally:
            assert stop_process(monitor) == 0
    text = log.read_text()
    errors = [line for line in text.splitlines() if '[ERROR]' in line]
    assert len(errors) == 1 and 'cannot activate' in errors[0], text
    assert 'Traceback' not in text
