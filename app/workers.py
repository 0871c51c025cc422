"""Long jobs off the UI thread: `Job` and `JobManager`.

A Job wraps a plain function `fn(progress, cancel, *args)` (the bodies live in core.jobs, core.export
and core.adapt). Its work runs in a QThread (a `_Worker` QObject moved there); the Job itself lives
on the UI thread and re-emits the worker's signals there, so anything connected to a Job — lambdas
included — runs on the UI thread. States: queued → running → done | failed | cancelled.

  progress(done, total, stage)   throttled to ~20 per second
  succeeded(result)              the function's return value
  failed(message, details)       one line for the user, and the traceback
  cancelled()                    the function raised core.errors.Cancelled after cancel()
  ended()                        after any of the three
  warned(text)                   `warn(text)`: something the user should know about the job's result

Cancel sets a flag the function polls (`cancel()` returns True); it must raise Cancelled and
leave nothing behind. Heavy jobs (render, export, score) run one at a time in the manager's
queue; light ones (probe, speech detection) start at once.
"""
from __future__ import annotations

import threading
import time
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import Cancelled, LipsmithError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
PROGRESS_INTERVAL = 0.05  # seconds between progress signals (the last of a stage always goes)


def describe(exc: BaseException) -> str:
    """One line for the user: a LipsmithError's own message, else the type and message."""
    if isinstance(exc, LipsmithError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Worker(QObject):
    progressed = Signal(int, int, str)
    done = Signal(object)
    error = Signal(str, str)
    stopped = Signal()

    def __init__(self, fn, args, kwargs, cancel_event: threading.Event):
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._cancel = cancel_event
        self._last = (None, 0.0)

    def _progress(self, done, total, stage="work"):
        now = time.monotonic()
        last_stage, last_time = self._last
        if stage == last_stage and now - last_time < PROGRESS_INTERVAL and done < total:
            return
        self._last = (stage, now)
        self.progressed.emit(int(done), int(total), str(stage))

    @Slot()
    def run(self):
        try:
            result = self._fn(self._progress, self._cancel.is_set, *self._args, **self._kwargs)
        except Cancelled:
            self.stopped.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user, not kill the thread
            if self._cancel.is_set() and isinstance(exc, (BrokenPipeError, InterruptedError)):
                self.stopped.emit()
            else:
                self.error.emit(describe(exc), traceback.format_exc())
        else:
            self.done.emit(result)


class Job(QObject):
    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    ended = Signal()
    state_changed = Signal(str)
    warned = Signal(str)

    def __init__(self, title: str, fn, *args, heavy: bool = False, quiet: bool = False, parent=None, **kwargs):
        super().__init__(parent)
        self.title = title
        self.heavy = heavy
        self.quiet = quiet  # a short background check: not listed in the jobs panel
        self.state = QUEUED
        self.stage, self.done, self.total = "", 0, 0
        self.result = None
        self.error: tuple[str, str] | None = None
        self.warnings: list[str] = []  # e.g. a render's (core.render.Renderer.warnings), shown with its row
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._stage_start: tuple[float, int] | None = None  # (time, done) when the current stage began
        self._cancel = threading.Event()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._thread: QThread | None = None
        self._worker: _Worker | None = None

    # -- lifetime

    def start(self):
        if self.state != QUEUED:
            return
        if self._cancel.is_set():  # cancelled while waiting in the queue
            self._finish(CANCELLED)
            self.cancelled.emit()
            self.ended.emit()
            return
        self._thread = QThread()
        self._thread.setObjectName(f"job: {self.title}")
        self._worker = _Worker(self._fn, self._args, self._kwargs, self._cancel)
        self._worker.moveToThread(self._thread)
        self._worker.progressed.connect(self._on_progress)
        self._worker.done.connect(self._on_done)
        self._worker.error.connect(self._on_error)
        self._worker.stopped.connect(self._on_stopped)
        self._thread.started.connect(self._worker.run)
        self.started_at = time.monotonic()
        self._set_state(RUNNING)
        self._thread.start()

    def warn(self, text: str):
        self.warnings.append(text)
        self.warned.emit(text)

    def cancel(self):
        """Ask the job to stop; it ends with `cancelled` (or, if it was already finishing, as it ends)."""
        self._cancel.set()
        if self.state == QUEUED:
            self.start()  # ends at once as cancelled

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)

    def wait(self, ms: int = 10_000) -> bool:
        """Block until the worker thread has stopped (closing the window, tests)."""
        return self._thread.wait(ms) if self._thread is not None else True

    # -- progress and ETA

    def fraction(self) -> float | None:
        return self.done / self.total if self.total > 0 else None

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds left in the current stage at its rate so far; None until it is measurable."""
        if self._stage_start is None or self.total <= 0 or self.state != RUNNING:
            return None
        t0, d0 = self._stage_start
        elapsed = (now or time.monotonic()) - t0
        if elapsed < 0.5 or self.done <= d0:
            return None
        rate = (self.done - d0) / elapsed
        return max(0.0, (self.total - self.done) / rate)

    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.started_at

    # -- worker signals (queued onto this thread)

    @Slot(int, int, str)
    def _on_progress(self, done, total, stage):
        if self.finished:
            return
        if stage != self.stage:
            self._stage_start = (time.monotonic(), done)
        self.stage, self.done, self.total = stage, done, total
        self.progress.emit(done, total, stage)

    @Slot(object)
    def _on_done(self, result):
        self.result = result
        self._finish(DONE)
        self.succeeded.emit(result)
        self.ended.emit()

    @Slot(str, str)
    def _on_error(self, message, details):
        self.error = (message, details)
        self._finish(FAILED)
        self.failed.emit(message, details)
        self.ended.emit()

    @Slot()
    def _on_stopped(self):
        self._finish(CANCELLED)
        self.cancelled.emit()
        self.ended.emit()

    def _finish(self, state):
        self.ended_at = time.monotonic()
        if self._thread is not None:
            self._thread.quit()
        self._set_state(state)

    def _set_state(self, state):
        self.state = state
        self.state_changed.emit(state)


class JobManager(QObject):
    """Starts jobs, queues heavy ones one at a time, keeps the list the jobs panel shows."""
    added = Signal(object)  # Job
    changed = Signal()  # a job started or ended

    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: list[Job] = []
        self._heavy_queue: list[Job] = []
        self._heavy_running: Job | None = None

    def submit(self, job: Job) -> Job:
        job.setParent(self)
        self.jobs.append(job)
        job.ended.connect(lambda job=job: self._on_ended(job))
        self.added.emit(job)
        if job.heavy:
            self._heavy_queue.append(job)
            self._next_heavy()
        else:
            job.start()
        self.changed.emit()
        return job

    def run(self, title, fn, *args, heavy=False, quiet=False, **kwargs) -> Job:
        return self.submit(Job(title, fn, *args, heavy=heavy, quiet=quiet, **kwargs))

    def _next_heavy(self):
        while self._heavy_running is None and self._heavy_queue:
            job = self._heavy_queue.pop(0)
            if job.finished:
                continue
            self._heavy_running = job
            job.start()

    def _on_ended(self, job: Job):
        if job is self._heavy_running:
            self._heavy_running = None
        self._next_heavy()
        self.changed.emit()

    def active(self) -> list[Job]:
        return [j for j in self.jobs if not j.finished]

    def cancel_all(self):
        for job in list(self._heavy_queue) + self.active():
            job.cancel()

    def wait_all(self, ms: int = 10_000) -> bool:
        deadline = time.monotonic() + ms / 1000
        ok = True
        for job in self.jobs:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            ok = job.wait(left) and ok
        return ok

    def clear_finished(self):
        for job in [j for j in self.jobs if j.finished]:
            job.wait(2000)  # its thread was told to quit as it ended; let it go before the Job does
            self.jobs.remove(job)
            job.deleteLater()
        self.changed.emit()
