"""A contact sheet of a labelled bag, for a person to check it at a glance.

Joint traces with the fault windows shaded and named, and camera frames before, during and after
each fault. Works on any bag with the DESIGN.md topics.
"""

from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np

from mcf_ros.data.bags import BagReader
from mcf_ros.data.images import CAMERA_TYPES, full_frame_rgb
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import parse, stamp_ns

MODALITY_COLORS = {'camera': 'tab:orange', 'kinematics': 'tab:purple', 'physical': 'tab:red'}
MAX_FAULT_ROWS = 8


def contact_sheet(bag_dir: str | Path, png: str | Path, joint_topic='/joint_states'):
    """Write the contact sheet of `bag_dir` to `png`.

    It shows the bag's camera topic (raw or compressed) and the joints of the layout that most
    messages on `joint_topic` carry.
    """
    labels = read_labels(bag_dir)
    frames, joints = [], []
    with BagReader(bag_dir) as bag:
        camera_topic = next(topic for topic, msgtype in sorted(bag.topics.items()) if msgtype in CAMERA_TYPES)
        for message in bag.messages([camera_topic, joint_topic]):
            parsed = parse(message.data, message.msgtype)
            if message.topic == camera_topic:
                frames.append((stamp_ns(parsed) / 1e9, message.data, message.msgtype))
            else:
                joints.append((stamp_ns(parsed) / 1e9, tuple(parsed.name), np.asarray(parsed.position)))
    joint_names = Counter(names for _, names, _ in joints).most_common(1)[0][0]
    joints = [(t, position) for t, names, position in joints if names == joint_names]
    t0 = min(frames[0][0], joints[0][0])
    shown = labels[:MAX_FAULT_ROWS]
    rows = 1 + max(1, len(shown))
    figure = plt.figure(figsize=(12, 2.6 * rows), constrained_layout=True)
    grid = figure.add_gridspec(rows, 3)
    trace = figure.add_subplot(grid[0, :])
    times = np.array([t for t, _ in joints]) - t0
    positions = np.array([p for _, p in joints if len(p) == len(joints[0][1])] or [[0.0]])
    trace.plot(times[: len(positions)], positions, linewidth=0.8, label=joint_names)
    columns = min(len(joint_names), 7)  # a row per seven joints keeps a 14-joint legend inside the figure
    trace.legend(fontsize=7, ncol=columns, loc='upper center', bbox_to_anchor=(0.5, -0.22), frameon=False)
    for label in labels:
        trace.axvspan(label.start_s - t0, label.end_s - t0, color=MODALITY_COLORS[label.modality], alpha=0.2)
        trace.text(
            label.start_s - t0,
            1.0,
            label.kind,
            transform=trace.get_xaxis_transform(),
            rotation=30,
            fontsize=7,
            va='bottom',
        )
    trace.set_xlabel('time since bag start (s)')
    trace.set_ylabel('joint position (rad)')
    trace.set_xlim(0, times[-1])
    frame_times = np.array([t for t, _, _ in frames])

    def show(axis, t, title):
        index = int(np.clip(np.searchsorted(frame_times, t), 0, len(frames) - 1))
        _, data, msgtype = frames[index]
        axis.imshow(full_frame_rgb(parse(data, msgtype), msgtype), cmap='gray')
        axis.set_title(f'{title}  t={frame_times[index] - t0:.1f} s', fontsize=9)
        axis.axis('off')

    if shown:
        for row, label in enumerate(shown, start=1):
            show(figure.add_subplot(grid[row, 0]), label.start_s - 1.0, f'{label.kind}: before')
            show(
                figure.add_subplot(grid[row, 1]), label.start_s + min(1.0, (label.end_s - label.start_s) / 2), 'during'
            )
            show(figure.add_subplot(grid[row, 2]), label.end_s + 1.0, 'after')
    else:
        for column, fraction in enumerate((0.2, 0.5, 0.8)):
            show(figure.add_subplot(grid[1, column]), t0 + fraction * times[-1], 'normal')
    figure.savefig(png, dpi=80)
    plt.close(figure)
