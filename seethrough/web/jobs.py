"""Trainings started from the page: one runs at a time in a worker thread, the rest wait in line.

A :class:`Job` holds everything the page shows about a training (its state, its place
in the queue, one metrics row per finished epoch, the runs it made), so a page that
is reloaded, or a second page, finds a training again by asking for the list. Every
change bumps :attr:`JobQueue.version`; the event stream sends a job again whenever the
version moves.

Cancelling a waiting job takes it out of the line; cancelling the running one sets
its ``stop`` event, which the pipeline checks between batches.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..errors import SeethroughError
from .workspace import LimitExceeded

log = logging.getLogger("seethrough.web")
FINISHED = ("done", "failed", "cancelled")
KEEP_FINISHED = 20  # finished jobs kept for the page to show


class Cancelled(Exception):
    """Raised inside a job's work when its stop event is set."""


@dataclass
class Job:
    id: str
    kind: str            # "train" (the page's data set) or "demo" (the bundled digits)
    request: dict        # what the page asked for: model, epochs, size ...
    status: str = "queued"  # queued -> running -> done | failed | cancelled
    phase: str = ""      # what a running job is doing now, in words
    message: str = ""    # the error of a failed job, or what a finished one made
    epochs: int = 0      # epochs in all (over every run a demo job trains)
    history: list = field(default_factory=list)  # one metrics row per finished epoch, with "run"
    runs: list = field(default_factory=list)     # ids of the runs it made, in the model list
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_json(self, position: int | None) -> dict:
        return {"id": self.id, "kind": self.kind, "request": self.request, "status": self.status,
                "position": position, "phase": self.phase, "message": self.message, "epochs": self.epochs,
                "history": self.history, "runs": self.runs, "created": self.created, "started": self.started,
                "finished": self.finished}


class JobQueue:
    """A line of jobs and the one thread that works through it.

    ``work(job)`` does a job; it reports by calling :meth:`update` and should raise
    :class:`Cancelled` once ``job.stop`` is set. ``max_queued`` caps the jobs waiting.
    """

    def __init__(self, work, max_queued: int = 3):
        self.work = work
        self.max_queued = max_queued
        self.version = 0
        self._jobs: dict[str, Job] = {}
        self._line: deque[Job] = deque()
        self._running: Job | None = None
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ asking
    def submit(self, kind: str, request: dict, epochs: int) -> Job:
        with self._cond:
            if self._closed:
                raise SeethroughError("the server is shutting down")
            if len(self._line) >= self.max_queued:
                raise LimitExceeded("queued_trainings", f"{len(self._line)} trainings are waiting already, the "
                                    f"limit (queued_trainings) is {self.max_queued}; wait or cancel one", 429)
            job = Job(f"t{next(self._ids)}", kind, request, epochs=epochs)
            self._jobs[job.id] = job
            self._line.append(job)
            self._changed()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="seethrough-training", daemon=True)
                self._thread.start()
        return job

    def cancel(self, job_id: str) -> Job:
        with self._cond:
            job = self.get(job_id)
            if job.status == "queued":
                self._line.remove(job)
                job.status, job.finished, job.message = "cancelled", time.time(), "cancelled while waiting"
            elif job.status == "running":
                job.stop.set()
                job.phase = "cancelling after this batch"
            self._changed()
            return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def position(self, job: Job) -> int | None:
        """0 for the running job, 1 for the next in line ..., None once finished."""
        if job.status == "running":
            return 0
        if job.status == "queued":
            return 1 + list(self._line).index(job)
        return None

    def snapshot(self, job: Job) -> dict:
        with self._cond:
            return job.to_json(self.position(job))

    def list(self) -> list[dict]:
        with self._cond:
            return [job.to_json(self.position(job)) for job in self._jobs.values()]

    def wait(self, version: int, timeout: float) -> int:
        """Block until :attr:`version` passes ``version`` or ``timeout`` seconds go by."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != version or self._closed, timeout)
            return self.version

    # ------------------------------------------------------------------ reporting (from the work)
    def update(self, job: Job, **changes) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(job, k, v)
            self._changed()

    def add_row(self, job: Job, row: dict) -> None:
        with self._cond:
            job.history.append(row)
            self._changed()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the running job, drop the waiting ones, and let the worker end."""
        with self._cond:
            self._closed = True
            while self._line:
                job = self._line.popleft()
                job.status, job.finished = "cancelled", time.time()
            if self._running is not None:
                self._running.stop.set()
            self._changed()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the worker
    def _changed(self) -> None:  # with self._cond held
        self.version += 1
        self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._line or self._closed)
                if self._closed:
                    return
                job = self._running = self._line.popleft()
                job.status, job.started, job.phase = "running", time.time(), "starting"
                self._changed()
            status, message = "done", ""
            try:
                self.work(job)
            except Cancelled:
                status, message = "cancelled", "cancelled by the user"
            except SeethroughError as exc:
                status, message = "failed", str(exc)
            except Exception as exc:  # a bug: the page gets one line, the log the traceback
                log.exception("training %s failed", job.id)
                status, message = "failed", f"internal error ({type(exc).__name__}); the server log has the details"
            with self._cond:
                job.status, job.finished, job.phase = status, time.time(), ""
                job.message = message or job.message
                self._running = None
                self._forget_old()
                self._changed()

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.status in FINISHED]
        for job in done[:-KEEP_FINISHED]:
            del self._jobs[job.id]
