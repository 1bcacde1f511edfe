"""PyAV helpers: browser-playable MP4 out, any recorded format in, clear errors for bad files."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest

from model.media import MediaError, decode_audio, decode_video, probe, write_mp4


def tone(seconds: float, sample_rate: int, hz: float = 440.0) -> np.ndarray:
    return (0.4 * np.sin(2 * np.pi * hz * np.arange(int(seconds * sample_rate)) / sample_rate)).astype(np.float32)


def dominant_hz(signal: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / sample_rate)[spectrum.argmax()])


def write_audio(path, container: str, codec: str, signal: np.ndarray, sample_rate: int, layout: str = "mono"):
    """Encode a test recording the way a browser or phone would deliver it."""
    channels = 2 if layout == "stereo" else 1
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate)
        stream.layout = layout
        planar = np.repeat(signal[None, :], channels, axis=0)  # (C, S)
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=sample_rate)
        for start in range(0, planar.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + frame_size]), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        out.mux(stream.encode(None))


def gradient_frames(count: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frames whose brightness encodes their index: frame i is flat grey 10 + 5 i."""
    levels = (10 + 5 * np.arange(count)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).copy()


def test_mp4_is_h264_aac_with_the_index_first(tmp_path):
    path = tmp_path / "out.mp4"
    write_mp4(path, gradient_frames(24), fps=24, audio=tone(1.0, 24_000), sample_rate=24_000)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert audio.codec_context.name == "aac"
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "faststart: the index must precede the media data"
    info = probe(path)
    assert info.format.startswith("mov,mp4")
    assert (info.fps, info.width, info.height, info.sample_rate, info.channels) == (24.0, 64, 48, 24_000, 1)
    assert info.duration == pytest.approx(1.0, abs=0.05)


def test_video_only_mp4_has_no_audio(tmp_path):
    path = tmp_path / "silent.mp4"
    write_mp4(path, gradient_frames(12), fps=12)
    info = probe(path)
    assert info.has_video and not info.has_audio and info.sample_rate is None
    with pytest.raises(MediaError, match="no audio stream"):
        decode_audio(path, 16_000)


def test_decode_video_resamples_by_timestamp(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_mp4(path, gradient_frames(48), fps=24)
    same = decode_video(path, fps=24, width=64, height=48)
    assert same.shape == (48, 48, 64, 3)
    half = decode_video(path, fps=12, width=32, height=24)
    assert half.shape == (24, 24, 32, 3)
    # Output frame k at 12 fps shows source frame 2k: brightness 10 + 10 k.
    assert np.allclose(half.mean(axis=(1, 2, 3)), 10 + 10 * np.arange(24), atol=3)


@pytest.mark.parametrize(
    "suffix, container, codec, rate",
    [("webm", "webm", "libopus", 48_000), ("ogg", "ogg", "libopus", 48_000), ("m4a", "mp4", "aac", 44_100),
     ("wav", "wav", "pcm_s16le", 22_050)],
)
def test_decode_audio_reads_what_browsers_and_phones_record(tmp_path, suffix, container, codec, rate):
    path = tmp_path / f"voice.{suffix}"
    write_audio(path, container, codec, tone(1.5, rate), rate, layout="stereo")
    decoded = decode_audio(path, 16_000)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert len(decoded) / 16_000 == pytest.approx(1.5, abs=0.06)
    assert dominant_hz(decoded, 16_000) == pytest.approx(440, abs=5)
    # Both channels carried the tone: the mono mix keeps its level (0.4 peak).
    assert 0.3 < np.abs(decoded[2000:-2000]).max() < 0.5


def test_stereo_wav_mixes_channels_down(tmp_path):
    path = tmp_path / "stereo.wav"
    left = (tone(1.0, 16_000) * 32767).astype(np.int16)
    interleaved = np.stack([left, np.zeros_like(left)], axis=1)  # (S, 2): only the left channel sounds
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(16_000)
        handle.writeframes(interleaved.tobytes())
    decoded = decode_audio(path, 16_000)
    assert len(decoded) == 16_000
    assert np.abs(decoded).max() == pytest.approx(0.2, abs=0.02)  # half of the left channel's 0.4


def test_broken_files_raise_media_errors(tmp_path):
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(4000))
    good = tmp_path / "good.mp4"
    write_mp4(good, gradient_frames(48, 320, 240), fps=24, audio=tone(2.0, 24_000), sample_rate=24_000)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])

    silent = tmp_path / "no_samples.wav"
    with wave.open(str(silent), "wb") as handle:  # a valid header announcing zero samples
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16_000)

    with pytest.raises(MediaError, match="empty"):
        probe(empty)
    with pytest.raises(MediaError, match="no samples"):
        decode_audio(silent, 16_000)
    with pytest.raises(MediaError, match="not found"):
        decode_audio(tmp_path / "missing.wav", 16_000)
    with pytest.raises(MediaError, match="cannot open"):
        decode_audio(garbage, 16_000)
    with pytest.raises(MediaError, match="truncated"):
        decode_audio(truncated, 16_000)
    with pytest.raises(MediaError, match="truncated"):
        decode_video(truncated, 24, 320, 240)
    assert issubclass(MediaError, ValueError)


def test_bad_frames_for_mp4_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 array \(T, H, W, 3\)"):
        write_mp4(tmp_path / "x.mp4", np.zeros((4, 48, 64, 3), np.float32), fps=24)
    with pytest.raises(ValueError, match="even width and height, got 63x48"):
        write_mp4(tmp_path / "x.mp4", np.zeros((4, 48, 63, 3), np.uint8), fps=24)
    with pytest.raises(ValueError, match="audio must be non-empty mono"):
        write_mp4(tmp_path / "x.mp4", gradient_frames(4), fps=24, audio=np.zeros((2, 100), np.float32), sample_rate=24_000)


def test_browser_style_webm_with_jittery_timestamps(tmp_path):
    """VP8 + Opus in WebM with millisecond timestamps that wobble, as MediaRecorder writes them."""
    path = tmp_path / "recording.webm"
    source = gradient_frames(30, 64, 48)  # 30 frames over ~1.25 s
    stamps_ms = np.round(np.arange(30) * 1000 / 24 + np.random.default_rng(1).uniform(-8, 8, 30)).astype(int)
    stamps_ms[0] = 0
    with av.open(str(path), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=1000)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = Fraction(1, 1000)
        audio = out.add_stream("libopus", rate=48_000)
        audio.layout = "mono"
        for image, stamp in zip(source, stamps_ms):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(stamp), Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        signal = tone(1.25, 48_000)
        for start in range(0, len(signal), 960):
            frame = av.AudioFrame.from_ndarray(signal[None, start:start + 960].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48_000, start, Fraction(1, 48_000)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))

    info = probe(path)
    assert info.format.startswith("matroska,webm") and info.has_audio and info.has_video
    frames = decode_video(path, fps=24, width=32, height=24)
    assert len(frames) == 30
    # Jitter of +-8 ms is under half a frame: each output frame still shows its own source frame.
    assert np.allclose(frames.mean(axis=(1, 2, 3)), 10 + 5 * np.arange(30), atol=3)
    sound = decode_audio(path, 24_000)
    assert len(sound) / 24_000 == pytest.approx(1.25, abs=0.06)
    assert dominant_hz(sound, 24_000) == pytest.approx(440, abs=5)
