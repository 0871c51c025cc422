"""Lipsmith's editor: the only package that imports Qt.

The work is the engine's: the bodies of its long jobs (probe, detect segments, render, smooth,
score, find the face) are core.jobs, export core.export, speaker adaptation core.adapt (the
editor never imports training/), edits core.project's commands. Modules, from the bottom up
(each small, one concern):

  timecode      a project's SMPTE timecode (core.timecode owns the notation); ETA durations (Qt-free)
  filetypes     what a dropped or opened file is: video, audio, project (Qt-free)
  workers       `Job` (a QObject whose work runs in a QThread: progress, ETA, cancel) and `JobManager`
  settings      QSettings-backed preferences (theme, shortcuts, last folders, window layout)
  shortcuts     the default key for every action, as data; rebinding; the shortcuts dialog
  theme         qdarkstyle dark / light, and the matching colours for pyqtgraph
  document      `Document`: the open Project, the playhead, in/out marks, change signals
  frames        `FrameReader`: decodes preview frames in its own thread (latest request wins)
  thumbnails    `Thumbnails`: the timeline's video thumbnails, decoded in their own thread, cached
  overlay       the mask overlay's crop box and blend mask for one frame (Qt-free)
  playback      `Transport`: play / pause / J-K-L shuttle, and the dub's audio when QtMultimedia has an output
  preview       the frame view (original / result, fit / 100 %, mask overlay)
  timeline      ruler + playhead, thumbnails, original audio, dub waveform, sync lane (threshold, per-frame
                confidence curve, segment names), takes lane, no-face and generated-mouth marks
  inspector     the segment under the playhead: confidence, settings, re-render, takes
  jobs_panel    running and finished jobs with progress, ETA, cancel and warnings
  dialogs       message boxes, the export and render dialogs
  project_settings  Project ▸ Settings… (length policy, detector, face, device, mouth, segment defaults)
  main_window   `MainWindow`: menus, actions, drag and drop, autosave, recovery, the job flows
  main          `run(argv)`: QApplication, theme, window
"""

import os as _os


def _drop_opencv_qt_paths():
    """opencv-python (the non-headless wheel) points QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR at
    its own bundled Qt when cv2 is imported; PySide6 would then load cv2's xcb plugin, built for
    another Qt, and fail to start a real window. Import cv2 now (core imports it anyway) and undo that."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = _os.environ.get(name, "")
        if "cv2" in _os.path.normpath(value).split(_os.sep):
            del _os.environ[name]


_drop_opencv_qt_paths()
