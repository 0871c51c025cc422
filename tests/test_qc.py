"""core/qc.py: the QC report beside an export, its figures checked against direct measurements.

A drawn face (at conftest's FACE_BOX, found by a stub detector that sees no face in a dark frame)
opens and closes its mouth in a take that covers the speech segment and the silence after it (a
leak there), while the source's mouth stays shut; frames 12-17 are dark (no face).
"""
import re

import cv2
import numpy as np
import pytest

import main
from core.export import export_request, export_video
from core.faces.geometry import padded_box
from core.hparams import HP
from core.project import AddTake, ChooseTake, MediaFacts, Project, ReplaceSegments, SetProjectSettings
from core.qc import qc_path, render_html, write_qc_report
from core.render import source_frames
from core.sync import load_scorer, score_video
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


def face(mouth_open: float) -> np.ndarray:
    """The face, its mouth open by `mouth_open` (0 closed .. 1 wide)."""
    frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    x1, y1, x2, y2 = FACE_BOX
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    cv2.ellipse(frame, (cx, cy), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, (120, 160, 210), -1)
    for ex in (cx - 22, cx + 22):
        cv2.circle(frame, (ex, cy - 25), 6, (40, 40, 40), -1)
    cv2.ellipse(frame, (cx, cy + 38), (22, max(1, int(2 + 16 * mouth_open))), 0, 0, 360, (40, 30, 110), -1)
    return frame


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    import soundfile

    folder = tmp_path_factory.mktemp("qc_media")
    video, dub = folder / "clip.mp4", folder / "dub.wav"
    wave = speech_like(N / FPS)
    wave[len(wave) // 2:] = 0  # speech, then silence
    soundfile.write(dub, wave, 16000)
    with VideoWriter(video, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
        for k in range(N):
            writer.write(np.zeros_like(face(0)) if k in DARK else face(0.0))
    return video, dub


def qc_project(folder, video, dub) -> Project:
    """s1 [0, 25) speech, s2 [25, 50) silence, one take over both, chosen for both."""
    project = Project.new(video, MediaFacts.probe_video(video), path=folder / "scene.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=N / FPS))
    project.execute(SetProjectSettings(project, {"length_policy": "cut"}))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 25), project.make_segment(25, 50, "silence")]))
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    with VideoWriter(file, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
        for k in range(N):
            writer.write(np.zeros_like(face(0)) if k in DARK else face(0.5 + 0.5 * np.sin(k * 1.3)))
    project.execute(AddTake(project, project.new_take("s1", file, take_id=take_id, start=0, end=N), choose=True))
    project.execute(ChooseTake(project, "s2", take_id))
    project.save()
    return project


@pytest.fixture
def stub_detector(monkeypatch):
    import core.faces

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: FaceInTheLight())


def mouth_changes(path, frames) -> np.ndarray:
    """Mean |grey change| of the mouth box (the generator crop's lower half) from frame k-1 to k, per k."""
    x1, y1, x2, y2 = padded_box(FACE_BOX, SIZE, HP.pads)
    y1 = (y1 + y2) // 2
    with VideoSource(path) as video:
        grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[y1:y2, x1:x2].astype(np.float32)
                for f in source_frames(video, np.arange(N))]
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
