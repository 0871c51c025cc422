"""Every edit as an undoable command, and the History that holds them.

A command is built against the current state and pushed at once: `project.execute(cmd)`.
It validates in its constructor (EditError, nothing changed) and records snapshots of the
parts of the project it changes, so do()/undo() are exact and cheap. The API mirrors
QUndoCommand/QUndoStack (do = redo, merge_key = id, merge = mergeWith, obsolete = isObsolete),
so the app can either drive this History from its actions or wrap commands for a QUndoStack.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from .model import (DEFAULT_MARKER_COLOUR, DEFAULT_SETTINGS, DEFAULT_THRESHOLD, MEDIA_KINDS, SEGMENT_KEYS,
                    AdaptedModel, EditError, Marker, MediaFacts, MediaRef, Segment, Take, _is_int, _is_number,
                    _jsonish, _key, _now, _score, check_segments, frame_curve, make_marker, normalise_setting,
                    same_scale, scorer_record, segment_name)

if TYPE_CHECKING:
    from .project import Project


class Command:
    """An undoable edit. Build it against the current state and push it at once (project.execute).

    Each records snapshots of the parts of the project it changes (segments, takes, settings…),
    taken when first done; those are frozen items or small dicts, so a snapshot is cheap and undo
    and redo are exact. `merge_key`: consecutive commands with equal keys merge into one step
    (like QUndoCommand.id/mergeWith); `obsolete`: it changes nothing (dropped, like isObsolete).
    """
    text = "Edit"
    merge_key = None
    _before: dict | None = None  # (class defaults: a subclass with its own do/undo needs no snapshots)
    _after: dict = {}

    def __init__(self, project: Project, **after):
        self.project = project
        self._after = after
        self._before = None

    def do(self):
        if self._before is None:
            self._before = self.project._snapshot(self._after)
        self.project._apply(self._after)

    def undo(self):
        self.project._apply(self._before)

    def merge(self, other: "Command") -> bool:
        if type(other) is not type(self) or other.merge_key != self.merge_key or self.merge_key is None:
            return False
        self._after = other._after
        try:
            self.text = other.text  # the menu shows the merged step's latest text
        except AttributeError:  # a computed text (a property)
            pass
        return True

    @property
    def obsolete(self) -> bool:
        return self._before is not None and all(self._before[k] == self._after[k] for k in self._after)

    def referenced_takes(self) -> list[Take]:
        return [t for state in (self._before or {}, self._after) for t in state.get("takes", {}).values()]

    def _segments_with(self, *replacements: Segment, remove=()) -> tuple:
        """The segment list with segments replaced by id (and `remove` ids dropped), checked."""
        by_id = {s.id: s for s in replacements}
        out = [by_id.pop(s.id, s) for s in self.project.segments if s.id not in remove]
        out = sorted(out + list(by_id.values()), key=lambda s: s.start)
        check_segments(out, self._after.get("takes", self.project.takes))
        return tuple(out)


class SetSegmentSettings(Command):
    """Override settings of one segment (`changes`), or go back to the project's (`reset` keys).
    Consecutive changes of the same keys of the same segment merge (a slider drag is one step)."""

    def __init__(self, project, segment_id: str, changes: dict | None = None, reset=()):
        s = project.segment(segment_id)
        settings = dict(s.settings)
        for key in list(reset) + list(changes or {}):
            if key not in SEGMENT_KEYS:
                raise EditError(f"{key!r} cannot be set per segment (one of: {', '.join(SEGMENT_KEYS)})")
        for key in reset:
            settings.pop(key, None)
        for key, value in (changes or {}).items():
            settings[key] = normalise_setting(key, value, project.folder)
        super().__init__(project)
        self._after = {"segments": self._segments_with(replace(s, settings=settings))}
        keys = sorted(set(reset) | set(changes or {}))
        self.text = f"Segment {segment_id}: {'reset' if reset and not changes else 'set'} {', '.join(keys)}"
        self.merge_key = ("segment-settings", segment_id, tuple(keys), bool(reset))


def choose_face(project, segment_id: str, face_index: int) -> tuple[SetSegmentSettings | None, str]:
    """What picking face `face_index` (core.faces.FaceChoices' numbering) for a segment does: a
    SetSegmentSettings giving it its own face, or dropping its own when the pick is the project's face
    (the segment then follows the project's setting again); None when the segment dubs that face
    already. And the words that say so. Takes already rendered keep the face they recorded."""
    s = project.segment(segment_id)
    if not _is_int(face_index) or face_index < 0:
        raise EditError(f"a face is a number ≥ 0, not {face_index!r}")
    default = project.settings["face_index"] or 0
    own = s.settings.get("face_index")
    current = default if "face_index" not in s.settings else (own or 0)
    if face_index == default:
        if "face_index" in s.settings:
            return (SetSegmentSettings(project, segment_id, reset=["face_index"]),
                    f"Segment {s.title}: face {face_index}, the project's default face again")
        return None, f"Segment {s.title} dubs face {face_index} already: the project's default face"
    if face_index == current:
        return None, f"Segment {s.title} dubs face {face_index} already"
    return (SetSegmentSettings(project, segment_id, {"face_index": int(face_index)}),
            f"Segment {s.title}: face {face_index} (the project's default is face {default}); "
            "its takes keep the face they were rendered with")


class SplitSegment(Command):
    """Split a segment at `frame` (start < frame < end): the left part keeps the id, the right one
    gets a new id; both keep the settings and the chosen take (it covers both). Their scores are
    unknown unless given: `scores=((lse_c, lse_d), (lse_c, lse_d))`, e.g. from SyncScores."""

    def __init__(self, project, segment_id: str, frame: int, scores=None):
        s = project.segment(segment_id)
        if not _is_int(frame):
            raise EditError(f"split point must be a whole frame number, not {frame!r}")
        if not s.start < frame < s.end:
            raise EditError(f"cannot split segment {segment_id} [{s.start}, {s.end}) at frame {frame}: "
                            f"the split point must lie after {s.start} and before {s.end}")
        (lc, ld), (rc, rd) = scores or ((None, None), (None, None))
        left = replace(s, end=frame, lse_c=_score(lc, "LSE-C"), lse_d=_score(ld, "LSE-D"))
        right = replace(s, id=project.new_segment_id(), start=frame, lse_c=_score(rc, "LSE-C"),
                        lse_d=_score(rd, "LSE-D"))
        super().__init__(project)
        self._after = {"segments": self._segments_with(left, right)}
        self.new_id = right.id
        self.text = f"Split segment {segment_id} at frame {frame}"


class MergeSegments(Command):
    """Merge adjacent segments (touching ranges, no gap) into the first one: it keeps its id and
    settings, becomes speech if any part was, keeps its take if that take covers the whole range,
    and gets frame-weighted mean scores where every part exported what it exports (else that take's
    over its frames, when scored there), or `scores=(lse_c, lse_d)`."""

    def __init__(self, project, segment_ids, scores=None):
        ids = list(dict.fromkeys(segment_ids))
        if len(ids) < 2:
            raise EditError("choose at least two segments to merge")
        parts = sorted((project.segment(i) for i in ids), key=lambda s: s.start)
        for a, b in zip(parts, parts[1:]):
            if a.end != b.start:
                raise EditError(f"segments {a.id} and {b.id} are not adjacent: "
                                f"frames {a.end}–{b.start} lie between them")
        slips = {s.slip for s in parts}
        if len(slips) > 1:
            raise EditError(f"segments {', '.join(s.id for s in parts)} have their dub slipped differently "
                            f"({', '.join(f'{s.slip:+d}' for s in parts)} frames): slip them alike to merge them")
        first, last = parts[0], parts[-1]
        given = scores
        if scores is None:
            scores = tuple(_weighted([(getattr(s, attr), s.frames) for s in parts]) for attr in ("lse_c", "lse_d"))
        merged = replace(first, end=last.end, kind="speech" if any(s.kind == "speech" for s in parts) else "silence",
                         lse_c=_score(scores[0], "LSE-C"), lse_d=_score(scores[1], "LSE-D"))
        take = project.takes.get(first.take_id)
        if take is None or not merged.within(take.start, take.end):
            merged = replace(merged, take_id=None)
        if given is None and any(s.take_id != merged.take_id for s in parts):
            merged = _chosen(merged, take if merged.take_id else None)  # a part's score described other frames
        super().__init__(project)
        self._after = {"segments": self._segments_with(merged, remove={s.id for s in parts[1:]})}
        self.text = f"Merge segments {', '.join(s.id for s in parts)}"


class TrimSegment(Command):
    """Move one edge of a segment to `frame`, a whole frame: its first frame for edge "start", the frame
    after its last for "end". Segments tile the dub (its speech and silence), so an edge the segment shares
    with a neighbour is the cut between them and moves for both (a roll: the neighbour gives or takes the
    frames); a free edge (a gap beside it) moves into the gap. `trim_bounds` says how far it may go.
    A segment whose frames change keeps its chosen take only where that take still fits it (Take.fits: it
    covers the new frames, and heard their dub at the segment's slip; the take's own frames never change;
    otherwise the segment exports the original frames, as after a merge), and its
    scores only where that take was scored over exactly its new frames (_chosen, as a split's halves):
    a mean over other frames describes nothing it exports.
    `drag`: a token every move of one drag shares; those merge into one undo step, each worked out again
    from the segments before the drag (a take lost on the way is back when the edge returns)."""

    def __init__(self, project, segment_id: str, edge: str, frame: int, drag=None):
        if edge not in ("start", "end"):
            raise EditError(f"a segment's edge is \"start\" or \"end\", not {edge!r}")
        if not _is_int(frame):
            raise EditError(f"a segment's edge moves to a whole frame number, not {frame!r}")
        super().__init__(project)
        self.segment_id, self.edge = segment_id, edge
        self._after = {"segments": self._trimmed(project.segments, frame)}
        self._title = project.segment(segment_id).title
        self._moved_to(frame)
        self.merge_key = None if drag is None else ("trim", drag)

    def _moved_to(self, frame: int):
        self.frame = frame
        self.text = f"Trim segment {self._title} {self.edge} to frame {frame}"

    def merge(self, other: Command) -> bool:
        if type(other) is not type(self) or self.merge_key is None or other.merge_key != self.merge_key:
            return False
        lo, hi = trim_bounds(self.project, self._before["segments"], self.segment_id, self.edge)
        self._moved_to(min(max(other.frame, lo), hi if hi is not None else other.frame))
        self._after = {"segments": self._trimmed(self._before["segments"], self.frame)}
        self.project._apply(self._after)  # the project shows the merged step (History already did `other`)
        return True

    def _trimmed(self, segments: tuple, frame: int) -> tuple:
        i = _index(segments, self.segment_id)
        s = segments[i]
        lo, hi = trim_bounds(self.project, segments, self.segment_id, self.edge)
        if not (lo <= frame and (hi is None or frame <= hi)):
            reach = f"{lo}–{hi}" if hi is not None else f"{lo} or later"
            raise EditError(f"cannot move the {self.edge} of segment {s.title} [{s.start}, {s.end}) to frame {frame}: "
                            f"it can go to frames {reach} (a segment keeps a frame at least and never overlaps "
                            "another, nor leaves the output)")
        out = list(segments)
        j = i - 1 if self.edge == "start" else i + 1  # the neighbour across the edge
        shared = 0 <= j < len(out) and (out[j].end == s.start if self.edge == "start" else out[j].start == s.end)
        changes = {i: {self.edge: frame}}
        if shared:
            changes[j] = {"end" if self.edge == "start" else "start": frame}
        for k, fields in changes.items():
            moved = replace(out[k], **fields)
            if (moved.start, moved.end) != (out[k].start, out[k].end):
                take = self.project.takes.get(moved.take_id)
                out[k] = _chosen(moved, take if take is not None and take.fits(moved) else None)
        check_segments(out, self.project.takes)
        return tuple(out)


def _index(segments, segment_id: str) -> int:
    for i, s in enumerate(segments):
        if s.id == segment_id:
            return i
    raise EditError(f"no segment {segment_id!r}")


def trim_bounds(project, segments, segment_id: str, edge: str) -> tuple[int, int | None]:
    """The frames [lo, hi] one edge of a segment may move to (TrimSegment): every segment keeps a frame at
    least, so an edge shared with a neighbour stops a frame short of the neighbour's far edge and a free one
    at the next segment (touching it) or at the output's first / last frame; hi None: no end known."""
    i = _index(segments, segment_id)
    s = segments[i]
    if edge == "start":
        before = segments[i - 1] if i else None
        if before is None:
            return 0, s.end - 1
        return (before.start + 1 if before.end == s.start else before.end), s.end - 1
    after = segments[i + 1] if i + 1 < len(segments) else None
    if after is not None:
        return s.start + 1, after.end - 1 if after.start == s.end else after.start
    end = project.output_frames()
    return s.start + 1, None if end is None else max(end, s.end)


def _weighted(pairs) -> float | None:
    pairs = [(v, n) for v, n in pairs if v is not None]
    return sum(v * n for v, n in pairs) / sum(n for _, n in pairs) if pairs else None


class ReplaceSegments(Command):
    """Replace all segments, e.g. with voice activity detection's frame ranges: Segments, or anything
    with start, end (frames) and kind, such as core.segments.FrameRange (those get fresh ids)."""

    def __init__(self, project, segments, text: str = "Detect segments"):
        segments = [s if isinstance(s, Segment) else project.make_segment(s.start, s.end, s.kind)
                    for s in segments]
        segments = sorted(segments, key=lambda s: s.start)
        check_segments(segments, project.takes)
        super().__init__(project, segments=tuple(segments))
        self.text = text


def _chosen(segment: Segment, take: Take | None) -> Segment:
    """The segment exporting `take` (None: its original frames), its scores that take's over its frames:
    a segment's LSE-C always describes what it exports (unscored until scoring measures it)."""
    lse_c, lse_d = (take.segment_score(segment) if take is not None else None) or (None, None)
    return replace(segment, take_id=None if take is None else take.id, lse_c=lse_c, lse_d=lse_d)


class SetScores(Command):
    """Store a scoring pass, one undo step: {segment id: (lse_c, lse_d)} of what each segment exports,
    and optionally what each scored take got, `take_scores` {take id: {"lse_c", "lse_d", "scorer",
    "frame_conf": [per frame], "frame_fps": rate of frame_conf, "segments": {segment id: [start, end,
    lse_c, lse_d]} (the take over segments that do not export it)}} (merged into the take's scores; the
    curve is what the confidence lane draws). A segment's score is recorded in its chosen take's
    "segments" too, so choosing that take again later brings its score back (ChooseTake).

    `scorer` {"name", "sha256", "weak_below"}: the expert that measured them. Scores of different
    experts are on different scales, so a project holds one: a pass by an expert other than the
    project's (model.same_scale) clears every earlier score, segments' and takes', and moves the
    threshold to the new expert's weak line. A project's first pass moves it only from the default (the
    bundled expert's line): a threshold the editor set before scoring stays."""

    def __init__(self, project, scores: dict, text: str = "Score segments", take_scores: dict | None = None,
                 scorer: dict | None = None):
        new_scale = scorer is not None and not same_scale(project.scorer, scorer)
        changed = [replace(project.segment(i), lse_c=_score(c, "LSE-C"), lse_d=_score(d, "LSE-D"))
                   for i, (c, d) in scores.items()]
        cleared = [replace(s, lse_c=None, lse_d=None) for s in project.segments
                   if new_scale and s.id not in scores and (s.lse_c is not None or s.lse_d is not None)]
        take_scores = {tid: dict(values) if isinstance(values, dict) else values
                       for tid, values in (take_scores or {}).items()}
        for s in changed:
            values = take_scores.setdefault(s.take_id, {}) if s.take_id in project.takes else None
            if isinstance(values, dict):
                values["segments"] = {**values.get("segments", {}), s.id: [s.start, s.end, s.lse_c, s.lse_d]}
        takes = None
        stale = [t for t in project.takes.values() if new_scale and t.scores and t.id not in take_scores]
        if take_scores or stale:
            takes = dict(project.takes)
            for take in stale:
                takes[take.id] = replace(take, scores={})
            for take_id, values in take_scores.items():
                take = project.take(take_id)
                if new_scale:
                    take = replace(take, scores={})
                if not isinstance(values, dict):
                    raise EditError(f"take {take_id}: scores must be a mapping, not {type(values).__name__}")
                values = dict(values)
                if "frame_conf" in values:
                    values["frame_conf"] = frame_curve(values["frame_conf"], f"take {take_id}: frame confidence")
                    rate = values.get("frame_fps")
                    if rate is not None and (not _is_number(rate) or rate <= 0):
                        raise EditError(f"take {take_id}: frame_fps must be a rate > 0, not {rate!r}")
                for key in ("lse_c", "lse_d"):
                    if key in values:
                        values[key] = _score(values[key], key.upper().replace("_", "-"))
                if "segments" in values:
                    values["segments"] = {**take.scores.get("segments", {}), **{
                        sid: [int(a), int(b), _score(c, "LSE-C"), _score(d, "LSE-D")]
                        for sid, (a, b, c, d) in values["segments"].items()}}
                takes[take_id] = replace(take, scores={**take.scores, **_jsonish(values, f"take {take_id} scores")})
        super().__init__(project)
        self._after = {"segments": self._segments_with(*cleared, *changed)}
        if takes is not None:
            self._after["takes"] = takes
        self.text = text
        if new_scale:
            self._after["scorer"] = scorer_record(scorer)
            line = scorer.get("weak_below")
            if _is_number(line) and (project.scorer is not None or project.threshold == DEFAULT_THRESHOLD):
                self._after["threshold"] = float(line)
            if cleared or stale:
                self.text += (f"; scores of {project.scorer['name'] if project.scorer else 'an earlier expert'} "
                              f"cleared (another scale)")
            if "threshold" in self._after and self._after["threshold"] != project.threshold:
                self.text += f"; threshold {self._after['threshold']:g}, the new expert's weak line"


class AddTake(Command):
    """Add a rendered take (from project.new_take); `choose=True` also makes it its segment's choice."""

    def __init__(self, project, take: Take, choose: bool = False):
        if not isinstance(take, Take):
            raise EditError(f"expected a Take, not {type(take).__name__}")
        if take.id in project.takes:
            raise EditError(f"take id {take.id!r} is already used")
        s = project.segment(take.segment_id)
        if not (_is_int(take.start) and _is_int(take.end)) or not 0 <= take.start < take.end:
            raise EditError(f"take {take.id}: frames [{take.start}, {take.end}) are not a valid range")
        if Path(take.file).is_absolute() or ".." in Path(take.file).parts:
            raise EditError(f"take {take.id}: file {take.file!r} must be relative to the project's cache folder")
        if choose and not s.within(take.start, take.end):
            raise EditError(f"take {take.id} [{take.start}, {take.end}) does not cover segment {s.id} "
                            f"[{s.start}, {s.end})")
        super().__init__(project, takes={**project.takes, take.id: take})
        if choose:
            self._after["segments"] = self._segments_with(_chosen(s, take))
        self.take_id = take.id
        self.text = f"Add {take.label or take.id}"


class RemoveTake(Command):
    """Remove a take from the project (segments that chose it go back to none). Its file stays in the
    cache (undo brings the take back); garbage_collect deletes it once nothing can."""

    def __init__(self, project, take_id: str):
        take = project.take(take_id)
        takes = {k: t for k, t in project.takes.items() if k != take_id}
        super().__init__(project, takes=takes)
        self._after["segments"] = self._segments_with(
            *(_chosen(s, None) for s in project.segments if s.take_id == take_id))
        self.text = f"Remove {take.label or take_id}"


class ChooseTake(Command):
    """Choose the take a segment exports with (None: the original frames). The segment's scores become
    that take's over its frames (unscored when it was not scored there)."""

    def __init__(self, project, segment_id: str, take_id: str | None):
        s = project.segment(segment_id)
        t = None
        if take_id is not None:
            t = project.take(take_id)
            if not s.within(t.start, t.end):
                raise EditError(f"take {take_id} [{t.start}, {t.end}) does not cover segment {segment_id} "
                                f"[{s.start}, {s.end})")
        super().__init__(project)
        self._after = {"segments": self._segments_with(s if s.take_id == take_id else _chosen(s, t))}
        self.text = f"Choose {project.takes[take_id].label or take_id}" if take_id else "Use original frames"


class RenameTake(Command):
    """Give a take a name of the user's (its label in the takes lane)."""

    def __init__(self, project, take_id: str, label: str):
        take = project.take(take_id)
        if not isinstance(label, str) or not label.strip():
            raise EditError("a take's name cannot be empty")
        super().__init__(project, takes={**project.takes, take_id: replace(take, label=label.strip())})
        self.text = f"Rename {take.label or take_id} to {label.strip()}"


class RenameSegment(Command):
    """Give a segment a name (shown in the timeline and the inspector); "" goes back to its id."""

    def __init__(self, project, segment_id: str, name: str):
        s = project.segment(segment_id)
        name = segment_name(name)
        super().__init__(project)
        self._after = {"segments": self._segments_with(replace(s, name=name))}
        self.text = f"Rename segment {s.title} to {name}" if name else f"Clear the name of segment {s.id}"


class ImportSegments(Command):
    """Segments from another editor's markers (core.interchange): `ranges` of (start, end, name). A range
    that is a segment's frames renames it (a name equal but for case, as an EDL writes it, is no change);
    any other becomes a speech segment cut out of those it overlaps, which keep their frames outside it.
    The new one takes the settings of the segment it starts in, and its chosen take where that covers it."""

    def __init__(self, project, ranges):
        segments = list(project.segments)
        self.renamed, self.created = [], []
        for start, end, name in sorted(ranges):
            if not (_is_int(start) and _is_int(end)) or not 0 <= start < end:
                raise EditError(f"frames [{start}, {end}) are not a range of whole frames ≥ 0")
            name = segment_name(name)
            same = next((i for i, s in enumerate(segments) if (s.start, s.end) == (start, end)), None)
            if same is None:
                segments = _carved(project, segments, start, end, name)
                self.created.append(next(s.id for s in segments if s.start == start))
            elif name and name.casefold() != segments[same].title.casefold():
                segments[same] = replace(segments[same], name=name)
                self.renamed.append(segments[same].id)
        check_segments(segments, project.takes)
        super().__init__(project, segments=tuple(segments))
        self.text = f"Import segments: {len(self.created)} new, {len(self.renamed)} renamed"


def _carved(project, segments: list, start: int, end: int, name: str) -> list:
    """`segments` with a new speech segment over [start, end) and the frames it takes cut out of the others
    (one it falls inside becomes two); a part keeps its chosen take, and its scores only where they still
    describe what it exports (_chosen)."""
    host = next((s for s in segments if s.start <= start < s.end), None)
    new = project.make_segment(start, end, "speech", name=name, settings=dict(host.settings) if host else {},
                               slip=host.slip if host else 0)
    take = project.takes.get(host.take_id) if host else None
    out = [_chosen(new, take if take is not None and new.within(take.start, take.end) else None)]
    for s in segments:
        if s.end <= start or end <= s.start:
            out.append(s)
            continue
        kept = project.takes.get(s.take_id)
        if s.start < start:
            out.append(_chosen(replace(s, end=start), kept))
        if end < s.end:
            out.append(_chosen(replace(s, id=s.id if start <= s.start else project.new_segment_id(), start=end), kept))
    return sorted(out, key=lambda s: s.start)


class NudgeDub(Command):
    """Move the dub by `frames` (positive: later), and its segments with it. Consecutive nudges merge
    into one undo step; undo restores the offset, every segment and every take choice exactly.

    Segments are the dub's speech and silence stretches, so each one moves by the same frames,
    clamped to the output (`Project.output_frames` at the new offset). A segment pushed entirely out
    of it is removed (its takes stay in the project; undo brings it back). Where segments covered
    the timeline from its first frame (and to its last), they still do: frames before the dub starts
    or after it ends become silence (joining a silent neighbour), and dub that moved into view from
    beyond the edge, never detected, joins the segment next to it, or is a speech segment of its own
    when none is left (Detect Segments Again refines it).
    A run of nudges is always worked out from the positions before the run, so nudging out and back
    loses nothing at the edges and a run that ends where it began is no edit at all.

    Takes: a take's frames were generated for the dub where it was (its settings record
    `dub_offset_frames`); after a nudge its mouth no longer matches the audio, and exporting it would
    pass off out-of-sync frames as lip-synced. So a moved segment keeps or gets a take only if one
    covers its new frames and was rendered with the dub at the new offset (nudging back to a rendered
    offset finds that render again); otherwise it has none and exports the original frames until it
    is re-rendered. Takes themselves are never changed or removed: they keep their frames, settings
    and scores, listed as rendered at another offset. A moved segment's LSE-C/LSE-D are cleared
    (they scored its old frames against the old timing): it is unscored until scored again.
    `unchosen` and `removed` name the segments that lost their take or left the output.
    """
    merge_key = "nudge-dub"

    def __init__(self, project, frames: int):
        if not _is_int(frames):
            raise EditError(f"the dub moves by whole frames, not {frames!r}")
        super().__init__(project)
        self._filler_ids: list[str] = []  # ids of silence segments the edges needed (kept across merges)
        self._after = self._moved(project.dub_offset, project.segments, project.dub_offset + frames)

    @property
    def text(self) -> str:
        before = self._before["dub_offset"] if self._before else self.project.dub_offset
        return f"Nudge dub {self._after['dub_offset'] - before:+d} frames"

    def merge(self, other: Command) -> bool:
        if type(other) is not type(self) or self._before is None:
            return False
        # worked out again from the state before the run, not from the last step's result (which may
        # have clamped a segment away at an edge), and applied: the project shows the merged step
        base = self._before
        self._after = self._moved(base["dub_offset"], base["segments"], other._after["dub_offset"])
        self.project._apply(self._after)
        return True

    def _moved(self, offset: int, segments: tuple, new_offset: int) -> dict:
        """The state with the dub at `new_offset`, from `segments` as they were with it at `offset`."""
        shift = new_offset - offset
        self.unchosen, self.removed = (), ()
        if shift == 0:
            return {"dub_offset": new_offset, "segments": tuple(segments)}
        project = self.project
        old_end, end = project.output_frames(offset), project.output_frames(new_offset)
        limit = end if end is not None else float("inf")
        moved = []
        for s in segments:
            a, b = max(s.start + shift, 0), min(s.end + shift, limit)
            if a < b:
                moved.append(replace(s, start=a, end=b, lse_c=None, lse_d=None))
        fillers = iter(self._filler_ids)

        def filler(a: int, b: int, kind: str = "silence") -> Segment:
            sid = next(fillers, None)
            if sid is None:
                sid = project.new_segment_id()
                self._filler_ids.append(sid)
            return Segment(sid, a, b, kind)

        # where the dub plays in the output now: before `starts` and from `stops` on, it is silent
        starts = max(new_offset, 0) if end is None else min(max(new_offset, 0), end)
        dub_seconds = project.dub_seconds(new_offset)
        stops = end if end is None or dub_seconds is None else min(max(int(round(dub_seconds * project.fps)),
                                                                        starts), end)
        from_first = bool(segments) and segments[0].start == 0  # they covered the timeline from its start
        to_last = bool(segments) and None not in (end, old_end) and segments[-1].end >= old_end  # … to its end
        if not moved:
            if from_first and end:  # all of it moved out: silence, and dub never detected (speech, to render)
                moved = [filler(a, b, kind) for a, b, kind in
                         ((0, starts, "silence"), (starts, stops, "speech"), (stops, end, "silence")) if a < b]
        else:
            if from_first:
                head = moved[0].start
                quiet = min(starts, head)
                if quiet < head:  # dub from before the old first frame: joins the segment after it
                    moved[0] = replace(moved[0], start=quiet)
                if quiet > 0:
                    if moved[0].kind == "silence":
                        moved[0] = replace(moved[0], start=0)
                    else:
                        moved.insert(0, filler(0, quiet))
            if to_last:
                tail = moved[-1].end
                quiet = max(stops, tail)
                if tail < quiet:  # dub from after the old last frame: joins the segment before it
                    moved[-1] = replace(moved[-1], end=quiet)
                if quiet < end:
                    if moved[-1].kind == "silence":
                        moved[-1] = replace(moved[-1], end=end)
                    else:
                        moved.append(filler(quiet, end))
        in_sync = [t for t in project.takes.values() if t.settings.get("dub_offset_frames") == new_offset]
        before = {s.id: s.take_id for s in segments}
        out = []
        for s in moved:
            fits = [t.id for t in in_sync if t.fits(s)]
            keep = before.get(s.id)
            out.append(replace(s, take_id=keep if keep in fits else (fits[-1] if fits else None)))
        check_segments(out, project.takes)
        kept = {s.id: s.take_id for s in out}
        self.removed = tuple(sid for sid in before if sid not in kept)
        self.unchosen = tuple(sid for sid, take in before.items() if take is not None and kept.get(sid) is None)
        return {"dub_offset": new_offset, "segments": tuple(out)}


class SlipSegment(Command):
    """Slip one speech segment's dub by `frames` (positive: heard later): its `slip` changes, while its
    frames, the other segments, the dub offset and every other take choice stay as they are (what is heard
    is core.slip's rule). Consecutive slips of one segment merge into one undo step, worked out from the
    segment as it was before the run, so a run that ends where it began is no edit at all.

    Takes: a take's frames were generated for the dub as it was under the segment (its settings record the
    slips, core.project.model.recorded_slip); after a slip its mouth no longer matches that line, and
    exporting it would pass off out-of-sync frames as lip-synced. So, as a nudge does (NudgeDub), the segment
    keeps or gets a take only if one covers it and was rendered with the dub at this offset and this slip
    (slipping back finds it again); otherwise it exports the original frames until it is re-rendered. Takes
    themselves are never changed or removed (the inspector lists them as rendered before the slip). Its
    LSE-C/LSE-D become its take's over it (unscored without one). `unchosen`: whether it lost its take.
    """

    def __init__(self, project, segment_id: str, frames: int):
        if not _is_int(frames):
            raise EditError(f"a segment's dub slips by whole frames, not {frames!r}")
        s = project.segment(segment_id)
        if s.kind != "speech":
            raise EditError(f"segment {s.title} is silence: only a speech segment's dub slips")
        super().__init__(project)
        self.segment_id = segment_id
        self.merge_key = ("slip", segment_id)
        self._after = self._slipped(s, s.slip + frames)

    def merge(self, other: Command) -> bool:
        if type(other) is not type(self) or other.merge_key != self.merge_key or self._before is None:
            return False
        base = next(s for s in self._before["segments"] if s.id == self.segment_id)
        after = next(s for s in other._after["segments"] if s.id == self.segment_id)
        self._after = self._slipped(base, after.slip)  # from the run's start, and applied (see NudgeDub.merge)
        self.project._apply(self._after)
        return True

    def _slipped(self, base: Segment, slip: int) -> dict:
        """The segments with `base` (the segment before the run) at `slip`."""
        self.text = f"Slip segment {base.title} to {slip:+d} frames"
        self.unchosen = False
        if slip == base.slip:
            return {"segments": self._segments_with(base)}
        project = self.project
        moved = replace(base, slip=slip)
        fits = [t for t in project.takes.values() if t.fits(moved)
                and t.settings.get("dub_offset_frames", project.dub_offset) == project.dub_offset]
        kept = next((t for t in fits if t.id == base.take_id), fits[-1] if fits else None)
        self.unchosen = base.take_id is not None and kept is None
        return {"segments": self._segments_with(_chosen(moved, kept))}


class SetThreshold(Command):
    """The LSE-C below which a segment's verdict is "poor". Slider drags merge into one step."""
    merge_key = "threshold"

    def __init__(self, project, threshold: float):
        if not _is_number(threshold):
            raise EditError(f"threshold must be a number, not {threshold!r}")
        super().__init__(project, threshold=float(threshold))
        self.text = f"Set threshold to {threshold:g}"


class SetProjectSettings(Command):
    """Project-wide choices: checkpoint, detector, device, length policy and the segment defaults.
    Consecutive changes of the same keys merge (a spin box's steps), unless `merge=False` (a dialog's
    OK is a step of its own)."""

    def __init__(self, project, changes: dict, merge: bool = True, text: str | None = None):
        if not changes:
            raise EditError("no setting to change")
        settings = dict(project.settings)
        for key, value in changes.items():
            settings[key] = normalise_setting(key, value, project.folder)
        super().__init__(project, settings=settings)
        self.text = text or f"Set {', '.join(sorted(changes))}"
        self.merge_key = ("settings", tuple(sorted(changes))) if merge else None


class RelinkMedia(Command):
    """Point the video or the dub at another file (a moved one, or a first/new dub).
    Without `facts`, the file must be the same size as the one it replaces (its facts are kept)."""

    def __init__(self, project, kind: str, path, facts: MediaFacts | None = None):
        if kind not in MEDIA_KINDS:
            raise EditError(f"media kind must be one of {', '.join(MEDIA_KINDS)}, not {kind!r}")
        path = Path(os.path.abspath(path))
        if not path.is_file():
            raise EditError(f"{path}: file not found")
        old = project.media.get(kind)
        if facts is None:
            size = path.stat().st_size
            if old is None:
                facts = MediaFacts(size=size)
            elif old.facts.size is not None and old.facts.size != size:
                raise EditError(f"{path} is not the same file as {old.path.name} ({size} bytes, not "
                                f"{old.facts.size}): probe it and pass its facts to use a different file")
            else:
                facts = old.facts
        super().__init__(project, media={**project.media, kind: MediaRef(path, facts)})
        self.text = f"{'Relink' if old else 'Set'} {kind} to {path.name}"


class AddAdaptedModel(Command):
    """Record a speaker-adapted generator (a .safetensors file made from this project's video) as a
    model choice; recording the same file again replaces its record. `use=True` also makes it the
    project's generator, in the same undo step. The file itself is never touched."""

    def __init__(self, project, path, label: str = "", info: dict | None = None, use: bool = False):
        path = Path(os.path.abspath(path))
        if path.suffix.lower() != ".safetensors":
            raise EditError(f"{path.name}: an adapted model is a .safetensors file")
        if not path.is_file():
            raise EditError(f"{path}: file not found")
        if not isinstance(label, str):
            raise EditError(f"a model's label must be text, not {label!r}")
        model = AdaptedModel(path, " ".join(label.split()), _now(), _jsonish(info or {}, "adapted model info"))
        models = [m for m in project.adapted_models if _key(m.path) != _key(path)] + [model]
        super().__init__(project, adapted_models=tuple(models))
        if use:
            self._after["settings"] = {**project.settings, "checkpoint": normalise_setting("checkpoint", path)}
        self.path = path
        self.text = f"Add adapted model {model.title}" + (" and use it" if use else "")


class RelinkAdaptedModel(Command):
    """Point a recorded adapted model at the file's new place (it was moved); the project's and the
    segments' settings that chose it follow. Takes keep what they were rendered with."""

    def __init__(self, project, old_path, new_path):
        model = project.adapted_model(old_path)
        if model is None:
            raise EditError(f"{Path(old_path).name} is not one of the project's adapted models")
        new_path = Path(os.path.abspath(new_path))
        if not new_path.is_file():
            raise EditError(f"{new_path}: file not found")
        if new_path.suffix.lower() != ".safetensors":
            raise EditError(f"{new_path.name}: an adapted model is a .safetensors file")
        if project.adapted_model(new_path) is not None and _key(new_path) != _key(model.path):
            raise EditError(f"{new_path.name} is already one of the project's adapted models")
        old = _key(model.path)

        def follow(settings: dict) -> dict:
            value = settings.get("checkpoint")
            return {**settings, "checkpoint": new_path} if isinstance(value, Path) and _key(value) == old else settings

        models = tuple(replace(m, path=new_path) if m is model else m for m in project.adapted_models)
        super().__init__(project, adapted_models=models, settings=follow(project.settings))
        changed = [replace(s, settings=follow(s.settings)) for s in project.segments
                   if follow(s.settings) is not s.settings]
        if changed:
            self._after["segments"] = self._segments_with(*changed)
        self.text = f"Relink adapted model {model.title} to {new_path.name}"


class RemoveAdaptedModel(Command):
    """Forget a recorded adapted model: it is no longer offered as a model choice. What chose it falls
    back for future renders: the project's generator, if it was this model, goes back to the bundled
    one, and segments that chose it lose that override (they render with the project's generator).
    Takes are not touched: their settings keep the record of the model that rendered them, and a
    chosen take stays chosen (its frames are what they are). The file itself is left where it is
    (delete it by hand if it is no longer wanted); undo brings back the record and every choice."""

    def __init__(self, project, path):
        model = project.adapted_model(path)
        if model is None:
            raise EditError(f"{Path(path).name} is not one of the project's adapted models")
        key = _key(model.path)

        def chose(settings: dict) -> bool:
            value = settings.get("checkpoint")
            return isinstance(value, Path) and _key(value) == key

        settings = project.settings
        self.was_generator = chose(settings)
        if self.was_generator:
            settings = {**settings, "checkpoint": DEFAULT_SETTINGS["checkpoint"]}
        super().__init__(project, adapted_models=tuple(m for m in project.adapted_models if m is not model),
                         settings=settings)
        changed = [replace(s, settings={k: v for k, v in s.settings.items() if k != "checkpoint"})
                   for s in project.segments if chose(s.settings)]
        if changed:
            self._after["segments"] = self._segments_with(*changed)
        self.path = model.path
        self.segment_ids = tuple(s.id for s in changed)  # the segments that chose it
        self.text = f"Remove adapted model {model.title}"


def _marker(project, frame: int) -> Marker:
    marker = project.marker_at(frame)
    if marker is None:
        raise EditError(f"no marker at frame {frame}")
    return marker


def _markers_with(project, marker: Marker | None, remove: int | None = None) -> tuple:
    """The markers with the one at `remove` dropped and `marker` put in its place by frame (one per frame)."""
    kept = [m for m in project.markers if m.frame != remove]
    if marker is not None:
        if any(m.frame == marker.frame for m in kept):
            raise EditError(f"a marker is already at frame {marker.frame}")
        kept.append(marker)
    return tuple(sorted(kept, key=lambda m: m.frame))


class AddMarker(Command):
    """A marker at `frame` (one per frame)."""

    def __init__(self, project, frame: int, name: str = "", colour: str = DEFAULT_MARKER_COLOUR, note: str = ""):
        marker = make_marker(frame, name, colour, note)
        super().__init__(project, markers=_markers_with(project, marker))
        self.text = f"Add {marker.title}"


class RemoveMarker(Command):
    def __init__(self, project, frame: int):
        marker = _marker(project, frame)
        super().__init__(project, markers=_markers_with(project, None, remove=frame))
        self.text = f"Remove {marker.title}"


class EditMarker(Command):
    """Rename, recolour, re-note or move the marker at `frame` (the fields given; None keeps one).
    Consecutive edits of the same fields of one marker merge (typing its note is one step)."""

    def __init__(self, project, frame: int, *, name: str | None = None, colour: str | None = None,
                 note: str | None = None, to: int | None = None):
        old = _marker(project, frame)
        new = make_marker(old.frame if to is None else to, old.name if name is None else name,
                          old.colour if colour is None else colour, old.note if note is None else note)
        super().__init__(project, markers=_markers_with(project, new, remove=frame))
        changed = [what for what, value in (("name", name), ("colour", colour), ("note", note), ("frame", to))
                   if value is not None]
        if to is not None:
            self.text = f"Move {old.title} to frame {new.frame}"
        elif changed == ["name"]:
            self.text = f"Rename {old.title} to {new.name}" if new.name else f"Clear the name of {old.title}"
        elif changed == ["colour"]:
            self.text = f"Make {old.title} {new.colour}"
        else:
            self.text = f"Edit {', '.join(changed)} of {old.title}"
        # a move changes which marker a later edit names, so only edits in place merge
        self.merge_key = None if to is not None else ("marker", new.frame, tuple(changed))


class Batch(Command):
    """Several commands as one undo step: each built by one of `factories` (callables returning a
    Command) against the state the previous ones left, the first time the batch is done; redo
    replays them, undo reverts them in reverse. A later Batch with the same `merge_key` joins this
    step while it is the latest one (History merges into the top step only, never into a saved one)."""

    def __init__(self, project: Project, factories: Iterable[Callable[[], Command]], text: str, merge_key=None):
        super().__init__(project)
        self.text = text
        self.merge_key = merge_key
        self._factories = list(factories)
        self._parts: list[Command] = []

    def do(self):
        if self._factories is None:  # redo
            for part in self._parts:
                part.do()
            return
        try:
            for make in self._factories:
                part = make()
                part.do()
                if not part.obsolete:
                    self._parts.append(part)
        except BaseException:
            for part in reversed(self._parts):  # all or nothing
                part.undo()
            self._parts = []
            raise
        self._factories = None

    def undo(self):
        for part in reversed(self._parts):
            part.undo()

    def merge(self, other: Command) -> bool:
        if type(other) is not Batch or self.merge_key is None or other.merge_key != self.merge_key:
            return False
        self._parts.extend(other._parts)  # done already: History does a command before merging it
        return True

    @property
    def obsolete(self) -> bool:
        return self._factories is None and not self._parts

    def referenced_takes(self):
        return [t for part in self._parts for t in part.referenced_takes()]


# --------------------------------------------------------------------------- history


class History:
    """Undo/redo stacks with a clean (saved) mark and a size limit; mirrors QUndoStack's behaviour.

    `listeners` are called (no arguments) after every push/undo/redo/clean change: the app updates
    its Undo/Redo actions' text and the window's modified mark from `undo_text`, `is_clean`.
    """

    def __init__(self, limit: int = 200):
        self.limit = limit
        self.commands: list[Command] = []
        self.index = 0  # commands[:index] are done
        self._clean: int | None = 0  # None: the saved state can no longer be reached
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, fn: Callable[[], None]):
        self._listeners.append(fn)

    def _notify(self):
        for fn in list(self._listeners):
            fn()

    def push(self, command: Command):
        command.do()  # raises (and changes nothing) when the edit is invalid
        if command.obsolete:
            return  # a no-op: nothing to undo, the redo stack stays
        del self.commands[self.index:]
        if self._clean is not None and self._clean > self.index:
            self._clean = None
        top = self.commands[-1] if self.commands else None
        # never merge into the command the saved state sits on: undo must be able to reach it
        if top is not None and self._clean != self.index and top.merge(command):
            if top.obsolete:
                self.commands.pop()
                self.index -= 1
        else:
            self.commands.append(command)
            self.index += 1
            excess = len(self.commands) - self.limit if self.limit else 0
            if excess > 0:
                del self.commands[:excess]
                self.index -= excess
                if self._clean is not None:
                    self._clean = self._clean - excess if self._clean >= excess else None
        self._notify()

    def undo(self):
        if self.can_undo:
            self.index -= 1
            self.commands[self.index].undo()
            self._notify()

    def redo(self):
        if self.can_redo:
            self.commands[self.index].do()
            self.index += 1
            self._notify()

    @property
    def can_undo(self) -> bool:
        return self.index > 0

    @property
    def can_redo(self) -> bool:
        return self.index < len(self.commands)

    @property
    def undo_text(self) -> str:
        return self.commands[self.index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self.commands[self.index].text if self.can_redo else ""

    @property
    def is_clean(self) -> bool:
        return self._clean == self.index

    def set_clean(self):
        if self._clean != self.index:
            self._clean = self.index
            self._notify()

    def clear(self):
        """Forget all commands (unlike QUndoStack.clear, an unsaved state stays unsaved)."""
        self._clean = 0 if self.is_clean else None
        self.commands.clear()
        self.index = 0
        self._notify()
