"""SceneLink bench."""
