"""Errors a user sees: each names the file and the problem in one line."""
from pathlib import Path


class LipsmithError(Exception):
    """An error with a message fit for a user: `<file>: <problem>`."""

    def __init__(self, path, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class MediaError(LipsmithError):
    """A video or audio file that cannot be used."""


class WeightsError(LipsmithError):
    """A checkpoint that is missing, damaged or for another model."""


class FaceError(LipsmithError):
    """No usable face where one is needed."""


class TooShort(MediaError):
    """Media with fewer frames than a job needs (scoring: one window of the expert)."""


class SetupError(LipsmithError):
    """This installation or machine cannot do what was asked: a device it lacks, a tool that is missing."""


class Cancelled(Exception):
    """The user cancelled a long job; raised between frames when its `cancel()` returns true."""
