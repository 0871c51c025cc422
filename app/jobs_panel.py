"""The jobs panel: one row per job — title, stage, progress bar, ETA, Cancel, and the job's warnings
— newest on top; finished rows stay (with how they ended) until "Clear finished"."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QVBoxLayout,
                               QWidget)

from .timecode import duration_text
from .workers import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobManager


class JobRow(QFrame):
    def __init__(self, job: Job, parent=None):
        super().__init__(parent)
        self.setObjectName("jobRow")
        self.job = job
        self.title = QLabel(job.title, self)
        self.status = QLabel("", self)
        self.status.setObjectName("hint")
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(True)
        self.bar.setMaximumHeight(16)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._cancel)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        self.warnings = QLabel("", self)
        self.warnings.setObjectName("warning")
        self.warnings.setWordWrap(True)
        self.warnings.hide()
        layout.addWidget(self.warnings)
        job.progress.connect(self.update_view)
        job.state_changed.connect(self.update_view)
        job.warned.connect(self.update_view)
        self.update_view()

    def _cancel(self):
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")

    def update_view(self, *_):
        job = self.job
        self.warnings.setText("\n".join(f"⚠ {text}" for text in job.warnings))
        self.warnings.setVisible(bool(job.warnings))
        if job.state == QUEUED:
            self.bar.setRange(0, 0 if not job.cancel_requested else 1)
            self.status.setText("waiting for the job before it")
        elif job.state == RUNNING:
            if job.total > 0:
                self.bar.setRange(0, job.total)
                self.bar.setValue(min(job.done, job.total))
                self.bar.setFormat(f"{job.stage}  %p%")
            else:
                self.bar.setRange(0, 0)  # busy: no measure yet
            eta = job.eta_seconds()
            left = f"about {duration_text(eta)} left" if eta is not None else "estimating time left…"
            self.status.setText(f"{job.stage or 'starting'} · {job.done}/{job.total} · {left}"
                                if job.total else f"{job.stage or 'starting'}…")
        else:
            self.bar.setRange(0, 1)
            self.bar.setValue(1 if job.state == DONE else 0)
            self.bar.setFormat({DONE: "done", FAILED: "failed", CANCELLED: "cancelled"}[job.state])
            text = {DONE: f"done in {duration_text(job.elapsed())}", CANCELLED: "cancelled — nothing was changed",
                    FAILED: f"failed: {job.error[0] if job.error else ''}"}[job.state]
            self.status.setText(text)
            self.status.setToolTip(text)
            self.cancel_button.hide()


class JobsPanel(QWidget):
    def __init__(self, manager: JobManager, parent=None):
        super().__init__(parent)
        self.manager = manager
        self.rows: dict[int, JobRow] = {}
        self.list = QWidget(self)
        self.list_layout = QVBoxLayout(self.list)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(0)
        self.list_layout.addStretch(1)
        self.empty = QLabel("No jobs. Renders, exports and detection show their progress here.", self)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.clear_button = QPushButton("Clear finished", self)
        self.clear_button.clicked.connect(self.clear_finished)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.empty)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignRight)
        manager.added.connect(self.add)
        manager.changed.connect(self._update)
        self.ticker = QTimer(self)  # ETAs move between progress signals too
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
        self._update()

    def add(self, job: Job):
        if job.quiet:
            return
        row = JobRow(job, self.list)
        self.rows[id(job)] = row
        self.list_layout.insertWidget(0, row)
        self._update()

    def clear_finished(self):
        for job in [j for j in self.manager.jobs if j.finished]:
            row = self.rows.pop(id(job), None)
            if row is not None:
                row.deleteLater()
        self.manager.clear_finished()

    def _update(self):
        active = bool(self.manager.active())
        self.empty.setVisible(not self.rows)
        self.clear_button.setEnabled(any(j.finished for j in self.manager.jobs))
        if active and not self.ticker.isActive():
            self.ticker.start()
        elif not active:
            self.ticker.stop()

    def _tick(self):
        for row in self.rows.values():
            if row.job.state == RUNNING:
                row.update_view()
