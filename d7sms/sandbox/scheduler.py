"""A pool of worker threads running jobs at given times from one time-ordered heap.

Batches, callbacks and DLR attempts all go through it, so "idle" (nothing queued, nothing
running) is one counter that ``wait_idle`` can wait on.
"""

import heapq
import itertools
import logging
import threading
import time

log = logging.getLogger("d7sms.sandbox")


class Scheduler:
    """Runs ``fn(*args)`` after a delay on one of ``threads`` daemon workers."""

    def __init__(self, threads=8, name="d7sms-sandbox"):
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here
        self._idle = threading.Condition(self._lock)  # wait_idle() waits here
        self._heap = []
        self._seq = itertools.count()
        self._pending = 0  # queued + running
        self._generation = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]

    def start(self):
        """Start the workers."""
        for t in self._threads:
            t.start()

    def submit(self, delay, fn, *args):
        """Run ``fn(*args)`` once ``delay`` seconds have passed."""
        due = time.monotonic() + delay
        with self._lock:
            if self._stopping:
                return
            heapq.heappush(self._heap, (due, next(self._seq), self._generation, fn, args))
            self._pending += 1
            self._work.notify()

    def pending(self):
        """Jobs queued or running."""
        with self._lock:
            return self._pending

    def clear(self):
        """Drop every queued job; jobs already running finish but their generation is stale."""
        with self._lock:
            self._pending -= len(self._heap)
            self._heap.clear()
            self._generation += 1
            if self._pending == 0:
                self._idle.notify_all()

    @property
    def generation(self):
        """Bumped by ``clear``: a job can compare it with the one it was queued under."""
        return self._generation

    def wait_idle(self, timeout=None):
        """Block until nothing is queued or running; False if ``timeout`` passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout=2.0):
        """Stop the workers, dropping queued jobs; waits up to ``timeout`` for running ones."""
        with self._lock:
            self._stopping = True
            self._pending -= len(self._heap)
            self._heap.clear()
            self._work.notify_all()
            self._idle.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def _next_job(self):
        with self._lock:
            while not self._stopping:
                if self._heap:
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._heap)
                    self._work.wait(wait)
                else:
                    self._work.wait()
            return None

    def _worker(self):
        while True:
            job = self._next_job()
            if job is None:
                return
            _due, _seq, generation, fn, args = job
            try:
                if generation == self._generation:
                    fn(*args)
            except Exception:
                log.exception("Sandbox job %r failed", fn)
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending <= 0:
                        self._pending = 0
                        self._idle.notify_all()
