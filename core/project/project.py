"""`Project`: the state of one lip-sync job, its lookups, saving and loading, the takes cache.

Change it only through `project.execute(command)` (core.project.commands), which records the
edit for undo; the few changes that are not edits (an export record, saving) have their own calls.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import numpy as np

from core.blend import BlendSettings
from core.errors import LipsmithError
from core.hparams import HP
from core.plan import output_count

from . import fileformat
from .commands import Command, History, RelinkMedia
from .model import (CACHE_SUFFIX, DEFAULT_SETTINGS, DEFAULT_THRESHOLD, MEDIA_KINDS, SUFFIX, AdaptedModel, EditError,
                    ExportRecord, Marker, MediaFacts, MediaRef, ProjectError, Segment, Take, _jsonish, _key, _now,
                    autosave_path_for, cache_dir_for, check_markers, check_segments, normalise_setting, scorer_record,
                    take_name, take_number, verdict)


class Project:
    """A lip-sync project: media, dub offset, segments, takes, markers, settings, export history, undo history.

    Read state freely; change it only through `execute(command)` (undoable) or the few explicit
    non-undoable calls (`record_export`, `save*`). Segments and takes are frozen dataclasses:
    commands swap them, so a reference you hold never changes under you.
    """

    def __init__(self, video: MediaRef, *, path=None, dub: MediaRef | None = None, dub_offset: int = 0,
                 settings: dict | None = None, threshold: float = DEFAULT_THRESHOLD, segments=(), takes=(),
                 exports=(), adapted_models=(), markers=(), created: str | None = None,
                 next_ids: dict | None = None, history_limit: int = 200, scorer: dict | None = None):
        self.path = None if path is None else Path(os.path.abspath(path))
        self.media: dict[str, MediaRef] = {"video": video}
        if dub is not None:
            self.media["dub"] = dub
        self.dub_offset = int(dub_offset)  # frames; positive: the dub starts later
        self.settings = dict(DEFAULT_SETTINGS)
        for k, v in (settings or {}).items():
            self.settings[k] = normalise_setting(k, v, self.folder)
        self.threshold = float(threshold)
        # the expert the scores and the threshold are on (model.scorer_record); SetScores keeps them one scale
        self.scorer = scorer_record(scorer)
        self.segments: tuple[Segment, ...] = tuple(segments)  # sorted by start; a tuple: edit via commands
        self.takes: dict[str, Take] = {t.id: t for t in takes}
        check_segments(self.segments, self.takes)
        self.exports: list[ExportRecord] = list(exports)
        # generators fine-tuned on this project's video (AddAdaptedModel), oldest first
        self.adapted_models: tuple[AdaptedModel, ...] = tuple(adapted_models)
        self.markers: tuple[Marker, ...] = tuple(sorted(markers, key=lambda m: m.frame))  # sorted by frame
        check_markers(self.markers)
        self.created = created or _now()
        self._next = {"segment": 1, "take": 1, **(next_ids or {})}
        for prefix, kind, ids in (("s", "segment", [s.id for s in self.segments]), ("t", "take", self.takes)):
            numbers = [int(i[1:]) for i in ids if re.fullmatch(prefix + r"\d+", i)]
            self._next[kind] = max([self._next[kind], *(n + 1 for n in numbers)])
        self.history = History(limit=history_limit)
        self.history.add_listener(self._bump)
        self._revision = 0  # counts changes, so autosave writes only what it has not written yet
        self._autosaved = 0
        self._dirty = False  # a change outside the undo history (an export record, a recovered autosave)

    @classmethod
    def new(cls, video_path, video_facts: MediaFacts, *, path=None, dub_path=None,
            dub_facts: MediaFacts | None = None, **kwargs) -> "Project":
        """A project from media facts (probe them with MediaFacts.probe_video / probe_file, or pass known ones)."""
        video = MediaRef(Path(os.path.abspath(video_path)), video_facts)
        dub = None if dub_path is None else MediaRef(Path(os.path.abspath(dub_path)), dub_facts or MediaFacts())
        return cls(video, path=path, dub=dub, **kwargs)

    # -- where things are

    @property
    def folder(self) -> Path | None:
        return None if self.path is None else self.path.parent

    @property
    def cache_dir(self) -> Path | None:
        return None if self.path is None else cache_dir_for(self.path)

    @property
    def autosave_path(self) -> Path | None:
        return None if self.path is None else autosave_path_for(self.path)

    @property
    def video(self) -> MediaRef:
        return self.media["video"]

    @property
    def dub(self) -> MediaRef | None:
        return self.media.get("dub")

    @property
    def fps(self) -> float:
        return self.video.facts.fps or HP.fps

    def output_frames(self, dub_offset: int | None = None) -> int | None:
        """Frames in the output with the dub at `dub_offset` (default: where it is), as the renderer plans
        them (core.plan, under the length policy; a still follows the dub). None while the video's frame
        count is unknown."""
        facts = self.video.facts
        if not facts.frame_count and not facts.is_image:
            return None
        return output_count(facts.frame_count, self.fps, self.dub_seconds(dub_offset), self.settings["length_policy"],
                            facts.is_image)

    @property
    def timecode(self):
        """How the project's frames are labelled (core.timecode.Timecode): the video's rate, counted
        from the video's start timecode."""
        from core.timecode import Timecode

        return Timecode.of(self.fps, self.video.facts.start_timecode)

    def length_text(self, policy: str | None = None) -> str:
        """What an export under `policy` (default: the project's) makes of the picture and the dub, in
        plain words: "picture 00:03:00:00, dub 00:01:00:00 — export 00:03:00:00", and when the export is
        not the whole picture, what becomes of it ("… export 00:01:00:00 (cut to the dub)")."""
        from core.timecode import format_count

        policy = policy or self.settings["length_policy"]
        facts = self.video.facts
        drop = self.timecode.drop
        length = lambda frames: format_count(frames, self.fps, drop)  # noqa: E731 (a duration, from 0)
        dub = self.dub_seconds()
        if facts.is_image or not facts.frame_count or dub is None:
            return (f"still picture, dub {length(self.output_frames() or 0)}" if facts.is_image and dub is not None
                    else f"picture {length(facts.frame_count or 0)}")
        picture, dub = facts.frame_count, max(1, int(round(dub * self.fps)))
        out = output_count(picture, self.fps, dub / self.fps, policy)
        text = f"picture {length(picture)}, dub {length(dub)} — export {length(out)}"
        if out < picture:
            return text + " (cut to the dub)"
        if out > picture:
            return text + (" (its last frame held to the dub's end)" if policy == "pad" else
                           f" ({'looped' if policy == 'loop' else 'bounced'} to the dub's length)")
        if dub > picture:
            return text + " (the dub cut to the picture)"
        return text

    def dub_seconds(self, dub_offset: int | None = None) -> float | None:
        """Where the dub ends on the output's clock (its length plus the offset, ≥ 0); None when unknown."""
        if self.dub is None or self.dub.facts.duration is None:
            return None
        offset = self.dub_offset if dub_offset is None else dub_offset
        return max(float(self.dub.facts.duration) + offset / self.fps, 0.0)

    # -- change tracking

    @property
    def modified(self) -> bool:
        return self._dirty or not self.history.is_clean

    def _bump(self):
        self._revision += 1

    def execute(self, command: Command) -> Command:
        """Apply an edit and record it for undo. Raises EditError (nothing changed) when it cannot apply."""
        if command.project is not self:
            raise EditError("this command was made for another project")
        self.history.push(command)
        return command

    def undo(self):
        self.history.undo()

    def redo(self):
        self.history.redo()

    def _apply(self, state: dict):
        """Commands' only way in: replace whole parts of the state with snapshots."""
        for name, value in state.items():
            setattr(self, name, dict(value) if isinstance(value, dict) else value)

    def _snapshot(self, names) -> dict:
        return {n: copy.copy(getattr(self, n)) for n in names}

    # -- lookups

    def new_segment_id(self) -> str:
        n, self._next["segment"] = self._next["segment"], self._next["segment"] + 1
        return f"s{n}"

    def new_take_id(self) -> str:
        n, self._next["take"] = self._next["take"], self._next["take"] + 1
        return f"t{n}"

    def segment_index(self, segment_id: str) -> int:
        for i, s in enumerate(self.segments):
            if s.id == segment_id:
                return i
        raise EditError(f"no segment {segment_id!r}")

    def segment(self, segment_id: str) -> Segment:
        return self.segments[self.segment_index(segment_id)]

    def segment_at(self, frame: int) -> Segment | None:
        return next((s for s in self.segments if s.start <= frame < s.end), None)

    def marker_at(self, frame: int) -> Marker | None:
        return next((m for m in self.markers if m.frame == frame), None)

    def take(self, take_id: str) -> Take:
        try:
            return self.takes[take_id]
        except KeyError:
            raise EditError(f"no take {take_id!r}") from None

    def takes_for(self, segment_id: str) -> list[Take]:
        """Takes that can serve a segment: those whose frames cover its range (oldest first)."""
        s = self.segment(segment_id)
        return [t for t in self.takes.values() if s.within(t.start, t.end)]

    def verdict(self, segment: Segment | str) -> str:
        """"silence", "unscored", "good" (LSE-C ≥ threshold) or "poor"; follows the threshold, never stored."""
        return verdict(self.segment(segment) if isinstance(segment, str) else segment, self.threshold)

    def weak_segments(self) -> list[Segment]:
        """Speech segments scored below the threshold ("poor"), in time order."""
        return [s for s in self.segments if self.verdict(s) == "poor"]

    def chosen_runs(self) -> list[tuple[Segment, Take]]:
        """(segment, its chosen take) for every segment that exports a take, in time order."""
        return [(s, self.takes[s.take_id]) for s in self.segments if s.take_id in self.takes]

    def unrendered_segments(self) -> list[Segment]:
        """Segments with no chosen take (never rendered, or their take was rendered for another dub
        timing), in time order: they export the original frames, the actor's own mouth."""
        return [s for s in self.segments if s.take_id not in self.takes]

    def confidence_curve(self):
        """The per-frame sync confidence of what exports: for each segment with a scored chosen take,
        that take's curve over the segment's frames. (x: output frames, y: LSE-C per frame), NaN
        between runs and where no face was scored, so a plot breaks there; None when none is scored."""
        xs, ys = [], []
        for s, take in self.chosen_runs():
            curve = take.confidence_curve(self.fps)
            if curve is None:
                continue
            x, y = curve
            inside = (x >= s.start) & (x < s.end)
            if inside.any():
                xs += [x[inside], [x[inside][-1]]]
                ys += [y[inside], [np.nan]]
        if not xs:
            return None
        return np.concatenate(xs), np.concatenate(ys)

    def no_face_ranges(self) -> list[tuple[int, int]]:
        """Output frames [a, b) where what exports has no generated mouth because the render found no
        face there (the chosen takes' reports, within their segments), merged and sorted."""
        return self._chosen_ranges(lambda take: take.no_face_ranges)

    def generated_mouth_ranges(self) -> list[tuple[int, int]]:
        """Output frames [a, b) where what exports has the generated mouth though the actor's was asked
        for (the chosen takes' reports, within their segments), merged and sorted."""
        return self._chosen_ranges(lambda take: take.generated_mouth_ranges)

    def _chosen_ranges(self, ranges_of) -> list[tuple[int, int]]:
        out = []
        for s, take in self.chosen_runs():
            for a, b in ranges_of(take):
                a, b = max(a, s.start), min(b, s.end)
                if a < b:
                    out.append((a, b))
        out.sort()
        merged = []
        for a, b in out:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    def adapted_model(self, path) -> AdaptedModel | None:
        """The recorded adapted model at `path`, else None."""
        key = _key(path)
        return next((m for m in self.adapted_models if _key(m.path) == key), None)

    def make_segment(self, start: int, end: int, kind: str = "speech", **kwargs) -> Segment:
        """A new Segment with a fresh id (for ReplaceSegments after voice activity detection)."""
        return Segment(self.new_segment_id(), start, end, kind, **kwargs)

    def effective_settings(self, segment_id: str | None = None) -> dict:
        """Project settings with the segment's overrides on top, plus its frame range, the dub offset and
        the segments' slips (`slips`, where any is slipped: core.slip): what a render of it uses (and what
        its Take records as `settings`)."""
        out = dict(self.settings)
        if segment_id is not None:
            s = self.segment(segment_id)
            out.update(s.settings)
            out.update(start_frame=s.start, end_frame=s.end)
        out["dub_offset_frames"] = self.dub_offset
        slips = self.slips()
        if slips:
            out["slips"] = [list(slip) for slip in slips]
        return copy.deepcopy(out)

    def slips(self) -> tuple[tuple[int, int, int], ...]:
        """(start, end, frames) of every slipped segment, in time order: how the dub heard differs from the
        dub file (core.slip.slip_audio)."""
        return tuple((s.start, s.end, s.slip) for s in self.segments if s.slip)

    def render_options(self, segment_id: str | None = None, **overrides):
        """core.render.RenderOptions for the whole clip or one segment (imports torch: call it off the UI path)."""
        from core.render import RenderOptions

        s = self.effective_settings(segment_id)
        options = dict(
            checkpoint=str(s["checkpoint"]), device=s["device"], detector=s["detector"],
            start_frame=s.get("start_frame", 0), end_frame=s.get("end_frame"), length_policy=s["length_policy"],
            pads=tuple(s["pads"]), smooth_window=s["smooth_window"], face_index=s["face_index"],
            dub_offset_s=self.dub_offset / self.fps, blend=BlendSettings.from_settings(s), mouth=s["mouth"])
        options.update(overrides)
        return RenderOptions(**options)

    # -- takes and their cache

    def take_path(self, take: Take | str) -> Path:
        take = self.take(take) if isinstance(take, str) else take
        return self._require_cache() / take.file

    def _require_cache(self) -> Path:
        if self.cache_dir is None:
            raise ProjectError(None, "save the project first: takes are stored in a folder beside the project file")
        return self.cache_dir

    def take_file_for(self, take_id: str, suffix: str = ".mkv") -> Path:
        """Where a renderer should write the take `take_id` (the cache folder is created)."""
        cache = self._require_cache()
        cache.mkdir(parents=True, exist_ok=True)
        return cache / f"{take_id}{suffix}"

    def new_take(self, segment_id: str, file, *, take_id: str | None = None, settings: dict | None = None,
                 hashes: dict | None = None, scores: dict | None = None, label: str = "",
                 start: int | None = None, end: int | None = None, report: dict | None = None) -> Take:
        """A Take for `segment_id` (not yet added: push AddTake). `file` is absolute inside the cache
        folder or relative to it; range defaults to the segment's, settings to its effective settings."""
        s = self.segment(segment_id)
        cache = self._require_cache()
        file = Path(file)
        if file.is_absolute():
            try:
                file = Path(os.path.abspath(file)).relative_to(cache)
            except ValueError:
                raise EditError(f"take file {file} is not inside the project's cache folder {cache}") from None
        if ".." in file.parts or not file.parts:
            raise EditError(f"take file {file} must lie inside the project's cache folder")
        own = [t for t in self.takes.values() if t.segment_id == segment_id]  # oldest first
        # one more than any before it, so no two takes of a segment share a number (one removed, say)
        number = 1 + max([len(own), *(take_number(t.label) or 0 for t in own)])
        settings = self.effective_settings(segment_id) if settings is None else settings
        settings = _jsonish(settings, "settings")
        created = _now()
        # the name tells takes compared A/B apart: its mouth, what changed since the last one, when
        label = label or take_name(number, settings, own[-1].settings if own else None, created)
        return Take(take_id or self.new_take_id(), segment_id, s.start if start is None else start,
                    s.end if end is None else end, file.as_posix(), settings, _jsonish(hashes or {}, "hashes"),
                    _jsonish(scores or {}, "scores"), created, label, _jsonish(report or {}, "report"))

    def _referenced_paths(self) -> set[str]:
        """Every file the project or its undo history can point at: garbage collection keeps these."""
        takes = list(self.takes.values())
        for command in self.history.commands:
            takes.extend(command.referenced_takes())
        keep = {_key(self.cache_dir / t.file) for t in takes} if self.cache_dir else set()
        keep |= {_key(m.path) for m in self.media.values()}
        keep |= {_key(m.path) for m in self.adapted_models}

        def paths_in(value):
            if isinstance(value, Path):
                keep.add(_key(value))
            elif isinstance(value, dict):
                for v in value.values():
                    paths_in(v)
        paths_in(self.settings)
        for s in self.segments:
            paths_in(s.settings)
        for t in takes:
            paths_in(t.settings)
        return keep

    def garbage_collect(self) -> list[Path]:
        """Delete files in the cache folder that no take references (current takes and takes the undo
        history could bring back). Call it on explicit request only; returns the removed files."""
        cache = self.cache_dir
        if cache is None or not cache.is_dir():
            return []
        keep, removed = self._referenced_paths(), []
        for root, dirs, files in os.walk(cache):
            dirs[:] = [d for d in dirs if _key(Path(root, d)) not in keep]  # a referenced folder is kept whole
            for name in files:
                p = Path(root, name)
                # skip files being written right now (core.atomic's temp names) and referenced ones
                if _key(p) in keep or (name.startswith(".") and name.endswith(".tmp")):
                    continue
                p.unlink()
                removed.append(p)
        for root, dirs, files in sorted(os.walk(cache), key=lambda w: -len(w[0])):
            if Path(root) != cache and not os.listdir(root):
                os.rmdir(root)
        return removed

    # -- export history (not undoable: it records something that happened)

    def record_export(self, path, preset: str = "", info: dict | None = None) -> ExportRecord:
        record = ExportRecord(Path(os.path.abspath(path)), _now(), preset,
                              {s.id: s.take_id for s in self.segments if s.take_id}, _jsonish(info or {}, "info"))
        self.exports.append(record)
        self._dirty = True
        self._bump()
        return record

    # -- missing media

    def missing_media(self) -> list[str]:
        return [kind for kind in MEDIA_KINDS if kind in self.media and self.media[kind].missing]

    def missing_adapted_models(self) -> list[AdaptedModel]:
        """Recorded adapted models whose file is not there (moved or deleted): relink with RelinkAdaptedModel."""
        return [m for m in self.adapted_models if m.missing]

    def find_moved(self, kind: str, folders=(), max_depth: int = 4) -> Path | None:
        """Look for a moved media file by name and size (and fingerprint, when known) in the project's
        folder and `folders`, `max_depth` levels down; None when not found."""
        if kind not in self.media:
            raise EditError(f"the project has no {kind}")
        ref = self.media[kind]
        roots = ([self.folder] if self.folder else []) + [Path(f) for f in folders]
        for root in roots:
            for candidate in _files_named(root, ref.path.name, max_depth):
                if _same_content(candidate, ref.facts):
                    return candidate
        return None

    def locate_missing(self, folders=()) -> dict[str, Path]:
        """find_moved for every missing medium: {kind: found path}; relink them with `relink`."""
        found = {kind: self.find_moved(kind, folders) for kind in self.missing_media()}
        return {k: p for k, p in found.items() if p is not None}

    def relink(self, kind: str, path, facts: MediaFacts | None = None) -> RelinkMedia:
        return self.execute(RelinkMedia(self, kind, path, facts))

    # -- save, load, autosave

    def to_dict(self, folder=None) -> dict:
        """The file's content, paths made relative to `folder` (default: the project's folder)."""
        return fileformat.encode(self, Path(folder) if folder is not None else self.folder)

    def _write(self, target: Path):
        fileformat.write(target, self.to_dict(target.parent))

    def _saved(self):
        self.history.set_clean()
        self._dirty = False
        self._autosaved = self._revision
        self.autosave_path.unlink(missing_ok=True)

    def save(self):
        """Write the project file atomically; a crash mid-write leaves the previous file whole."""
        if self.path is None:
            raise ProjectError(None, "the project has no file yet: use save_as")
        self._write(self.path)
        self._saved()

    def save_as(self, path):
        """Save under a new name: media paths are made relative to the new folder, and the cached
        takes are copied (hard-linked where possible) into the new cache folder. The old file stays."""
        path = Path(os.path.abspath(path))
        if self.path is not None and _key(path) == _key(self.path):
            return self.save()
        old_cache, old_autosave = self.cache_dir, self.autosave_path
        new_cache = cache_dir_for(path)
        if old_cache is not None and old_cache.is_dir():
            takes = list(self.takes.values()) + [t for c in self.history.commands for t in c.referenced_takes()]
            try:
                for file in sorted({t.file for t in takes}):
                    _link_or_copy(old_cache / file, new_cache / file)
            except OSError as e:
                raise ProjectError(new_cache, f"cannot save the takes: {e.strerror or e}") from e
        self._write(path)
        self.path = path
        self._saved()
        if old_autosave is not None:  # its changes are in the new file now
            old_autosave.unlink(missing_ok=True)

    def autosave(self) -> Path | None:
        """Write `<name>.lipsmith.autosave` if there are changes not yet autosaved; returns it, else None.
        Back at the saved state, a leftover autosave is removed (it no longer holds anything)."""
        target = self.autosave_path
        if target is None:
            return None
        if not self.modified:
            target.unlink(missing_ok=True)
            return None
        if self._revision == self._autosaved and target.exists():
            return None
        self._write(target)
        self._autosaved = self._revision
        return target

    @classmethod
    def load(cls, path, *, as_path=None) -> "Project":
        """Read a project. Never writes to the file. Raises ProjectError naming the file and problem.
        `as_path`: read `path` (an autosave) as if it were the project at `as_path`."""
        path = Path(os.path.abspath(path))
        data = fileformat.read(path)
        target = Path(os.path.abspath(as_path)) if as_path is not None else path
        try:
            return cls(**fileformat.decode(data, target))
        except (fileformat.Malformed, EditError) as e:
            raise ProjectError(path, f"damaged project: {e}") from None

    @classmethod
    def recover(cls, path) -> "Project":
        """Open the autosave of the project at `path` (see recovery_candidate), marked modified.
        The autosave stays until the next successful save."""
        project = cls.load(autosave_path_for(path), as_path=path)
        project._dirty = True
        project._bump()
        return project


def _link_or_copy(src: Path, dst: Path):
    """Put `src` at `dst` (a hard link where the file system allows), replacing what is there:
    saving over another project takes its cache folder over too."""
    if not src.exists() or (dst.exists() and os.path.samefile(src, dst)):
        return
    if dst.is_dir():
        shutil.rmtree(dst)
    else:
        dst.unlink(missing_ok=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _files_named(root: Path, name: str, max_depth: int):
    root = Path(root)
    if not root.is_dir():
        return
    for dirpath, dirs, files in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.endswith(SUFFIX + CACHE_SUFFIX)
                         and depth < max_depth)
        if name in files:
            yield Path(dirpath, name)


def _same_content(path: Path, facts: MediaFacts) -> bool:
    try:
        if facts.size is not None and path.stat().st_size != facts.size:
            return False
        if facts.fingerprint:
            from core.faces.cache import file_fingerprint

            return file_fingerprint(path) == facts.fingerprint
    except (OSError, LipsmithError):
        return False
    return True
