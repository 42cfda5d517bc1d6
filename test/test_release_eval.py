"""scripts/release_eval.sh shares its steps between shells, with a stand-in `mcf` that only makes its outputs."""

import os
import re
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'release_eval.sh'


def _seeds(name: str) -> list[str]:
    """Return the seeds the script sets in NAME."""
    return re.search(rf'\b{name}="?([\d ]+)"?', SCRIPT.read_text()).group(1).split()


# Makes the --out or --report folder and logs it; `train` and the output named in SLOW take 2 s; the
# output named in FAIL_ONCE fails the first time. `mcf eval` needs its model and bag, as the real one does.
STAND_IN = """#!/usr/bin/env bash
[ "$1" = train ] && sleep 2
for arg; do [ "$arg" = "${SLOW:-}" ] && sleep 2; done
[ "$1" = eval ] && { [ -e "$3" ] && [ -e "$5" ] || { echo "missing $3 or $5" >&2; exit 2; }; }
while [ $# -gt 0 ]; do case $1 in --out | --report) out=$2; shift ;; esac; shift; done
if [ "$out" = "${FAIL_ONCE:-}" ] && mkdir "$out.failed" 2> /dev/null; then sleep 2; exit 3; fi
mkdir -p "$out" && echo "$out" >> "$LOG"
"""


def _stand_in(tmp_path, fail_once='', slow=''):
    """Return the work folder, the log of outputs made and the environment that puts the stand-in on PATH."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'mcf').write_text(STAND_IN)
    (bin_dir / 'mcf').chmod(0o755)
    work, log = tmp_path / 'work', tmp_path / 'made.log'
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', LOG=str(log))
    env.update(FAIL_ONCE=str(work / fail_once), SLOW=str(work / slow))
    return work, log, env


def _shell(work, env, *stages):
    return subprocess.Popen(['bash', str(SCRIPT), str(work), *stages], env=env, stderr=subprocess.PIPE, text=True)


def _finish(*shells):
    try:
        return [(shell.wait(timeout=120), shell.stderr.read()) for shell in shells]
    finally:
        for shell in shells:
            shell.kill()  # one that waits for ever, on a broken script


def _when_claimed(work, step, shell):
    """Wait until `shell` has claimed `step`."""
    deadline = time.monotonic() + 30
    while not (work / f'{step}.claim').exists():
        assert shell.poll() is None and time.monotonic() < deadline, f'{step} never claimed'
        time.sleep(0.05)


def test_two_shells_share_the_bags_and_make_each_output_once(tmp_path):
    work, log, env = _stand_in(tmp_path)
    results = _finish(
        _shell(work, env, 'ur5e_model', 'ur5e_score', 'ur5e_normal'), _shell(work, env, 'ur5e_faults', 'ur5e_normal')
    )
    made = log.read_text().split()
    assert [code for code, _ in results] == [0, 0], results
    faults, normal = len(_seeds('UR5E_FAULTS')), len(_seeds('UR5E_NORMAL') + _seeds('UR5E_OPERATOR'))
    assert len(made) == len(set(made)) == 2 + 2 * faults + faults + 2 * normal  # model and its bag, faults, runs
    for _, err in results:
        assert any('mcf sim' in line and '_normal_s' in line for line in err.splitlines()), 'each shares the runs'
    assert not list(work.glob('*.claim'))


def test_a_shell_waiting_on_a_step_takes_it_over_when_its_maker_fails(tmp_path):
    work, log, env = _stand_in(tmp_path, fail_once='ur5e_cell.mcf')
    first = _shell(work, env, 'ur5e_model')
    _when_claimed(work, 'ur5e_cell.mcf', first)  # it trains the model, and will fail
    second = _shell(work, env, 'ur5e_model')
    (first_code, _), (second_code, waited) = _finish(first, second)
    assert (first_code, second_code) == (3, 0)
    assert 'waiting for another shell to finish' in waited
    assert log.read_text().split().count(str(work / 'ur5e_cell.mcf')) == 1
    assert (work / 'ur5e_cell.mcf.done').exists() and not list(work.glob('*.claim'))


def test_a_shell_passes_over_a_bag_another_shell_is_making(tmp_path):
    run = f'ur5e_normal_s{_seeds("UR5E_NORMAL")[0]}'
    work, _, env = _stand_in(tmp_path, slow=run)
    [(code, _)] = _finish(_shell(work, env, 'ur5e_model'))
    assert code == 0
    first = _shell(work, env, 'ur5e_normal')
    _when_claimed(work, run, first)  # it simulates the first run, slowly
    (first_code, _), (second_code, second_err) = _finish(first, _shell(work, env, 'ur5e_normal'))
    assert (first_code, second_code) == (0, 0)
    assert 'mcf sim --out' in second_err and run not in second_err
