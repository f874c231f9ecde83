"""A recorded session with a face in it: scikit-image's astronaut photograph, drifting right
across a grey picture, encoded as a phone would (H.264, keyframe every second, Opus tone) and
recorded into the evidence store like any call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skimage.data

from bench.synthetic import clip_of_frames
from recorder.catalogue import Catalogue, CatalogueEntry
from recorder.derivatives import MasterPart, master_parts
from recorder.manifest import Signer
from recorder.spool import Spooler
from recorder.store import LocalFolderStore
from tests.recorder.feed import record_session

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 30, 3.0
PHOTO = 360  # the photograph's side in the picture
DRIFT = 2  # pixels a frame
# Where the astronaut's face is in skimage's 512 x 512 photograph (x, y, w, h).
FACE_IN_PHOTO = (177, 66, 95, 95)


def photo_x(index: int) -> int:
    return 100 + DRIFT * index


def face_at(t: float) -> tuple[int, int, int, int]:
    """The face's pixels (x0, y0, x1, y1) at ``t`` seconds of the session."""
    k = PHOTO / 512
    fx, fy, fw, fh = FACE_IN_PHOTO
    x = photo_x(round(t * FPS))
    return x + round(fx * k), round(fy * k), x + round((fx + fw) * k), round((fy + fh) * k)


def picture(index: int) -> np.ndarray:
    """The index-th picture (RGB): a grey ramp with the photograph over it."""
    ramp = np.linspace(60, 180, WIDTH, dtype=np.uint8)
    image = np.repeat(np.repeat(ramp[None, :, None], HEIGHT, axis=0), 3, axis=2)
    astronaut = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    photo = cv2.resize(astronaut, (PHOTO, PHOTO))
    x = photo_x(index)
    image[:, x : x + PHOTO] = photo[:, : WIDTH - x]
    return image


def face_frame(width: int, height: int, index: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(picture(index), format="rgb24").reformat(format="yuv420p")


def record_face_session(folder: Path, signer: Signer) -> tuple[LocalFolderStore, CatalogueEntry]:
    clip = clip_of_frames("H264", face_frame, WIDTH, HEIGHT, FPS, SECONDS)
    store = LocalFolderStore(folder / "store")
    spool = Spooler(store)
    spool.start()
    try:
        asyncio.run(record_session(folder / "ev" / "face-1", clip, signer, spool, paced=True))
        assert spool.wait_idle(30)
    finally:
        spool.stop()
    catalogue = Catalogue(store, signer.jwks())
    return store, catalogue.get("face-1")


@pytest.fixture(scope="module")
def face_session(
    tmp_path_factory: pytest.TempPathFactory, signer: Signer
) -> tuple[LocalFolderStore, CatalogueEntry]:
    """The store holding the face session, and its catalogue entry."""
    return record_face_session(tmp_path_factory.mktemp("face"), signer)


def parts_of(
    store: LocalFolderStore, entry: CatalogueEntry, start_s: float, end_s: float
) -> list[MasterPart]:
    return master_parts(
        entry.segments, start_s, end_s, lambda name: store.get(f"{entry.prefix}/{name}")
    )
