"""Running SceneLink: health and readiness probes, Prometheus metrics and log format."""
