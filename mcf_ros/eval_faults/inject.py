"""Write evaluation faults into a normal bag: `mcf inject`.

One pass reads the joint states to learn which joints move (`JointProfile`); the episodes are laid
out after a lead-in, a set gap apart and clear of the bag's own labelled faults; a second pass
copies every message, rewriting the camera or joint stream inside each episode (times on the
header-stamp clock). The bag's faults.csv gains one row per episode. An episode that would change
no message (its joint never arrives, say) is an error, not a silent no-op; a message that cannot be
read is copied as it was, and counted.
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mcf_ros.data.bags import BagReader, bag_writer
from mcf_ros.data.images import CAMERA_TYPES, COMPRESSED_IMAGE, compressed_format, full_frame_rgb
from mcf_ros.data.labels import FaultLabel, read_labels, write_labels
from mcf_ros.data.messages import (
    JOINT_STATE,
    compressed_image_cdr,
    image_cdr,
    joint_state_cdr,
    joint_state_fields,
    parse,
    stamp_ns,
)
from mcf_ros.data.windows import RejectedInputError
from mcf_ros.errors import UserError
from mcf_ros.eval_faults.camera import CAMERA_KINDS
from mcf_ros.eval_faults.catalogue import EVAL_FAULTS
from mcf_ros.eval_faults.kinematics import JOINT_KINDS, JointProfile

LEAD_IN_S = 6.0
EPISODE_S = 3.0
GAP_S = 9.0  # normal running between two episodes, and around the bag's own faults
_FROM_RGB = {'bgr8': cv2.COLOR_RGB2BGR, 'mono8': cv2.COLOR_RGB2GRAY, 'rgba8': cv2.COLOR_RGB2RGBA}
_FROM_RGB['bgra8'] = cv2.COLOR_RGB2BGRA


@dataclass
class Episode:
    """One scheduled fault: its label, the fault with its parameters drawn, and how many messages it rewrote."""

    label: FaultLabel
    fault: object  # a camera or joint kind, its parameters drawn
    changed: int = 0  # messages rewritten

    def active(self, stamp_s: float) -> bool:
        """Return whether a message stamped `stamp_s` falls inside the episode."""
        return self.label.start_s <= stamp_s < self.label.end_s


@dataclass
class Injection:
    """What `inject_bag` wrote.

    The new labels, the kinds left out (kind -> why), and per topic the messages that could not be
    read and were copied as they were.
    """

    labels: list[FaultLabel]
    skipped: dict[str, str] = field(default_factory=dict)
    unreadable: Counter = field(default_factory=Counter)


def parse_kinds(text: str) -> list[str]:
    """Return the kinds named in a comma-separated list; UserError for an unknown one."""
    kinds = [name for name in text.split(',') if name]
    unknown = [name for name in kinds if name not in EVAL_FAULTS]
    if unknown or not kinds:
        raise UserError(
            f'unknown evaluation fault {", ".join(unknown) or "(none)"}; choose from {", ".join(EVAL_FAULTS)}'
        )
    return kinds


def joint_profile(bag: BagReader) -> tuple[JointProfile, float, float]:
    """Return the joints' profile and the first and last joint-state header stamps (s), unreadable ones passed over."""
    low, high, total_abs, count, effort_low, effort_high = {}, {}, {}, {}, {}, {}
    first = last = None
    for message in bag.messages([t for t, kind in bag.topics.items() if kind == JOINT_STATE]):
        try:
            stamp, names, position, _, effort = joint_state_fields(message.data)
        except RejectedInputError:
            continue
        first = stamp if first is None else min(first, stamp)
        last = stamp if last is None else max(last, stamp)
        for index, name in enumerate(names):
            if index < len(position) and np.isfinite(position[index]):
                value = float(position[index])
                low[name], high[name] = min(low.get(name, value), value), max(high.get(name, value), value)
                total_abs[name] = total_abs.get(name, 0.0) + abs(value)
                count[name] = count.get(name, 0) + 1
            if index < len(effort) and np.isfinite(effort[index]):
                value = float(effort[index])
                effort_low[name] = min(effort_low.get(name, value), value)
                effort_high[name] = max(effort_high.get(name, value), value)
    if first is None:
        raise UserError(f'{bag.path}: no joint states to take the episode times from')
    profile = JointProfile(
        travel={name: high[name] - low[name] for name in low},
        mean_abs_position={name: total_abs[name] / count[name] for name in low},
        effort_range={name: effort_high.get(name, 0.0) - effort_low.get(name, 0.0) for name in low},
    )
    return profile, first / 1e9, last / 1e9


def schedule(
    kinds: list[str], start_s: float, end_s: float, existing: list[FaultLabel], episode_s: float, gap_s: float
) -> list[FaultLabel]:
    """Lay the episodes out one after another, each clear of the others and of the bag's own faults by `gap_s`."""
    labels, t = [], start_s + LEAD_IN_S
    for kind in kinds:
        clash = next((old for old in existing if old.covers(t - gap_s, t + episode_s + gap_s)), None)
        while clash is not None:
            t = clash.end_s + gap_s
            clash = next((old for old in existing if old.covers(t - gap_s, t + episode_s + gap_s)), None)
        if t + episode_s + gap_s > end_s:
            needed = len(kinds) * (episode_s + gap_s) + LEAD_IN_S
            raise UserError(
                f'the bag ends after {len(labels)} of {len(kinds)} episodes: {len(kinds)} episodes of {episode_s:g} s '
                f'{gap_s:g} s apart need at least {needed:.0f} s of recording, besides its own faults'
            )
        labels.append(FaultLabel(t, t + episode_s, kind, EVAL_FAULTS[kind].modality))
        t += episode_s + gap_s
    return labels


def inject_bag(
    source: str | Path,
    out: str | Path,
    kinds: list[str],
    seed: int = 0,
    episode_s: float = EPISODE_S,
    gap_s: float = GAP_S,
    drift_rate_rad_s: float | None = None,
    skip_inapplicable: bool = False,
) -> Injection:
    """Copy `source` to `out` with one episode of each kind in `kinds`.

    A kind the bag cannot carry (an effort fault where no joint reports effort, a camera fault
    without a camera) is a UserError, or with `skip_inapplicable` left out and named in the result.
    """
    rng = np.random.default_rng(seed)
    with BagReader(source) as bag:
        profile, first_s, last_s = joint_profile(bag)
        size = camera_size(bag)
        skipped = {}
        for kind in dict.fromkeys(kinds):
            reason = _inapplicable(kind, profile, size, drift_rate_rad_s)
            if reason and not skip_inapplicable:
                raise UserError(f'{source}: {reason}')
            if reason:
                skipped[kind] = reason
        existing = read_labels(source)
        episodes = []
        chosen = [kind for kind in kinds if kind not in skipped]
        for label in schedule(chosen, first_s, last_s, existing, episode_s, gap_s):
            episode_rng = np.random.default_rng(rng.integers(2**63))
            if label.kind in CAMERA_KINDS:
                fault = CAMERA_KINDS[label.kind](episode_rng, *size)
            else:
                fault = JOINT_KINDS[label.kind](episode_rng, profile, drift_rate_rad_s)
            episodes.append(Episode(label, fault))
        unreadable = Counter()
        with bag_writer(out) as writer:
            for message in bag.messages():
                try:
                    data = rewrite(message.msgtype, message.data, episodes)
                except RejectedInputError:
                    data = message.data
                    unreadable[message.topic] += 1
                writer.add_topic(message.topic, message.msgtype)
                writer.write(message.topic, message.stamp_ns, data)
    unchanged = [episode.label.kind for episode in episodes if not episode.changed]
    if unchanged:
        raise UserError(f'{out}: the {", ".join(unchanged)} episode changed no message (its stream is absent there)')
    labels = [episode.label for episode in episodes]
    write_labels(out, sorted([*existing, *labels], key=lambda label: label.start_s))
    return Injection(labels, skipped, unreadable)


def _inapplicable(kind: str, profile: JointProfile, size: tuple[int, int] | None, rate: float | None) -> str | None:
    """Return why a kind cannot act on this bag, or None: a trial draw with a throwaway generator."""
    if kind in CAMERA_KINDS:
        return None if size is not None else f'no camera topic for {kind}'
    try:
        JOINT_KINDS[kind](np.random.default_rng(0), profile, rate)
    except ValueError as err:
        return str(err)
    return None


def camera_size(bag: BagReader) -> tuple[int, int] | None:
    """Return the (width, height) of the bag's first readable camera frame, or None without one."""
    topics = [topic for topic, kind in bag.topics.items() if kind in CAMERA_TYPES]
    for message in bag.messages(topics):
        frame = full_frame_rgb(parse(message.data, message.msgtype), message.msgtype)
        if frame is not None:
            return frame.shape[1], frame.shape[0]
    return None


def rewrite(msgtype: str, data: bytes, episodes: list[Episode]) -> bytes:
    """Return one message as the faulty sensors send it during the episodes active at its stamp.

    Raises RejectedInputError for a message that cannot be read (the caller copies it as it was).
    """
    if msgtype == JOINT_STATE:
        stamp, names, position, velocity, effort = joint_state_fields(data)
        active = [e for e in episodes if e.label.kind in JOINT_KINDS and e.active(stamp / 1e9)]
        if not active:
            return data
        channels = (position, velocity, effort)
        readings = {name: [float(c[i]) if i < len(c) else np.nan for c in channels] for i, name in enumerate(names)}
        for episode in active:
            episode.fault(stamp / 1e9, stamp / 1e9 - episode.label.start_s, readings)
            episode.changed += 1
        arrays = [
            np.array([readings[name][k] for name in names]) if len(channels[k]) else channels[k] for k in range(3)
        ]
        return joint_state_cdr(stamp, list(names), *arrays)
    if msgtype not in CAMERA_TYPES:
        return data
    message = parse(data, msgtype)
    stamp_s = stamp_ns(message) / 1e9
    active = [e for e in episodes if e.label.kind in CAMERA_KINDS and e.active(stamp_s)]
    if not active:
        return data
    frame = full_frame_rgb(message, msgtype)
    if frame is None:
        raise RejectedInputError('image_decode', 'the frame cannot be read')
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    for episode in active:
        frame = episode.fault(frame, stamp_s - episode.label.start_s)
        episode.changed += 1
    return _frame_cdr(message, msgtype, frame)


def _frame_cdr(message, msgtype: str, rgb: np.ndarray) -> bytes:
    """Serialize a rewritten frame the way the source camera sent it: same encoding or compression."""
    stamp, frame_id = stamp_ns(message), message.header.frame_id
    if msgtype == COMPRESSED_IMAGE:
        extension = '.jpg' if compressed_format(message.format) == 'jpeg' else '.png'
        encoded = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
        return compressed_image_cdr(stamp, message.format, encoded, frame_id)
    conversion = _FROM_RGB.get(message.encoding)
    pixels = cv2.cvtColor(rgb, conversion) if conversion is not None else rgb
    return image_cdr(stamp, np.ascontiguousarray(pixels), frame_id, message.encoding)
