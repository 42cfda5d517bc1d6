"""The DDS environment seam: which host, domain and transport every mcf process talks on.

Set before rclpy initialises (the middleware reads these variables when the context and the
participant are created). Pure: imports no rclpy.

Two policies:
- `user_defaults`: for commands a user runs on a cell. Whatever the user set wins; what is unset
  gets a safe default: discovery limited to this host and the shipped shared-memory profile.
  On a real cell, opt out with `export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET`.
- `isolated`: for the demo, tests and benchmarks. Forces loopback-only discovery, a private
  domain, a throw-away log directory and the shipped profile, whatever the shell says.
"""

import fcntl
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mcf_ros.paths import config_file

SHM_PROFILE = 'fastdds_shm.xml'
DISCOVERY_RANGE = 'ROS_AUTOMATIC_DISCOVERY_RANGE'
PROFILES_FILE = 'FASTDDS_DEFAULT_PROFILES_FILE'
MAX_DOMAIN_ID = 101
SHM_DIR = Path('/dev/shm')
PRIVATE_DOMAINS = range(99, 79, -1)  # where demos pick a free domain (tests use 60 and up from the other end)
DOMAIN_LOCKS = Path(tempfile.gettempdir()) / 'mcf_ros_domains'


def user_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the variables to add to `environ`: only those the user has not set."""
    defaults = {DISCOVERY_RANGE: 'LOCALHOST', PROFILES_FILE: str(config_file(SHM_PROFILE))}
    return {key: value for key, value in defaults.items() if not environ.get(key)}


def isolated(domain_id: int, log_dir: str | os.PathLike) -> dict[str, str]:
    """Return the variables that confine a demo, test or benchmark run to this host and domain."""
    if not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ValueError(f'ROS_DOMAIN_ID must be 0-{MAX_DOMAIN_ID}, got {domain_id}')
    return {
        DISCOVERY_RANGE: 'LOCALHOST',
        'ROS_STATIC_PEERS': '',
        'ROS_DOMAIN_ID': str(domain_id),
        'ROS_LOG_DIR': str(log_dir),
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        PROFILES_FILE: str(config_file(SHM_PROFILE)),
    }


def claim_domain(environ: Mapping[str, str], lock_dir: Path = DOMAIN_LOCKS) -> tuple[int, int | None]:
    """Return the domain for a private run and the lock held on it (a file descriptor; None if none is held).

    The user's `ROS_DOMAIN_ID` wins when set. Otherwise the first of PRIVATE_DOMAINS that no other
    process on this host holds: each is claimed with flock on a file of its own, which the kernel
    releases when the process ends, so two concurrent demos never share a domain.
    """
    if environ.get('ROS_DOMAIN_ID'):
        return int(environ['ROS_DOMAIN_ID']), None
    lock_dir.mkdir(parents=True, exist_ok=True)
    for domain in PRIVATE_DOMAINS:
        fd = os.open(lock_dir / f'domain_{domain}.lock', os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return domain, fd
    raise RuntimeError(f'every domain {PRIVATE_DOMAINS.stop + 1}-{PRIVATE_DOMAINS.start} is taken on this host')


def orphaned_shm_segments(shm_dir: Path = SHM_DIR) -> list[Path]:
    """Return Fast DDS shared-memory files whose owner is gone (left by killed processes).

    Each segment `X` comes with a lock file `X_el` that its live users hold with flock, and
    ports also with a semaphore `sem.X_mutex`. A lock file nobody holds marks all three as
    orphans; this is the test `fastdds shm clean` applies.
    """
    orphans = []
    for lock_file in shm_dir.glob('fastdds_*_el'):
        try:
            fd = os.open(lock_file, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            os.close(fd)
        base = lock_file.name.removesuffix('_el')
        orphans += [p for p in (shm_dir / base, lock_file, shm_dir / f'sem.{base}_mutex') if p.exists()]
    return orphans


def remove_orphaned_shm_segments(shm_dir: Path = SHM_DIR) -> int:
    """Delete the orphaned Fast DDS shared-memory files; return how many were removed."""
    removed = 0
    for path in orphaned_shm_segments(shm_dir):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
