"""The project: one `.lipsmith` JSON file, its edits as undoable commands, autosave, recent files.

No Qt in here: the editor (app/) wraps it, and it is tested without a display. Modules, in
reading order:

  model       settings and their validation; MediaFacts, MediaRef, Segment (and its verdict), Take,
              Marker, ExportRecord, AdaptedModel
  project     Project: state, lookups, save/load, relink helpers, the takes cache
  commands    every edit as a Command with do()/undo()/merge(), kept in a History; Batch: several
              commands as one undo step; SlipSegment: one line's dub moved by frames (core.slip)
  fileformat  JSON encode/decode, schema migrations, atomic writes
  recovery    autosave: `Autosaver.tick(now)`, `recovery_candidate(path)`
  recent      `RecentProjects` (File ▸ Recent)

On disk, beside `name.lipsmith`:
  name.lipsmith.autosave   unsaved changes (written by autosave, removed by a successful save)
  name.lipsmith-cache/     rendered takes, referenced by paths relative to this folder

Typical use::

    p = Project.new(video, MediaFacts.probe_video(video), path="scene.lipsmith",
                    dub_path=dub, dub_facts=MediaFacts.probe_file(dub, duration=seconds))
    p.execute(ReplaceSegments(p, [p.make_segment(0, 120), p.make_segment(120, 160, "silence")]))
    p.execute(SplitSegment(p, "s1", 60))
    p.undo()
    p.save()
"""
from .commands import (AddAdaptedModel, AddMarker, AddTake, Batch, ChooseTake, Command, EditMarker, History,
                       MergeSegments, NudgeDub, RelinkAdaptedModel, RelinkMedia, RemoveAdaptedModel, RemoveMarker,
                       RemoveTake, RenameSegment, RenameTake, ReplaceSegments, SetProjectSettings, SetScores,
                       SetSegmentSettings, SetThreshold, SlipSegment, SplitSegment, TrimSegment, choose_face,
                       trim_bounds)
from .fileformat import MIGRATIONS, SCHEMA_VERSION, migrate
from .model import (DEFAULT_MARKER_COLOUR, DEFAULT_SETTINGS, DEFAULT_THRESHOLD, MARKER_COLOURS, MEDIA_KINDS,
                    MOUTH_NAMES, SEGMENT_KEYS, SEGMENT_KINDS, SUFFIX, AdaptedModel, EditError, ExportRecord, Marker,
                    MediaFacts, MediaRef, ProjectError, Segment, Take, autosave_path_for, cache_dir_for, check_segments,
                    frame_curve, make_marker, normalise_setting, recorded_slip, same_scale, scorer_record, segment_name,
                    verdict)
from .project import Project
from .recent import RecentProjects, config_dir
from .recovery import Autosaver, discard_autosave, recovery_candidate

__all__ = [
    "AdaptedModel", "AddAdaptedModel", "AddMarker", "AddTake", "Autosaver", "Batch", "ChooseTake", "Command",
    "DEFAULT_MARKER_COLOUR", "DEFAULT_SETTINGS", "DEFAULT_THRESHOLD", "EditError", "EditMarker", "ExportRecord",
    "History", "MARKER_COLOURS", "MEDIA_KINDS", "MIGRATIONS", "MOUTH_NAMES", "Marker", "MediaFacts", "MediaRef",
    "MergeSegments", "NudgeDub", "Project", "ProjectError", "RecentProjects", "RelinkAdaptedModel", "RelinkMedia",
    "RemoveAdaptedModel", "RemoveMarker", "RemoveTake", "RenameSegment", "RenameTake", "ReplaceSegments",
    "SCHEMA_VERSION", "SEGMENT_KEYS", "SEGMENT_KINDS", "SUFFIX", "Segment", "SetProjectSettings", "SetScores",
    "SetSegmentSettings", "SetThreshold", "SlipSegment", "SplitSegment", "Take", "TrimSegment", "autosave_path_for",
    "cache_dir_for", "check_segments", "choose_face", "config_dir", "discard_autosave", "frame_curve", "make_marker",
    "migrate", "normalise_setting", "recorded_slip", "recovery_candidate", "same_scale", "scorer_record",
    "segment_name", "trim_bounds", "verdict",
]
