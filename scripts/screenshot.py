"""Open the editor on the demo portrait + speech, wait for its jobs, grab the window.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot.py dark out.png \
        [--render [--checkpoint G]] [--result] [--mask] [--markers] [--trim] [--faces] [--video V --dub D]

--render renders the whole clip (with the bundled generator unless --checkpoint names another)
and waits for the scoring that follows a render, so the Sync lane shows the scores.

--mask turns the preview's mask overlay on (the face track job runs first); --markers adds three
named, coloured markers and shows the Markers tab; --trim moves the first line's out point 8 frames
earlier as a drag of its edge would (TrimSegment) and zooms the timeline to that segment; --faces turns the face picker on and picks face 1
for the segment under the playhead, on a still of two faces (the demo portrait beside a smaller,
mirrored copy of itself, unless --video names other media); --video/--dub use other media than the
bundled demo portrait and speech.
"""
import os
import shutil
import sys
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LIPSMITH_CONFIG", "/tmp/scratch/shot-config")
os.environ.setdefault("LIPSMITH_CACHE", "/tmp/scratch/shot-cache")

from PySide6.QtWidgets import QApplication
from app.main_window import MainWindow
from app.settings import Settings
from app.theme import apply_theme

theme = sys.argv[1] if len(sys.argv) > 1 else "dark"
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/lipsmith_window.png"
folder = Path("/tmp/scratch/shot"); shutil.rmtree(folder, ignore_errors=True); folder.mkdir(parents=True)
app = QApplication([])
settings = Settings(Path(os.environ["LIPSMITH_CONFIG"]) / "settings.ini")
settings.theme = theme
apply_theme(app, theme)
w = MainWindow(settings)
w.resize(1500, 920)
w.show()
demo = Path(__file__).resolve().parents[1] / "resources" / "demo"
arg = lambda name, default: Path(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default  # noqa: E731
picture = demo / "portrait.png"
if "--faces" in sys.argv:  # two people: the portrait, and a smaller mirrored copy beside it
    import cv2
    import numpy as np
    portrait = cv2.imread(str(picture))
    h, w_ = portrait.shape[:2]
    small = cv2.resize(portrait[:, ::-1], (w_ * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)
    canvas = np.empty((h, w_ + small.shape[1], 3), np.uint8)
    canvas[:] = portrait[-1, -1]
    canvas[:, :w_] = portrait
    canvas[h - small.shape[0]:, w_:] = small
    picture = folder / "two-faces.png"
    cv2.imwrite(str(picture), canvas)
w.create_project(arg("--video", picture), arg("--dub", demo / "speech.wav"), folder / "demo.lipsmith")
t = time.time()
while time.time() - t < 60:
    app.processEvents(); time.sleep(0.02)
    d = w.document
    if (d and d.project.segments and d.waveform is not None and not w.jobs.active() and d.models is not None
            and d.original_state != "loading"):
        break
d = w.document
speech = [s for s in d.project.segments if s.kind == "speech"]
if "--render" in sys.argv:  # the whole clip, then the scoring job a render queues by itself
    from core.project import SetProjectSettings
    ckpt = sys.argv[sys.argv.index("--checkpoint") + 1] if "--checkpoint" in sys.argv else "generator"
    d.execute(SetProjectSettings(d.project, {"checkpoint": ckpt}))
    job = w.render_clip()
    t = time.time()
    while (not job.finished or w.jobs.active()) and time.time() - t < 600:
        app.processEvents(); time.sleep(0.02)
    print(f"render and scoring took {time.time() - t:.0f} s; still running: {[j.title for j in w.jobs.active()]}")
    print("render", job.state, job.error, "scores", [(s.id, s.lse_c) for s in d.project.segments if s.kind == "speech"])
if "--result" in sys.argv:
    d.set_show_result(True)
    d.set_frame(speech[0].start + 20)
else:
    d.set_show_result(False)
    d.set_frame((speech[1].start + speech[1].end) // 2 if len(speech) > 1 else 10)
d.in_point, d.out_point = speech[0].start, speech[0].end
d.marks_changed.emit()
if "--markers" in sys.argv:  # on the ruler and in the Markers tab
    from core.project import AddMarker
    for frame, name, colour, note in ((speech[0].start, "line 1 in", "green", ""),
                                      ((speech[0].start + speech[0].end) // 2, "breath", "yellow", "breath early"),
                                      (speech[-1].start, "retake?", "red", "ask the director")):
        d.execute(AddMarker(d.project, frame, name=name, colour=colour, note=note))
    w.markers_dock.show()
    w.markers_dock.raise_()
if "--trim" in sys.argv:  # the first line's out point 8 frames earlier; the segment after it rolls with it
    from core.project import TrimSegment
    d.execute(TrimSegment(d.project, speech[0].id, "end", speech[0].end - 8))
    d.set_frame(d.project.segment(speech[0].id).end - 1)
    w.actions["view.zoom_selection"].trigger()
if "--mask" in sys.argv:
    d.set_show_mask(True)
    t = time.time()
    while (d.track is None or w.jobs.active()) and time.time() - t < 120:
        app.processEvents(); time.sleep(0.02)
    print("mask", d.track is not None)
if "--faces" in sys.argv:  # the faces numbered, then face 1 picked as a click on it picks it
    d.set_show_faces(True)
    t = time.time()
    while (d.faces is None or w.jobs.active()) and time.time() - t < 120:
        app.processEvents(); time.sleep(0.02)
    for _ in range(50):
        app.processEvents(); time.sleep(0.02)
    faces = d.faces.at(d.source_frame(d.frame)) if d.faces is not None else None
    print("faces", [(f.index, [round(v) for v in f.box]) for f in faces or ()])
    if faces and len(faces) > 1:
        x1, y1, x2, y2 = faces[1].box
        w.preview.pick_face((x1 + x2) / 2, (y1 + y2) / 2)
        print("picked:", w.statusBar().currentMessage(), "|", w.inspector.face_label.text())
t = time.time()
while time.time() - t < 30:  # the thumbnails in view
    app.processEvents(); time.sleep(0.02)
    if all(w.timeline.thumbnails.image(i) is not None for _, i in w.timeline.thumb_strip.slots):
        break
for _ in range(100):
    app.processEvents(); time.sleep(0.02)
w.grab().save(out)
w.save()  # closing a modified project would wait on the save-changes question
print(out, [(s.id, s.start, s.end, s.kind) for s in d.project.segments][:12], d.length)
w.close()
