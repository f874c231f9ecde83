"""SceneLink signalling."""
