"""Serialized sensor messages: the fast JointState reader against the rosbags typestore."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcf_ros.data.messages import _STORE, JOINT_STATE, _header, joint_state_cdr, joint_state_fields, parse
from mcf_ros.data.windows import RejectedInputError

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
values = st.lists(floats, max_size=9).map(lambda v: np.array(v, np.float64))


@settings(max_examples=300, deadline=None)
@given(
    stamp_ns=st.integers(0, 2**31 * 10**9 - 1),
    frame_id=st.text(max_size=11),
    names=st.lists(st.text(max_size=13), max_size=9),
    position=values,
    velocity=values,
    effort=values,
    little_endian=st.booleans(),
)
def test_joint_state_fields_read_what_the_typestore_reads(
    stamp_ns, frame_id, names, position, velocity, effort, little_endian
):
    message = _STORE.types[JOINT_STATE](
        header=_header(stamp_ns, frame_id),
        name=names,
        position=position,
        velocity=velocity,
        effort=effort,
    )
    data = bytes(_STORE.serialize_cdr(message, JOINT_STATE, little_endian=little_endian))
    read_ns, read_names, *read_values = joint_state_fields(data)
    expected = parse(data, JOINT_STATE) if little_endian else message
    assert read_ns == stamp_ns
    assert read_names == tuple(expected.name) == tuple(names)
    for read, sent in zip(read_values, (position, velocity, effort), strict=True):
        np.testing.assert_array_equal(read, sent)


def test_bytes_that_hold_no_joint_state_are_rejected_with_a_reason():
    data = joint_state_cdr(1_500_000_000, ['a', 'b'], np.ones(2), np.zeros(2), np.zeros(2))
    for damaged in (data[:-1], data[:30], b'', b'\x00\x07' + data[2:], b'\x01\x01' + data[2:]):
        with pytest.raises(RejectedInputError) as error:
            joint_state_fields(damaged)
        assert error.value.reason == 'joint_state_cdr'
