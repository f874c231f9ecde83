"""SceneLink retention."""
