"""`mcf demo`: the whole chain on a simulated cell, over real DDS, ending in a report.

1. simulate the cell: normal running with a fault episode (`cell/`, labelled);
2. the shipped default-cell model, or with `train` a model trained on a fresh normal run;
3. start the monitor node and a recorder as their own processes, and replay the bag into the
   node over DDS (confined to this host and a private domain);
4. read back what the node published (`monitor_output/`), and the clip it wrote of each flag
   episode (`clips/`, with `episodes.jsonl`);
5. write the report (`report/report.md` and PNGs) and return the summary.
The flags in the report are the node's, as received over DDS; nothing is scored offline.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcf_ros import ros_env
from mcf_ros.data.bags import BagReader
from mcf_ros.data.clips import EPISODE_LOG
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import parse, stamp_ns
from mcf_ros.errors import UserError
from mcf_ros.model.artifact import load_artifact
from mcf_ros.model.evaluation import detection_metrics
from mcf_ros.model.report import fault_rows, write_report
from mcf_ros.model.scoring import BLAME
from mcf_ros.paths import share_dir
from mcf_ros.presentation import MODES
from mcf_ros.processes import interrupt, wait_for_text
from mcf_ros.progress import ProgressLine

FAST_FAULTS = ('camera_black', 'collision', 'joint_noise')
FULL_FAULTS = ('camera_black', 'camera_occlusion', 'collision', 'heavy_payload', 'joint_noise', 'joint_drift')
TAIL_S = {True: 4.0, False: 8.0}  # normal running after the last fault's slack
TRAIN_S = {True: 180.0, False: 600.0}
TRAIN_EPOCHS = {True: 8, False: 25}
OUTPUTS = ['/mcf_monitor/scores', '/mcf_monitor/anomaly', '/diagnostics']


@dataclass
class DemoResult:
    """What the demo found, from the node's own output."""

    rows: list[dict]
    metrics: dict
    report: Path
    recorded: Path
    episodes: list[dict]  # the node's episode log, one per clip


def _mcf(*args: str) -> list[str]:
    return [sys.executable, '-m', 'mcf_ros', *args]


def simulate(out: Path, faults: list[str], duration_s: float, seed: int, line: ProgressLine) -> None:
    """Simulate the cell into a labelled bag, showing progress."""
    from mcf_ros.sim.cell import SimConfig
    from mcf_ros.sim.to_bag import simulate_bag

    def progress(done_s: float) -> None:
        line.update(f'{done_s:.0f} / {duration_s:.0f} s simulated')

    simulate_bag(SimConfig(duration_s=duration_s, seed=seed, faults=faults), out, progress)


def train(out: Path, fast: bool, line: ProgressLine, log: Callable[[str], None]) -> Path:
    """Simulate normal running and train a model on it; return the model path."""
    from mcf_ros.model.training import TrainConfig
    from mcf_ros.model.workflow import train_from_bags

    normal = out / 'normal'
    simulate(normal, [], TRAIN_S[fast], seed=11, line=line)
    model = out / 'model.mcf'
    epochs = TRAIN_EPOCHS[fast]

    def progress(epoch: int, train_loss: float, holdout_loss: float) -> None:
        line.update(f'training epoch {epoch}/{epochs}  loss {train_loss:.4f}')

    train_from_bags(
        [str(normal)], str(model), '/camera/image_raw', '/joint_states', TrainConfig(epochs=epochs, seed=0),
        log=log, progress=progress,
    )  # fmt: skip
    return model


def monitor_bag(bag: Path, model: Path, out: Path, line: ProgressLine) -> Path:
    """Run the node and a recorder, replay `bag` into the node over DDS, and return the recording."""
    recorded = out / 'monitor_output'
    logs = out / 'logs'
    logs.mkdir(exist_ok=True)
    node_log, record_log, replay_log = logs / 'monitor.log', logs / 'record.log', logs / 'replay.log'
    node_command = [sys.executable, '-m', 'mcf_ros.ros.monitor', '--autostart', '--ros-args',
                    '-p', f'model_path:={model}', '-p', 'use_sim_time:=true',
                    '-p', f'clip_dir:={out / "clips"}']  # fmt: skip
    with node_log.open('w') as node_out, record_log.open('w') as record_out:
        node = subprocess.Popen(node_command, stdout=node_out, stderr=subprocess.STDOUT)
        recorder = subprocess.Popen(
            _mcf('record', str(recorded), '--topics', *OUTPUTS), stdout=record_out, stderr=subprocess.STDOUT
        )
    try:
        line.update('starting the monitor node and the recorder')
        wait_for_text(node_log, 'active on', node, 'the monitor node')
        wait_for_text(record_log, 'recording /mcf_monitor/scores', recorder, 'the recorder')
        with BagReader(bag) as reader:
            span_s = (reader.end_ns - reader.start_ns) / 1e9
        with replay_log.open('w') as replay_out:
            replay = subprocess.Popen(
                _mcf('replay', str(bag), '--wait-for-subscribers', '30', '--quiet'),
                stdout=replay_out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            started = time.monotonic()
            while replay.poll() is None:
                line.update(
                    f'replaying into the node over DDS: {min(time.monotonic() - started, span_s):.0f} / {span_s:.0f} s'
                )
                time.sleep(0.2)
        if replay.returncode != 0:
            raise UserError(f'the replay failed; its log ({replay_log}):\n{replay_log.read_text()[-2000:]}')
        time.sleep(1.5)  # the last windows are scored and delivered
    finally:
        interrupt(recorder)
        interrupt(node)
    return recorded


def read_node_output(recorded: Path) -> tuple[dict, list[float]]:
    """Return the node's per-window values as arrays (the `mcf eval` layout) and its latencies (ms)."""
    rows = []
    with BagReader(recorded) as bag:
        for message in bag.messages(['/mcf_monitor/scores']):
            parsed = parse(message.data, message.msgtype)
            rows.append((stamp_ns(parsed) / 1e9, dict(zip(parsed.name, parsed.position, strict=True))))
    if not rows:
        raise UserError(f'the node published no scores; see {recorded.parent / "logs" / "monitor.log"}')
    rows.sort(key=lambda row: row[0])
    fields = [values for _, values in rows]
    names = [key for key in fields[0] if not key.removeprefix('concept_').isdigit()]  # not the vector a
    scored = {key: np.array([f[key] for f in fields]) for key in names}
    scored['end_s'] = np.array([t for t, _ in rows])
    scored['is_anomaly'] = scored['is_anomaly'] > 0.5
    scored['blame'] = np.array([BLAME[int(b)] for b in scored['blame']])
    scored['mode'] = np.array([MODES[int(m)] for m in scored['mode']])
    return scored, [f['latency_ms'] for f in fields]


def read_episode_log(clip_dir: Path) -> list[dict]:
    """Return the node's episode records (`episodes.jsonl`); none if it wrote no clip."""
    log = clip_dir / EPISODE_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_demo(
    out: Path, fast: bool, train_model: bool, faults: list[str] | None, log: Callable[[str], None]
) -> DemoResult:  # fmt: skip
    """Run the whole chain; return what the node found and where the report is."""
    from mcf_ros.sim.cell import required_duration

    faults = list(faults or (FAST_FAULTS if fast else FULL_FAULTS))
    try:
        duration_s = required_duration(faults) + TAIL_S[fast]
    except ValueError as err:
        raise UserError(str(err)) from None
    out.mkdir(parents=True, exist_ok=True)
    domain, _held_until_exit = ros_env.claim_domain(os.environ)
    os.environ.update(ros_env.isolated(domain, tempfile.mkdtemp(prefix='mcf_demo_ros_log_')))
    ros_env.remove_orphaned_shm_segments()
    bag = out / 'cell'
    if bag.exists():
        raise UserError(f'{out} already holds a demo run; choose another --out')
    started = time.monotonic()

    line = ProgressLine('demo 1/4 simulate')
    simulate(bag, faults, duration_s, seed=7, line=line)
    line.finish(f'simulated {duration_s:.0f} s with {", ".join(faults)} -> {bag}')
    line = ProgressLine('demo 2/4 model')
    model = train(out, fast, line, log) if train_model else share_dir() / 'models' / 'ur5e_cell.mcf'
    artifact = load_artifact(model)
    line.finish(f'model {artifact.model_id} ({model})')
    line = ProgressLine('demo 3/4 monitor')
    recorded = monitor_bag(bag, model, out, line)
    episodes = read_episode_log(out / 'clips')
    line.finish(f'node output recorded -> {recorded}; {len(episodes)} clips -> {out / "clips"}')
    line = ProgressLine('demo 4/4 report')
    scored, latency_ms = read_node_output(recorded)
    labels = read_labels(bag)
    spec = artifact.header['window']
    metrics = detection_metrics(scored, labels, spec['length_s'], spec['camera_hz'])
    metrics['model_id'] = artifact.model_id
    metrics['latency_ms'] = {
        'p50': float(np.percentile(latency_ms, 50)), 'p99': float(np.percentile(latency_ms, 99)),
        'windows': len(latency_ms),
    }  # fmt: skip
    metrics['demo_seconds'] = time.monotonic() - started
    write_report(
        out / 'report', scored, metrics, labels, spec['length_s'], bag, '/camera/image_raw',
        source='the monitor node over DDS (mcf demo)',
    )  # fmt: skip
    line.finish(f'report -> {out / "report" / "report.md"}')
    return DemoResult(fault_rows(scored, labels), metrics, out / 'report' / 'report.md', recorded, episodes)


def summary_table(result: DemoResult) -> str:
    """Return the terminal summary: each fault's outcome, false alarms and latency."""
    lines = [f'{"fault":20} {"modality":11} {"detected":9} {"delay":>7}  blamed']
    for row in result.rows:
        delay = '-' if row['delay_s'] is None else f'{row["delay_s"]:.2f} s'
        detected = 'yes' if row['detected'] else 'NO'
        lines.append(f'{row["kind"]:20} {row["modality"]:11} {detected:9} {delay:>7}  {row["blamed"] or "-"}')
    metrics = result.metrics
    detected = sum(row['detected'] for row in result.rows)
    lines += [
        f'{detected}/{len(result.rows)} faults detected; {metrics["false_alarm_episodes"]} false alarms in '
        f'{metrics["normal_hours"] * 3600:.0f} s of normal running',
        f'latency frame -> scores in the node: p50 {metrics["latency_ms"]["p50"]:.1f} ms, '
        f'p99 {metrics["latency_ms"]["p99"]:.1f} ms; demo took {metrics["demo_seconds"]:.0f} s',
        f'clips: {len(result.episodes)} flag episodes, each in a bag that replays ({EPISODE_LOG} beside them):',
        *(f'  {e["blame"]:11} {e["duration_s"]:5.1f} s  {e["clip"] or e.get("clip_missing")}' for e in result.episodes),
        f'report: {result.report}',
    ]
    return '\n'.join(lines)
