import numpy as np
import pytest
import soundfile as sf

from core.audio import frame_times, is_silent, load_audio, mel_filterbank, mel_index, mel_window, mel_windows, \
    melspectrogram
from core.errors import MediaError
from tests.conftest import ffmpeg, speech_like


def reference_mel(audio):
    """The reference recipe written with librosa/scipy, as the official Wav2Lip preprocesses audio."""
    librosa = pytest.importorskip("librosa")
    from scipy.signal import lfilter

    emphasised = lfilter([1, -0.97], [1], audio)
    spec = np.abs(librosa.stft(y=emphasised, n_fft=800, hop_length=200, win_length=800, pad_mode="reflect"))
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
    return np.clip(8 * ((db + 100) / 100) - 4, -4, 4)


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank()
    theirs = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    assert ours.shape == (80, 401)
    assert np.abs(ours - theirs).max() < 1e-5


def test_mel_matches_reference_on_synthetic():
    audio = speech_like(1.3)
    mel = melspectrogram(audio)
    assert mel.shape == (80, 1 + audio.size // 200)
    assert mel.dtype == np.float32
    assert np.abs(mel - reference_mel(audio)).max() <= 1e-4


@pytest.mark.data
def test_mel_matches_reference_on_real_speech(data_dir):
    audio = load_audio(data_dir / "pcavs" / "00002.mp4")
    assert np.abs(melspectrogram(audio) - reference_mel(audio)).max() <= 1e-4


def test_load_resamples_and_downmixes(tone_wav):
    audio = load_audio(tone_wav)
    assert audio.dtype == np.float32
    assert abs(audio.size - 24000) <= 32  # 1.5 s at 16 kHz
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / audio.size - 440) < 5


@pytest.mark.parametrize("ext,codec", [("flac", "flac"), ("mp3", "libmp3lame"), ("m4a", "aac")])
def test_load_compressed_formats(tmp_path, tone_wav, ext, codec):
    out = tmp_path / f"tone.{ext}"
    ffmpeg("-i", tone_wav, "-c:a", codec, out)
    audio = load_audio(out)
    assert abs(audio.size / 16000 - 1.5) < 0.1
    assert abs(audio.std() - load_audio(tone_wav).std()) < 0.01  # the lossy codec keeps the level


def test_load_audio_track_of_a_video(tmp_path, tone_wav):
    video = tmp_path / "clip with space é.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32:d=1.5", "-i", tone_wav, "-shortest", "-c:a", "aac", video)
    assert abs(load_audio(video).size / 16000 - 1.5) < 0.1


def test_nan_and_inf_samples_become_zero(tmp_path):
    audio = speech_like(0.5)
    audio[100:200] = np.nan
    audio[300] = np.inf
    path = tmp_path / "bad.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    loaded = load_audio(path)
    assert np.isfinite(loaded).all()
    assert np.isfinite(melspectrogram(loaded)).all()


def test_errors_name_the_file(tmp_path):
    with pytest.raises(MediaError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(MediaError, match="notes.wav: cannot decode audio"):
        load_audio(text)
    silent_video = tmp_path / "mute.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=32x32:d=0.5", silent_video)
    with pytest.raises(MediaError, match="mute.mp4: has no audio stream"):
        load_audio(silent_video)


def test_a_folder_is_not_an_audio_file(tmp_path):
    folder = tmp_path / "dub.wav"  # a folder named like audio: the name does not decide
    folder.mkdir()
    with pytest.raises(MediaError, match="dub.wav: is a folder, not an audio file"):
        load_audio(folder)


def test_silence_detection():
    assert is_silent(np.zeros(1600, np.float32))
    assert is_silent(np.full(1600, 1e-4, np.float32))
    assert not is_silent(speech_like(0.2))


def test_silence_gives_floor_mel():
    mel = melspectrogram(np.zeros(16000, np.float32))
    assert np.allclose(mel, -4.0)


def test_mel_windows_follow_the_reference_mapping():
    mel = np.arange(80 * 100, dtype=np.float32).reshape(80, 100)
    # frame 3 at 25 fps starts at int(80 * 3 / 25) = 9
    assert mel_index(3 / 25) == 9
    assert np.array_equal(mel_window(mel, 3 / 25), mel[:, 9:25])
    # at 30 fps frame 7 starts at int(80 * 7 / 30) = 18
    assert mel_index(7 / 30) == 18
    # the last windows clamp to the end
    assert np.array_equal(mel_window(mel, 10.0), mel[:, 84:100])
    stack = mel_windows(mel, frame_times(4, 25))
    assert stack.shape == (4, 80, 16)
    assert np.array_equal(stack[1], mel[:, 3:19])


def test_too_short_for_a_window():
    with pytest.raises(ValueError, match="too short"):
        mel_window(np.zeros((80, 10), np.float32), 0.0)
