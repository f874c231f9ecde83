"""SceneLink recorder."""
