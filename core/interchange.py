"""A project's timeline for other editors, through OpenTimelineIO: .otio, CMX 3600 EDL (Avid) and
Final Cut Pro 7 XML (Premiere, Resolve); and segments back from such a file's markers.

The timeline: the picture as one clip on a video track, the dub on an audio track (where the dub
offset puts it), each speech segment as a marker over its frames, coloured by its verdict and
saying its take, model, mouth and LSE-C, and the project's own markers as markers of no length.
The markers lie on the timeline, except in an EDL, which keeps only a clip's: there they lie on the
picture clip, at the video's own timecode (the timeline starts at the video's start timecode).

Two formats hold less than a marker has, so the segment's rest travels in the text they keep:
an EDL locator (`* LOC:`) has one frame, a colour and a line of text, so its text ends with the
segment's out point (`… OUT 01:00:02:09`); an FCP 7 XML marker has a range and a comment but no
colour, so its comment starts with the colour (`GREEN · …`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.atomic import atomic_write_text
from core.errors import LipsmithError
from core.project import Project, verdict
from core.timecode import Timecode, TimecodeError, format_count, parse_count

FORMATS = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml"}  # suffix → OpenTimelineIO adapter
VERDICT_COLOURS = {"good": "GREEN", "poor": "RED", "unscored": "YELLOW"}  # OpenTimelineIO's MarkerColor names
METADATA = "lipsmith"
_EDL_OUT = re.compile(r"^(.*?)\s+OUT (\d+:\d\d:\d\d[:;]\d\d)$")
_DROP_LOCATOR = re.compile(r"(?<=\* LOC: )\d\d:\d\d:\d\d;\d\d")
_SEPARATOR = " · "


class InterchangeError(LipsmithError):
    """A timeline file that cannot be written or read: `<file>: <problem>`."""


def adapter_for(path) -> str:
    adapter = FORMATS.get(Path(path).suffix.lower())
    if adapter is None:
        raise InterchangeError(path, f"unknown timeline format {Path(path).suffix or '(no suffix)'}: use "
                                     f"{', '.join(FORMATS)}")
    return adapter


# --------------------------------------------------------------------------- export


def segment_note(project: Project, segment) -> str:
    """What a segment's marker says beside its name: its verdict and LSE-C, the chosen take, model and mouth."""
    take = project.takes.get(segment.take_id)
    settings = take.settings if take is not None else project.effective_settings(segment.id)
    model = settings.get("checkpoint", project.settings["checkpoint"])
    parts = [verdict(segment, project.threshold)]
    if segment.lse_c is not None:
        parts.append(f"LSE-C {segment.lse_c:.3f}")
    if take is None:
        parts.append("no take (the original picture)")
    else:
        parts += [take.label or take.id, f"model {Path(str(model)).stem}",
                  f"{take.mouth} mouth"]
    return _SEPARATOR.join(parts)


def build_timeline(project: Project, adapter: str = "otio_json"):
    """The project as an OpenTimelineIO Timeline, with the marker text `adapter`'s format keeps."""
    import opentimelineio as otio

    fps = project.fps
    timecode = project.timecode
    at = lambda frame: otio.opentime.RationalTime(timecode.start + frame, fps)  # noqa: E731 (the video's time)
    frames = lambda count: otio.opentime.RationalTime(count, fps)  # noqa: E731
    facts = project.video.facts
    picture_frames = facts.frame_count or max(1, int(round((facts.duration or 0) * fps)))
    picture_range = otio.opentime.TimeRange(at(0), frames(picture_frames))

    picture = otio.schema.Clip(
        name=project.video.path.name, source_range=picture_range,
        media_reference=otio.schema.ExternalReference(target_url=project.video.path.as_uri(),
                                                      available_range=picture_range))
    # markers on the timeline, on its frames; an EDL keeps only a clip's (its locators), on the source's timecode
    on_clip = adapter == "cmx_3600"
    place = at if on_clip else frames
    markers = []
    for segment in project.segments:
        if segment.kind != "speech":
            continue
        colour = VERDICT_COLOURS[verdict(segment, project.threshold)]
        markers.append(_marker(otio, adapter, segment.title, place(segment.start), frames(segment.frames), colour,
                             segment_note(project, segment), timecode.out_text(segment.end),
                             {"segment": segment.id, "take": segment.take_id, "lse_c": segment.lse_c}))
    for marker in project.markers:
        markers.append(_marker(otio, adapter, marker.title, place(marker.frame), frames(0), marker.colour.upper(),
                             marker.note, None, {"marker": True}))

    timeline = otio.schema.Timeline(name=project.path.stem if project.path else project.video.path.stem,
                                    global_start_time=at(0))
    video = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    video.append(picture)
    timeline.tracks.append(video)
    (picture.markers if on_clip else timeline.tracks.markers).extend(markers)
    if project.dub is not None and project.dub.facts.duration:
        timeline.tracks.append(_dub_track(otio, project, frames))
    return timeline


def _marker(otio, adapter, name, start, duration, colour, note, out_text, fields):
    metadata = {METADATA: {**fields, "note": note}}
    if adapter == "cmx_3600" and out_text is not None:
        name = f"{name} OUT {out_text}"  # a locator has one frame: the out point rides in its text
    if adapter == "fcp_xml":
        metadata["fcp_xml"] = {"comment": _SEPARATOR.join(filter(None, (colour, note)))}  # no colour field
    return otio.schema.Marker(name=name, marked_range=otio.opentime.TimeRange(start, duration), color=colour,
                              metadata=metadata)


def _dub_track(otio, project: Project, frames):
    """The dub where the offset puts it: after a gap when it starts later, its head cut when earlier."""
    length = max(1, int(round(project.dub.facts.duration * project.fps)))
    available = otio.opentime.TimeRange(frames(0), frames(length))
    head = max(0, -project.dub_offset)
    track = otio.schema.Track(name="Dub", kind=otio.schema.TrackKind.Audio)
    if project.dub_offset > 0:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(frames(0), frames(project.dub_offset))))
    if head < length:
        track.append(otio.schema.Clip(
            name=project.dub.path.name, source_range=otio.opentime.TimeRange(frames(head), frames(length - head)),
            media_reference=otio.schema.ExternalReference(target_url=project.dub.path.as_uri(),
                                                          available_range=available)))
    return track


def export_timeline(project: Project, path) -> Path:
    """Write the project's timeline to `path` (.otio, .edl or .xml), atomically."""
    import opentimelineio as otio

    path = Path(path)
    adapter = adapter_for(path)
    try:
        text = otio.adapters.write_to_string(build_timeline(project, adapter), adapter)
    except otio.exceptions.OTIOError as exc:
        raise InterchangeError(path, f"cannot write this timeline as {adapter}: {exc}") from None
    atomic_write_text(path, text)
    return path


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class TimelineMarker:
    """A marker read from a timeline file, on the project's frames: [start, end), end == start for a point."""
    start: int
    end: int
    name: str
    colour: str


def read_markers(path, project: Project) -> list[TimelineMarker]:
    """The markers of a timeline file (on its clips and on the timeline), placed on the project's frames:
    the timeline's first frame is the project's first frame."""
    import opentimelineio as otio

    path = Path(path)
    adapter = adapter_for(path)
    fps = project.fps
    try:
        if adapter == "cmx_3600":
            timeline = otio.adapters.read_from_string(_edl_text(path, fps), adapter, rate=fps)
        else:
            timeline = otio.adapters.read_from_file(str(path), adapter)
    except (OSError, UnicodeDecodeError) as exc:
        raise InterchangeError(path, f"cannot be read: {exc}") from None
    except Exception as exc:  # the adapters raise their own (and plain ValueError, KeyError…) for bad text
        raise InterchangeError(path, f"is not a readable {adapter} timeline: {exc}") from None
    if not isinstance(timeline, otio.schema.Timeline):
        raise InterchangeError(path, f"holds a {type(timeline).__name__}, not a timeline")
    timecode = project.timecode
    placed = [(marker.marked_range.start_time, marker) for marker in timeline.tracks.markers]  # (record time, marker)
    for track in timeline.tracks:
        for marker in track.markers:
            placed.append((marker.marked_range.start_time, marker))
        for clip in track.find_clips():
            record = clip.range_in_parent().start_time
            source = clip.trimmed_range().start_time
            for marker in clip.markers:
                placed.append((record + (marker.marked_range.start_time - source), marker))
    out = []
    for record, marker in placed:
        start = int(round(record.rescaled_to(fps).value))
        duration = int(round(marker.marked_range.duration.rescaled_to(fps).value))
        try:
            out.append(_read_marker(marker, start, start + duration, adapter, timecode))
        except TimecodeError as exc:
            raise InterchangeError(path, f"marker {marker.name!r}: {exc}") from None
    return sorted(out, key=lambda m: (m.start, m.end))


def _edl_text(path: Path, fps: float) -> str:
    """An EDL's text, its locators' drop-frame timecodes written non-drop for the same frames: the
    adapter reads a locator only with ':' before the frames (and skips it otherwise)."""
    relabel = lambda match: format_count(parse_count(match[0], fps, True), fps)  # noqa: E731
    return _DROP_LOCATOR.sub(relabel, path.read_text(encoding="utf-8"))


def _read_marker(marker, start: int, end: int, adapter: str, timecode: Timecode) -> TimelineMarker:
    import opentimelineio as otio

    name, colour = marker.name or "", marker.color or ""
    if adapter == "cmx_3600":
        match = _EDL_OUT.match(name)
        if match:
            name, end = match[1], timecode.frame(match[2]) + 1
    if adapter == "fcp_xml":
        comment = str(marker.metadata.get("fcp_xml", {}).get("comment") or "")
        first = comment.split(_SEPARATOR, 1)[0].strip().upper()
        colour = first if first.isalpha() and hasattr(otio.schema.MarkerColor, first) else colour
    return TimelineMarker(start, max(start, end), name.strip(), colour.upper())


def import_timeline(project: Project, path):
    """Segments from a timeline file's markers, as one undoable edit (core.project.ImportSegments): a
    marker over a segment's frames renames it; a marker over other frames becomes a speech segment. A
    marker of no length (a point) marks no range and is left out. Returns (the command or None, the point markers
    left out, the markers outside the timeline)."""
    from core.project.commands import ImportSegments

    markers = read_markers(path, project)
    length = max(project.output_frames() or 0, project.segments[-1].end if project.segments else 0)
    ranged = [m for m in markers if m.end > m.start]
    inside = [m for m in ranged if 0 <= m.start and m.end <= length]
    points = len(markers) - len(ranged)
    outside = len(ranged) - len(inside)
    if not inside:
        return None, points, outside
    return project.execute(ImportSegments(project, [(m.start, m.end, m.name) for m in inside])), points, outside

