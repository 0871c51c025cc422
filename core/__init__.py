"""Lipsmith engine: audio, video, faces, models, rendering. No Qt in here."""
