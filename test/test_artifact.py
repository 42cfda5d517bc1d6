"""The model artifact: a JSON header plus weights that load without pickle, and clear errors."""

import io
import os
import struct

import pytest
import torch

from mcf_ros.model.artifact import FORMAT_VERSION, MAGIC, ArtifactError, load_artifact, save_artifact

HEADER = {'model': {'latent_dim': 4}, 'calibration': {'threshold': 3.0}}


@pytest.fixture
def artifact_path(tmp_path):
    path = tmp_path / 'model.mcf'
    save_artifact(path, HEADER, {'weight': torch.arange(6.0).reshape(2, 3)})
    return path


def test_artifact_round_trips_header_and_weights(artifact_path):
    loaded = load_artifact(artifact_path)
    assert loaded.header['calibration'] == {'threshold': 3.0}
    assert torch.equal(loaded.state_dict['weight'], torch.arange(6.0).reshape(2, 3))
    assert len(loaded.model_id) == 12


def test_a_missing_artifact_is_named(tmp_path):
    with pytest.raises(ArtifactError, match='model not found'):
        load_artifact(tmp_path / 'none.mcf')


def test_a_file_that_is_not_an_artifact_is_refused(tmp_path):
    path = tmp_path / 'x.mcf'
    path.write_bytes(b'hello world, not a model')
    with pytest.raises(ArtifactError, match='not an mcf model artifact'):
        load_artifact(path)


@pytest.mark.parametrize('keep', [10, 60, -20])
def test_a_truncated_artifact_is_refused(artifact_path, keep):
    data = artifact_path.read_bytes()
    artifact_path.write_bytes(data[:keep])
    with pytest.raises(ArtifactError, match='truncated'):
        load_artifact(artifact_path)


def test_flipped_weight_bytes_are_caught_by_the_checksum(artifact_path):
    data = bytearray(artifact_path.read_bytes())
    data[-30] ^= 0xFF
    artifact_path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match='corrupt'):
        load_artifact(artifact_path)


def test_another_format_version_is_refused(artifact_path):
    data = artifact_path.read_bytes()
    (length,) = struct.unpack('>I', data[8:12])
    header = data[12 : 12 + length].replace(f'"format_version": {FORMAT_VERSION}'.encode(), b'"format_version": 99')
    artifact_path.write_bytes(MAGIC + struct.pack('>I', len(header)) + header + data[12 + length :])
    with pytest.raises(ArtifactError, match='format 99'):
        load_artifact(artifact_path)


class Bomb:
    def __reduce__(self):
        return (os.system, ('touch /tmp/mcf_pickle_bomb_went_off',))


def test_a_pickle_bomb_in_the_weights_is_refused_without_running_it(tmp_path):
    import hashlib
    import json

    marker = '/tmp/mcf_pickle_bomb_went_off'
    if os.path.exists(marker):
        os.remove(marker)
    buffer = io.BytesIO()
    torch.save({'weight': Bomb()}, buffer, pickle_protocol=2)
    weights = buffer.getvalue()
    digest = hashlib.sha256(weights).hexdigest()
    header = json.dumps({'format_version': FORMAT_VERSION, 'weights_sha256': digest}).encode()
    path = tmp_path / 'bomb.mcf'
    path.write_bytes(MAGIC + struct.pack('>I', len(header)) + header + weights)
    with pytest.raises(ArtifactError, match='unloadable weights'):
        load_artifact(path)
    assert not os.path.exists(marker), 'loading the artifact executed code'
