"""Media files in and out, through PyAV only.

Why this exists: workers decode what an annotator recorded (webm/opus from a browser, or an
uploaded mp4/ogg/wav) into the fixed rates the model works at, and write the agent's rendered
frames plus its voice into an MP4 that every browser plays. Keeping all container and codec
handling here means the rest of `model/` only ever sees float32 waves and uint8 frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Mp4Config:
    """Encoder settings for `write_mp4`."""

    video_codec: str = "libx264"  # H.264: the one video codec every browser decodes in MP4
    pixel_format: str = "yuv420p"  # 4:2:0 is what browsers' H.264 decoders accept
    crf: int = 23  # x264's default quality; renders are flat-shaded so files stay small
    preset: str = "veryfast"  # a worker renders on CPU; speed matters more than a few bytes
    audio_codec: str = "aac"  # FFmpeg's native AAC encoder, always built into PyAV's wheels
    audio_bitrate: int = 96_000  # plenty for mono speech


MP4 = Mp4Config()


TRUNCATION_FRACTION = 0.95  # decoded/declared duration below this means the file was cut off
TRUNCATION_SLACK_S = 0.05  # ...beyond codec priming and rounding of the last frame


class MediaError(ValueError):
    """A media file that cannot be read: corrupt, empty, truncated or missing a stream."""


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` found in a file."""

    format: str  # container format name(s) as FFmpeg reports them, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float  # seconds; the longest stream
    has_audio: bool
    has_video: bool
    width: int | None
    height: int | None
    fps: float | None
    sample_rate: int | None
    channels: int | None


def _open(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"media file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"media file is empty (0 bytes): {path}")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise MediaError(f"cannot open {path} as a media file: {error}") from error


def _declared_duration(container, stream) -> float | None:
    """Seconds the file says the stream lasts, or None (browser webm often leaves it out)."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    # The container's duration is the longest stream's; it only speaks for a lone stream.
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _check_complete(path, kind: str, decoded: float, declared: float | None) -> None:
    """A file whose data ends well before its declared duration was cut off in transfer."""
    if declared is not None and decoded + TRUNCATION_SLACK_S < TRUNCATION_FRACTION * declared:
        raise MediaError(
            f"{kind} of {path} is truncated: decoded {decoded:.2f} s of the {declared:.2f} s it declares"
        )


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file's container and its first audio and video streams."""
    with _open(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        video = container.streams.video[0] if container.streams.video else None
        if audio is None and video is None:
            raise MediaError(f"{path} has neither an audio nor a video stream")
        durations = [container.duration / av.time_base] if container.duration else []
        for stream in (audio, video):
            if stream is not None and stream.duration is not None and stream.time_base:
                durations.append(float(stream.duration * stream.time_base))
        fps = None
        if video is not None:
            rate = video.average_rate or video.guessed_rate or video.base_rate
            fps = float(rate) if rate else None
        return MediaInfo(
            format=container.format.name,
            duration=max(durations) if durations else 0.0,
            has_audio=audio is not None,
            has_video=video is not None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            fps=fps,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            channels=audio.codec_context.channels if audio is not None else None,
        )


def decode_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode the first audio stream to float32 mono at `sample_rate`, shape (S,)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        # Keep the channels through resampling and average them here: FFmpeg's own downmix
        # adds channels at -3 dB each, which makes a stereo recording of one voice louder.
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler count samples instead of trusting odd pts
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(0))  # (C, n) planar -> (n,)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(0))
        except av.FFmpegError as error:
            raise MediaError(f"audio of {path} is corrupt or truncated: {error}") from error
        if not chunks:
            raise MediaError(f"audio stream of {path} decoded to no samples")
        wave = np.concatenate(chunks).astype(np.float32)
        _check_complete(path, "audio", len(wave) / sample_rate, _declared_duration(container, stream))
    return wave


def decode_video(path: str | Path, fps: float, width: int, height: int) -> np.ndarray:
    """Decode the first video stream to RGB uint8 (T, height, width, 3) at a fixed `fps`.

    Browser recordings have variable, jittery frame rates, so frames are chosen by timestamp:
    output frame i shows the source frame whose time is nearest to i / fps.
    """
    if fps <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"fps, width and height must be positive, got {fps}, {width}, {height}")
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream")
        stream = container.streams.video[0]
        times, images = [], []
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                times.append(frame.time)
                images.append(frame.to_ndarray(format="rgb24", width=width, height=height))
        except av.FFmpegError as error:
            raise MediaError(f"video of {path} is corrupt or truncated: {error}") from error
        if not images:
            raise MediaError(f"video stream of {path} decoded to no frames")
        times_arr = np.asarray(times) - times[0]
        frame_period = float(np.median(np.diff(times_arr))) if len(times_arr) > 1 else 1.0 / fps
        duration = times_arr[-1] + frame_period
        _check_complete(path, "video", duration, _declared_duration(container, stream))
    count = max(1, round(duration * fps))
    targets = np.arange(count) / fps
    midpoints = (times_arr[1:] + times_arr[:-1]) / 2  # boundaries between neighbouring frames
    index = np.searchsorted(midpoints, targets, side="right")  # nearest source frame
    return np.stack(images)[index]


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    config: Mp4Config = MP4,
) -> None:
    """Write RGB frames (T, H, W, 3) uint8 and optional mono float32 audio (S,) to an MP4.

    H.264 yuv420p + AAC with the index at the front (faststart) so a browser starts playing
    while it downloads.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"frames must be a non-empty uint8 array (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 yuv420p needs an even width and height, got {width}x{height}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"audio must be non-empty mono float32 (S,), got shape {audio.shape}")
        if sample_rate is None or sample_rate <= 0:
            raise ValueError(f"audio needs a positive sample_rate, got {sample_rate}")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream(config.video_codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, config.pixel_format
        video.options = {"crf": str(config.crf), "preset": config.preset}
        sound = None
        if audio is not None:
            sound = out.add_stream(config.audio_codec, rate=sample_rate)
            sound.layout = "mono"
            sound.bit_rate = config.audio_bitrate
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            _encode_audio(out, sound, audio, sample_rate)


def _encode_audio(out, sound, audio: np.ndarray, sample_rate: int) -> None:
    """Feed mono float samples to the AAC encoder in its fixed frame size."""
    audio = np.clip(audio, -1.0, 1.0)
    frame_size = sound.codec_context.frame_size or 1024
    resampler = av.AudioResampler(format=sound.codec_context.format.name, layout="mono", rate=sample_rate)
    for start in range(0, len(audio), frame_size):
        chunk = audio[start : start + frame_size]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")  # (1, n)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for converted in resampler.resample(frame):
            for packet in sound.encode(converted):
                out.mux(packet)
    for converted in resampler.resample(None):
        for packet in sound.encode(converted):
            out.mux(packet)
    for packet in sound.encode(None):
        out.mux(packet)

