"""Dark (default) or light: qdarkstyle for the widgets, matching colours for what we paint."""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("QT_API", "pyside6")  # qdarkstyle goes through qtpy: use our binding


@dataclass(frozen=True)
class Colours:
    background: str  # the plots' background (qdarkstyle's window colour)
    lane: str  # a lane's own background
    text: str
    grid: str
    playhead: str
    waveform: str
    good: str
    poor: str
    unscored: str
    silence: str
    selection: str
    take: str
    take_chosen: str
    inout: str
    threshold: str
    original: str  # the video's own audio
    curve: str  # per-frame confidence
    no_face: str  # frames the render found no face in
    generated_mouth: str  # frames where the actor's mouth was asked for and the generated one pasted


DARK = Colours(background="#19232D", lane="#1f2b38", text="#DFE1E2", grid="#455364", playhead="#ff5c5c",
               waveform="#59a5d8", good="#3fb950", poor="#f85149", unscored="#6e7681", silence="#2d3a48",
               selection="#ffffff", take="#546e8a", take_chosen="#e3b341", inout="#4f7bff", threshold="#e3b341",
               original="#9aa7b4", curve="#f0f6fc", no_face="#ff7b72",
               generated_mouth="#d2a8ff")
LIGHT = Colours(background="#FAFAFA", lane="#eef1f4", text="#19232D", grid="#9DA9B5", playhead="#d62c2c",
                waveform="#2f6fb0", good="#2da44e", poor="#cf222e", unscored="#8c959f", silence="#d0d7de",
                selection="#19232D", take="#8fa6bf", take_chosen="#bf8700", inout="#3a5ccc", threshold="#bf8700",
                original="#57606a", curve="#0d1117", no_face="#cf222e",
                generated_mouth="#8250df")


def colours(theme: str) -> Colours:
    return LIGHT if theme == "light" else DARK


def apply_theme(app, theme: str) -> Colours:
    """Style the whole application; returns the colours for painted widgets."""
    import qdarkstyle

    palette = qdarkstyle.LightPalette if theme == "light" else qdarkstyle.DarkPalette
    app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6", palette=palette) + EXTRA_QSS)
    return colours(theme)


# small additions to qdarkstyle for our own widgets
EXTRA_QSS = """
QLabel#frameInfo { font-family: monospace; }
QLabel#hint { color: #8a949e; }
QLabel#warning { color: #d29922; }
QFrame#jobRow { border-bottom: 1px solid #455364; }
"""
