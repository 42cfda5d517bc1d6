"""Inference off the executor thread: the newest window wins, drops are exact, failures are counted."""

import threading
import time

from mcf_ros.ros.worker import LatestWins


def test_newest_job_wins_and_every_replaced_job_is_counted_as_dropped():
    release = threading.Event()
    ran = []

    def work(job):
        ran.append(job)
        release.wait(5)

    worker = LatestWins(work)
    worker.submit(0)
    while not ran:
        time.sleep(0.001)
    for job in range(1, 101):  # job 0 is running; 1..99 are replaced in turn by 100
        worker.submit(job)
    release.set()
    deadline = time.monotonic() + 5
    while worker.done < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.stop()
    assert ran == [0, 100]
    assert (worker.submitted, worker.dropped, worker.done) == (101, 99, 2)


def test_a_failing_job_is_counted_and_the_worker_goes_on():
    def work(job):
        if job == 'bad':
            raise ValueError('broken window')

    worker = LatestWins(work)
    worker.submit('bad')
    time.sleep(0.05)
    worker.submit('good')
    deadline = time.monotonic() + 5
    while worker.done < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.stop()
    assert (worker.failures, worker.done) == (1, 1)
    assert worker.last_error == 'ValueError: broken window'
