"""Redacted copies for disclosure: regions blurred over time and audio ranges silenced.

An investigator sets boxes at keyframes (time, and x, y, w, h as fractions of the picture);
between two keyframes of one track the box moves linearly; a track with a single keyframe
holds its box over the whole range. OpenCV's frontal-face Haar cascade (shipped inside the
opencv-python-headless wheel, nothing fetched at run time) proposes tracks of faces.

Rendering decodes the master parts (PyAV), blurs with OpenCV and encodes a new H.264 + AAC
MP4, a derivative that never replaces the master: the hot media path never comes here.
Everything here blocks and is CPU-heavy: the server runs it in a bounded worker pool.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from .derivatives import (
    DerivativeLog,
    DerivativeRequest,
    HiddenJson,
    MasterPart,
    OutputFile,
    Progress,
    TrackJson,
    check_cancel,
    finish_log,
    output_ref,
)

OUTPUT_FILE = "redacted.mp4"
CONTENT_TYPE = "video/mp4"
AUDIO_RATE = 48000
FACE_PADDING = 0.25  # a detector's box is tight around the features: widen it by this much
FACE_MIN_OVERLAP = 0.3  # IoU that makes a detection the next box of a face track
DETECT_WIDTH = 640  # frames are scaled down to this width for detection
Image = npt.NDArray[np.uint8]


class PlanError(ValueError):
    """A plan that cannot be carried out; ``field`` names the part of the request."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_range(start_s: float, end_s: float, media_end_s: float) -> None:
    """A range of the session's timeline that holds media; PlanError naming the bound."""
    if not 0 <= start_s < end_s:
        raise PlanError("start_s", "the range must start at or after 0 and before its end")
    if start_s >= media_end_s:
        raise PlanError("start_s", f"the recording has {media_end_s:.1f} s of media")


@dataclass(frozen=True, slots=True)
class Box:
    """A region at one moment: ``t`` in seconds of the session, the rest fractions of the
    picture from its top-left corner."""

    t: float
    x: float
    y: float
    w: float
    h: float

    def check(self, where: str) -> None:
        if not (0 <= self.x < 1 and 0 <= self.y < 1 and 0 < self.w <= 1 and 0 < self.h <= 1):
            raise PlanError(where, "x, y, w, h are fractions of the picture (0..1, w, h > 0)")
        if self.x + self.w > 1 + 1e-9 or self.y + self.h > 1 + 1e-9:
            raise PlanError(where, "the box goes past the edge of the picture")

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) covering the box, rounded outwards."""
        x0, y0 = int(self.x * width), int(self.y * height)
        x1 = min(width, int(np.ceil((self.x + self.w) * width)))
        y1 = min(height, int(np.ceil((self.y + self.h) * height)))
        return x0, y0, x1, y1


@dataclass(frozen=True, slots=True)
class Track:
    """One region followed over time through its keyframes (sorted by time)."""

    keyframes: tuple[Box, ...]
    label: str = "region"

    def at(self, t: float) -> Box | None:
        """The box at ``t``: interpolated between keyframes, none outside them (a single
        keyframe holds for the whole range)."""
        ks = self.keyframes
        if len(ks) == 1:
            return ks[0]
        if t < ks[0].t or t > ks[-1].t:
            return None
        i = max(0, min(bisect_right([k.t for k in ks], t) - 1, len(ks) - 2))
        a, b = ks[i], ks[i + 1]
        f = (t - a.t) / (b.t - a.t)
        return Box(
            t,
            a.x + f * (b.x - a.x),
            a.y + f * (b.y - a.y),
            a.w + f * (b.w - a.w),
            a.h + f * (b.h - a.h),
        )

    def json(self) -> TrackJson:
        return {
            "label": self.label,
            "keyframes": [
                {"t": k.t, "x": k.x, "y": k.y, "w": k.w, "h": k.h} for k in self.keyframes
            ],
        }


@dataclass(frozen=True, slots=True)
class Mute:
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Plan:
    """What to hide in ``[start_s, end_s)`` of the session (seconds of its timeline)."""

    start_s: float
    end_s: float
    tracks: tuple[Track, ...]
    mutes: tuple[Mute, ...]

    def check(self, media_end_s: float) -> None:
        """Raises PlanError naming the first problem."""
        check_range(self.start_s, self.end_s, media_end_s)
        if not self.tracks and not self.mutes:
            raise PlanError("tracks", "nothing to hide: give at least one region or mute")
        for i, track in enumerate(self.tracks):
            if not track.keyframes:
                raise PlanError(f"tracks.{i}.keyframes", "a region needs at least one box")
            times = [k.t for k in track.keyframes]
            if times != sorted(set(times)):
                raise PlanError(f"tracks.{i}.keyframes", "keyframe times must increase")
            for j, box in enumerate(track.keyframes):
                box.check(f"tracks.{i}.keyframes.{j}")
                if not self.start_s <= box.t <= self.end_s:
                    raise PlanError(
                        f"tracks.{i}.keyframes.{j}.t", "a keyframe lies outside the range"
                    )
        for i, mute in enumerate(self.mutes):
            if not self.start_s <= mute.start_s < mute.end_s <= self.end_s:
                raise PlanError(f"mutes.{i}", "a mute must lie inside the range, start < end")

    def boxes_at(self, t: float) -> list[Box]:
        return [b for track in self.tracks if (b := track.at(t)) is not None]

    def muted(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The muted spans that overlap ``[t0, t1)``."""
        return [(m.start_s, m.end_s) for m in self.mutes if m.start_s < t1 and m.end_s > t0]

    def hidden(self) -> HiddenJson:
        return {
            "regions": [t.json() for t in self.tracks],
            "audio_muted": [{"start_s": m.start_s, "end_s": m.end_s} for m in self.mutes],
        }


# -- faces ---------------------------------------------------------------------------------


@cache
def face_cascade() -> cv2.CascadeClassifier:
    """OpenCV's frontal-face model, from inside the installed wheel (no download)."""
    models: str = cv2.data.haarcascades  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(models + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's bundled face model did not load")
    return cascade


def detect_faces(image: Image, t: float) -> list[Box]:
    """Faces in one BGR picture, as padded boxes in fractions of the picture."""
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_WIDTH / width)
    small = cv2.resize(image, (round(width * scale), round(height * scale))) if scale < 1 else image
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    found = face_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    sh, sw = gray.shape[:2]
    boxes = []
    for fx, fy, fw, fh in (tuple(map(float, f)) for f in found):
        pad_w, pad_h = fw * FACE_PADDING, fh * FACE_PADDING
        x0, y0 = max(0.0, (fx - pad_w) / sw), max(0.0, (fy - pad_h) / sh)
        x1, y1 = min(1.0, (fx + fw + pad_w) / sw), min(1.0, (fy + fh + pad_h) / sh)
        boxes.append(Box(t, x0, y0, x1 - x0, y1 - y0))
    return boxes


def overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    iw = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    ih = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = iw * ih
    return inter / (a.w * a.h + b.w * b.h - inter)


def link_tracks(samples: list[list[Box]], gap_s: float) -> list[Track]:
    """Join detections over time into tracks: a box continues the track whose last box it
    overlaps most, if that box is recent (within ``gap_s``)."""
    open_tracks: list[list[Box]] = []
    for boxes in samples:
        for box in boxes:
            recent = [t for t in open_tracks if box.t - t[-1].t <= gap_s and t[-1].t < box.t]
            best = max(recent, key=lambda t: overlap(t[-1], box), default=None)
            if best is not None and overlap(best[-1], box) >= FACE_MIN_OVERLAP:
                best.append(box)
            else:
                open_tracks.append([box])
    return [Track(tuple(boxes), f"face {i + 1}") for i, boxes in enumerate(open_tracks)]


def moved(box: Box, towards: Box, t: float) -> Box:
    """``box`` carried on to time ``t`` at the speed it moved from ``towards``, kept inside
    the picture."""
    f = 0.0 if box.t == towards.t else (t - box.t) / (box.t - towards.t)
    x = min(max(0.0, box.x + f * (box.x - towards.x)), 1 - box.w)
    y = min(max(0.0, box.y + f * (box.y - towards.y)), 1 - box.h)
    return Box(round(t, 3), x, y, box.w, box.h)


def extended(track: Track, by: float, start_s: float, end_s: float) -> Track:
    """A detected track reaches ``by`` seconds further each way (clamped to the range), at
    the speed it moved: the face was there between the samples too."""
    ks = track.keyframes
    before, after = max(start_s, ks[0].t - by), min(end_s, ks[-1].t + by)
    head = (moved(ks[0], ks[min(1, len(ks) - 1)], before),) if before < ks[0].t else ()
    tail = (moved(ks[-1], ks[max(0, len(ks) - 2)], after),) if after > ks[-1].t else ()
    return Track(head + ks + tail, track.label)


def propose_faces(
    parts: list[MasterPart],
    start_s: float,
    end_s: float,
    every_s: float = 0.5,
    cancel: threading.Event | None = None,
) -> list[Track]:
    """Face tracks in ``[start_s, end_s)``, sampling a frame every ``every_s`` seconds."""
    cv2.setNumThreads(1)  # the worker pool bounds the CPU used, not OpenCV
    samples: list[list[Box]] = []
    next_t = start_s
    for part in parts:
        with part.open() as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                check_cancel(cancel)
                if frame.pts is None or frame.time_base is None:
                    continue
                t = part.offset_s + float(frame.pts * frame.time_base)
                if t < next_t:
                    continue
                if t >= end_s:
                    break
                picture = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
                samples.append(detect_faces(picture, round(t, 3)))
                next_t = t + every_s
    tracks = link_tracks(samples, gap_s=every_s * 2.5)
    return [extended(t, every_s, start_s, end_s) for t in tracks]


# -- rendering -----------------------------------------------------------------------------


def blur_box(image: Image, box: Box) -> None:
    """Hide a region for good: pixelate it to a few blocks, then smooth the blocks."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box.pixels(width, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    region = image[y0:y1, x0:x1]
    w, h = x1 - x0, y1 - y0
    small = cv2.resize(region, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 4) | 1)
    image[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)


def video_encoder() -> str:
    """H.264 through libx264 where PyAV's FFmpeg has it, else another H.264 encoder, else
    MPEG-4 part 2 (every FFmpeg build has it)."""
    for name in ("libx264", "h264", "libopenh264", "mpeg4"):
        try:
            av.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises different errors for unknown names
            continue
        return name
    raise RuntimeError("no video encoder available in PyAV's FFmpeg")


def silence(samples: npt.NDArray[np.float32], t0: float, spans: list[tuple[float, float]]) -> None:
    """Zero the samples (channels x n at AUDIO_RATE, starting at ``t0``) inside ``spans``."""
    n = samples.shape[1]
    for a, b in spans:
        i0 = max(0, round((a - t0) * AUDIO_RATE))
        i1 = min(n, round((b - t0) * AUDIO_RATE))
        if i1 > i0:
            samples[:, i0:i1] = 0.0


class Renderer:
    """Writes the redacted MP4: every video frame in range with its boxes blurred, every
    audio frame in range with the muted spans silenced, timed from the range's start."""

    def __init__(self, sink: av.container.OutputContainer, plan: Plan, first: MasterPart) -> None:
        self.plan = plan
        self.sink = sink
        with first.open() as probe:
            ctx = probe.streams.video[0].codec_context
            self.width, self.height = ctx.width // 2 * 2, ctx.height // 2 * 2
        self.encoder = video_encoder()
        video = sink.add_stream(self.encoder, rate=30)
        audio = sink.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        assert isinstance(video, av.VideoStream) and isinstance(audio, av.AudioStream)
        self.video, self.audio = video, audio
        self.video.width, self.video.height = self.width, self.height
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = Fraction(1, 1000)
        self.video.codec_context.time_base = Fraction(1, 1000)
        if self.encoder == "libx264":
            self.video.codec_context.options = {"preset": "veryfast", "crf": "20"}
        self.last_video_pts = -1
        self.next_audio_pts = 0

    def video_frame(self, frame: av.VideoFrame, t: float) -> None:
        image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = np.asarray(cv2.resize(image, (self.width, self.height)), np.uint8)  # turned
        for box in self.plan.boxes_at(t):
            blur_box(image, box)
        out = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        pts = max(self.last_video_pts + 1, round((t - self.plan.start_s) * 1000))
        out.pts, out.time_base = pts, Fraction(1, 1000)
        self.last_video_pts = pts
        self.sink.mux(self.video.encode(out))

    def audio_frame(self, frame: av.AudioFrame, t: float) -> None:
        samples = frame.to_ndarray().astype(np.float32)
        silence(samples, t, self.plan.muted(t, t + samples.shape[1] / AUDIO_RATE))
        out = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        out.sample_rate = AUDIO_RATE
        pts = max(self.next_audio_pts, round((t - self.plan.start_s) * AUDIO_RATE))
        out.pts, out.time_base = pts, Fraction(1, AUDIO_RATE)
        self.next_audio_pts = pts + samples.shape[1]
        self.sink.mux(self.audio.encode(out))

    def part(self, part: MasterPart, cancel: threading.Event | None, progress: Progress) -> None:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        span = self.plan.end_s - self.plan.start_s
        with part.open() as container:
            for packet in container.demux(*container.streams):
                check_cancel(cancel)
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue
                    if frame.pts is None or frame.time_base is None:
                        continue
                    t = part.offset_s + float(frame.pts * frame.time_base)
                    if not self.plan.start_s <= t < self.plan.end_s:
                        continue
                    if isinstance(frame, av.VideoFrame):
                        self.video_frame(frame, t)
                        progress(min(1.0, (t - self.plan.start_s) / span))
                    else:
                        for chunk in resampler.resample(frame):
                            if chunk.pts is not None and chunk.time_base is not None:
                                t = part.offset_s + float(chunk.pts * chunk.time_base)
                            self.audio_frame(chunk, t)

    def flush(self) -> None:
        self.sink.mux(self.video.encode(None))
        self.sink.mux(self.audio.encode(None))


def render_redaction(
    request: DerivativeRequest,
    parts: list[MasterPart],
    plan: Plan,
    folder: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> DerivativeLog:
    """Write the redacted copy and its log into ``folder`` (new, empty); returns the log."""
    if not parts:
        raise ValueError("no recorded media in that range")
    cv2.setNumThreads(1)
    report: Progress = progress or (lambda _: None)
    out = folder / OUTPUT_FILE
    with OutputFile(out) as target:
        with av.open(target.file, "w", format="mp4") as sink:
            renderer = Renderer(sink, plan, parts[0])
            for part in parts:
                renderer.part(part, cancel, report)
            renderer.flush()
    report(1.0)
    method = (
        f"decoded (PyAV), regions blurred (OpenCV), re-encoded as {renderer.encoder} "
        f"{renderer.width}x{renderer.height} with AAC audio in MP4; the master is unchanged"
    )
    outputs = [output_ref(out, CONTENT_TYPE)]
    return finish_log(
        folder,
        request,
        "redaction",
        plan.start_s,
        plan.end_s,
        parts,
        outputs,
        plan.hidden(),
        method,
    )
