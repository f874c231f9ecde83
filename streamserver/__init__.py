"""SceneLink streamserver."""
