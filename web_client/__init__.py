"""SceneLink web_client."""
