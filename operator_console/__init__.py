"""SceneLink operator_console."""
