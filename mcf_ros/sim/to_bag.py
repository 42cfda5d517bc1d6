"""Run the simulated cell straight into a rosbag2 (MCAP) directory with its `faults.csv`."""

from collections.abc import Callable, Sequence
from pathlib import Path

from mcf_ros.data.bags import bag_writer
from mcf_ros.data.labels import FaultLabel, write_labels
from mcf_ros.data.messages import IMAGE, JOINT_STATE
from mcf_ros.sim.cell import CAMERA_TOPIC, JOINT_TOPIC, CellSimulator, SimConfig
from mcf_ros.sim.drivers import DriverHabits


def simulate_bag(
    config: SimConfig,
    out: str | Path,
    progress: Callable[[float], None] | None = None,
    habits: Sequence[str] = (),
) -> list[FaultLabel]:
    """Simulate per `config` into a new bag at `out`; return the labels also written to faults.csv.

    `habits` (see sim.drivers) rewrite the streams as real drivers publish them.
    """
    simulator = CellSimulator(config)
    rewriter = DriverHabits(list(habits), config.seed)
    types = {CAMERA_TOPIC: IMAGE, JOINT_TOPIC: JOINT_STATE}
    with bag_writer(out) as writer:

        def write(topic: str, stamp_ns: int, data: bytes) -> None:
            for out_topic, msgtype, out_ns, cdr in rewriter.rewrite(topic, types[topic], stamp_ns, data):
                writer.add_topic(out_topic, msgtype)
                writer.write(out_topic, out_ns, cdr)

        labels = simulator.run(write, progress)
    write_labels(out, labels)
    return labels
