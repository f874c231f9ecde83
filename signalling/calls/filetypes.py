"""What a file from the caller's phone is, by its first bytes, never by its name or the type
the browser claims: an executable renamed ``.jpg`` is refused.

Accepted: JPEG, PNG, HEIC/HEIF, MP4 and MOV (QuickTime). HEIF and the two video formats are
ISO base media files: their ``ftyp`` box names a major brand and compatible brands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SNIFF_BYTES = 64  # enough for every signature below, an ftyp box's brands included

FileKind = Literal["photo", "video"]


@dataclass(frozen=True, slots=True)
class FileType:
    content_type: str
    ext: str
    kind: FileKind


JPEG = FileType("image/jpeg", "jpg", "photo")
PNG = FileType("image/png", "png", "photo")
HEIC = FileType("image/heic", "heic", "photo")
HEIF = FileType("image/heif", "heif", "photo")
MP4 = FileType("video/mp4", "mp4", "video")
MOV = FileType("video/quicktime", "mov", "video")

BRANDS: dict[bytes, FileType] = {
    **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"), HEIC),
    **dict.fromkeys((b"mif1", b"msf1", b"avif"), HEIF),
    b"qt  ": MOV,
    **dict.fromkeys(
        (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"3gp4"),
        MP4,
    ),
}
ACCEPTED = "JPEG, PNG, HEIC, MP4 or MOV"


def sniff(head: bytes) -> FileType | None:
    """The type of a file starting with ``head`` (at least ``SNIFF_BYTES`` of it, or the
    whole file), or None if it is none of the accepted ones."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[4:8] == b"ftyp":
        box = min(int.from_bytes(head[:4], "big"), len(head))
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box - 3, 4)]
        for brand in brands:  # the major brand first, then the compatible ones
            if brand in BRANDS:
                return BRANDS[brand]
    return None
