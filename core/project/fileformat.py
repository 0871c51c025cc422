"""The `.lipsmith` file: JSON in, JSON out, schema migrations, atomic writes.

Paths are written as links {"relative": …, "absolute": …}: relative to the project's folder
(tried first when reading, so moving a whole folder keeps working) and absolute (the fallback
when only the project file moved). Reading never writes; a malformed file raises ProjectError
naming the file and the field.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Callable

from core.atomic import atomic_write
from core.sync_scale import EXPERT_LSE_C_LIMIT

from .model import (DEFAULT_MARKER_COLOUR, DEFAULT_SETTINGS, DEFAULT_THRESHOLD, MEDIA_KINDS, AdaptedModel, EditError,
                    ExportRecord, MediaFacts, MediaRef, ProjectError, Segment, Take, _is_int, _is_number, make_marker,
                    normalise_setting, scorer_record)

SCHEMA_VERSION = 8


def _v1_to_v2(data: dict) -> dict:
    """Schema 2: segments have a name, takes a render report (the frames without a face)."""
    for s in data.get("segments") or []:
        if isinstance(s, dict):
            s.setdefault("name", "")
    for t in data.get("takes") or []:
        if isinstance(t, dict):
            t.setdefault("report", {})
    return data


def _v2_to_v3(data: dict) -> dict:
    """Schema 3: the speaker-adapted models made for the project."""
    data.setdefault("adapted_models", [])
    return data


def _v3_to_v4(data: dict) -> dict:
    """Schema 4: the threshold is on the LSE-C scale of the expert the editor scores with. Files
    saved before could hold one set on the official SyncNet's scale (the old default 5.0, on a 0-10
    lane): a value no expert score can reach, which made every segment weak. It becomes the default."""
    threshold = data.get("threshold")
    if _is_number(threshold) and threshold > EXPERT_LSE_C_LIMIT:
        data["threshold"] = DEFAULT_THRESHOLD
    return data


def _v4_to_v5(data: dict) -> dict:
    """Schema 5: the mouth a render pastes (the project's choice, and which one made each take). Until
    then every render pasted the generated mouth."""
    settings = data.get("settings")
    if isinstance(settings, dict):
        settings.setdefault("mouth", "generated")
    for t in data.get("takes") or []:
        if isinstance(t, dict) and isinstance(t.get("settings"), dict):
            t["settings"].setdefault("mouth", "generated")
    return data


def _v5_to_v6(data: dict) -> dict:
    """Schema 6: markers (frame, name, colour, note). A file from before has none."""
    data.setdefault("markers", [])
    return data


def _v6_to_v7(data: dict) -> dict:
    """Schema 7: a segment's slip (frames its own dub is moved by). A file from before slipped none."""
    for s in data.get("segments") or []:
        if isinstance(s, dict):
            s.setdefault("slip", 0)
    return data


def _v7_to_v8(data: dict) -> dict:
    """Schema 8: the expert the scores are on (name and SHA-256). A file from before names its scorer
    only on takes, never its version, and the bundled expert changed: its scores are on an unknown
    scale (sha256 null), so the next scoring pass replaces them all (commands.SetScores)."""
    names = {t["scores"]["scorer"] for t in data.get("takes") or []
             if isinstance(t, dict) and isinstance(t.get("scores"), dict) and isinstance(t["scores"].get("scorer"), str)}
    scored = names or any(isinstance(s, dict) and s.get("lse_c") is not None for s in data.get("segments") or [])
    data["scorer"] = {"name": names.pop() if len(names) == 1 else "unknown", "sha256": None} if scored else None
    return data


# MIGRATIONS[n] turns a schema-n dict into a schema-(n+1) dict (pure: no file access).
# Add one with every SCHEMA_VERSION bump; loading chains them, the file itself is never rewritten.
# (A bump also keeps an older Lipsmith from opening a newer file and dropping what it cannot read.)
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5,
                                                 5: _v5_to_v6, 6: _v6_to_v7, 7: _v7_to_v8}


def migrate(data, path=None) -> dict:
    if not isinstance(data, dict):
        raise ProjectError(path, "not a Lipsmith project (the file holds no JSON object)")
    version = data.get("schema_version")
    if version is None:
        raise ProjectError(path, "not a Lipsmith project (no schema_version)")
    if not _is_int(version) or version < 1:
        raise ProjectError(path, f"unknown schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise ProjectError(path, f"saved by a newer Lipsmith (schema version {version}; this one reads up to "
                                 f"{SCHEMA_VERSION}): update Lipsmith to open it")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ProjectError(path, f"no migration from schema version {version}")
        data = MIGRATIONS[version](copy.deepcopy(data))
        version += 1
        data["schema_version"] = version
    return data


def _link_out(path: Path, folder: Path | None, linked: Path | None = None) -> dict:
    relative = None
    if folder is not None:
        try:
            relative = Path(os.path.relpath(linked or path, folder)).as_posix()
        except ValueError:  # another drive (Windows)
            pass
    return {"relative": relative, "absolute": str(path)}


def _link_in(entry: dict, folder: Path, where: str) -> tuple[Path, Path | None]:
    """(path, linked): the relative location if it exists, else the absolute one; when neither
    exists, the absolute one with the relative location kept aside."""
    rel, absolute = _get(entry, "relative", "str?", where, None), _get(entry, "absolute", "str?", where, None)
    rel = Path(os.path.normpath(folder / rel)) if rel else None
    if rel is None and not absolute:
        raise Malformed(f"{where}: no path")
    if rel is not None and rel.exists():
        return rel, None
    if absolute and Path(absolute).exists():
        return Path(absolute), None
    return (Path(absolute), rel) if absolute else (rel, None)


def _is_link(v) -> bool:
    return isinstance(v, dict) and set(v) == {"relative", "absolute"}


def _values_out(value, folder):
    if isinstance(value, Path):
        return _link_out(value, folder)
    if isinstance(value, dict):
        return {k: _values_out(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_values_out(v, folder) for v in value]
    return value


def _values_in(value, folder, where):
    if _is_link(value):
        return _link_in(value, folder, where)[0]
    if isinstance(value, dict):
        return {k: _values_in(v, folder, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_values_in(v, folder, where) for v in value]
    return value


def encode(p, folder: Path | None) -> dict:
    """The file content of project `p`, paths made relative to `folder`."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": "lipsmith",
        "created": p.created,
        "media": {kind: {**_link_out(ref.path, folder, ref.linked), "facts": asdict(ref.facts)}
                  for kind, ref in p.media.items()},
        "dub_offset_frames": p.dub_offset,
        "threshold": p.threshold,
        "scorer": p.scorer,
        "settings": _values_out(p.settings, folder),
        "segments": [{**asdict(replace(s, settings={})), "settings": _values_out(s.settings, folder)}
                     for s in p.segments],
        "takes": [{**asdict(replace(t, settings={})), "settings": _values_out(t.settings, folder)}
                  for t in p.takes.values()],
        "exports": [{"path": _link_out(e.path, folder), "time": e.time, "preset": e.preset,
                     "choices": e.choices, "info": _values_out(e.info, folder)} for e in p.exports],
        "adapted_models": [{"path": _link_out(m.path, folder), "label": m.label, "created": m.created,
                            "info": _values_out(m.info, folder)} for m in p.adapted_models],
        "markers": [asdict(m) for m in p.markers],
        "next_ids": dict(p._next),
    }


class Malformed(Exception):
    """A malformed field (becomes a ProjectError naming the file)."""


_REQUIRED = object()
_KINDS = {"int": _is_int, "num": lambda v: _is_number(v), "str": lambda v: isinstance(v, str),
          "bool": lambda v: isinstance(v, bool), "dict": lambda v: isinstance(v, dict),
          "list": lambda v: isinstance(v, list)}


def _get(d, key: str, kind: str, where: str, default=_REQUIRED):
    if not isinstance(d, dict):
        raise Malformed(f"{where}: expected an object")
    if key not in d:
        if default is _REQUIRED:
            raise Malformed(f"{where}.{key}: missing")
        return default
    value, optional = d[key], kind.endswith("?")
    if value is None and optional:
        return None
    if not _KINDS[kind.rstrip("?")](value):
        raise Malformed(f"{where}.{key}: expected {kind.rstrip('?')}, found {json.dumps(value)[:40]}")
    return float(value) if kind.startswith("num") else value


def _facts_in(d: dict, where: str) -> MediaFacts:
    kinds = {"size": "int?", "fingerprint": "str?", "duration": "num?", "fps": "num?", "frame_count": "int?",
             "width": "int?", "height": "int?", "is_image": "bool", "start_timecode": "str?"}
    return MediaFacts(**{f.name: _get(d, f.name, kinds[f.name], where, f.default) for f in fields(MediaFacts)})


def decode(data: dict, path: Path) -> dict:
    """Project(**decode(data, path)): the arguments for the project read from `data` as if saved at `path`."""
    folder = path.parent
    media = {}
    for kind, entry in _get(data, "media", "dict", "file").items():
        if kind not in MEDIA_KINDS:
            raise Malformed(f"media.{kind}: unknown kind of media")
        where = f"media.{kind}"
        found, linked = _link_in(entry, folder, where)
        media[kind] = MediaRef(found, _facts_in(_get(entry, "facts", "dict", where, {}), f"{where}.facts"), linked)
    if "video" not in media:
        raise Malformed("media.video: missing")
    segments = []
    for i, d in enumerate(_get(data, "segments", "list", "file", [])):
        w = f"segments[{i}]"
        segments.append(Segment(
            _get(d, "id", "str", w), _get(d, "start", "int", w), _get(d, "end", "int", w),
            _get(d, "kind", "str", w, "speech"), _get(d, "lse_c", "num?", w, None), _get(d, "lse_d", "num?", w, None),
            {k: normalise_setting(k, v, folder)
             for k, v in _values_in(_get(d, "settings", "dict", w, {}), folder, f"{w}.settings").items()},
            _get(d, "take_id", "str?", w, None), _get(d, "name", "str", w, ""), _get(d, "slip", "int", w, 0)))
    takes = []
    for i, d in enumerate(_get(data, "takes", "list", "file", [])):
        w = f"takes[{i}]"
        takes.append(Take(
            _get(d, "id", "str", w), _get(d, "segment_id", "str", w), _get(d, "start", "int", w),
            _get(d, "end", "int", w), _get(d, "file", "str", w),
            _values_in(_get(d, "settings", "dict", w, {}), folder, f"{w}.settings"),
            _get(d, "hashes", "dict", w, {}), _get(d, "scores", "dict", w, {}), _get(d, "created", "str", w, ""),
            _get(d, "label", "str", w, ""), _get(d, "report", "dict", w, {})))
    exports = []
    for i, d in enumerate(_get(data, "exports", "list", "file", [])):
        w = f"exports[{i}]"
        exports.append(ExportRecord(
            _link_in(_get(d, "path", "dict", w), folder, f"{w}.path")[0], _get(d, "time", "str", w, ""),
            _get(d, "preset", "str", w, ""), _get(d, "choices", "dict", w, {}),
            _values_in(_get(d, "info", "dict", w, {}), folder, f"{w}.info")))
    adapted = []
    for i, d in enumerate(_get(data, "adapted_models", "list", "file", [])):
        w = f"adapted_models[{i}]"
        adapted.append(AdaptedModel(
            _link_in(_get(d, "path", "dict", w), folder, f"{w}.path")[0], _get(d, "label", "str", w, ""),
            _get(d, "created", "str", w, ""), _values_in(_get(d, "info", "dict", w, {}), folder, f"{w}.info")))
    markers = []
    for i, d in enumerate(_get(data, "markers", "list", "file", [])):
        w = f"markers[{i}]"
        try:
            markers.append(make_marker(_get(d, "frame", "int", w), _get(d, "name", "str", w, ""),
                                       _get(d, "colour", "str", w, DEFAULT_MARKER_COLOUR),
                                       _get(d, "note", "str", w, "")))
        except EditError as e:
            raise Malformed(f"{w}: {e}") from None
    try:
        scorer = scorer_record(_get(data, "scorer", "dict?", "file", None))
    except EditError as e:
        raise Malformed(str(e)) from None
    settings = _values_in(_get(data, "settings", "dict", "file", {}), folder, "settings")
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise Malformed(f"settings: unknown {', '.join(sorted(unknown))}")
    return dict(
        video=media["video"], path=path, dub=media.get("dub"),
        dub_offset=_get(data, "dub_offset_frames", "int", "file", 0), settings=settings,
        threshold=_get(data, "threshold", "num", "file", DEFAULT_THRESHOLD), scorer=scorer, segments=segments,
        takes=takes,
        exports=exports, adapted_models=adapted, markers=markers, created=_get(data, "created", "str", "file", None),
        next_ids={k: v for k, v in _get(data, "next_ids", "dict", "file", {}).items() if _is_int(v)})


def read(path: Path) -> dict:
    """The JSON object in `path`, migrated to the current schema (in memory only)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProjectError(path, "file not found") from None
    except OSError as e:
        raise ProjectError(path, f"cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProjectError(path, "not a Lipsmith project (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise ProjectError(path, f"damaged or not a Lipsmith project: invalid JSON at line {e.lineno}, "
                                 f"column {e.colno} ({e.msg})") from None
    return migrate(data, path)


def write(target: Path, data: dict):
    """Write atomically (temp file, fsync, rename): a crash leaves the old file or the new one."""
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        atomic_write(target, lambda tmp: _write_text(tmp, text))
    except OSError as e:
        raise ProjectError(target, f"cannot save: {e.strerror or e}") from e


def _write_text(tmp, text: str):
    """The one place a project's bytes are written (tests break it to simulate a crash)."""
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
