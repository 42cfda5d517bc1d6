"""The DDS environment seam: loopback only, private domains, user settings respected, shm cleanup."""

import fcntl
import ipaddress
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from mcf_process import MCF, start_mcf, wait_for_line
from synthetic_bags import write_camera_joint_bag

from mcf_ros import ros_env

PROFILE_NS = {'p': 'http://www.eprosima.com'}


def test_user_settings_win_over_the_defaults():
    chosen = {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET', 'FASTDDS_DEFAULT_PROFILES_FILE': '/etc/cell.xml'}
    assert ros_env.user_defaults(chosen) == {}


def test_unset_discovery_range_defaults_to_this_host_and_the_shm_profile():
    defaults = ros_env.user_defaults({})
    assert defaults['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert os.path.isfile(defaults['FASTDDS_DEFAULT_PROFILES_FILE'])


def test_isolated_runs_refuse_a_domain_outside_0_to_101():
    with pytest.raises(ValueError, match='0-101'):
        ros_env.isolated(102, '/tmp')


def test_this_test_session_runs_under_the_isolated_environment():
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert 0 <= int(os.environ['ROS_DOMAIN_ID']) <= 101
    assert os.environ['ROS_LOG_DIR'].startswith('/tmp')
    assert os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] == str(ros_env.config_file(ros_env.SHM_PROFILE))


def test_shipped_profile_uses_a_32_mib_shm_segment_and_loopback_only_udp():
    root = ET.parse(ros_env.config_file(ros_env.SHM_PROFILE)).getroot()
    descriptors = {
        d.findtext('p:type', namespaces=PROFILE_NS): d for d in root.iterfind('.//p:transport_descriptor', PROFILE_NS)
    }
    assert int(descriptors['SHM'].findtext('p:segment_size', namespaces=PROFILE_NS)) >= 32 * 2**20
    allowed = [i.get('name') for i in descriptors['UDPv4'].iterfind('.//p:allowlist/p:interface', PROFILE_NS)]
    assert allowed == ['lo']
    assert root.findtext('.//p:useBuiltinTransports', namespaces=PROFILE_NS) == 'false'


def test_only_segments_whose_lock_nobody_holds_are_orphans(tmp_path):
    for name in (
        'fastdds_live',
        'fastdds_live_el',
        'fastdds_dead',
        'fastdds_dead_el',
        'sem.fastdds_dead_mutex',
    ):
        (tmp_path / name).write_bytes(b'')
    holder = os.open(tmp_path / 'fastdds_live_el', os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_SH)
    try:
        orphans = sorted(p.name for p in ros_env.orphaned_shm_segments(tmp_path))
        assert orphans == ['fastdds_dead', 'fastdds_dead_el', 'sem.fastdds_dead_mutex']
        assert ros_env.remove_orphaned_shm_segments(tmp_path) == 3
        assert sorted(p.name for p in tmp_path.iterdir()) == ['fastdds_live', 'fastdds_live_el']
    finally:
        os.close(holder)


def inet_destinations(strace_log: str) -> set[str]:
    """Return every IPv4/IPv6 address the traced processes sent to, connected to or bound."""
    addresses = set()
    for line in strace_log.splitlines():
        if re.search(r'\b(sendto|sendmsg|sendmmsg|connect)\(', line):
            addresses.update(re.findall(r'inet_addr\("([0-9.]+)"\)', line))
            addresses.update(re.findall(r'inet_pton\(AF_INET6, "([0-9a-f:.]+)"', line))
    return addresses


@pytest.mark.skipif(shutil.which('strace') is None, reason='strace is not installed, so traffic cannot be traced')
def test_replay_and_record_send_nothing_beyond_loopback(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'bag', duration_s=1.0, width=64, height=48)
    trace = tmp_path / 'strace'
    traced = ['strace', '-f', '-qq', '-e', 'trace=sendto,sendmsg,sendmmsg,connect', '-o']
    recorder = start_mcf('record', str(tmp_path / 'out'), '--topics', '/joint_states', log=tmp_path / 'record.log')
    try:
        replay = subprocess.run(
            [*traced, str(trace), *MCF, 'replay', str(bag), '--wait-for-subscribers', '20', '--quiet'],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert replay.returncode == 0, replay.stderr
        wait_for_line(tmp_path / 'record.log', 'recording /joint_states')
    finally:
        recorder.terminate()
        recorder.wait(timeout=30)
    destinations = inet_destinations(trace.read_text())
    assert destinations, 'strace saw no traffic at all, so the check proves nothing'
    outside = [a for a in destinations if not ipaddress.ip_address(a).is_loopback]
    assert not outside, f'traffic left loopback, to {outside}'


def test_a_private_run_takes_the_users_domain_when_set():
    assert ros_env.claim_domain({'ROS_DOMAIN_ID': '42'}) == (42, None)


def test_concurrent_private_runs_claim_different_domains_and_a_freed_one_is_taken_again(tmp_path):
    first, first_lock = ros_env.claim_domain({}, tmp_path)
    second, second_lock = ros_env.claim_domain({}, tmp_path)
    assert first != second and {first, second} <= set(ros_env.PRIVATE_DOMAINS)
    os.close(first_lock)  # as when that process ends
    again, again_lock = ros_env.claim_domain({}, tmp_path)
    assert again == first
    os.close(second_lock)
    os.close(again_lock)
