"""Inference off the executor thread: per monitor the newest window wins, drops are exact, failures are counted,
and monitors sharing the thread batch one model's windows without taking from each other."""

import threading
import time

from mcf_ros.ros.worker import InferenceThread


def wait_until(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert condition()


def one_by_one(work):
    """A lane's batch function that runs `work` per job and returns nothing worth publishing."""
    return lambda jobs: [work(job) for job in jobs]


def ignore(job, result):
    pass


def test_newest_job_wins_and_every_replaced_job_is_counted_as_dropped():
    release, ran = threading.Event(), []

    def work(job):
        ran.append(job)
        release.wait(5)

    thread = InferenceThread()
    lane = thread.lane(one_by_one(work), ignore, key='model')
    lane.submit(0)
    wait_until(lambda: ran)
    for job in range(1, 101):  # job 0 is running; 1..99 are replaced in turn by 100
        lane.submit(job)
    release.set()
    wait_until(lambda: lane.done == 2)
    thread.stop()
    assert ran == [0, 100]
    assert (lane.submitted, lane.dropped, lane.done) == (101, 99, 2)


def test_a_failing_job_is_counted_and_the_thread_goes_on():
    def work(job):
        if job == 'bad':
            raise ValueError('broken window')

    thread = InferenceThread()
    lane = thread.lane(one_by_one(work), ignore, key='model')
    lane.submit('bad')
    wait_until(lambda: lane.failures == 1)
    lane.submit('good')
    wait_until(lambda: lane.done == 1)
    thread.stop()
    assert lane.last_error == 'ValueError: broken window'


def test_lanes_of_one_model_are_scored_in_one_batch_and_each_publishes_its_own_result():
    release, batches, published = threading.Event(), [], []

    def batch(jobs):
        batches.append(list(jobs))
        release.wait(5)
        return [f'scored {job}' for job in jobs]

    thread = InferenceThread()
    lanes = [
        thread.lane(batch, lambda job, result, cell=cell: published.append((cell, result)), key=model)
        for cell, model in (('a', 'ur5e'), ('b', 'ur5e'), ('c', 'yumi'))
    ]
    lanes[0].submit('a0')
    wait_until(lambda: batches)  # a0 is running: the next pass finds all three waiting
    for lane, job in zip(lanes, ('a1', 'b1', 'c1'), strict=True):
        lane.submit(job)
    release.set()
    wait_until(lambda: len(published) == 4)
    thread.stop()
    assert sorted(map(sorted, batches)) == [['a0'], ['a1', 'b1'], ['c1']], 'one call per model and pass'
    assert sorted(published) == [('a', 'scored a0'), ('a', 'scored a1'), ('b', 'scored b1'), ('c', 'scored c1')]


def test_one_models_batches_run_on_its_earliest_lanes_model_whichever_lanes_wait():
    callers, holding, release = [], threading.Event(), threading.Event()

    def hold(jobs):  # another model's job, running while a round's jobs are submitted
        holding.set()
        release.wait(5)
        release.clear()
        return [None] * len(jobs)

    def batch_of(cell):
        return lambda jobs: [callers.append((cell, len(jobs)))] * len(jobs)

    thread = InferenceThread()
    holder = thread.lane(hold, ignore, key='yumi')
    lanes = {cell: thread.lane(batch_of(cell), ignore, key='ur5e') for cell in ('a', 'b', 'c')}

    def done():
        return sum(lane.done for lane in lanes.values())

    for round_cells in (('b',), ('c', 'b'), ('a', 'c'), ('c',)):
        holding.clear()
        holder.submit('hold')
        wait_until(holding.is_set)
        expected = done() + len(round_cells)
        for cell in round_cells:
            lanes[cell].submit(f'{cell} window')
        release.set()
        wait_until(lambda expected=expected: done() == expected)
    lanes['a'].leave()
    lanes['c'].submit('c window')
    wait_until(lambda: lanes['c'].done == 4)
    thread.stop()
    assert [cell for cell, _ in callers] == ['a', 'a', 'a', 'a', 'b'], 'a, then b once a has left'
    assert [jobs for _, jobs in callers] == [1, 2, 2, 1, 1]


def test_a_flooded_lane_drops_only_its_own_jobs_and_a_bad_one_fails_only_its_own():
    """Cell a submits far faster than the thread scores, and some of its windows break the batch."""
    scored = []

    def batch(jobs):
        if any(job.startswith('a-bad') for job in jobs):
            raise ValueError('malformed window')
        time.sleep(0.002)
        scored.extend(jobs)
        return [None] * len(jobs)

    thread = InferenceThread()
    flooded = thread.lane(batch, ignore, key='model')
    quiet = thread.lane(batch, ignore, key='model')
    for step in range(200):
        for burst in range(20):
            flooded.submit(f'a-bad{step}' if burst == 19 and step % 4 == 0 else f'a{step}.{burst}')
        if step % 10 == 0:
            quiet.submit(f'b{step}')
            wait_until(lambda step=step: f'b{step}' in scored)
        time.sleep(0.0005)
    wait_until(lambda: flooded.pending is None)
    thread.stop()
    assert (quiet.submitted, quiet.dropped, quiet.failures, quiet.done) == (20, 0, 0, 20)
    assert flooded.dropped > 0 and flooded.failures > 0
    assert flooded.submitted == flooded.dropped + flooded.done + flooded.failures


def test_a_lane_that_leaves_takes_no_more_jobs_and_the_others_go_on():
    published = []
    thread = InferenceThread()
    leaving = thread.lane(one_by_one(lambda job: job), lambda job, result: published.append(job), key='model')
    staying = thread.lane(one_by_one(lambda job: job), lambda job, result: published.append(job), key='model')
    leaving.submit('a0')
    wait_until(lambda: leaving.done == 1)
    leaving.leave()
    leaving.submit('a1')
    staying.submit('b0')
    wait_until(lambda: staying.done == 1)
    thread.stop()
    assert published == ['a0', 'b0']
