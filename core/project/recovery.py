"""Crash recovery: the autosave sibling (`name.lipsmith.autosave`), when to write it, when to offer it.

No timers here: the app calls `Autosaver.tick(time.monotonic())` from a QTimer, and on opening
a project asks `recovery_candidate(path)` whether to offer `Project.recover(path)`. A newer
autosave that does not read (a crash mid-write, a bad disk) is moved aside to
`name.lipsmith.autosave.damaged` and reported, never silently skipped.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import LipsmithError

from .model import ProjectError, autosave_path_for
from .project import Project


DAMAGED_SUFFIX = ".damaged"


class DamagedAutosave(ProjectError):
    """An autosave newer than its project that does not read as a project; kept aside, the message says where."""


def recovery_candidate(path) -> Path | None:
    """The autosave of the project at `path` when it is newer than the project file (or the project
    was never saved) and reads as a valid project: the app offers it with Project.recover(path).
    A newer autosave that does not read is renamed to `<autosave>.damaged` (out of the way of the
    next autosave, there for the user to look at) and DamagedAutosave says so; the project itself
    opens as saved."""
    auto = autosave_path_for(path)
    try:
        auto_time = auto.stat().st_mtime_ns
    except OSError:
        return None
    try:
        if auto_time <= Path(path).stat().st_mtime_ns:
            return None
    except FileNotFoundError:
        pass
    try:
        Project.load(auto, as_path=path)
    except ProjectError as e:
        damage = f"newer than the project but cannot be read ({e.problem})"
        kept = auto.with_name(auto.name + DAMAGED_SUFFIX)
        try:
            os.replace(auto, kept)
        except OSError as move:
            raise DamagedAutosave(auto, f"{damage}; it could not be moved aside ({move.strerror or move})") from None
        raise DamagedAutosave(auto, f"{damage}; kept aside as {kept.name}") from None
    return auto


def discard_autosave(path):
    """The user declined recovery: forget the autosave."""
    autosave_path_for(path).unlink(missing_ok=True)


class Autosaver:
    """Decides when to autosave; owns no timer. The app calls tick(time.monotonic()) from a QTimer
    (every few seconds); every `interval` seconds it autosaves the project if it has changes.
    A failed autosave (disk full…) is kept in `last_error` and retried at the next interval."""

    def __init__(self, project: Project, interval: float = 60.0):
        self.project = project
        self.interval = interval
        self.last_error: Exception | None = None
        self._last: float | None = None

    def reset(self, now: float):
        """Start a fresh interval (after opening or saving a project)."""
        self._last = now

    def tick(self, now: float) -> Path | None:
        if self._last is None:
            self._last = now
            return None
        if now - self._last < self.interval:
            return None
        self._last = now
        try:
            written = self.project.autosave()
        except (OSError, LipsmithError) as e:
            self.last_error = e
            return None
        self.last_error = None
        return written
