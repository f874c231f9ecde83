"""Pictures made for viewing, never in the media path: a JPEG thumbnail of a photo or video
the caller sent, a JPEG of one live keyframe (a handler's snapshot), and a few EXIF fields.

Decoding is blocking and costly: call these in a worker thread, never on the event loop.
The originals are only read; what is made here is kept as a derivative (``originals``).
"""

from __future__ import annotations

import io
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .events import PhotoExif

logger = logging.getLogger(__name__)
register_heif_opener()  # iPhones' HEIC photos open like any other (libheif, in the wheel)

THUMBNAIL_PX = 480
JPEG_QUALITY = 82
DECODERS = {"H264": "h264", "VP8": "vp8"}


def _jpeg(image: Image.Image, fit: int | None = None) -> bytes:
    image = ImageOps.exif_transpose(image).convert("RGB")
    if fit is not None:
        image.thumbnail((fit, fit))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def thumbnail(path: Path, content_type: str) -> bytes | None:
    """A JPEG to show ``path`` on the console (a video's first frame as its poster); None
    where it cannot be decoded (a damaged file, a codec this build lacks)."""
    try:
        if content_type.startswith("video/"):
            with av.open(str(path)) as container:
                frame = next(container.decode(video=0))
                return _jpeg(frame.to_image(), THUMBNAIL_PX)  # type: ignore[no-untyped-call]
        with Image.open(path) as image:
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode at 1/2..1/8 scale
            return _jpeg(image, THUMBNAIL_PX)
    except (UnidentifiedImageError, av.FFmpegError, StopIteration, OSError, ValueError) as exc:
        logger.info("no thumbnail for %s (%s): %s", path.name, content_type, exc)
        return None


def keyframe_jpeg(codec: str, data: bytes) -> bytes:
    """The picture of one encoded keyframe (H.264 Annex-B or VP8), as a full-size JPEG."""
    if codec not in DECODERS:
        raise ValueError(f"no still from a {codec} stream")
    decoder = av.CodecContext.create(DECODERS[codec], "r")
    assert isinstance(decoder, av.VideoCodecContext)
    frames = list(decoder.decode(av.Packet(data))) + list(decoder.decode(None))
    if not frames:
        raise ValueError("the keyframe did not decode")
    return _jpeg(frames[0].to_image())  # type: ignore[no-untyped-call]


def _degrees(values: Any, ref: Any) -> float:
    d, m, s = (Fraction(str(float(v))) for v in values)
    sign = -1 if str(ref) in ("S", "W") else 1
    return round(sign * float(d + m / 60 + s / 3600), 7)


def photo_exif(path: Path) -> PhotoExif | None:
    """When and where the photo says it was taken, and on what (None: no EXIF here)."""
    try:
        with Image.open(path) as image:
            exif = image.getexif()
    except (UnidentifiedImageError, OSError):
        return None
    found: PhotoExif = {}
    taken = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    if taken:
        found["date_time_original"] = str(taken)
    if make := exif.get(ExifTags.Base.Make):
        found["make"] = str(make)
    if model := exif.get(ExifTags.Base.Model):
        found["model"] = str(model)
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    try:
        found["gps_lat"] = _degrees(gps[ExifTags.GPS.GPSLatitude], gps[ExifTags.GPS.GPSLatitudeRef])
        found["gps_lon"] = _degrees(
            gps[ExifTags.GPS.GPSLongitude], gps[ExifTags.GPS.GPSLongitudeRef]
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        pass
    return found or None
