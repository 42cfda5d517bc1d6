"""Run the simulated cell straight into a rosbag2 (MCAP) directory with its `faults.csv`."""

from collections.abc import Callable
from pathlib import Path

from mcf_ros.data.bags import bag_writer
from mcf_ros.data.labels import FaultLabel, write_labels
from mcf_ros.data.messages import IMAGE, JOINT_STATE
from mcf_ros.sim.cell import CAMERA_TOPIC, JOINT_TOPIC, CellSimulator, SimConfig


def simulate_bag(
    config: SimConfig, out: str | Path, progress: Callable[[float], None] | None = None
) -> list[FaultLabel]:
    """Simulate per `config` into a new bag at `out`; return the labels also written to faults.csv."""
    simulator = CellSimulator(config)
    with bag_writer(out) as writer:
        writer.add_topic(CAMERA_TOPIC, IMAGE)
        writer.add_topic(JOINT_TOPIC, JOINT_STATE)
        labels = simulator.run(writer.write, progress)
    write_labels(out, labels)
    return labels
