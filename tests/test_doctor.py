"""`python main.py doctor`, `--version`, and files on the command line."""
import json
import subprocess
import sys

from core import __version__, doctor, weights
from tests.conftest import REPO
import main


def by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_reports_the_installation(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "cache"))
    assert main.main(["doctor", "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["lipsmith"]["detail"].startswith(__version__)
    assert checks["ffmpeg"]["status"] == "ok" and "ffmpeg version" in checks["ffmpeg"]["detail"]
    assert checks["face detector"]["status"] == "ok"
    assert checks["model generator"]["status"] == "ok" and "matches the manifest" in checks["model generator"]["detail"]
    assert checks["cache"]["status"] == "ok" and str(tmp_path / "cache") in checks["cache"]["detail"]


def test_doctor_fails_on_a_tampered_model_and_an_unwritable_cache(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "g.safetensors").write_bytes(b"not the bundled file")
    (models / "manifest.json").write_text(json.dumps({"models": {"generator": {
        "file": "g.safetensors", "sha256": "0" * 64, "kind": "wav2lip", "dims": {"width": 0.5}}}}))
    monkeypatch.setattr(weights, "MODELS_DIR", models)
    monkeypatch.setattr(weights, "MANIFEST", models / "manifest.json")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LIPSMITH_CACHE", str(blocker))  # the cache folder would be inside a file
    checks = by_name(doctor.run_checks())
    assert checks["model generator"].status == "fail" and "does NOT match" in checks["model generator"].detail
    assert checks["cache"].status == "fail" and "LIPSMITH_CACHE" in checks["cache"].detail
    assert main.main(["doctor"]) == 1


def test_a_damaged_manifest_is_named_by_doctor_and_the_cli(tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    models.mkdir()
    manifest = models / "manifest.json"
    manifest.write_text('{"models": {"generator": ')  # cut off mid-write
    monkeypatch.setattr(weights, "MODELS_DIR", models)
    monkeypatch.setattr(weights, "MANIFEST", manifest)
    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "cache"))
    check = by_name(doctor.run_checks())["bundled models"]
    assert check.status == "fail" and str(manifest) in check.detail and "not valid JSON" in check.detail
    assert "crashed" not in check.detail
    capsys.readouterr()
    assert main.main(["score", str(tmp_path / "clip.mp4")]) == 1  # the expert is looked up first
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {manifest}: ") and "not valid JSON" in err[0], err


def test_doctor_names_a_lipsmith_ffmpeg_pointing_nowhere(tmp_path, monkeypatch):
    from core.ffmpeg import ffmpeg_exe

    missing = tmp_path / "no-ffmpeg"
    monkeypatch.setenv("LIPSMITH_FFMPEG", str(missing))
    ffmpeg_exe.cache_clear()
    try:
        check = doctor._ffmpeg()
    finally:
        ffmpeg_exe.cache_clear()  # later tests find the real binary again
    assert check.status == "fail" and "LIPSMITH_FFMPEG" in check.detail and str(missing) in check.detail


def test_version_answers_without_importing_torch():
    code = "import sys, main; main.main(['--version']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["lipsmith", __version__, "False"]


def test_files_on_the_command_line_open_the_editor(tmp_path, monkeypatch):
    """The desktop entry runs `lipsmith %f`: a project (or media) path opens the editor, not the parser."""
    import app.main

    opened = []
    monkeypatch.setattr(app.main, "run", lambda argv: opened.append(argv[1:]) or 0)
    project = tmp_path / "Scene 12.lipsmith"  # need not exist yet: the editor reports a missing file
    assert main.main([str(project)]) == 0
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert main.main([str(clip), "dub.wav"]) == 0
    assert opened == [[str(project)], [str(clip), "dub.wav"]]
    assert main.main(["--version"]) == 0 and len(opened) == 2  # commands still reach the parser
