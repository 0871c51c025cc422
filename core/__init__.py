"""Lipsmith engine: audio, video, faces, models, rendering. No Qt in here."""

__version__ = "0.1.0"
