"""SceneLink recorder: evidential copies muxed from the caller's encoded frames."""

from .library import RecordingInfo, list_recordings, media_duration
from .recording import SessionRecorder

__all__ = ["RecordingInfo", "SessionRecorder", "list_recordings", "media_duration"]
