"""The generator pipeline: a video (or a still) and a dub in, lip-synced frames out.

decode (thread) ─► crop + mel window ─► generator (batched) ─► blend (thread) ─► encode (ffmpeg)

Frames stay in the source's decoded 8-bit 4:2:0 YUV (core.yuv) from decoder to encoder; only the
box around the face is converted to BGR for the crop and the blend, and only the pixels the
blend changed are written back.

Stages are joined by bounded queues, so memory stays flat whatever the video's length.
Output frame k is shown at k / fps; its mel window starts at int(80 · k / fps) of the
dub, exactly as the reference maps frames to audio. Which source frame feeds output
frame k depends on the length policy when dub and video differ.
"""
import collections
import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from core import actor_mouth, closures
from core.audio import is_silent, load_audio, mel_windows, melspectrogram
from core.blend import BlendSettings, composite, original_crop
from core.device import cpu_supports_bf16, select_device
from core.errors import Cancelled, FaceError, MediaError
from core.hparams import ACTOR_MOUTHS, DEFAULT_MOUTH, HP, MOUTH_MODES
from core.plan import plan_frames
from core.references import build_references, window as reference_window
from core.threads import in_background
from core.video import VideoSource, VideoWriter
from core.yuv import even_box
from core.weights import load_model


@dataclass
class RenderOptions:
    checkpoint: str = "generator"  # a bundled model name or a checkpoint path
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    start_frame: int = 0  # output frame range [start_frame, end_frame)
    end_frame: int | None = None
    length_policy: str = "cut"
    pads: tuple = HP.pads  # top, bottom, left, right
    smooth_window: int = 5
    face_index: int | None = None  # None: the largest, most central face
    detector: object = "retinaface"  # a name for core.faces.get_detector, or a detector object
    detector_weights: str | None = None  # folder of face-alignment's weight files (never downloaded)
    cache_dir: str | None = None  # face-detection cache folder (the actor's mouths in its mouths/); None: the default
    batch_size: int = 32
    dub_offset_s: float = 0.0  # positive: the dub starts later
    blend: BlendSettings = field(default_factory=BlendSettings)
    compile: bool | None = None  # None: compile when the job is long enough to pay for it
    crf: int = 18
    preset: str = "veryfast"  # see main.py --preset: the encoder was the real-time bottleneck
    allow_silent_dub: bool = False
    strict: bool = False  # a damaged or truncated source is an error, not a warning
    mouth: str = DEFAULT_MOUTH  # "actor": the actor's own lips and teeth in the generated shape (core.actor_mouth);
    # "actor-closing": and shut where the dub shuts real lips (core.closures)


@dataclass
class RenderReport:
    output: Path | None
    frames: int
    generated: int
    no_face_frames: list  # output frame indices passed through for want of a face
    faces_seen: int
    seconds: float
    fps: float
    generated_mouth_frames: list = field(default_factory=list)  # the actor's mouth asked, the generated one pasted
    closed_frames: int = 0  # frames where the dub's closures shut the actor's mouth (in part or whole)

    @property
    def generated_mouth_ranges(self) -> list:
        return to_ranges(self.generated_mouth_frames)

    @property
    def no_face_ranges(self) -> list:
        return to_ranges(self.no_face_frames)


def to_ranges(indices) -> list:
    """[3, 4, 5, 9] → [(3, 6), (9, 10)], half-open."""
    ranges = []
    for i in indices:
        if ranges and ranges[-1][1] == i:
            ranges[-1] = (ranges[-1][0], i + 1)
        else:
            ranges.append((i, i + 1))
    return ranges


# --------------------------------------------------------------------------- source frames


def source_frames(video: VideoSource, indices, block: int = 32, yuv: bool = False):
    """Frames (BGR, or `YuvFrame`s when `yuv`) for a sequence of source indices, decoding forward
    runs once and reversed runs in small blocks (for bounce), so memory stays bounded."""
    indices = np.asarray(indices)
    if video.is_image:
        still = next(video.frames(0, 1, yuv=yuv))[1]
        for _ in indices:
            yield still.copy()
        return
    i = 0
    while i < len(indices):
        j = i + 1
        step = 1 if j >= len(indices) or indices[j] >= indices[i] else -1
        # a forward run may skip frames (a VFR source conformed to a slower rate): decoding
        # through a short gap costs less than seeking again
        longest_step = block if step > 0 else 1
        while j < len(indices) and 0 <= (indices[j] - indices[j - 1]) * step <= longest_step:
            j += 1
        run = indices[i:j]
        if step > 0:
            frames = video.frames(int(run[0]), int(run[-1]) + 1, yuv=yuv)
            current_index, current = next(frames)
            for n, want in enumerate(run):
                while current_index < want:
                    current_index, current = next(frames)
                # a frame wanted again next (pad's held last frame, a VFR conform's repeats) goes out
                # as a copy first: the renderer blends each output frame in place
                yield current.copy() if n + 1 < len(run) and run[n + 1] == want else current
            frames.close()
        else:  # a descending run: decode it block by block, each block forwards, yield in run order
            for lo in range(0, len(run), block):
                wants = run[lo:lo + block].tolist()
                decoded = {idx: f for idx, f in video.frames(min(wants), max(wants) + 1, yuv=yuv)}
                for n, want in enumerate(wants):
                    # a frame wanted twice is handed out as a copy the first time (the renderer blends in place)
                    yield decoded[want] if want not in wants[n + 1:] else decoded[want].copy()
        i = j


# --------------------------------------------------------------------------- generator


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold each eval-mode BatchNorm into the conv before it (`conv_block` = conv, BN), in place.

    Exact in fp32 (≤ 1e-6), and it saves the BN passes and, under bf16 autocast, the casts
    to fp32 and back around every BN: 6 % less generator CPU time at width 1 (42.7 vs 45.5 ms/image,
    one thread, bf16).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        block = getattr(module, "conv_block", None)
        if (isinstance(block, torch.nn.Sequential) and len(block) == 2
                and isinstance(block[0], (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
                and isinstance(block[1], torch.nn.BatchNorm2d) and block[1].track_running_stats):
            block[0] = fuse_conv_bn_eval(block[0], block[1], transpose=isinstance(block[0], torch.nn.ConvTranspose2d))
            block[1] = torch.nn.Identity()
    return model


def prepare_for_inference(model: torch.nn.Module, device: torch.device) -> tuple:
    """(model, autocast): the model in eval mode with BatchNorm folded into its convs (in place),
    channels-last on `device`, and the mixed precision the device runs fastest: bf16 on CPUs
    with native bf16 (weights stored in bf16: autocast would cast every weight again on every
    call, 12 % of the generator's time at width 1), fp16 on CUDA, none elsewhere (a no-op context)."""
    with torch.no_grad():
        model = fold_batchnorm(model.eval())
    model = model.to(device).to(memory_format=torch.channels_last)
    if device.type == "cuda":
        return model, torch.autocast("cuda", dtype=torch.float16)
    if device.type == "cpu" and cpu_supports_bf16():
        return model.to(torch.bfloat16), torch.autocast("cpu", dtype=torch.bfloat16)
    return model, contextlib.nullcontext()


def compile_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile for inference, its kernels cached with the product's other caches, so a later run
    (or a reboot: /tmp is not kept) loads them in seconds instead of compiling for half a minute.
    Inductor's freezing makes the weights constants, so each convolution is prepacked for oneDNN once:
    width 1, 2 cores, bf16: 42.7 images/s against 27.8 compiled without it, and 34.3 with freezing passed
    as torch.compile's option instead of set in inductor's config (the option does not reach it all)."""
    import torch._inductor.config

    from core.faces.cache import default_cache_dir

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default_cache_dir().parent / "torch-compile"))
    torch._inductor.config.freezing = True  # only the generator is compiled in this process
    return torch.compile(model, dynamic=False)


class FaceGenerator:
    """Runs the generator on batches of 96×96 BGR crops, with the fastest settings the device has:
    inference mode, BatchNorm folded into the convs and channels-last everywhere, bf16 autocast
    on CPUs with native bf16, fp16 on CUDA, torch.compile when asked; the batch halves on
    out-of-memory. The model is changed in place (folded): it is for inference only after.
    Only the lower half is generated: no blend reaches above the crop's middle (core.blend.lower_face_mask),
    and the decoder's upper rows are a third of the work at width 1 (bench_generator). The upper half
    of what it returns is the crop's own, the half the generator is shown and trained to give back."""

    def __init__(self, model: torch.nn.Module, device: torch.device, batch_size: int = 32,
                 compile_model: bool = False):
        self.device = device
        self.batch_size = batch_size
        self.model, self.autocast = prepare_for_inference(model, device)
        self.compiled = compile_model
        if compile_model:
            self.model = compile_for_inference(self.model)

    def __call__(self, crops: np.ndarray, mels: np.ndarray, references: np.ndarray | None = None) -> np.ndarray:
        """crops (B, 96, 96, 3) uint8 BGR, mels (B, 80, 16) → generated crops (B, 96, 96, 3) uint8.
        `references` (B, 96, 96, 3): the identity half of the input (default: the crops themselves)."""
        references = crops if references is None else references
        out = []
        start = 0
        while start < len(crops):
            size = self.batch_size
            chunk = [crops[start:start + size], mels[start:start + size], references[start:start + size]]
            count = len(chunk[0])
            if self.compiled and count < size:
                # a compiled model is specialised to its batch size: another (a job's last batch) would
                # compile again, for as long as the first time; the batch is padded instead
                chunk = [np.concatenate([a, np.repeat(a[-1:], size - count, axis=0)]) for a in chunk]
            try:
                out.append(self._run(*chunk)[:count])
                start += size
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
        return np.concatenate(out) if out else crops[:0].copy()

    def _run(self, crops, mels, references) -> np.ndarray:
        half = crops.shape[1] // 2
        masked = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        masked[:, :, half:] = 0  # the generator redraws the lower half
        faces = torch.from_numpy(references).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        x = torch.cat([masked, faces], dim=1).contiguous(memory_format=torch.channels_last)
        mel = torch.from_numpy(np.ascontiguousarray(mels)).to(self.device).unsqueeze(1)
        with torch.inference_mode(), self.autocast:
            # to 8 bits inside inference mode: without autocast (a CPU with no native bf16) .float()
            # returns the output itself, an inference tensor that may not be changed in place outside it
            pred = self.model(mel, x, first_row=half).float().clamp_(0, 1).mul_(255).round_().to(torch.uint8)
        out = crops.copy()
        out[:, half:] = pred.permute(0, 2, 3, 1).cpu().numpy()
        return out


def load_generator(options: RenderOptions, n_frames: int) -> FaceGenerator:
    device = select_device(options.device)
    model = load_model(options.checkpoint, expect="wav2lip")
    # compiling costs ~23 s on 2 cores into an empty kernel cache, ~5 s over a warm one (bench_generator);
    # it saves ~10 ms of CPU a 720p frame at width 1 and ~6 at width 0.5 (bench_render): worth it for
    # long jobs on CPU, where even a first compile pays for itself
    compile_model = options.compile if options.compile is not None else (device.type == "cpu" and n_frames > 3000)
    return FaceGenerator(model, device, options.batch_size, compile_model)


# --------------------------------------------------------------------------- the job


class FaceRegion:
    """The even-cornered region of a YuvFrame around a face's int `box`, as a BGR `image` to crop from
    and blend into; `box` and `local()` landmarks are in the image's coordinates."""

    def __init__(self, frame, box):
        x1, y1, x2, y2 = (int(v) for v in box)
        box = (x1, y1, min(x2, frame.width), min(y2, frame.height))  # an odd source's last row is not encoded
        self.frame, self.region = frame, even_box(box, frame.width, frame.height)
        self.image = frame.bgr(self.region)
        self.original = self.image.copy()
        rx, ry = self.region[:2]
        self.offset = np.array([rx, ry], np.float32)
        self.box = (box[0] - rx, box[1] - ry, box[2] - rx, box[3] - ry)

    def local(self, landmarks):
        return None if landmarks is None else landmarks - self.offset

    def write_back(self):
        """The pixels the blend changed go back into the frame; the others keep the decoder's codes."""
        # a pixel changed where any channel did: the absolute differences summed (saturating) are not 0
        difference = cv2.transform(cv2.absdiff(self.image, self.original), np.ones((1, 3), np.float32))
        self.frame.put_bgr(self.region, self.image, difference > 0)


class Renderer:
    """One render job: open inputs, track the face, then stream frames out."""

    def __init__(self, video_path, dub_path, options: RenderOptions = RenderOptions(), progress=None,
                 cancel=None, generator: FaceGenerator | None = None):
        self.options = options
        self.progress = progress or (lambda done, total, stage="render": None)
        self.cancel = cancel or (lambda: False)
        self.video = VideoSource(video_path, strict=options.strict)
        self.dub_path = Path(dub_path)
        audio = load_audio(dub_path)
        if audio.size < HP.sample_rate * HP.mel_step_size / HP.mel_fps:
            raise MediaError(dub_path, f"dub is too short ({audio.size / HP.sample_rate:.2f} s; at least 0.2 s)")
        if is_silent(audio) and not options.allow_silent_dub:
            raise MediaError(dub_path, "dub is silent (peak below -60 dBFS); nothing to lip-sync to")
        self.mel = melspectrogram(audio)
        self.fps = self.video.fps
        dub_seconds = audio.size / HP.sample_rate + options.dub_offset_s
        # planned on the picture's frames: a VFR source is conformed on its timestamps
        plan, self.with_dub = plan_frames(self.video.picture_count, self.fps, max(dub_seconds, 0.0),
                                          options.length_policy, self.video.is_image)
        self.source = self.video.picture_source(plan)
        before_dub = np.arange(len(self.source)) / self.fps < options.dub_offset_s
        self.with_dub &= ~before_dub  # a late dub leaves the first frames untouched
        if dub_seconds <= 0 or not self.with_dub.any():  # an early dub ends before the first frame
            raise MediaError(dub_path, f"a dub offset of {options.dub_offset_s:+.2f} s leaves no overlap between "
                             f"the dub ({audio.size / HP.sample_rate:.2f} s) and the picture "
                             f"({self.video.duration:.2f} s)")
        stop = len(self.source) if options.end_frame is None else min(options.end_frame, len(self.source))
        self.range = range(max(0, options.start_frame), stop)
        if len(self.range) == 0:
            raise MediaError(self.video.path, f"the frame range {options.start_frame}..{options.end_frame} is empty: "
                             f"the output has {len(self.source)} frames")
        self.used = self.source[np.asarray(self.range)]  # the source frames this job shows
        self.warnings = []  # for the user, before the frames are rendered
        without = int(len(self.range) - self.with_dub[self.range.start:self.range.stop].sum())
        if options.dub_offset_s and without > len(self.range) / 2:
            self.warnings.append(f"with a dub offset of {options.dub_offset_s:+.2f} s, {without / len(self.range):.0%} "
                                 f"of the output ({without} of {len(self.range)} frames) has no dub under it; "
                                 "those frames pass through unchanged")
        # the checkpoint first: a wrong one must fail in a second, not after minutes of detection
        if options.mouth not in MOUTH_MODES:
            raise ValueError(f"mouth must be one of {', '.join(MOUTH_MODES)}, not {options.mouth!r}")
        self.generator = generator or load_generator(options, len(self.range))
        self.track = self._track_faces()
        self.references = None if self.video.is_image else build_references(
            self.video, self.track, self.used, self.fps, options.pads)
        self.actor = self._actor_mouth() if options.mouth in ACTOR_MOUTHS else None
        self.closure = self._closures() if self.actor is not None and options.mouth == "actor-closing" else None
        self.generated_mouth_frames = []  # frames where the actor's mouth was asked for but not found

    def _track_faces(self):
        from core.faces import get_detector, track_video

        detector = self.options.detector  # a name, or a detector object (tests, the editor)
        if isinstance(detector, str):
            params = {"weights_dir": self.options.detector_weights} if self.options.detector_weights else {}
            detector = get_detector(detector, **params)
        # the source frames this job shows need faces, and so do those its references and the actor's
        # mouths come from: a window fixed by the job, so that what else the cache holds changes nothing
        lo, hi = reference_window(self.used, self.fps, self.video.frame_count)
        if self.options.mouth in ACTOR_MOUTHS:
            wider = actor_mouth.window(self.used, self.fps, self.video.frame_count)
            lo, hi = min(lo, wider[0]), max(hi, wider[1])
        track = track_video(self.video, detector=detector, cache_dir=self.options.cache_dir,
                            face_index=self.options.face_index, smooth_window=self.options.smooth_window,
                            progress=lambda d, t: self.progress(d, t, "detect"), cancel=self.cancel,
                            frames=range(lo, hi))
        if not track.has_face.any():
            choices = track.params["face_choices"]
            if choices:  # faces were found, but fewer than face_index + 1 in every shot
                raise FaceError(self.video.path, f"there is no face {self.options.face_index}: "
                                f"{choices} face{'s' if choices > 1 else ''} found, so the face index "
                                f"must be one of {', '.join(map(str, range(choices)))}")
            raise FaceError(self.video.path, "no face found in any frame")
        return track

    def _actor_mouth(self):
        """The actor's mouths around the job's range, or None (with a warning) when there is no
        footage to take them from: every frame then gets the generated mouth."""
        if self.video.is_image:
            self.warnings.append(f"{self.video.path.name}: a still image has no footage of the actor's mouth; "
                                 "the generated mouth is used")
            return None
        frames = actor_mouth.bank_frames(self.track, self.used, self.fps, self.video.frame_count)
        bank = actor_mouth.build_bank(self.video, self.track, frames, self.options.pads,
                                      progress=lambda d, t: self.progress(d, t, "mouths"), cancel=self.cancel,
                                      cache_dir=self.options.cache_dir)
        return actor_mouth.ActorMouth(bank, self.fps, self.options.blend)

    def _closures(self) -> np.ndarray | None:
        """How far the dub shuts the lips at each output frame of the range (core.closures), the
        lip reader's gap of each of the actor's mouths given to it; None when the closure models are
        not bundled."""
        models = closures.load_closure_models()
        if models is None:
            self.warnings.append("this build bundles no closure models (shape, reader): the actor's mouth is "
                                 "rendered without the dub's closures")
            return None
        dub_shape, reader = models
        self.actor.measured(closures.mouth_gaps(reader, self.actor.bank.mouths),
                            actor_mouth.bank_corners(self.track, self.actor.bank.frames, self.options.pads))
        seconds = np.asarray(self.range) / self.fps - self.options.dub_offset_s
        return closures.closure_weights(dub_shape, closures.predicted_gaps(dub_shape, self.mel, seconds, self.fps))

    def frames(self):
        """Yield (output index, YuvFrame, generated?) for the job's range, in order. One batch is
        blended in a thread while the generator draws the next (torch, OpenCV and the pipe to the
        encoder all run without the GIL), so the stages overlap on the cores."""
        stop_event = threading.Event()
        indices = np.asarray(self.range)
        decoded = in_background(zip(indices, source_frames(self.video, self.source[indices], yuv=True)), 8,
                                stop_event)
        blending = collections.deque()  # at most two batches: one blending, one waiting to be written
        with ThreadPoolExecutor(1, thread_name_prefix="blend") as blender:
            try:
                batch = []
                for k, frame in decoded:
                    if self.cancel():
                        raise Cancelled("render cancelled")
                    batch.append((int(k), frame))
                    if len(batch) == self.generator.batch_size:
                        blending.append(blender.submit(self._blend, *self._generate(batch)))
                        batch = []
                    if len(blending) > 1:
                        yield from blending.popleft().result()
                if batch:
                    blending.append(blender.submit(self._blend, *self._generate(batch)))
                while blending:
                    yield from blending.popleft().result()
            finally:
                stop_event.set()
                for job in blending:
                    job.cancel()

    def _generate(self, batch) -> tuple:
        """(batch, the frames with a face to redraw, their FaceRegions, their generated crops, the
        reference crops they were drawn from, their original crops)."""
        todo, crops, references, faces = [], [], [], []
        for n, (k, frame) in enumerate(batch):
            src = int(self.source[k])
            box = self.track.crop_box(src, self.options.pads) if self.with_dub[k] else None
            if box is None:
                continue
            face = FaceRegion(frame, box)
            crops.append(original_crop(face.image, face.box, (HP.img_size, HP.img_size)))
            references.append(crops[-1] if self.references is None else self.references.crop_for(src, crops[-1]))
            todo.append(n)
            faces.append(face)
        generated = []
        if todo:
            times = (np.array([batch[n][0] for n in todo]) / self.fps) - self.options.dub_offset_s
            generated = self.generator(np.stack(crops), mel_windows(self.mel, times), np.stack(references))
        return batch, todo, faces, generated, references, crops

    def _blend(self, batch, todo, faces, generated, references, originals) -> list:
        """Blend each generated crop into its frame (in place); [(output index, frame, generated?)].
        The lips take their colour from the reference crop (a quiet frame away from this one), never
        from the frame's own mouth (core.blend.ColourMatch); a still's reference is itself."""
        for n, face, crop, reference, original in zip(todo, faces, generated, references, originals):
            k = batch[n][0]
            src = int(self.source[k])
            landmarks = face.local(self.track.landmarks_at(src))
            if self.actor is None:
                composite(face.image, crop, face.box, landmarks, self.options.blend, reference, original)
                if self.options.mouth in ACTOR_MOUTHS:  # a still: no footage of the actor's mouth
                    self.generated_mouth_frames.append(int(k))
            elif not self.actor.paste(face.image, crop, face.box, landmarks, src, reference, original,
                                      0.0 if self.closure is None else float(self.closure[k - self.range.start])):
                self.generated_mouth_frames.append(int(k))  # the generated mouth
            face.write_back()
        done = set(todo)
        return [(k, frame, n in done) for n, (k, frame) in enumerate(batch)]

    def render_to(self, output, protect=()) -> RenderReport:
        """Encode the job's frames with the dub into `output` (atomic; nothing left on failure)."""
        started = time.perf_counter()
        total = len(self.range)
        no_face, generated = [], 0
        audio_offset = self.options.dub_offset_s - self.range.start / self.fps
        with VideoWriter(output, self.video.width, self.video.height, self.fps, audio_path=self.dub_path,
                         audio_offset_s=audio_offset, crf=self.options.crf, preset=self.options.preset,
                         protect=(self.video.path, self.dub_path, *protect), colour=self.video.yuv_colour,
                         yuv=True) as writer:
            for done, (k, frame, was_generated) in enumerate(self.frames(), 1):
                writer.write(frame)
                generated += was_generated
                if not was_generated and self.with_dub[k]:
                    no_face.append(k)
                self.progress(done, total, "render")
        seconds = time.perf_counter() - started
        return RenderReport(Path(output), total, generated, no_face, self.track.n_faces_seen, seconds,
                            total / max(seconds, 1e-9), list(self.generated_mouth_frames),
                            0 if self.actor is None else self.actor.closures)


def render(video_path, dub_path, output, options: RenderOptions = RenderOptions(), progress=None,
           cancel=None) -> RenderReport:
    """Render `video_path` lip-synced to `dub_path` into the MP4 `output`."""
    return Renderer(video_path, dub_path, options, progress, cancel).render_to(output)


