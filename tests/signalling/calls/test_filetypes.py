"""A file's type by its first bytes, whatever its name or claimed type."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from signalling.calls.filetypes import HEIC, HEIF, JPEG, MOV, MP4, PNG, FileType, sniff


def image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, kind)
    return out.getvalue()


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (image("JPEG"), JPEG),
        (image("PNG"), PNG),
        (ftyp(b"heic", b"mif1", b"heic"), HEIC),
        (ftyp(b"mif1", b"heic"), HEIF),
        (ftyp(b"isom", b"isom", b"avc1"), MP4),
        (ftyp(b"mp42", b"isom"), MP4),
        (ftyp(b"qt  ", b"qt  "), MOV),
        (ftyp(b"XXXX", b"qt  "), MOV),  # a brand we do not know, a compatible one we do
    ],
)
def test_accepted_types_by_content(head: bytes, expected: FileType) -> None:
    assert sniff(head[:64]) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 48,  # a .exe
        b"\x7fELF\x02\x01\x01" + b"\x00" * 57,  # a Linux executable
        b"#!/bin/sh\nrm -rf /\n",
        b"%PDF-1.7\n",
        ftyp(b"XXXX", b"YYYY"),  # an ISO file of no accepted brand
        b"\xff\xd8",  # too short to be a JPEG
        b"",
    ],
)
def test_anything_else_is_refused_whatever_its_name(head: bytes) -> None:
    assert sniff(head) is None
