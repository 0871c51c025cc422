"""The project's data: settings and their validation, media facts and links, segments, takes.

Segments, takes, media links and export records are frozen dataclasses: edits
(core.project.commands) replace them, never mutate them, so undo snapshots are cheap
and a reference the UI holds never changes under it. Settings dicts inside them are
treated as immutable too.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.blend import BlendSettings
from core.errors import LipsmithError
from core.hparams import DEFAULT_MOUTH, HP, LENGTH_POLICIES, MOUTH_MODES, PROJECT_LENGTH_POLICY
from core.sync_scale import EXPERT_WEAK_BELOW

SUFFIX = ".lipsmith"
AUTOSAVE_SUFFIX = ".autosave"  # name.lipsmith.autosave
CACHE_SUFFIX = "-cache"  # name.lipsmith-cache/
MEDIA_KINDS = ("video", "dub")
SEGMENT_KINDS = ("speech", "silence")
CHECKPOINT_SUFFIXES = {".pth", ".pt", ".safetensors", ".ckpt"}
# LSE-C below this marks a segment for attention, on the scale of the expert the editor scores with
# (core.sync_scale). The official SyncNet's scale is ~100x larger: drag the line.
DEFAULT_THRESHOLD = EXPERT_WEAK_BELOW
RECENT_LIMIT = 10
NAME_LIMIT = 80  # characters in a segment's or a marker's name
NOTE_LIMIT = 2000  # characters in a marker's note
# a marker's colours: the names OpenTimelineIO (and the NLEs it speaks to) give them
MARKER_COLOURS = ("red", "pink", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta", "black", "white")
DEFAULT_MARKER_COLOUR = "blue"


class ProjectError(LipsmithError):
    """A project file that cannot be read or written: `<file>: <problem>`."""


class EditError(ValueError):
    """An edit that cannot be applied; the message says why, fit for a status bar. Nothing changed."""


# --------------------------------------------------------------------------- settings

_BLEND = BlendSettings()
DEFAULT_SETTINGS = {
    "checkpoint": "generator",  # a bundled model name, or a Path (e.g. a speaker-adapted model)
    "detector": "retinaface",
    "device": "auto",
    "length_policy": PROJECT_LENGTH_POLICY,
    "pads": list(HP.pads),  # top, bottom, left, right
    "smooth_window": 5,
    "face_index": None,  # None: the largest, most central face
    "feather": _BLEND.feather,
    "mask_width": _BLEND.mask_width,
    "mask_height": _BLEND.mask_height,
    "color_match": _BLEND.color_match,
    "mouth": DEFAULT_MOUTH,  # "actor": the actor's own lips and teeth in the generated shape (core.actor_mouth)
}
MOUTH_NAMES = {"actor": "actor's mouth", "actor-closing": "actor's mouth, closing", "generated": "generated mouth"}
# ^ what a take's name says
# what a segment may override; detector, device, length policy and mouth are whole-clip or per-render choices
SEGMENT_KEYS = ("checkpoint", "pads", "smooth_window", "face_index", "feather", "mask_width", "mask_height",
                "color_match")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _checkpoint(value, folder: Path | None):
    """A bundled name stays a str; anything path-like becomes an absolute Path."""
    if isinstance(value, str) and value.strip() and not ("/" in value or "\\" in value
                                                         or Path(value).suffix.lower() in CHECKPOINT_SUFFIXES):
        return value.strip()
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise EditError(f"checkpoint must be a model name or a file path, not {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (folder or Path.cwd()) / path
    return Path(os.path.normpath(path))


def normalise_setting(key: str, value, folder: Path | None = None):
    """The stored form of one setting (pads as a list of 4 ints, checkpoint as a name or Path)."""
    if key not in DEFAULT_SETTINGS:
        raise EditError(f"unknown setting {key!r} (known: {', '.join(DEFAULT_SETTINGS)})")
    if key == "checkpoint":
        return _checkpoint(value, folder)
    if key in ("detector", "device"):
        if not isinstance(value, str) or not value.strip():
            raise EditError(f"{key} must be a non-empty name, not {value!r}")
        if key == "device" and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip()):
            raise EditError(f"device must be auto, cpu, mps, cuda or cuda:N, not {value!r}")
        return value.strip()
    if key == "length_policy":
        if value not in LENGTH_POLICIES:
            raise EditError(f"length policy must be one of {', '.join(LENGTH_POLICIES)}, not {value!r}")
        return value
    if key == "pads":
        if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(_is_int(v) for v in value):
            raise EditError(f"pads must be 4 whole numbers of pixels (top, bottom, left, right), not {value!r}")
        return list(value)
    if key == "smooth_window":
        if not _is_int(value) or value < 0:
            raise EditError(f"smoothing window must be a whole number of frames ≥ 0, not {value!r}")
        return value
    if key == "face_index":
        if value is not None and (not _is_int(value) or value < 0):
            raise EditError(f"face index must be None (the main face) or a number ≥ 0, not {value!r}")
        return value
    if key == "mouth":
        if value not in MOUTH_MODES:
            raise EditError(f"mouth must be one of {', '.join(MOUTH_MODES)}, not {value!r}")
        return value
    if key == "color_match":
        if not isinstance(value, bool):
            raise EditError(f"colour match must be true or false, not {value!r}")
        return value
    # feather, mask_width, mask_height: fractions of the crop
    if not _is_number(value) or not 0 < value <= 1:
        raise EditError(f"{key.replace('_', ' ')} must be a fraction in (0, 1], not {value!r}")
    return float(value)


def _jsonish(value, what: str):
    """Free-form data (take settings, hashes, scores) in the form it round-trips through JSON:
    tuples as lists, dataclasses as dicts, NaN/inf as None; Paths kept (stored as links)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonish(v, what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonish(v, what) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool, Path)):
        return value
    raise EditError(f"{what}: {type(value).__name__} values cannot be stored in a project")


def segment_name(value, what: str = "a segment's name") -> str:
    """A segment's (or marker's) name as stored: one line, trimmed; "" clears it (the id is shown again)."""
    if not isinstance(value, str):
        raise EditError(f"{what} must be text, not {value!r}")
    name = " ".join(value.split())
    if len(name) > NAME_LIMIT:
        raise EditError(f"{what} is at most {NAME_LIMIT} characters ({len(name)} given)")
    return name


def frame_curve(values, what: str = "frame confidence") -> list:
    """A per-frame curve as stored: floats rounded to 3 decimals, None where there is no value (NaN)."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise EditError(f"{what} must be a list of numbers, not {type(values).__name__}")
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            out.append(None)
        elif _is_number(v):
            out.append(round(float(v), 3))
        else:
            raise EditError(f"{what}: {v!r} is not a number")
    return out


def _score(value, what: str):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not _is_number(value):
        raise EditError(f"{what} must be a number or None, not {value!r}")
    return float(value)


def scorer_record(value, what: str = "scorer") -> dict | None:
    """What a project keeps of the expert its scores and threshold are on: {"name", "sha256"} (None:
    not known, e.g. scores from before schema 8)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) \
            or not isinstance(value.get("sha256"), (str, type(None))):
        raise EditError(f"{what} must be {{\"name\": text, \"sha256\": text or null}}, not {value!r}")
    return {"name": value["name"], "sha256": value["sha256"]}


def same_scale(a: dict | None, b: dict | None) -> bool:
    """Whether scores of scorers a and b can be compared: the same network file, known by its SHA-256.
    LSE-C scales differ between experts (the session-8 expert scores twice the session-7 one)."""
    return bool(a and b and a.get("sha256") and a.get("sha256") == b.get("sha256"))


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class MediaFacts:
    """What is known about a media file without opening it again (cached in the project)."""
    size: int | None = None  # bytes: with the name, how a moved file is recognised
    fingerprint: str | None = None  # core.faces.cache.file_fingerprint (the detection cache's key too)
    duration: float | None = None  # seconds
    fps: float | None = None  # the picture's constant rate (a variable-rate video is conformed to it)
    frame_count: int | None = None  # the picture's frames at `fps` (core.video.VideoSource.picture_count)
    width: int | None = None
    height: int | None = None
    is_image: bool = False
    start_timecode: str | None = None  # the label of the video's first frame, as the file writes it

    @classmethod
    def probe_file(cls, path, duration: float | None = None) -> "MediaFacts":
        """Size and fingerprint of any file (a dub: pass its duration, known once it is decoded)."""
        from core.faces.cache import file_fingerprint

        return cls(size=Path(path).stat().st_size, fingerprint=file_fingerprint(path), duration=duration)

    @classmethod
    def probe_video(cls, path) -> "MediaFacts":
        """Open the video (or still) once and keep its timing and size."""
        from core.video import VideoSource

        with VideoSource(path) as v:
            base = cls.probe_file(path)
            return replace(base, duration=float(v.duration), fps=float(v.fps), frame_count=v.picture_count,
                           width=int(v.width), height=int(v.height), is_image=bool(v.is_image),
                           start_timecode=v.start_timecode)


@dataclass(frozen=True)
class MediaRef:
    path: Path  # absolute: the file in use or, while it is missing, its last known location
    facts: MediaFacts = MediaFacts()
    linked: Path | None = None  # while missing: where the relative link pointed (kept for re-saving)

    @property
    def missing(self) -> bool:
        return not self.path.is_file()


@dataclass(frozen=True)
class Segment:
    """Output frames [start, end). Scores: LSE-C mean (confidence, higher is better) and LSE-D."""
    id: str
    start: int
    end: int
    kind: str = "speech"
    lse_c: float | None = None
    lse_d: float | None = None
    settings: dict = field(default_factory=dict)  # overrides of the project's settings (SEGMENT_KEYS)
    take_id: str | None = None  # the chosen take; None = not rendered (export passes the original)
    name: str = ""  # the user's name for it ("" : shown by its id)
    slip: int = 0  # frames its own dub is moved by (+: heard later), the rest of the dub as it is (core.slip)

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def title(self) -> str:
        """What the editor calls it: its name, else its id."""
        return self.name or self.id

    def within(self, start: int, end: int) -> bool:
        """Whether these frames lie inside [start, end) (e.g. a take's range, so the take can serve it)."""
        return start <= self.start and self.end <= end


def recorded_slip(settings: dict, segment: Segment) -> int:
    """The slip `segment`'s dub had in a render made with `settings` (a take's: they record the slipped
    segments as `slips`, [[start, end, frames], …]): the slip of a recorded range holding its frames, else 0."""
    return next((int(f) for a, b, f in settings.get("slips", ()) if segment.within(a, b)), 0)


def verdict(segment: Segment, threshold: float) -> str:
    """"silence", "unscored", "good" (LSE-C ≥ threshold) or "poor" (weak: worth another look). The one
    rule: the project's verdicts and the Sync lane's colours while its threshold line is dragged."""
    if segment.kind == "silence":
        return "silence"
    if segment.lse_c is None:
        return "unscored"
    return "good" if segment.lse_c >= threshold else "poor"


@dataclass(frozen=True)
class Marker:
    """A note pinned to an output frame (the NLE's marker): at most one per frame."""
    frame: int
    name: str = ""
    colour: str = DEFAULT_MARKER_COLOUR  # one of MARKER_COLOURS
    note: str = ""

    @property
    def title(self) -> str:
        return self.name or f"Marker at frame {self.frame}"


def make_marker(frame, name="", colour=DEFAULT_MARKER_COLOUR, note="") -> Marker:
    """A marker with its fields checked and in their stored form (EditError saying what is wrong)."""
    if not _is_int(frame) or frame < 0:
        raise EditError(f"a marker's frame must be a whole frame number ≥ 0, not {frame!r}")
    if colour not in MARKER_COLOURS:
        raise EditError(f"a marker's colour must be one of {', '.join(MARKER_COLOURS)}, not {colour!r}")
    if not isinstance(note, str):
        raise EditError(f"a marker's note must be text, not {note!r}")
    if len(note) > NOTE_LIMIT:
        raise EditError(f"a marker's note is at most {NOTE_LIMIT} characters ({len(note)} given)")
    return Marker(frame, segment_name(name, "a marker's name"), colour, note.strip())


def check_markers(markers) -> None:
    """Markers sorted by frame, one per frame."""
    for i, m in enumerate(markers):
        if not isinstance(m, Marker):
            raise EditError(f"marker {i} is a {type(m).__name__}, not a Marker")
        if i and m.frame <= markers[i - 1].frame:
            raise EditError(f"markers at frames {markers[i - 1].frame} and {m.frame} are not in order, one per frame")


@dataclass(frozen=True)
class Take:
    """One render of a frame range. `file` is relative to the project's cache folder."""
    id: str
    segment_id: str  # the segment it was rendered for (after a split it may serve both halves)
    start: int
    end: int
    file: str
    settings: dict = field(default_factory=dict)  # everything the render used (effective_settings + extras)
    hashes: dict = field(default_factory=dict)  # e.g. {"file": sha256, "video": fingerprint, "dub": ...}
    scores: dict = field(default_factory=dict)  # e.g. {"lse_c": 7.1, "lse_d": 6.9, "scorer": "expert"}
    created: str = ""  # ISO 8601, UTC
    label: str = ""
    # what the render reported, e.g. {"no_face": [[a, b], …] (output frames passed through for want of a
    # face), "generated_mouth": [[a, b], …] (the actor's mouth asked, the generated one pasted),
    # "generated": n, "seconds": s, "device": "cpu", "warnings": ["…"]}
    report: dict = field(default_factory=dict)

    @property
    def no_face_ranges(self) -> list[tuple[int, int]]:
        """Output frames [a, b) the render left as they were (no face found there)."""
        return [(int(a), int(b)) for a, b in self.report.get("no_face", ())]

    @property
    def generated_mouth_ranges(self) -> list[tuple[int, int]]:
        """Output frames [a, b) where the actor's mouth was asked for but the generated one was pasted
        (core.render: too little footage, nothing alike, or a still)."""
        return [(int(a), int(b)) for a, b in self.report.get("generated_mouth", ())]

    def slip_for(self, segment: Segment) -> int:
        """The slip (frames) the segment's dub had when this take was rendered: a take whose slip is not the
        segment's follows other timing (SlipSegment no longer chooses it there)."""
        return recorded_slip(self.settings, segment)

    def fits(self, segment: Segment) -> bool:
        """Whether this take can be `segment`'s choice as far as its frames and its line go: it covers the
        segment's frames and was rendered hearing the segment's dub at its slip (the dub offset is the
        callers' to check: a nudge compares it with the new one)."""
        return segment.within(self.start, self.end) and self.slip_for(segment) == segment.slip

    @property
    def mouth(self) -> str:
        """The mouth the take was rendered with: "actor" or "generated"."""
        return self.settings.get("mouth", "generated")

    def segment_score(self, segment: Segment) -> tuple[float | None, float | None] | None:
        """(LSE-C, LSE-D) scoring measured this take over the segment's frames as they are now; None when
        it was not scored there (or the segment's frames changed since: that score described others)."""
        start, end, lse_c, lse_d = self.scores.get("segments", {}).get(segment.id, (None, None, None, None))
        return (lse_c, lse_d) if (start, end) == (segment.start, segment.end) else None

    def confidence_curve(self, fps: float):
        """The per-frame sync confidence stored by scoring, as (output frames, values): the scorer's
        frames (at its own rate, from the take's first frame) placed on the project's frames;
        NaN where no face window covered a frame. None when the take was not scored."""
        values = self.scores.get("frame_conf")
        if not values:
            return None
        rate = float(self.scores.get("frame_fps") or fps)
        y = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        x = self.start + np.arange(y.size) * (fps / rate)
        return x, y


@dataclass(frozen=True)
class AdaptedModel:
    """A generator fine-tuned on this project's video (speaker adaptation): a model choice for renders.
    `info`: what the adaptation reported (base model, frames, steps, L1 on the clip, seconds…)."""
    path: Path  # absolute: the .safetensors file (its sidecar beside it)
    label: str = ""
    created: str = ""  # ISO 8601, UTC
    info: dict = field(default_factory=dict)

    @property
    def missing(self) -> bool:
        return not self.path.is_file()

    @property
    def title(self) -> str:
        return self.label or self.path.name


@dataclass(frozen=True)
class ExportRecord:
    path: Path
    time: str  # ISO 8601, UTC
    preset: str = ""
    choices: dict = field(default_factory=dict)  # segment id → take id at export time
    info: dict = field(default_factory=dict)  # free-form: duration, codec, report…


# what a take's name calls the settings that set it apart from the segment's previous take
_SETTING_NAMES = {"checkpoint": "model", "smooth_window": "smoothing", "pads": "pads", "feather": "feather",
                  "mask_width": "mask width", "mask_height": "mask height", "color_match": "colour match",
                  "face_index": "face", "detector": "detector"}


def _setting_text(key: str, value) -> str:
    if key == "checkpoint":
        return Path(str(value)).stem if isinstance(value, Path) else str(value)
    if key == "pads":
        return " ".join(str(v) for v in value)
    if key == "color_match":
        return "on" if value else "off"
    if key == "face_index":
        return "main" if value is None else str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def take_name(number: int, settings: dict, previous: dict | None, created: str) -> str:
    """A take's name: "Take N", its mouth, how it was made where that differs from the segment's previous
    take (`previous`: its settings), and the time it was made (local), e.g.
    "Take 3 · actor's mouth · feather 0.3 · 14:05"."""
    parts = [f"Take {number}"]
    if settings.get("mouth") in MOUTH_NAMES:
        parts.append(MOUTH_NAMES[settings["mouth"]])
    if settings.get("smoothed_from"):
        parts.append(f"smoothed over {settings.get('window')} frames")
    elif previous is not None:
        parts += [f"{name} {_setting_text(key, settings[key])}" for key, name in _SETTING_NAMES.items()
                  if key in settings and settings[key] != previous.get(key)]
    try:
        parts.append(datetime.fromisoformat(created).astimezone().strftime("%H:%M"))
    except ValueError:
        pass
    return " · ".join(parts)


def take_number(label: str) -> int | None:
    """N of a name "Take N…", else None (a name of the user's)."""
    match = re.match(r"Take (\d+)\b", label)
    return int(match.group(1)) if match else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(path))


def check_segments(segments, takes=None) -> None:
    """Sorted, non-overlapping, non-empty ranges with unique ids and known kinds and takes."""
    seen = set()
    for i, s in enumerate(segments):
        if not isinstance(s, Segment):
            raise EditError(f"segment {i} is a {type(s).__name__}, not a Segment")
        if s.id in seen:
            raise EditError(f"segment id {s.id!r} is used twice")
        seen.add(s.id)
        if not (_is_int(s.start) and _is_int(s.end)) or not 0 <= s.start < s.end:
            raise EditError(f"segment {s.id}: frames [{s.start}, {s.end}) are not a range of whole frames ≥ 0")
        if s.kind not in SEGMENT_KINDS:
            raise EditError(f"segment {s.id}: kind must be one of {', '.join(SEGMENT_KINDS)}, not {s.kind!r}")
        if i and s.start < segments[i - 1].end:
            raise EditError(f"segment {s.id} [{s.start}, {s.end}) overlaps or precedes segment "
                            f"{segments[i - 1].id} [{segments[i - 1].start}, {segments[i - 1].end})")
        if takes is not None and s.take_id is not None and s.take_id not in takes:
            raise EditError(f"segment {s.id}: chosen take {s.take_id!r} does not exist")
        if not _is_int(s.slip):
            raise EditError(f"segment {s.id}: slip must be a whole number of frames, not {s.slip!r}")
        unknown = set(s.settings) - set(SEGMENT_KEYS)
        if unknown:
            raise EditError(f"segment {s.id}: {', '.join(sorted(unknown))} cannot be set per segment")


def autosave_path_for(path) -> Path:
    """`name.lipsmith` → `name.lipsmith.autosave` (same folder, so relative links stay valid)."""
    path = Path(path)
    return path.with_name(path.name + AUTOSAVE_SUFFIX)


def cache_dir_for(path) -> Path:
    """`name.lipsmith` → `name.lipsmith-cache/`, where its takes are rendered."""
    path = Path(path)
    return path.with_name(path.name + CACHE_SUFFIX)
