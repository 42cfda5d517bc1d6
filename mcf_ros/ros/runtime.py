"""Process scaffolding shared by every mcf process that joins the ROS graph."""

import importlib
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.exceptions import InvalidTopicNameException
from rclpy.expand_topic_name import expand_topic_name
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.validate_full_topic_name import validate_full_topic_name

from mcf_ros import ros_env
from mcf_ros.errors import UserError


@contextmanager
def ros_node(name: str) -> Iterator[Node]:
    """Initialise rclpy in the mcf environment, yield one node, and tear both down on exit.

    rclpy's own signal handlers stay off: `stop_event` decides how SIGINT/SIGTERM end the
    process, so that players and recorders can finish writing first.
    """
    os.environ.update(ros_env.user_defaults(os.environ))
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = Node(name, context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def stop_event() -> threading.Event:
    """Return an event that SIGINT and SIGTERM set, for loops that must stop cleanly."""
    event = threading.Event()

    def request_stop(signum, _frame):
        event.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return event


def full_topic_name(name: str, node_name: str) -> str:
    """Return `name` expanded as ROS expands it for a node in the root namespace; UserError if invalid.

    'a' becomes '/a', '~/a' becomes '/NODE/a' (NODE = `node_name`).
    """
    try:
        full = expand_topic_name(name, node_name, '/')
        validate_full_topic_name(full)
    except (ValueError, InvalidTopicNameException) as err:
        raise UserError(f'invalid topic name {name!r}: {rcl_reason(err).split(" is invalid: ")[-1]}') from None
    return full


def rcl_reason(err: Exception) -> str:
    """Return an rcl/rclpy error's message on one line, without the C source locations it appends."""
    return str(err).splitlines()[0].split(', at /')[0]


def message_class(msgtype: str) -> type:
    """Return the rclpy class of a type name: 'sensor_msgs/msg/Image', or the old form 'sensor_msgs/Image'."""
    package, _, name = msgtype.rpartition('/msg/') if '/msg/' in msgtype else msgtype.rpartition('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError, ValueError, TypeError):  # TypeError: no package at all
        hint = f' (source a ROS distro or pip install ros-{package.replace("_", "-")})' if package else ''
        raise UserError(f'message type {msgtype} is not installed for rclpy{hint}') from None
