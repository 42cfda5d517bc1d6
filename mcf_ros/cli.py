"""The `mcf` command: one entry point with a subcommand per job (see DESIGN.md for the contract).

Heavy imports (rclpy, torch) happen inside the subcommands, so `mcf --help` is instant and a
bad argument is reported before anything joins the ROS graph.
"""

import argparse
import sys
from pathlib import Path

from mcf_ros import __version__
from mcf_ros.errors import UserError
from mcf_ros.progress import ProgressLine

RECORDER_NODE = 'mcf_record'
EXIT_VERDICT_NO = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, naming the command."""

    def error(self, message: str):
        """Print `PROG: error: MESSAGE (see PROG --help)` and exit with the user-error code."""
        self.exit(EXIT_USER_ERROR, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def to_stderr(text: str) -> None:
    """Print a progress or log line on stderr, leaving stdout to the results."""
    print(text, file=sys.stderr)


def number(text: str) -> float:
    """Parse a float, with a plain message for anything else."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None


def positive_float(text: str) -> float:
    """Parse a float > 0."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {text}')
    return value


def positive_int(text: str) -> int:
    """Parse an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {text}')
    return value


def image_side(text: str) -> int:
    """Parse an image side in pixels, 8 to 4096."""
    value = positive_int(text)
    if not 8 <= value <= 4096:
        raise argparse.ArgumentTypeError(f'must be 8 to 4096 pixels, got {text}')
    return value


def model_input_side(text: str) -> int:
    """Parse the model's input side: a multiple of 16 pixels (the encoder halves it four times), up to 512."""
    value = positive_int(text)
    if value % 16 or value > 512:
        raise argparse.ArgumentTypeError(f'must be a multiple of 16 up to 512, got {text}')
    return value


def output_path(path: str | Path, flag: str, directory: bool) -> Path:
    """Check, before any work, that `path` can be written (parents are made as needed); return it.

    Raises UserError when the path or one of its parents is of the wrong kind.
    """
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        raise UserError(f'{flag}: {path} is {"a file" if directory else "a directory"}')
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f'{flag}: cannot write {path}: {parent} is a file')
    return path


def non_negative_float(text: str) -> float:
    """Parse a float >= 0."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
    return value


def run_replay(args: argparse.Namespace) -> int:
    """Publish a bag over DDS on its recorded timing, with /clock."""
    from mcf_ros.data.bags import BagReader

    with BagReader(args.bag) as bag:
        bag.check_topics(args.topics)
        from mcf_ros.ros.player import BagPlayer, ReplayOptions
        from mcf_ros.ros.runtime import ros_node, stop_event

        options = ReplayOptions(
            rate=args.rate,
            loop=args.loop,
            start_offset_s=args.start_offset,
            topics=args.topics,
            clock_hz=args.clock_hz,
            wait_for_subscribers_s=args.wait_for_subscribers,
            progress=not args.quiet,
        )
        stop = stop_event()
        with ros_node('mcf_replay') as node:
            stats = BagPlayer(node, bag, options).run(stop)
        held = sum(bag.topic_counts[topic] for topic in stats.published)
    published = sum(stats.published.values())
    counts = ', '.join(f'{topic} {n}' for topic, n in stats.published.items())
    if stats.reached_end and not args.loop and not args.start_offset and published < held:
        raise UserError(
            f'replayed {published} of the {held} messages {args.bag} holds ({counts}): the rest cannot be read'
        )
    print(f'replayed {published} messages ({counts})')
    return 0


def run_record(args: argparse.Namespace) -> int:
    """Record topics to an MCAP bag until --duration passes or SIGINT/SIGTERM arrives."""
    from mcf_ros.data.bags import bag_writer
    from mcf_ros.ros.runtime import full_topic_name

    topics = [full_topic_name(topic, RECORDER_NODE) for topic in args.topics]  # 'a' records '/a', as ros2 bag does
    output_path(args.out, 'output', directory=True)
    with bag_writer(args.out, 'mcap') as writer:
        from rclpy.executors import SingleThreadedExecutor

        from mcf_ros.ros.recorder import Recorder
        from mcf_ros.ros.runtime import ros_node, stop_event

        stop = stop_event()
        with ros_node(RECORDER_NODE) as node:
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            stats = Recorder(node, writer, topics).run(executor, stop, args.duration)
            executor.shutdown()
    counts = ', '.join(f'{topic} {n}' for topic, n in stats.recorded.items())
    print(f'recorded {stats.total} messages ({counts}) to {args.out}')
    return 0


def run_sim(args: argparse.Namespace) -> int:
    """Simulate the cell into a labelled MCAP bag, or list the fault catalogue."""
    from mcf_ros.faults.catalogue import CATALOGUE

    if args.list_faults:
        for spec in CATALOGUE.values():
            print(f'{spec.name:24} {spec.modality:11} {spec.duration_s:4.1f} s  {spec.description}')
        return 0
    from mcf_ros.sim.drivers import HABITS, parse_habits

    if args.list_drivers:
        for name, description in HABITS.items():
            print(f'{name:14} {description}')
        return 0
    from mcf_ros.sim.designs import CELLS

    if args.list_cells:
        for design in CELLS.values():
            print(f'{design.name:6} tasks {", ".join(design.tasks):20} {design.description}')
        return 0
    try:
        habits = parse_habits(args.driver)
    except ValueError as err:
        raise UserError(f'--driver: {err}') from None
    if not args.out:
        raise UserError('--out is required (or use --list-faults, --list-drivers or --list-cells)')
    output_path(args.out, '--out', directory=True)
    if args.preview:
        output_path(args.preview, '--preview', directory=False)
    import time

    from mcf_ros.sim.cell import SimConfig
    from mcf_ros.sim.to_bag import simulate_bag

    try:
        config = SimConfig(
            duration_s=args.duration,
            seed=args.seed,
            task=args.task,
            width=args.width,
            height=args.height,
            fault_duration_s=args.fault_duration,
            cell=args.cell,
            light=args.light,
            pacing=args.pacing,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    config.faults = [name for name in args.faults.split(',') if name]
    if config.faults == ['all']:  # a dropped part needs a task that carries parts
        config.faults = [name for name in CATALOGUE if config.task == 'pick_place' or name != 'dropped_payload']
    started = time.monotonic()
    line = ProgressLine('sim')

    def progress(sim_s: float) -> None:
        speed = sim_s / (time.monotonic() - started)
        line.update(f'{sim_s:6.1f} / {args.duration:g} s simulated, {speed:.1f}x real time')

    try:
        labels = simulate_bag(config, args.out, progress, habits)
    except ValueError as err:
        raise UserError(str(err)) from None
    wall = time.monotonic() - started
    line.finish(f'wrote {args.out}: {args.duration:g} s in {wall:.1f} s wall ({args.duration / wall:.1f}x real time)')
    for label in labels:
        print(f'  {label.kind:24} {label.modality:11} {label.start_s:.3f} .. {label.end_s:.3f}', file=sys.stderr)
    if args.preview:
        from mcf_ros.sim.preview import contact_sheet

        Path(args.preview).parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(args.out, args.preview)
        print(f'preview: {args.preview}', file=sys.stderr)
    return 0


def run_inject(args: argparse.Namespace) -> int:
    """Write evaluation faults (never used in training) into a copy of a normal bag, or list them."""
    from mcf_ros.eval_faults.catalogue import EVAL_FAULTS

    if args.list_faults:
        for kind in EVAL_FAULTS.values():
            print(f'{kind.name:22} {kind.modality:11} {kind.description}')
        return 0
    if not (args.bag and args.out):
        raise UserError('BAG and --out are required (or use --list-faults)')
    output_path(args.out, '--out', directory=True)
    from mcf_ros.eval_faults.inject import inject_bag, parse_kinds

    every = args.faults == 'all'  # every kind this bag can carry; the others are named and left out
    kinds = list(EVAL_FAULTS) if every else parse_kinds(args.faults)
    injection = inject_bag(
        args.bag, args.out, kinds, args.seed, args.episode_s, args.gap_s, args.drift_rate, skip_inapplicable=every
    )
    print(f'wrote {args.out}: {len(injection.labels)} evaluation fault episodes (faults.csv)')
    for kind, reason in injection.skipped.items():
        print(f'  left out {kind}: {reason}')
    for topic, count in injection.unreadable.items():
        print(f'  copied {count:,} unreadable messages on {topic} as they were')
    for label in injection.labels:
        print(f'  {label.kind:22} {label.modality:11} {label.start_s:.3f} .. {label.end_s:.3f}', file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train and calibrate on normal bags, write the artifact and print the calibration report."""
    from mcf_ros.model.inference import pick_device
    from mcf_ros.model.training import TrainConfig
    from mcf_ros.model.workflow import train_from_bags

    output_path(args.out, '--out', directory=False)
    device = str(pick_device(args.device))
    line = ProgressLine('train')
    config = TrainConfig(epochs=args.epochs, seed=args.seed)

    def progress(epoch: int, train_loss: float, holdout_loss: float) -> None:
        line.update(f'epoch {epoch}/{args.epochs}  loss {train_loss:.4f}  held-out {holdout_loss:.4f}')

    header = train_from_bags(
        args.bag, args.out, args.camera_topic, args.joint_topic, config, device, args.image_size,
        args.false_alarms_per_hour, log=to_stderr, progress=progress,
        resume=args.resume, joints=args.joints, use_cycle=not args.no_cycle, init_from=args.init_from,
    )  # fmt: skip
    training, calibration = header['training'], header['calibration']
    line.finish(f'{training["epochs"]} epochs in {training["seconds"]:.0f} s')
    print(f'model {header["weights_sha256"][:12]} -> {args.out}')
    print(f'  trained on {training["windows"]} windows, calibrated on {training["holdout_windows"]} held-out windows')
    target = calibration['target_false_alarms_per_hour']
    print(f'  threshold {calibration["threshold"]:.2f} (normal tail units) for <= {target:g} false alarm/h, '
          f'flag after {calibration["persistence"]} consecutive windows')  # fmt: skip
    print(f'  cycle channel {header["cycle_channel"]["reason"]}')
    for channel, centre in calibration['centre'].items():
        print(f'  {channel:19} normal 90th percentile {centre:.4g}  tail scale {calibration["scale"][channel]:.3g}')
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """Refit a model's scales, cycle and threshold on new normal bags (same weights); write a new artifact."""
    from mcf_ros.model.artifact import Artifact
    from mcf_ros.model.onnx_backend import onnx_beside
    from mcf_ros.model.recalibration import recalibrate

    output_path(args.out, '--out', directory=False)
    done = recalibrate(args.model, args.bag, args.out, args.false_alarms_per_hour, log=to_stderr)
    header, record = done.header, done.header['recalibration']
    calibration = header['calibration']
    print(f'model {Artifact(header, {}).model_id} -> {args.out} (the weights of {done.source_id}, recalibrated)')
    target = calibration['target_false_alarms_per_hour']
    print(
        f'  threshold {record["threshold_before"]:.2f} -> {calibration["threshold"]:.2f} (normal tail units, '
        f'the tail scales refitted too) for <= {target:g} false alarm/h'
    )
    print(
        f'  new held-out normal running ({done.held_out_minutes:.1f} min): model {done.source_id} scored '
        f'{done.source_above:.1%} of its windows above its threshold and raised {done.source_false_alarms} '
        f'false alarm(s); recalibrated, {done.new_false_alarms} (on the windows it was fitted to)'
    )
    print(f'  cycle channel {header["cycle_channel"]["reason"]}')
    if onnx_beside(args.model).is_file():
        print(f'  the ONNX file beside {args.model} names its model: `mcf export --onnx {args.out}` for this one')
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Report what a bag holds, whether it can train a model, and (with --model) whether it fits one.

    Exit 0 when the bag can train a model (with --model: fits it), 1 when it cannot, 2 for an unreadable bag.
    """
    from mcf_ros.data.inspection import inspect_bag
    from mcf_ros.data.preflight import describe, model_findings, pick_topics, training_verdict

    header = None
    if args.model:
        from mcf_ros.model.artifact import load_artifact

        header = load_artifact(args.model).header
    inspection = inspect_bag(args.bag)
    camera_topic, joint_topic = pick_topics(inspection, args.camera_topic, args.joint_topic)
    for line in describe(inspection):
        print(line)
    findings = training_verdict(inspection, camera_topic, joint_topic)
    blocked = any(finding.blocks for finding in findings)
    print(f'verdict: {"not trainable" if blocked else "trainable"}')
    for finding in findings:
        print(f'  {finding}')
    if header is None:
        return EXIT_VERDICT_NO if blocked else 0
    fits = model_findings(header, inspection, header['modalities']['kinematics']['topic'])
    misfit = any(finding.blocks for finding in fits)
    print(f'model {args.model}: {"does not fit" if misfit else "fits"}')
    for finding in fits:
        print(f'  {finding}')
    return EXIT_VERDICT_NO if misfit else 0


def run_eval(args: argparse.Namespace) -> int:
    """Score a bag offline and write the report."""
    import time

    from mcf_ros.data.labels import read_labels
    from mcf_ros.model.bag_eval import baseline_models, evaluate_bag, feature_baseline_metrics
    from mcf_ros.model.inference import pick_device
    from mcf_ros.model.report import write_report

    output_path(args.report, '--report', directory=True)
    device = str(pick_device(args.device))
    if args.baselines:
        from mcf_ros.model.feature_baseline import require_pyod

        require_pyod()
    started = time.monotonic()
    scored, metrics, windows, detector = evaluate_bag(args.model, args.bag, device)
    seconds = time.monotonic() - started
    metrics['eval_windows_per_s'] = len(windows) / seconds
    metrics['eval_speed_vs_real_time'] = metrics['eval_windows_per_s'] / detector.spec.camera_hz
    if args.baselines:
        models = baseline_models(args.model, device, log=to_stderr)
        metrics['baselines'] = {name: evaluate_bag(str(path), args.bag, device)[1] for name, path in models.items()}
        metrics['baselines']['pyod_ecod'] = feature_baseline_metrics(
            args.model, args.bag, windows, metrics['input']['camera_hz'], log=to_stderr
        )
    camera_topic = metrics['input']['camera_topic']
    paths = write_report(
        args.report, scored, metrics, read_labels(args.bag), detector.spec.length_s, args.bag, camera_topic
    )

    def show(value, fmt='{:.3f}'):
        return '-' if value is None else fmt.format(value)

    print(
        f'{metrics["n_windows"]} windows in {seconds:.1f} s ({metrics["eval_speed_vs_real_time"]:.0f}x real time; '
        f'{metrics["inference_backend"]})'
    )
    for note in metrics['input']['notes']:  # messages read but not used, by reason
        print(f'  {note}')
    print(f'AUROC {show(metrics["auroc"])}  AUPR {show(metrics["aupr"])}  F1 {show(metrics["f1"])}  '
          f'false alarms/h {show(metrics["false_alarms_per_hour"], "{:.2f}")}  '
          f'delay {show(metrics["detection_delay_s_median"], "{:.2f} s")}  '
          f'blame: sensor faults {show(metrics["blame_accuracy"], "{:.0%}")}, '
          f'physical {show(metrics["physical_blame_accuracy"], "{:.0%}")}')  # fmt: skip
    for path in paths:
        print(f'  {path}')
    if args.baselines:
        from mcf_ros.model.summary import markdown, summary_row

        rows = {'MCF': summary_row([metrics])}
        rows.update({name: summary_row([m]) for name, m in metrics['baselines'].items()})
        print(markdown(rows))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the model's evidence computation as ONNX, beside the model unless --out says otherwise."""
    from mcf_ros.model.artifact import load_artifact
    from mcf_ros.model.onnx_backend import export_onnx, onnx_beside

    artifact = load_artifact(args.onnx)  # a missing or corrupt model is one line, before the exporter starts
    out = output_path(args.out or onnx_beside(args.onnx), '--out', directory=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise UserError(f"exporting needs {err.name}: pip install 'mcf_ros[onnx]'") from None
    print(export_onnx(artifact, out))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Measure the monitor's latency against the DDS floor and the model alone, and print the table."""
    from mcf_ros.model.inference import pick_device
    from mcf_ros.ros.bench import run_bench as bench
    from mcf_ros.ros.bench import table

    if args.duration <= 0:
        raise UserError(f'--duration must be positive, got {args.duration}')
    if args.cells < 1:
        raise UserError(f'--cells must be at least 1, got {args.cells}')
    if args.model and not Path(args.model).is_file():
        raise UserError(f'model not found: {args.model}')
    if args.json:
        output_path(args.json, '--json', directory=False).parent.mkdir(parents=True, exist_ok=True)
    device = str(pick_device(args.device))
    results = bench(args.model, device, args.duration, args.json, args.cells, log=to_stderr)
    print(table(results))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Run the whole chain on a simulated cell and print the summary."""
    from mcf_ros.demo import run_demo as demo
    from mcf_ros.demo import summary_table

    faults = [name for name in args.faults.split(',') if name] if args.faults else None
    output_path(args.out, '--out', directory=True)
    result = demo(Path(args.out), args.fast, args.train, faults, log=to_stderr)
    print(summary_table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for `mcf` and all its subcommands."""
    parser = OneLineErrorParser(
        prog='mcf',
        description='Multimodal Concept Fusion robot-cell monitor: simulate, train, evaluate, replay, record.',
    )
    parser.add_argument('--version', action='version', version=f'mcf {__version__}')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND', parser_class=OneLineErrorParser)

    sim = commands.add_parser('sim', help='simulate a robot cell and write a labelled rosbag2 (MCAP)')
    sim.add_argument('--out', help='output bag directory (must not exist)')
    sim.add_argument('--duration', type=positive_float, default=60.0, help='simulated seconds (default 60)')
    sim.add_argument('--faults', default='', help="comma-separated fault names to inject, or 'all'")
    sim.add_argument('--seed', type=int, default=0, help='random seed; the same seed gives the same bag')
    sim.add_argument('--cell', default='ur5e', help='which simulated cell (default ur5e; --list-cells)')
    sim.add_argument('--task', help="the cell's program (default: the cell's first; --list-cells)")
    sim.add_argument(
        '--pacing',
        help="how cycles start: 'takt' (a fixed wait at home) or 'operator' (irregular waits and a lowered speed "
        "override for a while); default: the cell's",
    )  # fmt: skip
    sim.add_argument('--width', type=image_side, help="camera image width in pixels (default: the cell's)")
    sim.add_argument('--height', type=image_side, help="camera image height in pixels (default: the cell's)")
    sim.add_argument('--fault-duration', type=positive_float, help='seconds each fault is active (default: per fault)')
    sim.add_argument(
        '--light', type=positive_float, default=1.0, metavar='FACTOR',
        help="the cell's lamps at FACTOR times their brightness, a cell relit (default 1; 0.2 to 3)",
    )  # fmt: skip
    sim.add_argument('--list-faults', action='store_true', help='describe every fault and exit')
    sim.add_argument(
        '--driver', default='', metavar='HABITS', help='comma-separated driver habits to publish with (--list-drivers)'
    )
    sim.add_argument('--list-drivers', action='store_true', help='describe every driver habit and exit')
    sim.add_argument('--list-cells', action='store_true', help='describe every simulated cell and exit')
    sim.add_argument('--preview', metavar='PNG', help='also write a contact sheet of the bag')
    sim.set_defaults(run=run_sim)

    inject = commands.add_parser(
        'inject', help='copy a normal bag with evaluation faults (kinds training never injects) written in'
    )
    inject.add_argument('bag', nargs='?', help='a bag of normal running (simulated or recorded)')
    inject.add_argument('--out', help='output bag directory (must not exist)')
    inject.add_argument('--faults', default='all', help="comma-separated kinds (--list-faults), or 'all' (default)")
    inject.add_argument('--seed', type=int, default=0, help='random seed of the parameters and joints drawn')
    inject.add_argument('--episode-s', type=positive_float, default=3.0, help='seconds per episode (default 3)')
    inject.add_argument('--gap-s', type=positive_float, default=9.0, help='normal seconds between episodes (default 9)')
    inject.add_argument(
        '--drift-rate',
        type=positive_float,
        metavar='RAD_S',
        help='rate of joint_slow_drift (default: drawn, 0.005-0.1)',
    )
    inject.add_argument('--list-faults', action='store_true', help='describe every evaluation fault and exit')
    inject.set_defaults(run=run_inject)

    train = commands.add_parser('train', help='train and calibrate a model on bags of normal operation')
    train.add_argument('--bag', action='append', required=True, help='normal bag directory (repeatable)')
    train.add_argument('--out', required=True, help='model artifact to write')
    train.add_argument('--epochs', type=positive_int, default=25, help='training epochs (default 25)')
    train.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto', help='auto picks cuda when present')
    train.add_argument('--seed', type=int, default=0, help='seed for initialisation and failure injection')
    train.add_argument('--camera-topic', default='/camera/image_raw')
    train.add_argument('--joint-topic', default='/joint_states')
    train.add_argument(
        '--image-size', type=model_input_side, default=64, help='model input side in pixels (multiple of 16)'
    )
    train.add_argument(
        '--false-alarms-per-hour', type=positive_float, default=1.0, help='calibration target (default 1)'
    )
    train.add_argument('--resume', action='store_true', help="continue an interrupted run from OUT's .ckpt")
    train.add_argument(
        '--init-from', metavar='MODEL',
        help="start from another model's weights (another cell's: what fits; the rest starts fresh)",
    )  # fmt: skip
    train.add_argument(
        '--joints', type=lambda text: [name for name in text.split(',') if name], metavar='A,B',
        help='the joints to model (default: every joint that moves in the training data)',
    )  # fmt: skip
    train.add_argument(
        '--no-cycle', action='store_true',
        help='keep the cycle channel silent (a program without a fixed cycle, or one that changes pace)',
    )  # fmt: skip
    train.set_defaults(run=run_train)

    calibrate = commands.add_parser(
        'calibrate', help="refit a model's scales, cycle and threshold on new normal bags, keeping its weights"
    )
    calibrate.add_argument('--model', required=True, help='model artifact to recalibrate (left as it is)')
    calibrate.add_argument('--bag', action='append', required=True, help='new normal bag directory (repeatable)')
    calibrate.add_argument('--out', required=True, help='new model artifact to write')
    calibrate.add_argument(
        '--false-alarms-per-hour', type=positive_float, help="calibration target (default: the model's)"
    )
    calibrate.set_defaults(run=run_calibrate)

    inspect = commands.add_parser(
        'inspect',
        help='what a bag holds, and whether it can train (or fits) a model; exit 1 if not',
    )
    inspect.add_argument('bag', help='rosbag2 directory (MCAP or sqlite3)')
    inspect.add_argument('--model', help='also say whether the bag fits this model artifact')
    inspect.add_argument('--camera-topic', help='default /camera/image_raw (or its /compressed), or the only camera')
    inspect.add_argument('--joint-topic', help='default /joint_states, or the only JointState topic')
    inspect.set_defaults(run=run_inspect)

    evaluate = commands.add_parser('eval', help='score a bag offline and write metrics, scores.csv and plots')
    evaluate.add_argument('--model', required=True, help='model artifact')
    evaluate.add_argument('--bag', required=True, help='bag directory, with faults.csv for labels')
    evaluate.add_argument('--report', required=True, help='report directory to write')
    evaluate.add_argument('--baselines', action='store_true', help='also train and score the baselines')
    evaluate.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    evaluate.set_defaults(run=run_eval)

    replay = commands.add_parser('replay', help='publish a bag over DDS on its recorded timing, with /clock')
    replay.add_argument('bag', help='rosbag2 directory (MCAP or sqlite3)')
    replay.add_argument('--rate', type=positive_float, default=1.0, help='speed factor (default 1)')
    replay.add_argument('--loop', action='store_true', help='start over at the end, until interrupted')
    replay.add_argument(
        '--start-offset', type=non_negative_float, default=0.0, help='skip the first S seconds of the bag'
    )
    replay.add_argument('--topics', nargs='+', help='replay only these topics (default: all)')
    replay.add_argument(
        '--clock-hz',
        type=non_negative_float,
        default=100.0,
        help='/clock publish rate in wall Hz; 0 disables',
    )
    replay.add_argument(
        '--wait-for-subscribers',
        type=non_negative_float,
        default=0.0,
        metavar='S',
        help='wait up to S seconds for a subscriber on every topic before starting',
    )
    replay.add_argument('--quiet', action='store_true', help='no progress display')
    replay.set_defaults(run=run_replay)

    record = commands.add_parser('record', help='record topics to MCAP from raw subscriptions')
    record.add_argument('out', help='output bag directory (must not exist)')
    record.add_argument('--topics', nargs='+', required=True, help='topics to record')
    record.add_argument('--duration', type=positive_float, help='stop after S seconds (default: at SIGINT)')
    record.set_defaults(run=run_record)

    demo = commands.add_parser('demo', help='simulate, train or load, monitor over DDS, and report')
    demo.add_argument('--out', default='mcf_demo', help='output directory (default mcf_demo)')
    demo.add_argument('--fast', action='store_true', help='a shorter run: 3 faults, under 3 minutes')
    demo.add_argument('--train', action='store_true', help='train a model on simulated normal running first')
    demo.add_argument('--faults', help='comma-separated faults to inject (default: a representative set)')
    demo.set_defaults(run=run_demo)

    export = commands.add_parser('export', help='write a model as ONNX (for onnxruntime, TensorRT or a Jetson)')
    export.add_argument('--onnx', required=True, metavar='MODEL', help='model artifact to export')
    export.add_argument('--out', help='ONNX file to write (default: beside the model, MODEL.onnx)')
    export.set_defaults(run=run_export)

    bench = commands.add_parser('bench', help='latency and throughput benchmarks against measured floors')
    bench.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    bench.add_argument('--model', help='model artifact (default: the shipped default-cell model)')
    bench.add_argument('--duration', type=float, default=20.0, help='seconds measured per stage (default 20)')
    bench.add_argument('--json', help='also write the results as JSON here')
    bench.add_argument(
        '--cells', type=int, default=1, help='simulated cells at 30 Hz each, served by one monitor process (default 1)'
    )
    bench.set_defaults(run=run_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `mcf`; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as err:
        print(f'mcf {args.command}: error: {err}', file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
