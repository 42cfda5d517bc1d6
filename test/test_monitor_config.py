"""The monitor's parameters: the shipped YAML, the README table and the node's descriptors say the same."""

from pathlib import Path

import yaml

from mcf_ros.ros.monitor import PARAMETERS

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_params_file_sets_every_parameter_to_its_default():
    shipped = yaml.safe_load((ROOT / 'config/monitor.yaml').read_text())['/**']['ros__parameters']
    assert shipped == {name: default for name, (default, _, _) in PARAMETERS.items()}


def test_the_readme_documents_every_parameter():
    readme = (ROOT / 'README.md').read_text()
    missing = [name for name in PARAMETERS if f'| `{name}` |' not in readme]
    assert not missing, f'README lacks {missing}'
