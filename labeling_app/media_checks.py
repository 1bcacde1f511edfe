"""Server-side checks of an annotator's uploaded turn, before anything is stored.

The order is cheapest first, and each step trusts nothing the client said:

1. size: the request's Content-Length (in the view) and the bytes actually received (an upload
   handler that stops counting chunks past the limit), so a huge body is never read in full;
2. content sniffing of the first bytes (magic numbers), never the file name or the client's
   content type: WebM/Matroska ``1A45DFA3``, MP4/QuickTime ``....ftyp``, Ogg ``OggS``,
   WAV ``RIFF....WAVE``;
3. a full probe *and decode* with PyAV under the sniffed container format only (a polyglot file
   cannot be reinterpreted as something else): at least one audio or video stream, every packet
   decodes, and FFmpeg reports no error (a truncated WebM decodes "fine" up to where it stops;
   only FFmpeg's "File ended prematurely" error gives it away);
4. duration, measured from the decoded frames (browser recordings carry no duration header):
   more than ``MIN_SECONDS`` and at most ``HER_UPLOAD_MAX_SECONDS``.

Limits are read from Django settings at call time (tests override them) with these defaults:
``HER_UPLOAD_MAX_BYTES`` (50 MB, decimal: 50,000,000 bytes) and ``HER_UPLOAD_MAX_SECONDS``
(60 s). Every place that states the size limit writes it with ``size_text(max_bytes())``.

A turn is sent in one request with its length (the page shows its progress). A body without
Content-Length (``Transfer-Encoding: chunked``) is refused with 411 and the reason: Django
reads no body it was not told the length of, and the limit is checked on that length first.
Resumable uploads are not offered: a turn is at most a minute (10-30 MB from a browser),
gunicorn's threaded workers wait for a slow body without a timeout (50 MB at 1 Mbit/s is about
seven minutes), and an interrupted upload says so and stores nothing, so it is simply sent again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import av.logging
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

MIN_SECONDS = 0.3  # shorter than a syllable: an accidental click on Record/Stop
# Decoding happens in the request thread, so frame size is bounded too: a 4K clip would take
# tens of seconds to decode on a small web machine. 1920x1080 covers every webcam we target.
MAX_FRAME_PIXELS = 1920 * 1080
# Audio and video may end a few frames apart; more missing than this means a cut-off file.
TRUNCATION_TOLERANCE_SECONDS = 0.5
# Multipart framing and the small text fields around the file; Content-Length includes them.
MULTIPART_SLACK_BYTES = 64 * 1024


def max_bytes() -> int:
    return settings.HER_UPLOAD_MAX_BYTES  # a minute of 720p browser WebM is ~10-30 MB


def max_seconds() -> float:
    return settings.HER_UPLOAD_MAX_SECONDS  # one question-answer turn; longer is not a single turn


class MediaRejected(Exception):
    """An upload that fails a check; ``message`` is shown to the annotator as is."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def size_text(size: int) -> str:
    """A byte count as people read it, in decimal units.

    >>> size_text(50_000_000), size_text(52_428_800), size_text(20_000), size_text(999)
    ('50 MB', '52.4 MB', '20 kB', '999 bytes')
    """
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def too_large_message() -> str:
    return (
        f"The file is larger than the limit of {size_text(max_bytes())}. "
        "Record a shorter turn or upload a smaller clip."
    )


def length_required_message() -> str:
    return (
        "The upload did not say its size (no Content-Length: a chunked upload). Send the file "
        f"in one request with its length, as browsers do; the limit is {size_text(max_bytes())}."
    )


class SizeLimitUploadHandler(FileUploadHandler):
    """Stops reading an upload as soon as more than ``limit`` file bytes arrived.

    Content-Length is checked first by the view; this handler is what holds when the length
    is missing or wrong. It must be installed before anything reads ``request.POST``.
    """

    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request)
        self.limit = max_bytes() if limit is None else limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int):
        return None


DISPLAY_NAMES = {"webm": "WebM", "matroska": "Matroska", "mp4": "MP4", "quicktime": "QuickTime",
                 "ogg": "Ogg", "wav": "WAV"}


@dataclass(frozen=True)
class Sniffed:
    container: str  # webm, matroska, mp4, quicktime, ogg, wav
    extension: str
    ffmpeg_format: str  # the only demuxer the probe may use


@dataclass(frozen=True)
class CheckedMedia:
    container: str
    extension: str
    content_type: str
    duration_seconds: float
    has_audio: bool
    has_video: bool
    size_bytes: int
    sha256: str


def sniff(head: bytes) -> Sniffed:
    """Name the container from its first bytes (at least 64 of them when the file has them).

    >>> sniff(bytes.fromhex("1A45DFA3") + b"\\x42\\x82\\x84webm").container
    'webm'
    >>> sniff(b"\\x00\\x00\\x00\\x18ftypisom").container
    'mp4'
    """
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # The EBML DocType says "webm" or "matroska"; it sits in the first few dozen bytes.
        if b"webm" in head[:64]:
            return Sniffed("webm", "webm", "matroska")
        return Sniffed("matroska", "mkv", "matroska")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        if head[8:12] == b"qt  ":
            return Sniffed("quicktime", "mov", "mov")
        return Sniffed("mp4", "mp4", "mov")
    if head.startswith(b"OggS"):
        return Sniffed("ogg", "ogg", "ogg")
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("wav", "wav", "wav")
    raise MediaRejected(
        "This file is not a recording we can use: upload a WebM, MP4, QuickTime, Ogg or WAV "
        "clip (the file's contents are checked, not its name).",
        status=415,
    )


def content_type_for(extension: str, has_video: bool) -> str:
    """The fixed content type a stored round is served with (from the sniffed container)."""
    video = {"webm": "video/webm", "mkv": "video/x-matroska", "mp4": "video/mp4",
             "mov": "video/quicktime", "ogg": "video/ogg"}
    audio = {"webm": "audio/webm", "mkv": "audio/x-matroska", "mp4": "audio/mp4",
             "mov": "audio/mp4", "ogg": "audio/ogg", "wav": "audio/wav"}
    table = video if has_video else audio
    return table.get(extension, "application/octet-stream")


def _ensure_ffmpeg_reports_errors() -> None:
    # PyAV leaves FFmpeg's logging off by default; errors must reach Python for the
    # truncation check. Never make it quieter than another part of the process asked for.
    # PyAV also drops a message identical to the previous one, process-wide: the second
    # truncated upload in a row would pass unseen.
    level = av.logging.get_level()
    if level is None or level < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)
    if av.logging.get_skip_repeated():
        av.logging.set_skip_repeated(False)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def check_media_file(path: str | Path) -> CheckedMedia:
    """Run every check on a file on local disk; raise ``MediaRejected`` with the reason."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise MediaRejected("The file is empty. Record your turn again or choose another clip.")
    if size > max_bytes():
        raise MediaRejected(too_large_message(), status=413)
    with open(path, "rb") as handle:
        sniffed = sniff(handle.read(64))

    limit = max_seconds()
    unreadable = (
        f"This {DISPLAY_NAMES[sniffed.container]} file could not be read completely (it may be cut off or "
        "damaged). Record your turn again or export the clip again."
    )
    _ensure_ffmpeg_reports_errors()
    with av.logging.Capture(local=True) as logs:
        try:
            with av.open(str(path), mode="r", format=sniffed.ffmpeg_format) as container:
                streams = [s for s in container.streams if s.type in ("audio", "video")]
                if not streams:
                    raise MediaRejected(
                        "The file has neither sound nor picture. Record your turn with your "
                        "microphone (and camera) on."
                    )
                for stream in streams:
                    if stream.type == "video" and (stream.width or 0) * (stream.height or 0) > MAX_FRAME_PIXELS:
                        raise MediaRejected(
                            f"The video is {stream.width}x{stream.height}; the largest accepted "
                            "frame is 1920x1080. Record at a lower resolution."
                        )
                end = 0.0
                decoded = 0
                for packet in container.demux(streams):
                    for frame in packet.decode():
                        decoded += 1
                        if frame.time is not None:
                            frame_end = frame.time + _frame_seconds(frame)
                            end = max(end, frame_end)
                    if end > limit:
                        raise MediaRejected(
                            f"The recording is longer than {limit:g} seconds. Keep your turn "
                            "shorter and record it again."
                        )
                # When the header states a duration (files from editors and phones do; browser
                # recordings do not), the decoded frames must reach it.
                declared = container.duration / 1e6 if container.duration else None
                if declared is not None and end < declared - TRUNCATION_TOLERANCE_SECONDS:
                    raise MediaRejected(unreadable)
                has_audio = any(s.type == "audio" for s in streams)
                has_video = any(s.type == "video" for s in streams)
        except MediaRejected:
            raise
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise MediaRejected(unreadable) from exc
    if any(level <= av.logging.ERROR for level, _name, _message in logs):
        raise MediaRejected(unreadable)
    if decoded == 0:
        raise MediaRejected(unreadable)
    if end <= MIN_SECONDS:
        raise MediaRejected(
            f"The recording is only {end:.1f} seconds long; a turn needs more than "
            f"{MIN_SECONDS:g} seconds. Record it again."
        )
    return CheckedMedia(
        container=sniffed.container,
        extension=sniffed.extension,
        content_type=content_type_for(sniffed.extension, has_video),
        duration_seconds=round(end, 3),
        has_audio=has_audio,
        has_video=has_video,
        size_bytes=size,
        sha256=_digest(path),
    )


def _frame_seconds(frame) -> float:
    """How long one decoded frame lasts (audio: samples / rate; video: its packet duration)."""
    if isinstance(frame, av.AudioFrame) and frame.sample_rate:
        return frame.samples / frame.sample_rate
    duration = getattr(frame, "duration", None)
    if duration and frame.time_base:
        return float(duration * frame.time_base)
    return 0.0
