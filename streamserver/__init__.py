"""SceneLink streamserver: forwards the caller's encoded media to viewers and the recorder."""

from .frames import EncodedFrame
from .patches import install
from .relay import RelayViewerTrack, Subscription, TrackRelay
from .session import MediaSession

__all__ = [
    "EncodedFrame",
    "MediaSession",
    "RelayViewerTrack",
    "Subscription",
    "TrackRelay",
    "install",
]
