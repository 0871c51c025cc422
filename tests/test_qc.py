"""core/qc.py: the QC report beside an export, its figures checked against direct measurements.

A drawn face (at conftest's FACE_BOX, found by a stub detector that sees no face in a dark frame)
opens and closes its mouth in a take that covers the speech segment and the silence after it (a
leak there), while the source's mouth stays shut; frames 12-17 are dark (no face).
"""
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.export import export_request, export_video
from core.faces.detect import Detection, FaceDetector
from core.faces.geometry import padded_box
from core.hparams import HP
from core.project import AddTake, ChooseTake, MediaFacts, Project, ReplaceSegments, SetProjectSettings, SetScores
from core.qc import qc_path, render_html, write_qc_report
from core.render import source_frames
from core.sync import load_scorer, score_video
from core.sync_scale import EXPERT_WEAK_BELOW
from core.video import VideoSource, VideoWriter
from tests.conftest import FACE_BOX, BoxDetector, speech_like

FPS, N = 25, 50
SIZE = (320, 240)
DARK = range(12, 18)
DRAFT = "Fast draft (CRF 23)"


class FaceInTheLight(BoxDetector):
    """The fixed face, except in a dark frame."""

    def _detect(self, image):
        return [] if image.mean() < 20 else super()._detect(image)


def draw_face(frame: np.ndarray, box, mouth_open: float) -> np.ndarray:
    """A face drawn into `box` of `frame`, its mouth open by `mouth_open` (0 closed .. 1 wide)."""
    x1, y1, x2, y2 = box
    cx, cy, s = (x1 + x2) // 2, (y1 + y2) // 2, (y2 - y1) / 140  # drawn for FACE_BOX's 140 px height
    cv2.ellipse(frame, (cx, cy), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, (120, 160, 210), -1)
    for ex in (cx - int(22 * s), cx + int(22 * s)):
        cv2.circle(frame, (ex, cy - int(25 * s)), max(1, int(6 * s)), (40, 40, 40), -1)
    cv2.ellipse(frame, (cx, cy + int(38 * s)), (int(22 * s), max(1, int((2 + 16 * mouth_open) * s))), 0, 0, 360,
                (40, 30, 110), -1)
    return frame


def face(mouth_open: float) -> np.ndarray:
    """The face at FACE_BOX, its mouth open by `mouth_open`."""
    return draw_face(np.full((SIZE[1], SIZE[0], 3), 90, np.uint8), FACE_BOX, mouth_open)


def flap(k: int) -> float:
    """A talking mouth's opening at frame k."""
    return 0.5 + 0.5 * np.sin(k * 1.3)


def write_video(path, frames) -> None:
    with VideoWriter(path, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)


def write_dub(path, n: int, speech: int) -> None:
    """A dub of n frames: speech for the first `speech`, then silence."""
    import soundfile

    wave = speech_like(n / FPS)
    wave[int(speech / FPS * 16000):] = 0
    soundfile.write(path, wave, 16000)


def write_media(folder, n: int):
    """The clip (the face, its mouth shut; dark over DARK) and a dub speaking over its first half."""
    video, dub = folder / "clip.mp4", folder / "dub.wav"
    write_dub(dub, n, n // 2)
    write_video(video, (np.zeros_like(face(0)) if k in DARK else face(0.0) for k in range(n)))
    return video, dub


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return write_media(tmp_path_factory.mktemp("qc_media"), N)


def new_project(folder, video, dub, n: int) -> Project:
    project = Project.new(video, MediaFacts.probe_video(video), path=folder / "scene.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=n / FPS))
    project.execute(SetProjectSettings(project, {"length_policy": "cut"}))
    return project


def add_take(project, segment_ids, frames) -> str:
    """A take of `frames` from frame 0, rendered for the first of `segment_ids` (its settings), chosen for all."""
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    write_video(file, frames)
    take = project.new_take(segment_ids[0], file, take_id=take_id, start=0, end=len(frames))
    project.execute(AddTake(project, take, choose=True))
    for sid in segment_ids[1:]:
        project.execute(ChooseTake(project, sid, take_id))
    return take_id


def qc_project(folder, video, dub, n: int = N) -> Project:
    """s1 [0, n/2) speech, s2 [n/2, n) silence, one take over both, chosen for both."""
    project = new_project(folder, video, dub, n)
    project.execute(ReplaceSegments(project, [project.make_segment(0, n // 2),
                                              project.make_segment(n // 2, n, "silence")]))
    add_take(project, ["s1", "s2"], [np.zeros_like(face(0)) if k in DARK else face(flap(k)) for k in range(n)])
    project.save()
    return project


@pytest.fixture
def stub_detector(monkeypatch):
    import core.faces

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: FaceInTheLight())


def mouth_changes(path, frames, box=FACE_BOX) -> np.ndarray:
    """Mean |grey change| of the mouth box (the generator crop's lower half) of the face at `box` from
    frame k-1 to k, per k."""
    x1, y1, x2, y2 = padded_box(box, SIZE, HP.pads)
    y1 = (y1 + y2) // 2
    with VideoSource(path) as video:
        grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[y1:y2, x1:x2].astype(np.float32)
                for f in source_frames(video, np.arange(max(frames) + 1))]
    return np.array([np.abs(grey[k] - grey[k - 1]).mean() for k in frames])


def test_the_report_measures_the_export_and_renders_its_figures(media, tmp_path, stub_detector):
    video, dub = media
    project = qc_project(tmp_path, video, dub)
    out = tmp_path / "final.mp4"
    result = export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT, loudness="-23"))
    figures = write_qc_report(project, result)
    report = qc_path(out)
    assert report == tmp_path / "final.mp4.qc.html" and report.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left

    # sync: the expert on the export and its audio, with the face found on its own frames
    direct = score_video(out, None, scorer=load_scorer("expert"), detector=FaceInTheLight())
    assert figures["sync"]["offset_frames"] == direct.offset_frames
    assert figures["sync"]["lse_c"] == pytest.approx(direct.lse_c, abs=1e-6)
    [s1] = figures["segments"]
    conf = direct.frame_conf[:25]
    assert s1["lse_c"] == pytest.approx(np.nanmean(conf), abs=1e-6)
    assert s1["verdict"] == ("good" if s1["lse_c"] >= project.threshold else "poor")
    assert figures["threshold"] == project.threshold and figures["threshold_is"] == "project"  # never scored
    assert [f for f, _ in s1["curve"]] == list(range(25))
    assert all((c is None) == (not np.isfinite(d)) for (_, c), d in zip(s1["curve"], conf))
    assert all(s1["curve"][k][1] is None for k in DARK)  # no face: not scored

    # leak: the take's mouth flaps over the silence, the source's is still
    silent = range(26, N)
    assert figures["leak"]["frames"] == len(silent)
    assert figures["leak"]["output"] == pytest.approx(mouth_changes(out, silent).mean(), rel=1e-5)
    assert figures["leak"]["source"] == pytest.approx(mouth_changes(video, silent).mean(), abs=1e-6)
    assert figures["leak"]["output"] > 5 * max(figures["leak"]["source"], 0.1)

    assert figures["no_face"] == {"frames": len(DARK), "ranges": [[DARK[0], DARK[-1] + 1]]}
    assert figures["seam"]["frames"] == N - len(DARK) and figures["seam"]["edge"] > 0
    [dub_track] = figures["loudness"]
    assert dub_track["after"]["integrated"] == pytest.approx(result.loudness[0][2].integrated)
    assert dub_track["before"]["integrated"] == pytest.approx(result.loudness[0][1].integrated)
    assert len(figures["worst"]) >= 1 and all(w["frame"] not in DARK for w in figures["worst"])
    lowest = min(c for _, c in s1["curve"] if c is not None)
    assert min(w["conf"] for w in figures["worst"]) == pytest.approx(lowest)
    expert = next(m for m in figures["models"] if m["role"] == "expert")
    assert re.fullmatch(r"[0-9a-f]{64}", expert["sha256"])

    # the HTML shows those figures, self-contained
    text = report.read_text(encoding="utf-8")
    assert text == render_html(figures)
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert f"LSE-C {s1['lse_c']:.3f}" in text and s1["verdict"] in text
    assert f"{figures['leak']['output']:.2f}" in text and f"{DARK[0]}–{DARK[-1]}" in text
    assert text.count("data:image/jpeg;base64,") == len(figures["worst"]) and text.count("<svg") == 1
    assert expert["sha256"] in text and f"{dub_track['after']['integrated']:.1f} LUFS" in text

    # a project scored by another expert: its threshold is on that scale, so the report uses this expert's line
    project.execute(SetScores(project, {}, scorer={"name": "other", "sha256": "f" * 64, "weak_below": 9.0}))
    assert project.threshold == 9.0
    again = write_qc_report(project, result)
    assert again["threshold"] == EXPERT_WEAK_BELOW and again["threshold_is"] == "expert"
    assert "another expert's scale" in report.read_text(encoding="utf-8")


def test_the_cli_export_writes_the_report_beside_it_unless_told_not_to(media, tmp_path, stub_detector, capsys):
    video, dub = media
    project = qc_project(tmp_path, video, dub)
    out, quiet = tmp_path / "cli.mp4", tmp_path / "quiet.mp4"
    assert main.main(["export", str(project.path), "-o", str(out), "--preset", DRAFT, "-q"]) == 0
    assert qc_path(out).is_file() and "cli.mp4.qc.html" in capsys.readouterr().out
    assert main.main(["export", str(project.path), "-o", str(quiet), "--preset", DRAFT, "-q", "--no-qc"]) == 0
    assert quiet.is_file() and not qc_path(quiet).exists()


def test_a_report_that_cannot_be_made_is_a_note_the_export_stands(media, tmp_path, stub_detector, capsys,
                                                                   monkeypatch):
    import core.qc
    from core.errors import LipsmithError

    def fail(project, result, **kwargs):
        raise LipsmithError(project.path, "no sync expert installed")

    monkeypatch.setattr(core.qc, "write_qc_report", fail)
    video, dub = media
    project = qc_project(tmp_path, video, dub)
    out = tmp_path / "delivered.mp4"
    assert main.main(["export", str(project.path), "-o", str(out), "--preset", DRAFT, "-q"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and not qc_path(out).exists()
    assert f"{out} is complete, but no QC report was written" in printed and "no sync expert" in printed


# --------------------------------------------------------------------------- whose face, and how much is read

FACE1_BOX = (14, 80, 84, 180)  # a second, smaller face left of FACE_BOX's: face 1
TWO = 60


class TwoFaces(FaceDetector):
    """Finds both faces in every frame: FACE_BOX (the larger, central: face 0) and FACE1_BOX."""

    name = "test-two-faces"

    def _detect(self, image):
        return [Detection(FACE_BOX, 0.99), Detection(FACE1_BOX, 0.99)]


class Boxes:
    """A face track by export frame, given by hand (core.sync.score_video's `track`)."""

    def __init__(self, boxes):
        self.boxes = boxes

    def __len__(self):
        return len(self.boxes)

    def box(self, k):
        return np.asarray(self.boxes[k], np.float64)


def two_faces(mouths0, mouths1) -> list:
    return [draw_face(face(m0), FACE1_BOX, m1) for m0, m1 in zip(mouths0, mouths1)]


def test_each_frame_is_measured_on_the_face_its_take_was_rendered_on(tmp_path, monkeypatch):
    """s1 (speech) and s2 (silence) export a take rendered on face 1, whose mouth it moves; s3 (silence)
    the original frames, where face 0 moves its mouth: the project's face (0) measures those."""
    import core.faces
    from core.blend import BlendSettings, paste_weight
    from core.project import SetSegmentSettings
    from core.qc import seam_strength

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: TwoFaces())
    video, dub = tmp_path / "two.mp4", tmp_path / "dub.wav"
    write_dub(dub, TWO, 25)
    write_video(video, two_faces([flap(k) if k >= 50 else 0 for k in range(TWO)], [0] * TWO))
    project = new_project(tmp_path, video, dub, TWO)
    project.execute(ReplaceSegments(project, [project.make_segment(0, 25), project.make_segment(25, 50, "silence"),
                                              project.make_segment(50, TWO, "silence")]))
    project.execute(SetSegmentSettings(project, "s1", {"face_index": 1}))
    add_take(project, ["s1", "s2"], two_faces([0] * 50, [flap(k) for k in range(50)]))
    assert project.takes[project.segment("s1").take_id].settings["face_index"] == 1
    out = tmp_path / "final.mp4"
    figures = write_qc_report(project, export_video(lambda *a: None, lambda: False,
                                                    export_request(project, out, DRAFT)))

    # confidence: the expert on face 1 where the take is, face 0 over the original frames
    direct = score_video(out, None, scorer=load_scorer("expert"),
                         track=Boxes([FACE1_BOX] * 50 + [FACE_BOX] * (TWO - 50)))
    [s1] = figures["segments"]
    assert [f for f, _ in s1["curve"]] == list(range(25))
    curve = [np.nan if c is None else c for _, c in s1["curve"]]
    assert np.isfinite(curve).sum() > 10
    np.testing.assert_allclose(curve, direct.frame_conf[:25], atol=1e-6)
    assert figures["sync"]["lse_c"] == pytest.approx(direct.lse_c, abs=1e-6)

    # leak: face 1's mouth over s2 (the take's), face 0's over s3 (the original frames)
    s2, s3 = figures["leak"]["segments"]
    assert s2["output"] == pytest.approx(mouth_changes(out, range(26, 50), FACE1_BOX).mean(), rel=1e-5)
    assert s2["source"] == pytest.approx(mouth_changes(video, range(26, 50), FACE1_BOX).mean(), abs=1e-6)
    assert s2["output"] > 5 * max(s2["source"], 0.1)
    assert s3["output"] == pytest.approx(mouth_changes(out, range(50, TWO), FACE_BOX).mean(), rel=1e-5)
    assert s3["source"] == pytest.approx(mouth_changes(video, range(50, TWO), FACE_BOX).mean(), abs=1e-6)
    assert s3["output"] > 1

    # seam: on face 1's crop and the take's mask, over the take's frames only
    crop = padded_box(FACE1_BOX, SIZE, HP.pads)
    weight = paste_weight(crop, None, (HP.img_size, HP.img_size), BlendSettings.from_settings(project.settings))
    with VideoSource(out) as exported:
        edges = [seam_strength(frame, crop, weight)[0] for _, frame in exported.frames(0, 50)]
    assert figures["seam"]["frames"] == 50 and figures["seam"]["edge"] == pytest.approx(np.mean(edges), rel=1e-5)
    assert figures["no_face"]["frames"] == 0


def test_an_uncached_report_on_a_range_detects_and_opens_only_what_it_measures(tmp_path, monkeypatch, every_frame):
    import collections

    import core.faces
    import core.video
    from core.faces import context_frames

    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "cache"))  # nothing detected yet
    detector = FaceInTheLight()
    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: detector)
    video, dub = write_media(tmp_path, 100)
    project = qc_project(tmp_path, video, dub, 100)
    out = tmp_path / "range.mp4"
    result = export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT, start=40, end=60))
    assert result.source_frames.tolist() == list(range(40, 60)) and detector.calls == 0

    opened = collections.Counter()
    init = core.video.VideoSource.__init__
    monkeypatch.setattr(core.video.VideoSource, "__init__",
                        lambda self, path, *a, **k: (opened.update([Path(path)]), init(self, path, *a, **k))[1])
    figures = write_qc_report(project, result)
    assert detector.calls == 20 + 2 * context_frames(project.settings["smooth_window"])  # not the clip's 100
    assert opened == {video: 1, out: 1}  # each file is opened (its packets scanned) once
    assert figures["seam"]["frames"] == 20 and figures["no_face"]["frames"] == 0
    assert [(s["start"], s["end"]) for s in figures["segments"]] == [(40, 50)]
