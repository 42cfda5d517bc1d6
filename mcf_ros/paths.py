"""Where the package's data (config/, launch/, models/) lives."""

import sys
from pathlib import Path

PACKAGE = 'mcf_ros'


def share_dir() -> Path:
    """Return the package's share directory: the first candidate that holds package.xml.

    Candidates, in order: the ament index (colcon build on a ROS distro), the source checkout
    (a clone or an editable install, so edits to config/ take effect), the pip prefix's share/.
    """
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError):
        pass
    candidates += [Path(__file__).resolve().parent.parent, Path(sys.prefix) / 'share' / PACKAGE]
    for candidate in candidates:
        if (candidate / 'package.xml').is_file():
            return candidate
    raise FileNotFoundError(f'{PACKAGE} data not found in any of: {", ".join(map(str, candidates))}')


def config_file(name: str) -> Path:
    """Return the path of a file shipped in config/."""
    return share_dir() / 'config' / name
