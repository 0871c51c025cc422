"""Closures from the dub (core.closures): when the lips shut comes from the dub-shape model, what
shuts them is one of the actor's own closed mouths, from another moment."""
import cv2
import numpy as np
import pytest
import torch

from core import closures
from core import actor_mouth
from core.actor_mouth import ActorMouth, EXCLUDE_S, MouthBank
from core.errors import WeightsError
from core.hparams import HP
from core.models.dub_shape import DubShapeDims, DubShapeModel
from core.models.lip_reader import LipReaderDims, LipShapeReader
from core.render import Renderer, RenderOptions
from tests.conftest import BoxDetector, speech_like
from tests.test_actor_mouth import (FACE_BOX, MOUTH_SIZE, bank_of, dark_height, frame_with, lower_half, mouth_image,
                                    opening)
from tests.test_render_pipeline import FPS, write_wav


def test_the_closure_ramps_from_shut_to_open_at_the_models_own_gaps():
    model = DubShapeModel(DubShapeDims(width=0.25))
    model.closed_gap.fill_(0.3)
    model.open_gap.fill_(0.5)
    np.testing.assert_allclose(closures.closure_weights(model, [0.0, 0.3, 0.4, 0.5, 0.9]), [1, 1, 0.5, 0, 0], atol=1e-6)


def test_closed_bank_mouths_are_those_far_under_the_banks_wide_open_ones():
    gaps = np.concatenate([np.linspace(0.0, 0.2, 101), [0.01]])
    closed = closures.closed_rows(gaps)
    assert closed[0] and closed[-1] and not closed[50]
    assert np.all(gaps[closed] < closures.BANK_CLOSED_SHARE * np.percentile(gaps, 95))
    assert closures.closed_rows(np.zeros(0)).shape == (0,)


def test_a_long_dub_is_read_in_pieces_with_the_same_result(monkeypatch):
    torch.manual_seed(0)
    model = DubShapeModel(DubShapeDims(width=0.25)).eval()
    for m in model.modules():  # running statistics a trained model would have
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_var.uniform_(0.5, 2.0)
    model.target_mean.fill_(0.05)
    model.target_std.fill_(0.02)
    mel = np.random.default_rng(0).uniform(-4, 4, (HP.num_mels, 2000)).astype(np.float32)
    seconds = np.arange(600) / FPS - 0.3  # frames before the dub too
    whole = closures.predicted_gaps(model, mel, seconds, FPS)
    monkeypatch.setattr(closures, "CHUNK_FRAMES", 70)
    np.testing.assert_allclose(closures.predicted_gaps(model, mel, seconds, FPS), whole, atol=1e-5)
    # raw units: the model's standardised output brought back by its target mean and spread
    assert abs(float(np.mean(whole)) - 0.05) < 0.1


class OpeningReader(LipShapeReader):
    """A lip reader that reads a synthetic mouth's opening: the share of dark rows in its middle
    column beyond the 3 rows a shut mouth's line shows (`mouth_image`)."""

    def forward(self, lower_luma):
        column = lower_luma[:, 0, :, lower_luma.shape[-1] // 2]
        dark = (column < 0.5 * column.median(dim=1, keepdim=True).values).float().mean(1)
        gap = (dark - 3 / 48).clamp(min=0)
        return torch.stack([gap] + [torch.zeros_like(gap)] * 7, 1)


def test_the_reader_measures_the_banks_mouths_in_eye_distances():
    reader = OpeningReader(LipReaderDims())
    reader.target_mean.fill_(1.0)
    reader.target_std.fill_(2.0)
    mouths = [mouth_image(h) for h in (1, 8, 15)]
    gaps = closures.mouth_gaps(reader, mouths)
    expected = [1.0 + 2.0 * max(dark_height(m) - 3, 0) / 48 for m in mouths]
    np.testing.assert_allclose(gaps, expected, atol=2 / 48 * 2)
    assert gaps[0] < gaps[1] < gaps[2]
    assert closures.mouth_gaps(reader, []).shape == (0,)


def _paste(mouth: ActorMouth, closure: float, source_frame: int = 100) -> np.ndarray:
    frame = frame_with(mouth_image(8))
    x1, y1, x2, y2 = FACE_BOX
    generated = cv2.GaussianBlur(cv2.resize(frame_with(mouth_image(14))[y1:y2, x1:x2], (96, 96),
                                            interpolation=cv2.INTER_AREA), (0, 0), 2)  # wide open
    assert mouth.paste(frame, generated, FACE_BOX, None, source_frame=source_frame, closure=closure)
    return lower_half(frame, FACE_BOX, MOUTH_SIZE)


def test_a_closure_shuts_the_mouth_with_a_closed_mouth_of_another_moment():
    frames = np.arange(200)
    gaps = np.array([opening(i) for i in frames])  # a perfect lip reader
    closed = closures.closed_rows(gaps)
    mouth = ActorMouth(bank_of(frames), fps=FPS, gaps=gaps)
    assert dark_height(_paste(mouth, 0.0)) > 9  # the generated shape: open
    assert mouth.closures == 0
    shut = dark_height(_paste(mouth, 1.0))  # the dub says shut: as shut as the closed mouth taken
    assert mouth.closures == 1
    shut_from = int(mouth.bank.frames[mouth.previous_shut])
    assert closed[shut_from] and abs(shut_from - 100) >= EXCLUDE_S * FPS
    assert shut <= dark_height(mouth.bank.mouths[mouth.previous_shut]) + 1 < 5
    half = dark_height(_paste(mouth, 0.5))
    assert 2 < half < 12  # between the two
    # the next closure takes the next frame of the same closed stretch, as filmed
    last = int(mouth.bank.frames[mouth.previous_shut])
    _paste(mouth, 1.0, source_frame=101)
    assert int(mouth.bank.frames[mouth.previous_shut]) == last + 1 and closed[last + 1]
    # closed mouths only near the output's own moment: none is taken, the generated shape stays
    far = np.abs(frames - 100) >= EXCLUDE_S * FPS
    nearby_only = ActorMouth(bank_of(frames), fps=FPS, gaps=np.where(far, 10.0, gaps))
    assert dark_height(_paste(nearby_only, 1.0)) > 9 and nearby_only.closures == 0


def test_without_the_banks_gaps_a_closure_changes_nothing():
    with_none = _paste(ActorMouth(bank_of(range(200)), fps=FPS), 1.0)
    plain = _paste(ActorMouth(bank_of(range(200)), fps=FPS), 0.0)
    assert np.array_equal(with_none, plain)


def test_closure_models_come_as_a_pair(monkeypatch):
    monkeypatch.setattr(closures, "read_manifest", lambda: {"generator": {}})
    assert closures.load_closure_models() is None
    monkeypatch.setattr(closures, "read_manifest", lambda: {"shape": {}})
    with pytest.raises(WeightsError, match="reader is missing"):
        closures.load_closure_models()


def test_the_closing_mouth_shuts_the_lips_where_the_dub_says_and_the_actors_alone_does_not(tmp_path, monkeypatch):
    from tests.test_actor_mouth import IdentityGenerator

    from core.video import VideoWriter
    clip = tmp_path / "actor.mp4"
    with VideoWriter(clip, 320, 240, FPS, crf=0, preset="ultrafast") as writer:
        for i in range(125):
            writer.write(frame_with(mouth_image(opening(i))))
    dub = write_wav(tmp_path / "dub.wav", speech_like(5.0))
    reader = OpeningReader(LipReaderDims())
    shut_at = set(range(40, 50))  # the dub "says" shut on these output frames

    class Model(DubShapeModel):
        def forward(self, mel, positions):
            frames = np.round(positions.numpy() / (HP.mel_fps / FPS) - 0.5).astype(int)
            gap = torch.tensor([0.0 if f in shut_at else 1.0 for f in frames])
            return gap[None, None].repeat(1, 8, 1)

    monkeypatch.setattr(closures, "load_closure_models", lambda: (Model(DubShapeDims(width=0.25)), reader))
    options = RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "cache"), mouth="actor-closing")
    renderer = Renderer(clip, dub, options, generator=IdentityGenerator())
    assert renderer.closure is not None and set(np.flatnonzero(renderer.closure == 1)) == shut_at
    closed = renderer.actor.closed
    assert closed.any() and not closed.all()
    rows = {k: lower_half(f.to_bgr(), FACE_BOX, MOUTH_SIZE) for k, f, _ in renderer.frames()}
    assert renderer.actor.closures == len(shut_at)
    # shut, though their own mouths were 11-15 rows open (what is left is the mask's feather on the original)
    assert all(dark_height(rows[k]) < 8 for k in shut_at)
    assert all(dark_height(rows[k]) > 9 for k in set(range(125)) - shut_at if opening(int(renderer.source[k])) > 12)
    off = Renderer(clip, dub, RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "cache"), mouth="actor"),
                   generator=IdentityGenerator())  # the actor's mouth alone: no closures
    assert off.closure is None
    list(off.frames())
    assert off.actor.closures == 0
    # a build without the closure models renders the actor's mouth and says so
    monkeypatch.setattr(closures, "load_closure_models", lambda: None)
    bare = Renderer(clip, dub, options, generator=IdentityGenerator())
    assert bare.closure is None and any("no closure models" in w for w in bare.warnings)


def test_a_closed_mouth_filmed_in_other_light_takes_this_frames():
    frames = np.arange(200)
    bank = bank_of(frames)
    bank.mouths = [np.clip(m.astype(int) + 40, 0, 255).astype(np.uint8) for m in bank.mouths]  # a brighter moment
    mouth = ActorMouth(bank, fps=FPS, gaps=np.array([opening(i) for i in frames]))
    here = np.median(lower_half(frame_with(mouth_image(8)), FACE_BOX, MOUTH_SIZE).reshape(-1, 3), axis=0)
    shut = np.median(_paste(mouth, 1.0).reshape(-1, 3), axis=0)
    assert mouth.closures == 1
    assert np.abs(shut - here).max() < 8  # not the 40 levels it was filmed brighter


def test_a_closed_mouth_is_placed_on_this_frames_mouth_corners():
    line = np.full((48, 96, 3), 200, np.uint8)
    cv2.line(line, (30, 20), (70, 20), (20, 20, 20), 2)  # a shut mouth, corners at (30, 20) and (70, 20)
    mouth = ActorMouth(MouthBank(np.array([0]), [line], np.zeros((1, 1))), fps=FPS,
                       corners=np.array([[[30 / 96, 20 / 48], [70 / 96, 20 / 48]]]))
    here = np.array([[40 / 96, 30 / 48], [80 / 96, 34 / 48]])  # moved, and tilted down to the right
    placed = mouth.placed(0, here, (96, 48))
    dark = placed[..., 0] < 100
    ys, xs = np.nonzero(dark)
    assert abs(xs.min() - 40) <= 2 and abs(xs.max() - 80) <= 2
    assert abs(ys[xs == xs.min()].mean() - 30) <= 1.5 and abs(ys[xs == xs.max()].mean() - 34) <= 1.5
    # without this frame's corners (or the bank's), the mouth is only resized to the box
    np.testing.assert_array_equal(mouth.placed(0, None, (96, 48)), line.astype(np.float32))
    # the corners as shares of the box's lower half, from RetinaFace's five landmarks
    box, landmarks = (100, 50, 200, 190), np.array([[130, 90], [170, 90], [150, 120], [125, 160], [175, 160]])
    np.testing.assert_allclose(actor_mouth.lower_half_corners(box, landmarks), [[0.25, 40 / 70], [0.75, 40 / 70]])
    assert actor_mouth.lower_half_corners(box, None) is None
