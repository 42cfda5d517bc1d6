"""The monitor's /diagnostics status: level and mode, rates, drops, rejects and ignored input, latency, model.

Every value is a string, as diagnostic_msgs/KeyValue holds (the real diagnostic_updater refuses
anything else).
"""

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus

from mcf_ros.ros.seams import BACKENDS

INACTIVE = 'inactive: configure and activate the node (or start with --autostart)'


def fill_status(stat, monitor):
    """Fill a DiagnosticStatusWrapper from the monitor's state; return it."""
    if monitor.error:
        stat.summary(DiagnosticStatus.ERROR, monitor.error)
    elif not monitor.scoring:
        stat.summary(DiagnosticStatus.WARN, INACTIVE)
    else:
        levels = {'nominal': DiagnosticStatus.OK, 'stale': DiagnosticStatus.STALE}
        stat.summary(levels.get(monitor.mode, DiagnosticStatus.WARN), monitor.mode)
    counts = monitor.counts
    values = {'mode': monitor.mode}
    now = time.monotonic()
    for stream in ('frames', 'joint_states'):
        count, since = monitor.rate_marks[stream]
        values[f'{stream}_hz'] = f'{(counts[stream] - count) / max(now - since, 1e-9):.1f}'
        monitor.rate_marks[stream] = (counts[stream], now)
    worker = monitor.worker
    values['windows_submitted'] = worker.submitted if worker else 0
    values['windows_scored'] = worker.done if worker else 0
    values['windows_dropped'] = worker.dropped if worker else 0
    values['inference_failures'] = worker.failures if worker else 0
    if worker and worker.last_error:
        values['last_inference_error'] = worker.last_error
    closed = counts['frames_matched'] + counts['frames_without_joints']
    values['frames_unmatched'] = counts['frames_valid'] - closed
    values['windows_warming_up'] = counts['windows_warming_up']
    values['internal_errors'] = counts['internal_errors']
    values['joint_states_ignored'] = counts['joint_states_ignored']
    if monitor.ignored_joints:
        values['ignored_joints'] = ', '.join(sorted(monitor.ignored_joints))
    for key in sorted(k for k in counts if k.startswith('rejected_')):
        values[key] = counts[key]
    values['episodes'] = counts['episodes']
    writer, clips = monitor.clip_writer, monitor.clips
    if writer is not None:
        values.update(writer.counts)
        values['clip_input_trimmed'] = clips.trimmed if clips else 0
        if writer.last_error:
            values['last_clip_error'] = writer.last_error
    latency = monitor.latency_snapshot()
    if len(latency):
        values['latency_p50_ms'] = f'{np.percentile(latency, 50):.2f}'
        values['latency_p99_ms'] = f'{np.percentile(latency, 99):.2f}'
    detector = monitor.detector
    values['device'] = str(detector.device) if detector else 'none'
    values['inference_backend'] = detector.backend if detector else 'none'
    values['model_id'] = monitor.model_id if detector else 'none'
    if monitor.feedback:
        values['feedback_marks'] = monitor.feedback['marks']
        values['feedback_raised'] = monitor.feedback['raised']
        values['feedback_model'] = monitor.feedback['model']
    values['image_transport'] = monitor.param('image_transport')
    values['backends'] = ', '.join(f'{k}={v}' for k, v in BACKENDS.items())
    for key, value in values.items():
        stat.add(key, str(value))
    return stat
