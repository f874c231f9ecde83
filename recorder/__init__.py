"""SceneLink recorder: evidential copies muxed from the caller's encoded frames."""

from .library import media_duration
from .recording import SessionRecorder

__all__ = ["SessionRecorder", "media_duration"]
