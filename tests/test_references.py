"""The generator's reference half comes from a quiet moment of the same shot, never from the
output's own moment (core.references), and reaches the model as the second half of its input."""
import numpy as np
import torch

from core.references import References, rest_frames
from core.render import FaceGenerator, Renderer, RenderOptions
from tests.conftest import BoxDetector, speech_like
from tests.test_render_pipeline import FPS, RecordingGenerator, write_wav


def test_rest_frames_are_the_quietest_face_frame_of_each_block_of_each_shot():
    n = 300  # 12 s at 25 fps, a cut at 200
    has_face = np.ones(n, bool)
    has_face[40:60] = False
    loudness = np.ones(n)
    loudness[[10, 150, 230]] = 0.0  # quiet moments
    loudness[50] = -1.0  # the quietest of all, but no face there
    rests = rest_frames(has_face, [200], FPS, loudness, 0, n)
    assert rests == {0: [10, 150], 200: [230]}  # blocks of 125 frames: [0,125) [125,200) | [200,300)
    assert rest_frames(has_face, [200], FPS, None, 0, n) == {0: [72, 162], 200: [250]}  # no audio: the middles
    assert rest_frames(has_face, [200], FPS, loudness, 210, 260) == {210: [230]}  # only the frames asked about


def test_rest_frames_do_not_depend_on_faces_outside_the_window():
    # a cold cache knows the faces of the job's window only, a warm one those of the whole video
    n, lo, hi = 600, 180, 330
    everywhere = np.ones(n, bool)
    window_only = np.zeros(n, bool)
    window_only[lo:hi] = True
    loudness = np.random.default_rng(1).random(n)
    assert rest_frames(window_only, [], FPS, loudness, lo, hi) == rest_frames(everywhere, [], FPS, loudness, lo, hi)
    assert all(lo <= r < hi for rests in rest_frames(everywhere, [], FPS, loudness, lo, hi).values() for r in rests)


def test_a_reference_is_of_the_same_shot_and_at_least_a_second_away():
    refs = References({0: [10, 150], 200: [230], 280: []}, {}, FPS)
    assert refs.frame_for(12) == 150  # 10 is too close
    assert refs.frame_for(100) == 150 and refs.frame_for(140) == 10
    assert refs.frame_for(210) == 230  # its shot has one rest frame, too close: still the farthest of the shot
    assert refs.frame_for(290) == 290  # a shot without rest frames: its own frame
    own = np.zeros((96, 96, 3), np.uint8)
    assert refs.crop_for(290, own) is own


class ReferenceRecorder(RecordingGenerator):
    def __init__(self):
        super().__init__()
        self.references = []

    def __call__(self, crops, mels, references=None):
        self.references.extend(references)
        return super().__call__(crops, mels)


def speaker_clip(path):
    """6 s of a face whose mouth opens and closes, no audio: two rest frames, the middles of [0, 5 s)
    and [5 s, 6 s)."""
    from core.video import VideoWriter
    from tests.test_actor_mouth import frame_with, mouth_image, opening

    with VideoWriter(path, 320, 240, FPS, crf=0, preset="ultrafast") as writer:
        for i in range(150):
            writer.write(frame_with(mouth_image(opening(i))))
    return path


def test_the_renderer_feeds_each_frame_its_rest_frames_crop(tmp_path):
    video = speaker_clip(tmp_path / "actor.mp4")
    generator = ReferenceRecorder()
    renderer = Renderer(video, write_wav(tmp_path / "dub.wav", speech_like(6.0)),
                        RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "cache")), generator=generator)
    list(renderer.frames())
    assert len(generator.references) == 150 and sorted(renderer.references.crops) == [62, 137]
    for k, reference in enumerate(generator.references):
        src = int(renderer.source[k])
        rest = renderer.references.frame_for(src)
        assert abs(rest - src) >= FPS  # a second away, in this one-shot clip
        assert np.array_equal(reference, renderer.references.crops[rest])


def test_a_render_takes_the_same_references_whatever_else_the_cache_holds(tmp_path):
    from core.faces import track_video
    from core.video import VideoSource, VideoWriter
    from tests.test_actor_mouth import frame_with, mouth_image, opening

    video = tmp_path / "long.mp4"
    with VideoWriter(video, 320, 240, FPS, crf=0, preset="ultrafast") as writer:
        for i in range(500):  # 20 s: a 2 s line in the middle, footage on both sides of its window
            writer.write(frame_with(mouth_image(opening(i))))
    dub = write_wav(tmp_path / "dub.wav", speech_like(20.0))

    def references_fed(cache):
        generator = ReferenceRecorder()
        options = RenderOptions(detector=BoxDetector(), cache_dir=str(cache), mouth="generated",
                                start_frame=250, end_frame=300)
        renderer = Renderer(video, dub, options, generator=generator)
        list(renderer.frames())
        return renderer.references.rests, np.stack(generator.references)

    cold = references_fed(tmp_path / "cold")
    with VideoSource(video) as source:  # another job detected the whole video into this cache
        track_video(source, detector=BoxDetector(), cache_dir=str(tmp_path / "warm"))
    warm = references_fed(tmp_path / "warm")
    assert cold[0] == warm[0] and np.array_equal(cold[1], warm[1])


def test_the_reference_is_the_second_half_of_the_generators_input():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, mel, x, first_row):
            seen.append(x.clone())
            return x[:, 3:, first_row:]

    crops = np.random.default_rng(0).integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    references = 255 - crops
    FaceGenerator(Probe(), torch.device("cpu"))(crops, np.zeros((2, 80, 16), np.float32), references)
    x = seen[0]
    as_input = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255
    assert torch.all(x[:, :3, 48:] == 0) and torch.allclose(x[:, :3, :48], as_input(crops)[:, :, :48])
    assert torch.allclose(x[:, 3:], as_input(references))


def test_the_generated_mouths_lips_are_coloured_after_its_reference_not_its_own_frame(tmp_path, monkeypatch):
    from core import render

    video = speaker_clip(tmp_path / "speaker.mp4")
    lip_colours = []
    pasted = render.composite
    monkeypatch.setattr(render, "composite", lambda *args: lip_colours.append(args[5]) or pasted(*args))
    generator = ReferenceRecorder()
    renderer = Renderer(video, write_wav(tmp_path / "dub.wav", speech_like(6.0)),
                        RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "cache"), mouth="generated"),
                        generator=generator)
    list(renderer.frames())
    assert len(lip_colours) == 150
    assert all(np.array_equal(c, r) for c, r in zip(lip_colours, generator.references))
