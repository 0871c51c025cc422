"""What a file is to the editor: a video (or still), an audio track, a project; Qt-free."""
from __future__ import annotations

from pathlib import Path

from core.project import SUFFIX as PROJECT_SUFFIX
from core.video import IMAGE_SUFFIXES

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".wmv",
                  ".flv"} | IMAGE_SUFFIXES
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".wma"}


def kind_of(path) -> str | None:
    """"project", "video", "audio" or None (not something the editor opens)."""
    suffix = Path(path).suffix.lower()
    if suffix == PROJECT_SUFFIX:
        return "project"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    return None


def _patterns(suffixes) -> str:
    return " ".join(f"*{s}" for s in sorted(suffixes))


VIDEO_FILTER = f"Video or still image ({_patterns(VIDEO_SUFFIXES)})"
# a dub may also be the audio track of a video file
DUB_FILTER = f"Dub audio ({_patterns(AUDIO_SUFFIXES | VIDEO_SUFFIXES - IMAGE_SUFFIXES)})"
PROJECT_FILTER = f"Lipsmith project (*{PROJECT_SUFFIX})"
SUPPORTED_TEXT = ("videos (" + ", ".join(sorted(s[1:] for s in VIDEO_SUFFIXES - IMAGE_SUFFIXES)) + "), stills ("
                  + ", ".join(sorted(s[1:] for s in IMAGE_SUFFIXES)) + "), audio ("
                  + ", ".join(sorted(s[1:] for s in AUDIO_SUFFIXES)) + ") and Lipsmith projects")
