"""The drift sweep: how soon a model flags an encoder that drifts at a given rate.

`python -m mcf_ros.eval_faults.sweep --model M --bag NORMAL --out DIR [--rates R,R,...] [--episodes N]`

For each rate, a copy of the normal bag gets N `joint_slow_drift` episodes (each on a moving joint
drawn from the seed, the same joints at every rate) and is scored with the model. An episode's delay
is the time from its start to the first flagged window that ends inside it. Writes sweep.csv and
sweep.png to DIR, and prints the smallest rate at which every episode was flagged within 5 s.
"""

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np

from mcf_ros.eval_faults.inject import inject_bag
from mcf_ros.model.bag_eval import evaluate_bag

RATES_RAD_S = (0.005, 0.01, 0.02, 0.05, 0.1)
PROMPT_S = 5.0


def sweep(model: str, bag: str, out: Path, rates, episodes: int, episode_s: float, seed: int) -> list[dict]:
    """Return one row per episode: rate, joint, delay (None when not flagged inside the episode)."""
    rows = []
    for rate in rates:
        faulty = out / f'drift_{rate:g}'
        labels = inject_bag(bag, faulty, ['joint_slow_drift'] * episodes, seed, episode_s, drift_rate_rad_s=rate).labels
        scored, _, _, _ = evaluate_bag(model, str(faulty))
        end_s, raised = scored['end_s'], scored['is_anomaly']
        for label in labels:
            inside = np.flatnonzero((end_s >= label.start_s) & (end_s <= label.end_s) & raised)
            delay = float(end_s[inside[0]] - label.start_s) if len(inside) else None
            rows.append({'rate_rad_s': rate, 'start_s': label.start_s, 'delay_s': delay})
        shutil.rmtree(faulty)
    return rows


def plot(rows: list[dict], episode_s: float, path: Path) -> None:
    """Draw each episode's delay against its rate (missed ones at the episode's length), with the medians."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), constrained_layout=True)
    rates = np.array([row['rate_rad_s'] for row in rows])
    delays = np.array([np.nan if row['delay_s'] is None else row['delay_s'] for row in rows])
    missed = np.isnan(delays)
    axes.scatter(rates[~missed], delays[~missed], color='tab:blue', label='flagged')
    axes.scatter(rates[missed], np.full(missed.sum(), episode_s), marker='x', color='tab:red',
                 label=f'not flagged within the {episode_s:g} s episode')  # fmt: skip
    for rate in sorted(set(rates)):
        median = np.nanmedian(np.where(missed, episode_s, delays)[rates == rate])
        axes.plot([rate * 0.9, rate * 1.1], [median, median], color='black', linewidth=1)
    axes.axhline(PROMPT_S, color='grey', linestyle='--', linewidth=0.8, label=f'{PROMPT_S:g} s')
    axes.set_xscale('log')
    axes.set_xlabel('encoder drift rate (rad/s)')
    axes.set_ylabel('detection delay (s)')
    axes.set_title('slow encoder drift: delay from drift start to the first flag (bar: median)', fontsize=9)
    axes.legend(fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep from the command line; see the module docstring."""
    parser = argparse.ArgumentParser(prog='python -m mcf_ros.eval_faults.sweep', description=__doc__.split('\n')[0])
    parser.add_argument('--model', required=True)
    parser.add_argument('--bag', required=True, help='a bag of normal running')
    parser.add_argument('--out', required=True, help='directory for sweep.csv and sweep.png')
    parser.add_argument('--rates', default=','.join(f'{r:g}' for r in RATES_RAD_S), help='rad/s, comma-separated')
    parser.add_argument('--episodes', type=int, default=5, help='episodes per rate (default 5)')
    parser.add_argument('--episode-s', type=float, default=40.0, help='seconds each drift lasts (default 40)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rates = [float(rate) for rate in args.rates.split(',')]
    rows = sweep(args.model, args.bag, out, rates, args.episodes, args.episode_s, args.seed)
    with (out / 'sweep.csv').open('w', newline='') as handle:
        writer = csv.DictWriter(handle, ['rate_rad_s', 'start_s', 'delay_s'])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.episode_s, out / 'sweep.png')
    for rate in rates:
        delays = [row['delay_s'] for row in rows if row['rate_rad_s'] == rate]
        flagged = [d for d in delays if d is not None]
        median = f'median {np.median(flagged):.1f} s' if flagged else 'none flagged'
        print(f'{rate:g} rad/s: {len(flagged)} of {len(delays)} episodes flagged, {median}')
    prompt = [r for r in rates if all(row['delay_s'] is not None and row['delay_s'] <= PROMPT_S
                                      for row in rows if row['rate_rad_s'] == r)]  # fmt: skip
    smallest = f'{min(prompt):g} rad/s' if prompt else 'none of the rates'
    print(f'smallest rate with every episode flagged within {PROMPT_S:g} s: {smallest}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
